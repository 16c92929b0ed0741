//! The `recap` binary on the fixture group's week 2024-W44 (stored by the `analytics` binary), posting
//! to a local HTTP receiver that plays each destination kind: Discord, Slack, ntfy and a JSON webhook.
//! It checks each payload's exact shape against the stored rows, that a 429 is waited out as its
//! Retry-After asks and then posted once, that a 500 is posted by the next run once, that a re-run
//! posts nothing, and that no byte of any run's output holds a URL or a part of one.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use earshot_testkit::fixtures::fixtures_dir;
use earshot_testkit::mongo_server::MongoServer;
use earshot_tests::{binary, exported_snapshot_with};
use mongodb::bson::{Document, doc};
use serde_json::Value;

#[path = "post/alarms.rs"]
mod alarms;

#[path = "post/reminders.rs"]
mod reminders;

#[path = "post/weekly.rs"]
mod weekly;

const SNAPSHOT: &str = "20241111T090000Z";
const WEEK: &str = "2024-W44";
const DASHBOARD: &str = "https://earshot.example.org/friends";

/// What the receiver answers a request on a path, once.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    RateLimited(u64),
}

#[derive(Default)]
struct Inner {
    /// Every request: path, body, when.
    received: Vec<(String, Value, Instant)>,
    /// The replies queued per path (then: accepted).
    script: HashMap<String, VecDeque<Reply>>,
    /// The bodies accepted, per path.
    accepted: Vec<(String, Value)>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Inner>>);

impl Receiver {
    fn script(&self, path: &str, replies: &[Reply]) {
        self.0
            .lock()
            .unwrap()
            .script
            .insert(path.to_string(), replies.iter().copied().collect());
    }
    fn received(&self, path: &str) -> Vec<Instant> {
        let inner = self.0.lock().unwrap();
        inner
            .received
            .iter()
            .filter(|(p, ..)| p == path)
            .map(|(.., at)| *at)
            .collect()
    }
    fn total(&self) -> usize {
        self.0.lock().unwrap().received.len()
    }
    fn accepted(&self, path: &str) -> Vec<Value> {
        let inner = self.0.lock().unwrap();
        inner
            .accepted
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = receiver.0.lock().unwrap();
    inner
        .received
        .push((path.clone(), json.clone(), Instant::now()));
    let reply = inner.script.get_mut(&path).and_then(VecDeque::pop_front);
    match reply {
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::RateLimited(seconds)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            r#"{"message": "You are being rate limited.", "retry_after": 9, "global": false}"#,
        )
            .into_response(),
        None => {
            inner.accepted.push((path.clone(), json));
            if path.starts_with("/api/webhooks/") {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (StatusCode::OK, "ok").into_response()
            }
        }
    }
}

/// Keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

struct Setup {
    db: mongodb::Database,
    config: std::path::PathBuf,
    secrets: Vec<String>,
    _dir: tempfile::TempDir,
}

fn recap(setup: &Setup, args: &[&str]) -> Output {
    recap_with(setup, args, &[])
}

/// [`recap`] with more environment variables.
fn recap_with(setup: &Setup, args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(binary("recap"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("EARSHOT_GROUP_CONFIG", &setup.config)
        .env("MONGODB_URI", MongoServer::shared().uri())
        .env("EARSHOT_DATABASE", setup.db.name())
        .env("EARSHOT_STORAGE", setup._dir.path())
        .env("EARSHOT_LOG", "debug")
        .env("RECAP_TEST_DISCORD", &setup.secrets[0])
        .env("RECAP_TEST_SLACK", &setup.secrets[1])
        .env("RECAP_TEST_HOOK", &setup.secrets[3])
        .output()
        .unwrap()
}

fn config_with(base: &str, dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let token = |n: u64| {
        format!(
            "{:016x}{n}",
            0x5ec2e7_u64.wrapping_mul(0x9e37_79b9_7f4a_7c15 ^ n)
        )
    };
    let urls = vec![
        format!("{base}/api/webhooks/918273645/{}", token(1)),
        format!("{base}/services/T0EARSHOT/B0RECAP/{}", token(2)),
        format!("{base}/ntfy/crew{}", token(3)),
        format!("{base}/hook/{}?key={}", token(4), token(5)),
    ];
    let ntfy_file = dir.join("ntfy-url");
    std::fs::write(&ntfy_file, format!("{}\n", urls[2])).unwrap();
    let group = std::fs::read_to_string(fixtures_dir().join("group.toml")).unwrap();
    let config = format!(
        "dashboard_url = \"{DASHBOARD}/\"\n{group}\n\
         [[destinations]]\nname = \"discord\"\nkind = \"discord\"\nurl_env = \"RECAP_TEST_DISCORD\"\n\
         [[destinations]]\nname = \"slack\"\nkind = \"slack\"\nurl_env = \"RECAP_TEST_SLACK\"\n\
         [[destinations]]\nname = \"phones\"\nkind = \"ntfy\"\nurl_file = \"{}\"\n\
         [[destinations]]\nname = \"hook\"\nkind = \"webhook\"\nurl_env = \"RECAP_TEST_HOOK\"\n",
        ntfy_file.display()
    );
    // A top-level key after `[[members]]` would belong to the last member: put it first.
    let path = dir.join("group.toml");
    std::fs::write(&path, config).unwrap();
    (path, urls)
}

/// Every byte printed holds no URL and no part of one.
fn assert_no_secret(setup: &Setup, outputs: &[&Output]) {
    let mut parts: Vec<String> = Vec::new();
    for url in &setup.secrets {
        parts.push(url.clone());
        let parsed = url::Url::parse(url).unwrap();
        parts.extend(
            parsed
                .path_segments()
                .unwrap()
                .filter(|s| s.len() >= 8)
                .map(str::to_string),
        );
        parts.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
    }
    for output in outputs {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            for part in &parts {
                assert!(
                    !text.contains(part.as_str()),
                    "a secret was printed: {text}"
                );
            }
        }
    }
}

/// The fixture group's week stored by the `analytics` binary (with the streaming histories when
/// `history`), a receiver playing every destination, and a config posting to it.
async fn week_and_receiver(test: &str, history: bool) -> (Setup, Receiver) {
    let (db, dir, _storage) = exported_snapshot_with(test, SNAPSHOT, history).await;
    earshot_tests::run_binary(
        "analytics",
        dir.path(),
        &db,
        &fixtures_dir().join("group.toml"),
        &["--snapshot", SNAPSHOT, "--period", WEEK],
    );
    posting_to_a_receiver(db, dir).await
}

/// A receiver playing every destination, and a config in `dir` posting to it.
async fn posting_to_a_receiver(db: mongodb::Database, dir: tempfile::TempDir) -> (Setup, Receiver) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (config, secrets) = config_with(&base, dir.path());
    let setup = Setup {
        db,
        config,
        secrets,
        _dir: dir,
    };
    (setup, receiver)
}
