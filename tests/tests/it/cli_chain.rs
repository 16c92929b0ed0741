//! The binaries chain by hand, as a developer or a shell pipeline runs them:
//! `json-converter … --output - | data-upload … --input -`.

use std::io::Write;
use std::process::{Command, Stdio};

use earshot_testkit::fixtures::{Listening, fact_count, fixtures_dir, raw_pages};
use earshot_testkit::mongo_server::MongoServer;
use earshot_tests::binary;
use serde_json::Value;

fn write_raw_tree(dir: &std::path::Path) {
    for (key, page) in raw_pages(&Listening::fixture_group().unwrap()) {
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec(&page).unwrap()).unwrap();
    }
}

/// Run `json-converter <args> | data-upload <args>` and return data-upload's report lines.
fn chain(converter_args: &[&str], stdin: Option<Vec<u8>>, upload_args: &[&str]) -> Vec<Value> {
    let mut converter = Command::new(binary("json-converter"))
        .args(converter_args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = converter.stdin.take().unwrap();
        std::thread::spawn(move || pipe.write_all(&bytes).unwrap());
    }
    let upload = Command::new(binary("data-upload"))
        .args(upload_args)
        .stdin(converter.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(converter.wait().unwrap().success(), "json-converter failed");
    assert!(
        upload.status.success(),
        "data-upload failed: {}",
        String::from_utf8_lossy(&upload.stderr)
    );
    String::from_utf8(upload.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn json_converter_pipes_into_data_upload() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_tree(dir.path());
    let server = MongoServer::shared();
    let database = server.database_name("cli_chain");
    let storage = dir.path().to_str().unwrap();
    let group = fixtures_dir().join("group.toml");
    let converter = [
        "recently-played",
        "--storage",
        storage,
        "--output",
        "-",
        "--group-config",
        group.to_str().unwrap(),
    ];
    let upload = [
        "recently-played",
        "--input",
        "-",
        "--mongodb-uri",
        server.uri(),
        "--database",
        &database,
    ];

    let first = chain(&converter, None, &upload);
    assert_eq!(first[0]["collection"], "rawdata_recentlyplayed");
    assert_eq!(first[0]["inserted"], fact_count("plays.total"));
    let second = chain(&converter, None, &upload);
    assert_eq!(
        (
            second[0]["inserted"].as_u64(),
            second[0]["modified"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(second[0]["unchanged"], fact_count("plays.total"));
    assert!(
        !dir.path().join("converted").exists(),
        "--output - leaves storage untouched"
    );

    // Pages on stdin (`cat page.json | json-converter --input - …`), for one member: their first
    // page by name (a folder lists in no set order, and the pages differ in length).
    let mut pages: Vec<_> = std::fs::read_dir(dir.path().join("raw/recently_played/user=emi"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    pages.sort();
    let page = std::fs::read(&pages[0]).unwrap();
    let plays = serde_json::from_slice::<serde_json::Value>(&page).unwrap()["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(plays > 0, "{}: a page with plays", pages[0].display());
    let from_stdin = chain(
        &[
            "recently-played",
            "--input",
            "-",
            "--output",
            "-",
            "--user",
            "emi",
            "--group-config",
            group.to_str().unwrap(),
        ],
        Some(page),
        &upload,
    );
    assert_eq!(from_stdin[0]["read"], plays);
    assert_eq!(
        from_stdin[0]["inserted"], 0,
        "already loaded through the storage path"
    );
}

#[test]
fn exit_codes_tell_partial_success_and_usage_errors_apart() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_tree(dir.path());
    let bad = dir
        .path()
        .join("raw/recently_played/user=emi/20990101T000000.000Z.json");
    std::fs::write(&bad, b"{\"items\": [").unwrap();
    let run = |args: &[&str]| {
        Command::new(binary("json-converter"))
            .args(args)
            .output()
            .unwrap()
    };
    let storage = dir.path().to_str().unwrap();
    let partial = run(&["recently-played", "--storage", storage]);
    assert_eq!(
        partial.status.code(),
        Some(3),
        "some files failed, the rest converted"
    );
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert!(
        stderr.contains("20990101T000000.000Z.json") && stderr.contains("EOF while parsing"),
        "{stderr}"
    );
    let again = run(&["recently-played", "--storage", storage]);
    assert_eq!(
        again.status.code(),
        Some(3),
        "the bad file still fails; the rest is skipped as done"
    );
    assert_eq!(run(&["no-such-kind"]).status.code(), Some(2));
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    for needle in [
        "EARSHOT_STORAGE",
        "EARSHOT_GROUP_CONFIG",
        "Exit codes",
        "3 partial success",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}
