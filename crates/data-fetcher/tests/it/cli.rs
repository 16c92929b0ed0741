//! The `data-fetcher` binary end to end against the mock Spotify: a member connects with
//! `auth --no-listen` (pasting the redirect URL), the group fetches, status lists them. Every byte the
//! runs print is captured: no token, client secret or token key may appear.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use earshot_testkit::fixtures::fixtures_dir;
use earshot_testkit::spotify::{DEFAULT_CLIENT_ID, Endpoint, Fault, FaultRule, MockSpotify};

fn command(mock: &MockSpotify, storage: &std::path::Path, key: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_data-fetcher"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SPOTIFY_API_BASE", mock.base_url())
        .env("SPOTIFY_ACCOUNTS_BASE", mock.base_url())
        .env("SPOTIFY_CLIENT_ID", DEFAULT_CLIENT_ID)
        .env("EARSHOT_TOKEN_KEY", key)
        .env("EARSHOT_STORAGE", storage)
        .env("EARSHOT_GROUP_CONFIG", fixtures_dir().join("group.toml"))
        .env("EARSHOT_LOG", "debug");
    command
}

#[tokio::test]
async fn connect_fetch_and_status_through_the_binary_without_leaking_secrets() {
    let mock = MockSpotify::start_fixture_group().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = earshot_spotify::tokens::TokenKey::generate_base64().unwrap();
    let mut printed = String::new();

    // auth --no-listen: read the URL from stderr, approve as the member, paste the redirect back.
    let mut auth = command(&mock, dir.path(), &key)
        .args(["auth", "--no-listen"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = auth.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(start) = line.find("http://127.0.0.1")
                && line.contains("/authorize?")
            {
                let _ = tx.send(line[start..].trim().to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let url = tokio::task::spawn_blocking(move || {
        rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap()
    })
    .await
    .unwrap();
    assert!(
        url.contains("code_challenge_method=S256") && url.contains("state="),
        "{url}"
    );
    assert!(
        url.contains("scope=user-read-recently-played+user-top-read"),
        "{url}"
    );
    let back = mock.browser_authorize(&url, "ana.mx").await.unwrap();
    writeln!(auth.stdin.take().unwrap(), "{back}").unwrap();
    let output = tokio::task::spawn_blocking(move || auth.wait_with_output().unwrap())
        .await
        .unwrap();
    let auth_err = reader.join().unwrap();
    assert!(output.status.success(), "{auth_err}");
    assert!(auth_err.contains("Connected Ana (ana.mx)"), "{auth_err}");
    printed.push_str(&String::from_utf8_lossy(&output.stdout));
    printed.push_str(&auth_err);

    // fetch and status.
    let mut status = String::new();
    for args in [
        vec!["fetch"],
        vec!["fetch", "--what", "recently-played", "--member", "ana.mx"],
        vec!["status"],
    ] {
        if args.contains(&"--member") {
            // Spotify answers this run's first request 429, Retry-After 1 s: the run waits and
            // records both.
            mock.push_fault(FaultRule::new(
                Endpoint::RecentlyPlayed,
                Fault::RateLimited {
                    retry_after: 1,
                    quota: false,
                },
                1,
            ));
        }
        let out = tokio::task::spawn_blocking({
            let mut c = command(&mock, dir.path(), &key);
            c.args(&args);
            if args[0] == "fetch" {
                // As the DAG runs it: the run is recorded under the task's id.
                c.env(earshot_core::env::EARSHOT_STEP, "fetch_recently_played");
            }
            move || c.output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        status = String::from_utf8_lossy(&out.stdout).to_string();
    }
    // `status` (run last) has Ana's row: connected, with a last play and no gap.
    let row: Vec<&str> = status
        .lines()
        .find(|line| line.starts_with("ana.mx "))
        .unwrap_or_else(|| panic!("no row for ana.mx in:\n{status}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], ["ana.mx", "Ana", "ok"], "{status}");
    assert!(row[3].starts_with("20"), "a last play: {status}");
    assert_eq!(row[4], "0", "{status}");
    assert!(
        dir.path()
            .join("raw/recently_played/user=ana.mx")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );

    // No secret anywhere in what was printed.
    let store = earshot_spotify::tokens::TokenStore::Storage(
        earshot_core::Storage::local(dir.path()),
        earshot_spotify::tokens::TokenKey::from_base64(&key).unwrap(),
    );
    let tokens = store.load("ana.mx").await.unwrap().unwrap();
    for secret in [
        key.as_str(),
        tokens.access_token.as_str(),
        tokens.refresh_token.as_str(),
    ] {
        assert!(!printed.contains(secret), "a secret was printed");
    }
    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| !r.path_and_query.contains(&key)
            && !r.path_and_query.contains(&tokens.refresh_token)),
        "no secret goes in a URL"
    );

    // A missing token key is a clear error, naming the variable.
    let out = command(&mock, dir.path(), &key)
        .env_remove("EARSHOT_TOKEN_KEY")
        .env(earshot_core::env::EARSHOT_STEP, "fetch_recently_played")
        .arg("fetch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EARSHOT_TOKEN_KEY"));

    // The scheduled runs were recorded, newest first: the failure, then the two fetches that worked;
    // the runs by hand (auth, status) were not.
    use earshot_core::step_runs::{self, RunOutcome};
    let storage = earshot_core::Storage::local(dir.path());
    let steps = step_runs::list(&storage).await.unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    let outcomes: Vec<RunOutcome> = steps[0].runs.iter().map(|r| r.outcome).collect();
    assert_eq!(steps[0].step, "fetch_recently_played");
    assert_eq!(
        outcomes,
        [
            RunOutcome::Failure,
            RunOutcome::Success,
            RunOutcome::Success
        ]
    );
    assert_eq!(steps[0].failures_in_a_row(), 1);
    assert!(steps[0].runs.iter().all(|r| r.duration_ms < 60_000));
    // Each run states its peak memory: more than a megabyte, less than the 1 GiB a step may use.
    assert!(
        steps[0].runs.iter().all(|r| r
            .peak_memory_bytes
            .is_some_and(|b| b > 1 << 20 && b < 1 << 30)),
        "{steps:?}"
    );
    // The second fetch was answered 429 once and waited the second Spotify asked for; the first
    // waited on nothing; the totals sum them.
    let waits: Vec<(u64, u64)> = steps[0]
        .runs
        .iter()
        .map(|r| (r.rate_limited, r.spotify_wait_ms))
        .collect();
    assert_eq!(waits, [(0, 0), (1, 1000), (0, 0)]);
    assert!(steps[0].runs[1].duration_ms >= 1000);
    assert_eq!(
        (
            steps[0].totals.rate_limited,
            steps[0].totals.spotify_wait_ms
        ),
        (1, 1000)
    );
}

#[test]
fn help_documents_every_flag_and_environment_variable() {
    let help = |args: &[&str]| {
        String::from_utf8(
            Command::new(env!("CARGO_BIN_EXE_data-fetcher"))
                .args(args)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let top = help(&["--help"]);
    for needle in [
        "EARSHOT_TOKEN_KEY",
        "EARSHOT_TOKEN_KEY_FILE",
        "SPOTIFY_API_BASE",
        "SPOTIFY_ACCOUNTS_BASE",
        "EARSHOT_STORAGE",
        "EARSHOT_GROUP_CONFIG",
        "MONGODB_URI",
        "Exit codes",
        "auth",
        "fetch",
        "status",
    ] {
        assert!(top.contains(needle), "--help lacks {needle}");
    }
    let fetch = help(&["fetch", "--help"]);
    for needle in [
        "--member",
        "--what",
        "--max-wait",
        "--concurrency",
        "--storage",
        "--group-config",
        "--token-store",
    ] {
        assert!(fetch.contains(needle), "fetch --help lacks {needle}");
    }
    let auth = help(&["auth", "--help"]);
    for needle in [
        "--no-listen",
        "--port",
        "--redirect-uri",
        "--app",
        "--timeout",
    ] {
        assert!(auth.contains(needle), "auth --help lacks {needle}");
    }
}
