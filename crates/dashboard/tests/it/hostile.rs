//! The dashboard against a hostile client (issue 21): a burst of wrong passwords, a reused CSRF token,
//! guessing spread over many addresses, a forged `X-Forwarded-For`, a foreign Host (DNS rebinding), a
//! proxied request to a dashboard without a password, a half-sent request, and hostile `next=` values.

use crate::common;

use std::time::{Duration, Instant};

use common::{client, login_form, serve_empty};
use dashboard::auth::Auth;
use dashboard::exposure::Network;
use dashboard::server::ServerLimits;
use dashboard::throttle::LoginLimits;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PASSWORD: &str = "correct horse battery";

fn auth(limits: LoginLimits) -> Auth {
    Auth::new(
        &dashboard::auth::hash_password(PASSWORD).unwrap(),
        "the test hash",
        false,
    )
    .unwrap()
    .with_login_limits(limits)
}

/// A login form: its CSRF cookie (`name=value`) and token.
async fn form(base: &str) -> (String, String) {
    login_form(&client(), base).await
}

/// One wrong guess from each of `addresses` (named by `X-Forwarded-For`), in turn: the statuses.
async fn guesses(base: &str, addresses: &[String]) -> Vec<StatusCode> {
    let mut answers = Vec::new();
    for address in addresses {
        answers.push(
            post(base, &form(base).await, "a guess", Some(address))
                .await
                .status(),
        );
    }
    answers
}

/// Post the login form, optionally through a proxy that names `forwarded_for` as the client.
async fn post(
    base: &str,
    (nonce, token): &(String, String),
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[("password", password), ("csrf", token)]);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

fn statuses(responses: &[StatusCode], status: StatusCode) -> usize {
    responses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_gets_at_most_five_checks() {
    let (base, _dir) = serve_empty(
        "dashboard_burst",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let mut forms = Vec::new();
    for _ in 0..30 {
        forms.push(form(&base).await);
    }
    let burst = forms.iter().enumerate().map(|(i, form)| {
        let base = base.clone();
        async move {
            post(&base, form, &format!("guess {i}"), None)
                .await
                .status()
        }
    });
    let answers: Vec<StatusCode> = futures::future::join_all(burst).await;
    let checked = statuses(&answers, StatusCode::UNAUTHORIZED);
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords checked: {answers:?}"
    );
    assert_eq!(
        checked
            + statuses(&answers, StatusCode::TOO_MANY_REQUESTS)
            + statuses(&answers, StatusCode::SERVICE_UNAVAILABLE),
        30,
        "every other attempt is throttled (429) or finds the checks busy (503): {answers:?}"
    );
    // The right password is refused too while the address is throttled.
    let response = post(&base, &form(&base).await, PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
}

#[tokio::test]
async fn a_csrf_token_is_spent_by_its_first_use() {
    let (base, _dir) = serve_empty(
        "dashboard_csrf_once",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let form = form(&base).await;
    assert_eq!(
        post(&base, &form, "a wrong one", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = post(&base, &form, PASSWORD, None).await;
    assert_eq!(
        again.status(),
        StatusCode::FORBIDDEN,
        "even with the right password"
    );
    assert!(
        again
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("earshot_session=")),
        "no session from a spent token"
    );
}

#[tokio::test]
async fn the_budget_of_wrong_passwords_holds_across_fifty_addresses() {
    let budget = 10;
    let limits = LoginLimits {
        wrong_per_hour: budget,
        ..LoginLimits::default()
    };
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_budget",
        Some(auth(limits)),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    // A friend signs in first.
    let signed_in = post(&base, &form(&base).await, PASSWORD, Some("192.0.2.200")).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("earshot_session="))
        .unwrap();
    // Fifty guessers, half IPv4 addresses and half IPv6 /64s, one guess each.
    let addresses: Vec<String> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                format!("198.51.100.{i}")
            } else {
                format!("2001:db8:{i:x}::1")
            }
        })
        .collect();
    let answers = guesses(&base, &addresses).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        budget,
        "{answers:?}"
    );
    assert_eq!(
        statuses(&answers, StatusCode::TOO_MANY_REQUESTS),
        50 - budget
    );
    // Spent: nobody signs in, not even with the password; the friend's session still opens pages.
    let response = post(&base, &form(&base).await, PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("paused for everyone")
    );
    let page = client()
        .get(format!("{base}/status"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarded_addresses_count_only_through_a_trusted_proxy() {
    // Not trusted: a client that writes a new X-Forwarded-For each time is still one client.
    let (base, _dir) = serve_empty(
        "dashboard_xff_untrusted",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let forged: Vec<String> = (0..6).map(|i| format!("203.0.113.{i}")).collect();
    let answers = guesses(&base, &forged).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);

    // Trusted: addresses of one IPv6 /64 are one client; another /64 is another.
    let proxies: Vec<Network> = vec!["127.0.0.0/8".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_xff_trusted",
        Some(auth(LoginLimits::default())),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    let same_64: Vec<String> = (1..=6).map(|i| format!("2001:db8:aa:bb::{i}")).collect();
    let answers = guesses(&base, &same_64).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        post(
            &base,
            &form(&base).await,
            "a guess",
            Some("2001:db8:aa:cc::1")
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED,
        "another /64"
    );
}

/// One raw HTTP/1.1 request: the status line and the body.
async fn raw(base: &str, head: &str) -> (String, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_foreign_host_and_a_proxied_request_without_a_password_are_refused() {
    let (base, _dir) = serve_empty("dashboard_hosts", None, &[], ServerLimits::default()).await;
    let port = base.rsplit(':').next().unwrap();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = raw(
            &base,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 200 "), "{host}: {status}");
        assert!(body.contains("<html"), "{host}");
    }
    for host in [
        "rebind.attacker.example".to_string(),
        format!("rebind.attacker.example:{port}"),
        "127.0.0.1".to_string(),
    ] {
        let (status, body) = raw(
            &base,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 421 "), "{host}: {status}");
        assert!(
            !body.contains("<html") && !body.contains("ana.mx"),
            "{body}"
        );
    }
    for header in ["X-Forwarded-For: 192.0.2.1", "Forwarded: for=192.0.2.1"] {
        let (status, body) = raw(
            &base,
            &format!(
                "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(status.contains(" 403 "), "{header}: {status}");
        assert!(body.contains("no group password"), "{body}");
    }
}

#[tokio::test]
async fn a_half_sent_request_is_disconnected_within_the_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let (base, _dir) = serve_empty("dashboard_slow", None, &[], limits).await;
    let port = base.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "still open after 10 s");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(!text.contains(" 200 "), "{text}");
    // An idle kept-alive connection is closed the same way.
    let mut idle = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok() && started.elapsed() < Duration::from_secs(5),
        "an idle connection is closed"
    );
}

#[test]
fn only_a_same_site_path_survives_the_login_redirect() {
    let kept = [
        "/",
        "/status",
        "/member/ana.mx?period=2024-10",
        "/track/abc%20def",
        "/pair/a/b#top",
    ];
    for next in kept {
        assert_eq!(dashboard::login::safe_next(Some(next)), next, "{next:?}");
    }
    let hostile = [
        "//evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/\r//evil.example",
        "/\\evil.example",
        "/%5cevil.example",
        "/%2f/evil.example",
        "/%2F%2Fevil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "evil.example",
        "javascript:alert(1)",
        " /status",
        "",
        "/status\u{0}",
        "/\u{7f}/evil.example",
        "/status\\",
    ];
    for next in hostile {
        assert_eq!(dashboard::login::safe_next(Some(next)), "/", "{next:?}");
    }
    assert_eq!(dashboard::login::safe_next(None), "/");
    let long = format!("/{}", "a".repeat(4096));
    assert_eq!(dashboard::login::safe_next(Some(&long)), "/");
}

#[tokio::test]
async fn a_hostile_next_is_not_followed_after_signing_in() {
    let (base, _dir) = serve_empty(
        "dashboard_next",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let (nonce, token) = form(&base).await;
    let response = client()
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[
            ("password", PASSWORD),
            ("csrf", &token),
            ("next", "/\t/evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
}

#[tokio::test]
async fn secure_cookies_carry_hsts() {
    let secure = Auth::new(
        &dashboard::auth::hash_password(PASSWORD).unwrap(),
        "the test hash",
        true,
    )
    .unwrap();
    let (base, _dir) =
        serve_empty("dashboard_hsts", Some(secure), &[], ServerLimits::default()).await;
    let response = client().get(format!("{base}/login")).send().await.unwrap();
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[test]
fn cookies_are_secure_by_default_off_loopback() {
    use clap::Parser as _;
    let secure = |args: &[&str]| {
        let mut argv = vec!["dashboard"];
        argv.extend_from_slice(args);
        dashboard::Cli::try_parse_from(argv)
            .unwrap()
            .serve
            .secure_cookies()
    };
    assert!(
        !secure(&[]),
        "loopback, no proxy: plain HTTP on this machine"
    );
    assert!(secure(&["--bind", "0.0.0.0:8080"]));
    assert!(
        secure(&["--public-host", "music.example.org"]),
        "behind a proxy"
    );
    assert!(secure(&["--secure-cookie"]));
    assert!(!secure(&[
        "--bind",
        "192.168.1.20:8080",
        "--insecure-cookie"
    ]));
    assert!(
        dashboard::Cli::try_parse_from(["dashboard", "--secure-cookie", "--insecure-cookie"])
            .is_err()
    );
}

// ---- Issue 37: sessions on the server, no password only on purpose, a budget one client cannot
// spend alone, one client header, connections per client.

/// A page's status with a cookie.
async fn status_with(base: &str, cookie: &str) -> StatusCode {
    common::get_with(base, "/status", cookie).await.status()
}

/// A dashboard on `db` (and `dir`'s storage) with this password, within `limits`.
async fn serve_on(
    db: &mongodb::Database,
    dir: &std::path::Path,
    hash: &str,
    limits: LoginLimits,
) -> String {
    let stores = earshot_state::Stores {
        storage: earshot_core::Storage::local(dir),
        db: db.clone(),
        group: earshot_tests::fixture_group_config(),
    };
    let auth = Auth::new(hash, "the test hash", false)
        .unwrap()
        .with_login_limits(limits);
    common::serve_stores(stores, Some(auth)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_sign_out_and_at_a_new_password_and_are_each_their_own() {
    let db = earshot_tests::fresh_database("dashboard_sessions").await;
    let dir = tempfile::tempdir().unwrap();
    let hash = dashboard::auth::hash_password(PASSWORD).unwrap();
    let base = serve_on(&db, dir.path(), &hash, LoginLimits::default()).await;
    // Two sign-ins in the same second: two sessions.
    let (one, two) = futures::future::join(
        async { post(&base, &form(&base).await, PASSWORD, None).await },
        async { post(&base, &form(&base).await, PASSWORD, None).await },
    )
    .await;
    let (one, two) = (
        common::session_of(&one).unwrap(),
        common::session_of(&two).unwrap(),
    );
    assert_ne!(one, two, "each sign-in its own session");
    assert!(
        one.len() >= "earshot_session=".len() + 22,
        "at least 128 bits: {one}"
    );
    assert_eq!(status_with(&base, &one).await, StatusCode::OK);
    // The id is not what the store keeps.
    let id = one.trim_start_matches("earshot_session=");
    let stored: Vec<mongodb::bson::Document> = {
        use futures::TryStreamExt as _;
        db.collection(earshot_core::mongo::DASHBOARD_SESSIONS)
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(stored.len(), 2);
    assert!(!format!("{stored:?}").contains(id), "{stored:?}");
    // Signing out with `one`: a copy of it opens nothing afterwards; `two` still does.
    let out = common::sign_out(&base, &one).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = common::get_with(&base, "/status", &one).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    assert_eq!(status_with(&base, &two).await, StatusCode::OK);
    // A second dashboard process on the same database shares the sessions (and a restart keeps
    // them); one started with a new group password ends every session of the old one.
    let same = serve_on(&db, dir.path(), &hash, LoginLimits::default()).await;
    assert_eq!(status_with(&same, &two).await, StatusCode::OK);
    let mut args = vec!["dashboard".to_string()];
    let new_hash = dashboard::auth::hash_password("a new password").unwrap();
    let hash_file = dir.path().join("new.hash");
    std::fs::write(&hash_file, &new_hash).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    args.extend(
        [
            "--password-hash-file",
            hash_file.to_str().unwrap(),
            "--storage",
            dir.path().to_str().unwrap(),
            "--mongodb-uri",
            earshot_testkit::mongo::MongoServer::shared().uri(),
            "--database",
            db.name(),
            "--group-config",
            config.to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{port}"),
        ]
        .map(str::to_string),
    );
    use clap::Parser as _;
    tokio::spawn(dashboard::run(
        dashboard::Cli::try_parse_from(args).unwrap(),
    ));
    let renewed = format!("http://127.0.0.1:{port}");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(response) = client().get(format!("{renewed}/login")).send().await {
            answer = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer,
        Some(StatusCode::OK),
        "the renewed dashboard listens"
    );
    assert_eq!(status_with(&renewed, &two).await, StatusCode::SEE_OTHER);
    assert_eq!(
        status_with(&same, &two).await,
        StatusCode::SEE_OTHER,
        "ended for every process"
    );
}

#[test]
fn without_a_password_the_dashboard_starts_only_when_told_and_only_on_loopback() {
    let run = |args: &[&str]| {
        std::process::Command::new(earshot_tests::binary("dashboard"))
            .args(args)
            .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH")
            .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH_FILE")
            .env("MONGODB_URI", "mongodb://127.0.0.1:1")
            .output()
            .unwrap()
    };
    let out = run(&["--bind", "127.0.0.1:0"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--no-password") && stderr.contains("no group password"),
        "{stderr}"
    );
    let out = run(&["--bind", "192.0.2.1:8080", "--no-password"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-password"), "{stderr}");
    dashboard::check_no_password("127.0.0.1:8080".parse().unwrap(), false, true).unwrap();
    dashboard::check_no_password("[::1]:8080".parse().unwrap(), false, true).unwrap();
    dashboard::check_no_password("0.0.0.0:8080".parse().unwrap(), true, false).unwrap();
    assert!(
        dashboard::check_no_password("0.0.0.0:8080".parse().unwrap(), false, true)
            .unwrap_err()
            .to_string()
            .contains("loopback")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_at_its_pace_cannot_lock_out_another() {
    // A budget of 4 wrong passwords an hour: one client's share is 1.
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_share",
        Some(auth(LoginLimits::with_budget(4))),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    let guesser: Vec<String> = vec!["198.51.100.7".to_string(); 5];
    let answers = guesses(&base, &guesser).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        1,
        "{answers:?}"
    );
    assert_eq!(statuses(&answers, StatusCode::TOO_MANY_REQUESTS), 4);
    let friend = post(&base, &form(&base).await, PASSWORD, Some("203.0.113.8")).await;
    assert_eq!(
        friend.status(),
        StatusCode::SEE_OTHER,
        "the friend still signs in"
    );
    assert!(common::session_of(&friend).is_some());
}

#[tokio::test]
async fn a_post_without_a_csrf_pair_counts_nowhere() {
    let (base, _dir) = serve_empty(
        "dashboard_csrf_first",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    // A cross-site page auto-posting the form: no cookie, no token (or a made-up one).
    for token in ["", "forged", "1.abc"] {
        for _ in 0..3 {
            let response = client()
                .post(format!("{base}/login"))
                .form(&[("password", "a guess"), ("csrf", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
    }
    // None of the nine counted: the visitor signs in at once.
    let response = post(&base, &form(&base).await, PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn in_x_real_ip_mode_a_clients_own_x_forwarded_for_is_ignored() {
    let db = earshot_tests::fresh_database("dashboard_real_ip").await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let state = dashboard::AppState {
        base: String::new(),
        stores: earshot_state::Stores {
            storage: earshot_core::Storage::local(dir.path()),
            db,
            group: earshot_tests::fixture_group_config(),
        },
        auth: Some(auth(LoginLimits::default())),
        exposure: dashboard::exposure::Exposure::loopback(address.port(), true)
            .with_trusted_proxies(&proxies)
            .with_client_ip_header(dashboard::exposure::ClientIpHeader::XRealIp),
        clock: std::sync::Arc::new(earshot_state::clock::SystemClock),
        spotify: None,
        listen_limiter: Default::default(),
    };
    tokio::spawn(dashboard::serve_with(
        listener,
        vec![std::sync::Arc::new(state)],
        ServerLimits::default(),
    ));
    let base = format!("http://{address}");
    // The proxy sets X-Real-IP to the one client; the client writes a new X-Forwarded-For each time.
    let mut answers = Vec::new();
    for i in 0..6 {
        let (nonce, token) = form(&base).await;
        answers.push(
            client()
                .post(format!("{base}/login"))
                .header("cookie", nonce)
                .header("x-real-ip", "198.51.100.30")
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .form(&[("password", "a guess"), ("csrf", token.as_str())])
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);
}

/// A connection to `base` from the loopback address `from`, with a small receive buffer.
async fn connect_from(base: &str, from: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket
        .connect(base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap()
}

/// One page fetched over a fresh connection from `from`: the status line, or why not.
async fn page_from(base: &str, from: &str) -> Result<String, String> {
    let port = base.rsplit(':').next().unwrap();
    let mut stream = connect_from(base, from).await;
    stream
        .write_all(
            format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_unread_connections_of_one_client_cannot_stop_another_clients_page() {
    let limits = ServerLimits {
        max_connections: 4,
        connections_per_client: 2,
        idle_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let (base, _dir) = serve_empty(
        "dashboard_connections",
        Some(auth(LoginLimits::default())),
        &[],
        limits,
    )
    .await;
    let port = base.rsplit(':').next().unwrap().to_string();
    // 127.0.0.1 opens six connections and sends nothing: two are kept, four closed at once.
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(connect_from(&base, "127.0.0.1").await);
    }
    let started = Instant::now();
    let page = tokio::time::timeout(Duration::from_secs(5), page_from(&base, "127.0.0.2"))
        .await
        .expect("another client is served while the first holds its share");
    assert!(page.unwrap().contains(" 200 "));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // An idle kept-alive connection is closed after the idle timeout.
    let mut kept = connect_from(&base, "127.0.0.3").await;
    kept.write_all(format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), kept.read_to_end(&mut all)).await;
    assert!(closed.is_ok(), "still open after 5 s");
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    // 127.0.0.4 and 127.0.0.6 ask for thousands of pages on both their connections (every slot of
    // the server) and read none: the server's writes stall, the write timeout closes them, and
    // another client is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut stalled = Vec::new();
    for from in ["127.0.0.4", "127.0.0.4", "127.0.0.6", "127.0.0.6"] {
        let mut stream = connect_from(&base, from).await;
        let requests =
            format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").repeat(3000);
        tokio::spawn(async move {
            let _ = stream.write_all(requests.as_bytes()).await;
            // Hold the connection open, unread.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        stalled.push(());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = tokio::time::timeout(Duration::from_secs(8), page_from(&base, "127.0.0.5"))
        .await
        .expect("a client that never reads does not hold the server");
    assert!(page.unwrap().contains(" 200 "));
}
