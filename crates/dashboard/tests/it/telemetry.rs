//! The operator's view (issue #42): `/healthz` on the pages' address, open without a session; and the
//! Prometheus metrics on their own address, read by a real parser (`prometheus_client`'s OpenMetrics
//! parser, from PyPI) and held to what the stores say, computed here by aggregations of our own.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use dashboard::auth::Auth;
use dashboard::server::ServerLimits;
use dashboard::telemetry::{MetricsState, serve_metrics};
use earshot_core::mongo::RAW_RECENTLY_PLAYED;
use earshot_core::telemetry;
use earshot_tests::{Fixture, fixture_group_config, pipeline_database_of};
use futures::TryStreamExt as _;
use mongodb::bson::{Document, doc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{client, login_form, post_form, serve_state, venv_python as python};

const PASSWORD: &str = "a metrics test password";

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `text` through prometheus_client's OpenMetrics parser.
fn parse(text: &str) -> Vec<Sample> {
    let mut child = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/prometheus/parse.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the Prometheus parser (scripts/test.sh installs prometheus-client)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_string(),
                labels: v["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The samples named `name`.
fn named<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.name == name).collect()
}

/// The one sample named `name`.
fn one(samples: &[Sample], name: &str) -> f64 {
    let found = named(samples, name);
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0].value
}

/// One group's pages and, on other ports, its metrics (one server per `member_ids` setting): their
/// base URLs.
async fn serve(
    stores: earshot_state::Stores,
    auth: Option<Auth>,
    member_ids: &[bool],
) -> (String, Vec<String>) {
    let (base, state) = serve_state(stores, auth, &[], ServerLimits::default()).await;
    let mut metrics = Vec::new();
    for ids in member_ids {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        metrics.push(format!("http://{}", listener.local_addr().unwrap()));
        let served = MetricsState {
            states: vec![state.clone()],
            member_ids: *ids,
        };
        tokio::spawn(serve_metrics(listener, served, ServerLimits::default()));
    }
    (base, metrics)
}

/// Post the login form once with `password`: the response.
async fn sign_in(base: &str, password: &str) -> reqwest::Response {
    let (nonce, token) = login_form(&client(), base).await;
    post_form(
        base,
        "/login",
        &nonce,
        &[("password", password), ("csrf", token.as_str())],
    )
    .await
}

/// `(member, source)` → the newest play's time, by an aggregation of the raw plays.
async fn newest_plays(db: &mongodb::Database) -> BTreeMap<(String, String), DateTime<Utc>> {
    let pipeline = vec![doc! {"$group": {
        "_id": {"member": "$user_id", "source": "$source"},
        "newest": {"$max": "$played_at"},
    }}];
    let rows: Vec<Document> = db
        .collection::<Document>(RAW_RECENTLY_PLAYED)
        .aggregate(pipeline)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let id = row.get_document("_id").unwrap();
            (
                (
                    id.get_str("member").unwrap().to_string(),
                    id.get_str("source").unwrap().to_string(),
                ),
                DateTime::<Utc>::from_timestamp_millis(
                    row.get_datetime("newest").unwrap().timestamp_millis(),
                )
                .unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_parser_reads_the_metrics_the_stores_and_sign_ins_give() {
    let fixture = Fixture {
        history: true,
        listens: true,
    };
    let (db, _dir, storage) = pipeline_database_of("dashboard_metrics", fixture).await;
    // The export ran well once, then failed twice; the fetch ran twice, answered 429 twice then
    // once, waiting 3 s then 1.5 s on Spotify, the second time in part.
    use earshot_core::step_runs::{self, RunOutcome, StepRun};
    let run = |at: &str, ms: u64, outcome: RunOutcome, (rate_limited, spotify_wait_ms)| StepRun {
        started_at: at.parse().unwrap(),
        duration_ms: ms,
        outcome,
        rate_limited,
        spotify_wait_ms,
        peak_memory_bytes: Some(ms * 4096),
        batch_settings: [(step_runs::batch::KEYS_PER_AGGREGATION.to_string(), ms)].into(),
    };
    for (step, at, ms, outcome, waits) in [
        (
            "export",
            "2026-12-06T00:00:00Z",
            4000,
            RunOutcome::Success,
            (0, 0),
        ),
        (
            "export",
            "2026-12-07T00:00:00Z",
            1500,
            RunOutcome::Failure,
            (0, 0),
        ),
        (
            "export",
            "2026-12-08T00:00:00Z",
            2500,
            RunOutcome::Failure,
            (0, 0),
        ),
        (
            "fetch_recently_played",
            "2026-12-08T08:00:00Z",
            3900,
            RunOutcome::Success,
            (2, 3000),
        ),
        (
            "fetch_recently_played",
            "2026-12-08T09:00:00Z",
            750,
            RunOutcome::Partial,
            (1, 1500),
        ),
    ] {
        step_runs::record(&storage, step, run(at, ms, outcome, waits))
            .await
            .unwrap();
    }
    let group = fixture_group_config();
    let names: Vec<String> = group
        .members
        .iter()
        .map(|m| m.display_name.clone())
        .collect();
    let stores = earshot_state::Stores {
        storage,
        db: db.clone(),
        group,
    };
    let auth = Auth::new(
        &dashboard::auth::hash_password(PASSWORD).unwrap(),
        "the test hash",
        false,
    )
    .unwrap();
    let (base, metrics) = serve(stores, Some(auth), &[true, false]).await;

    // The health check is open without a session; the metrics are not on the pages' address.
    let health = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "ok", "mongodb": "ok"})
    );
    let elsewhere = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        elsewhere.status(),
        StatusCode::OK,
        "no metrics on the pages"
    );

    // One friend signs in, four wrong passwords, then two attempts past the throttle's five a minute.
    assert_eq!(
        sign_in(&base, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..4 {
        assert_eq!(
            sign_in(&base, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for _ in 0..2 {
        assert_eq!(
            sign_in(&base, PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    let before = Utc::now();
    let response = client()
        .get(format!("{}/metrics", metrics[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], telemetry::CONTENT_TYPE);
    let with_ids = response.text().await.unwrap();
    let after = Utc::now();
    let samples = parse(&with_ids);

    assert_eq!(
        one(&samples, &format!("{}_total", telemetry::SIGN_IN_FAILURES)),
        4.0
    );
    assert_eq!(
        one(&samples, &format!("{}_total", telemetry::SIGN_IN_REFUSALS)),
        2.0
    );
    assert_eq!(one(&samples, telemetry::SESSIONS_OPEN), 1.0);
    assert_eq!(one(&samples, telemetry::MONGODB_UP), 1.0);

    // Each step's newest run, from the records above.
    let of_step = |name: &str, step: &str| -> f64 {
        let found: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == name && s.labels.get("step").map(String::as_str) == Some(step))
            .collect();
        assert_eq!(found.len(), 1, "{name}{{step={step}}}: {found:?}");
        found[0].value
    };
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap().timestamp() as f64;
    assert_eq!(
        of_step(telemetry::STEP_LAST_RUN, "export"),
        at("2026-12-08T00:00:00Z")
    );
    assert_eq!(of_step(telemetry::STEP_LAST_DURATION, "export"), 2.5);
    assert_eq!(of_step(telemetry::STEP_LAST_SUCCESS, "export"), 0.0);
    assert_eq!(of_step(telemetry::STEP_FAILURES_IN_A_ROW, "export"), 2.0);
    assert_eq!(
        of_step(telemetry::STEP_LAST_PEAK_MEMORY, "export"),
        2500.0 * 4096.0
    );
    // The newest run's batch settings, each labelled with its name.
    let settings: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == telemetry::STEP_LAST_BATCH_SETTING)
        .collect();
    assert_eq!(settings.len(), 2, "{settings:?}");
    for (step, value) in [("export", 2500.0), ("fetch_recently_played", 750.0)] {
        let found = settings
            .iter()
            .find(|s| s.labels["step"] == step)
            .unwrap_or_else(|| panic!("no batch setting of {step}: {settings:?}"));
        assert_eq!(
            found.labels["setting"],
            earshot_core::step_runs::batch::KEYS_PER_AGGREGATION
        );
        assert_eq!(found.value, value);
    }
    assert_eq!(
        of_step(telemetry::STEP_LAST_RUN, "fetch_recently_played"),
        at("2026-12-08T09:00:00Z")
    );
    assert_eq!(
        of_step(telemetry::STEP_LAST_DURATION, "fetch_recently_played"),
        0.75
    );
    assert_eq!(
        of_step(telemetry::STEP_LAST_SUCCESS, "fetch_recently_played"),
        0.0
    );
    assert_eq!(
        of_step(telemetry::STEP_FAILURES_IN_A_ROW, "fetch_recently_played"),
        0.0
    );
    // Spotify's 429s and the time waited on it, summed over each step's runs.
    let rate_limited = format!("{}_total", telemetry::SPOTIFY_RATE_LIMITED);
    let waited = format!("{}_total", telemetry::SPOTIFY_WAIT);
    assert_eq!(of_step(&rate_limited, "fetch_recently_played"), 3.0);
    assert_eq!(of_step(&waited, "fetch_recently_played"), 4.5);
    assert_eq!(of_step(&rate_limited, "export"), 0.0);
    assert_eq!(of_step(&waited, "export"), 0.0);

    // Plays by source: every source, with the count an aggregation of the raw plays gives.
    let newest = newest_plays(&db).await;
    let mut by_source: BTreeMap<String, f64> = BTreeMap::new();
    for (source, count) in db
        .collection::<Document>(RAW_RECENTLY_PLAYED)
        .aggregate(vec![doc! {"$group": {"_id": "$source", "n": {"$sum": 1}}}])
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get_str("_id").unwrap().to_string(),
                row.get_i32("n")
                    .map(f64::from)
                    .unwrap_or_else(|_| row.get_i64("n").unwrap() as f64),
            )
        })
    {
        by_source.insert(source, count);
    }
    assert!(
        by_source.len() >= 3,
        "api, history and listens: {by_source:?}"
    );
    let stored: BTreeMap<String, f64> = named(&samples, telemetry::PLAYS_STORED)
        .iter()
        .filter(|s| s.value > 0.0)
        .map(|s| (s.labels["source"].clone(), s.value))
        .collect();
    assert_eq!(stored, by_source);

    // Each member's newest play by source: the age at the scrape, between the two instants around it.
    let ages = named(&samples, telemetry::LAST_PLAY_AGE);
    let members: BTreeSet<String> = fixture_group_config()
        .members
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let expected: BTreeMap<&(String, String), &DateTime<Utc>> = newest
        .iter()
        .filter(|((member, _), _)| members.contains(member))
        .collect();
    assert_eq!(ages.len(), expected.len(), "{ages:?}");
    for sample in &ages {
        let key = (
            sample.labels["member"].clone(),
            sample.labels["source"].clone(),
        );
        let newest = expected.get(&key).unwrap_or_else(|| panic!("{key:?}"));
        let (low, high) = (
            (before - **newest).num_seconds() as f64,
            (after - **newest).num_seconds() as f64,
        );
        assert!(
            (low..=high).contains(&sample.value),
            "{key:?}: {} not in {low}..={high}",
            sample.value
        );
    }

    // With member ids off: no member label, each source's member furthest behind.
    let folded_text = client()
        .get(format!("{}/metrics", metrics[1]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let folded = parse(&folded_text);
    assert!(
        folded.iter().all(|s| !s.labels.contains_key("member")),
        "{folded:?}"
    );
    for sample in named(&folded, telemetry::LAST_PLAY_AGE) {
        let source = &sample.labels["source"];
        let furthest = ages
            .iter()
            .filter(|s| &s.labels["source"] == source)
            .map(|s| s.value)
            .fold(0.0, f64::max);
        assert!(
            (furthest..=furthest + 60.0).contains(&sample.value),
            "{source}: {} against {furthest}",
            sample.value
        );
    }

    // No secret and no name in the exposition: the password, the members' names.
    for text in [&with_ids, &folded_text] {
        assert!(!text.contains(PASSWORD));
        for name in &names {
            assert!(!text.contains(&format!("\"{name}\"")), "{name} in:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mongodb_the_health_check_fails_and_the_metrics_still_answer() {
    let unreachable = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        mongodb::Client::with_uri_str(format!(
            "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=300"
        ))
        .await
        .unwrap()
        .database("nowhere")
    };
    let dir = tempfile::tempdir().unwrap();
    let stores = earshot_state::Stores {
        storage: earshot_core::Storage::local(dir.path()),
        db: unreachable,
        group: fixture_group_config(),
    };
    let (base, metrics) = serve(stores, None, &[true]).await;

    let health = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = health.text().await.unwrap();
    assert_eq!(body, r#"{"status":"unavailable","mongodb":"unreachable"}"#);

    let response = client()
        .get(format!("{}/metrics", metrics[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let samples = parse(&response.text().await.unwrap());
    assert_eq!(one(&samples, telemetry::MONGODB_UP), 0.0);
    assert!(named(&samples, telemetry::PLAYS_STORED).is_empty());
    assert_eq!(
        one(&samples, &format!("{}_total", telemetry::SIGN_IN_FAILURES)),
        0.0
    );
}
