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
use earshot_testkit::mongo::MongoServer;
use earshot_tests::{binary, exported_snapshot_with};
use mongodb::bson::{Document, doc};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_recap_is_posted_once_per_destination_whatever_fails_and_leaks_no_url() {
    // With the streaming histories imported: the week has podcasts too.
    let (setup, receiver) = week_and_receiver("recap_post", true).await;
    let db = setup.db.clone();
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    let (discord, slack, hook) = (path_of(0), path_of(1), path_of(3));
    let ntfy = "/ntfy/".to_string();

    // What the stored week says, read here from the rows themselves.
    let run = db
        .collection::<Document>("analytics_runs")
        .find_one(doc! {"period": WEEK})
        .await
        .unwrap()
        .expect("the week's run");
    let run = run.get_str("_id").unwrap().to_string();
    let mut members = Vec::new();
    let mut cursor = db
        .collection::<Document>("analytics_recap_members")
        .find(doc! {"run": &run, "plays": {"$gt": 0}})
        .await
        .unwrap();
    while cursor.advance().await.unwrap() {
        let d = cursor.deserialize_current().unwrap();
        members.push((
            d.get_str("user_id").unwrap().to_string(),
            d.get_f64("minutes").unwrap(),
        ));
    }
    assert!(
        members.len() >= 2,
        "the fixture week has plays: {members:?}"
    );
    members.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let most = members[0].0.clone();
    let names: BTreeMap<String, String> = earshot_tests::fixture_group_config()
        .members
        .iter()
        .map(|m| (m.id.clone(), m.display_name.clone()))
        .collect();
    // The podcast of the week: the show with the most minutes across the group, from the stored rows.
    let mut shows: BTreeMap<String, (f64, BTreeSet<String>)> = BTreeMap::new();
    let mut cursor = db
        .collection::<Document>("analytics_show_minutes")
        .find(doc! {"run": &run, "kind": "episode"})
        .await
        .unwrap();
    while cursor.advance().await.unwrap() {
        let d = cursor.deserialize_current().unwrap();
        let show = shows
            .entry(d.get_str("show_name").unwrap().to_string())
            .or_default();
        show.0 += d.get_f64("minutes").unwrap();
        show.1.insert(d.get_str("user_id").unwrap().to_string());
    }
    let (podcast, (podcast_minutes, podcast_friends)) = shows
        .iter()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0).then(b.0.cmp(a.0)))
        .expect("the fixture week has podcasts");
    let group_row = db
        .collection::<Document>("analytics_recap_group")
        .find_one(doc! {"run": &run})
        .await
        .unwrap()
        .expect("the group's recap row");
    let song = group_row
        .get_str("most_shared_track_name")
        .unwrap()
        .to_string();

    // A dry run prints the message and posts nothing.
    let dry = recap(&setup, &["--period", WEEK, "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let printed = String::from_utf8_lossy(&dry.stdout);
    assert!(
        printed.starts_with(
            "fixture-group · week 44 of 2024\n28 Oct – 3 Nov 2024 (America/Los_Angeles)\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Listened most: {},", names[&most])),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Song of the week: {song} (")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Podcast of the week: {podcast} (")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("The whole recap: {DASHBOARD}/recap?period={WEEK}")),
        "{printed}"
    );
    assert_eq!(printed.matches(": would post\n").count(), 4, "{printed}");
    assert_eq!(receiver.total(), 0, "a dry run posts nothing");

    // The first run: Discord rate-limits once (Retry-After: 1), the webhook answers 500 throughout.
    receiver.script(&discord, &[Reply::RateLimited(1)]);
    receiver.script(&hook, &[Reply::Status(500); 8]);
    let first = recap(
        &setup,
        &["--period", WEEK, "--retry-budget", "2", "--max-wait", "5"],
    );
    assert_eq!(
        first.status.code(),
        Some(3),
        "partial: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let tries = receiver.received(&discord);
    assert_eq!(tries.len(), 2, "rate limited once, then posted");
    assert!(
        tries[1] - tries[0] >= Duration::from_millis(950),
        "waited as Retry-After asked"
    );
    for path in [&discord, &slack, &ntfy] {
        assert_eq!(receiver.accepted(path).len(), 1, "{path} posted once");
    }
    assert!(
        receiver.received(&hook).len() >= 2,
        "a 500 is retried within the budget"
    );
    assert!(receiver.accepted(&hook).is_empty());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("destination `hook`") && stderr.contains("HTTP 500"),
        "{stderr}"
    );

    // The next run posts the webhook only, once; the one after that posts nothing.
    receiver.script(&hook, &[]);
    let before = receiver.total();
    let second = recap(&setup, &["--period", WEEK]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        receiver.total(),
        before + 1,
        "only the webhook is posted again"
    );
    assert_eq!(receiver.accepted(&hook).len(), 1);
    let third = recap(&setup, &["--period", WEEK]);
    assert!(third.status.success());
    assert_eq!(receiver.total(), before + 1, "a re-run posts nothing");
    let ledger = db
        .collection::<Document>("recap_posts")
        .count_documents(doc! {"period": WEEK})
        .await
        .unwrap();
    assert_eq!(ledger, 4);
    let again = recap(&setup, &["--period", WEEK, "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("would post nothing")
            .count(),
        4
    );

    // Discord: one embed, mentions off.
    let body = &receiver.accepted(&discord)[0];
    assert_eq!(keys(body), set(&["username", "allowed_mentions", "embeds"]));
    assert_eq!(body["allowed_mentions"], serde_json::json!({"parse": []}));
    let embed = &body["embeds"][0];
    assert_eq!(body["embeds"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys(embed),
        set(&["title", "description", "color", "footer", "fields", "url"])
    );
    assert_eq!(embed["title"], "fixture-group · week 44 of 2024");
    assert_eq!(embed["url"], format!("{DASHBOARD}/recap?period={WEEK}"));
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("**Listened most:** {},", names[&most])),
        "{description}"
    );
    assert_eq!(embed["fields"][0]["name"], "Discoveries");
    assert!(embed["fields"][0]["value"].as_str().unwrap().len() <= 1024);

    // Slack: header, section, context.
    let body = &receiver.accepted(&slack)[0];
    assert_eq!(keys(body), set(&["text", "blocks"]));
    let types: Vec<&str> = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["header", "section", "context"]);
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "fixture-group · week 44 of 2024"
    );
    assert_eq!(body["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(
        body["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*Listened most:* ")
    );
    let context = body["blocks"][2]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.ends_with(&format!(
            "<{DASHBOARD}/recap?period={WEEK}|The whole recap>"
        )),
        "{context}"
    );
    assert!(body["text"].as_str().unwrap().contains("Listened most: "));

    // ntfy: published as JSON to the root, naming the topic.
    let body = &receiver.accepted(&ntfy)[0];
    assert_eq!(
        keys(body),
        set(&["topic", "title", "message", "markdown", "tags", "click"])
    );
    let topic = setup.secrets[2].rsplit('/').next().unwrap();
    assert_eq!(body["topic"], topic);
    assert_eq!(body["markdown"], true);
    assert_eq!(body["tags"], serde_json::json!(["headphones"]));
    assert_eq!(body["click"], format!("{DASHBOARD}/recap?period={WEEK}"));

    // The webhook: the recap's own JSON, equal to the stored rows.
    let body = &receiver.accepted(&hook)[0];
    assert_eq!(
        keys(body),
        set(&[
            "schema",
            "group",
            "period",
            "first_day",
            "last_day",
            "time_zone",
            "listened_most",
            "song_of_the_week",
            "closest_taste",
            "podcast_of_the_week",
            "members",
            "dashboard_url",
            "text",
        ])
    );
    assert_eq!(body["schema"], "earshot.weekly-recap.v1");
    assert_eq!(body["period"], WEEK);
    assert_eq!(
        (body["first_day"].as_str(), body["last_day"].as_str()),
        (Some("2024-10-28"), Some("2024-11-03"))
    );
    assert_eq!(body["listened_most"]["member"], most.as_str());
    assert_eq!(body["podcast_of_the_week"]["show_name"], podcast.as_str());
    assert_eq!(
        body["podcast_of_the_week"]["listeners"],
        podcast_friends.len()
    );
    assert_eq!(
        body["podcast_of_the_week"]["minutes"],
        podcast_minutes.round() as i64
    );
    assert_eq!(
        body["song_of_the_week"]["track_key"],
        group_row.get_str("most_shared_track_key").unwrap()
    );
    let listed: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    let stored: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        listed, stored,
        "every member who played, most minutes first"
    );
    for member in body["members"].as_array().unwrap() {
        assert_eq!(
            keys(member),
            set(&[
                "member",
                "name",
                "minutes",
                "plays",
                "top_track",
                "discovery"
            ])
        );
    }

    assert_no_secret(&setup, &[&dry, &first, &second, &third, &again]);
}

/// A group whose name and friends' names are hostile in every chat's markup gets them as literal text
/// in every field each destination reads as markup (issue 37: Slack's `text` was not escaped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_reach_every_destination_as_literal_text() {
    let (setup, receiver) = week_and_receiver("recap_hostile", false).await;
    // Every friend's display name, and the group's, is a mention, markup and a forged link.
    let hostile =
        |what: &str| format!("<!channel> @everyone **{what}** [x](https://evil.example) <b>&");
    let mut text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "name = \"fixture-group\"",
        &format!("name = \"{}\"", hostile("crew")),
    );
    for name in ["Ana", "Ben", "Chloé", "Dev", "Emi 🎧"] {
        text = text.replace(
            &format!("display_name = \"{name}\""),
            &format!("display_name = \"{}\"", hostile(name)),
        );
    }
    std::fs::write(&setup.config, text).unwrap();
    let out = recap(&setup, &["--period", WEEK]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    // Slack: every mrkdwn field, the fallback `text` included, holds `<` only in the dashboard link.
    let slack = receiver.accepted(&path_of(1));
    assert_eq!(slack.len(), 1);
    let slack = &slack[0];
    let mut mrkdwn = vec![slack["text"].as_str().unwrap().to_string()];
    mrkdwn.push(
        slack["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    mrkdwn.push(
        slack["blocks"][2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    for field in &mrkdwn {
        let link = format!("<{DASHBOARD}/recap?period={WEEK}|The whole recap>");
        let rest = field.replace(&link, "");
        assert!(!rest.contains('<') && !rest.contains('>'), "Slack: {field}");
    }
    assert!(mrkdwn[0].contains("&lt;!channel&gt;"), "{}", mrkdwn[0]);
    assert!(mrkdwn[1].contains("&lt;!channel&gt;"), "{}", mrkdwn[1]);
    // Discord: no mention is parsed, and the markdown of the names is escaped.
    let discord = receiver.accepted(&path_of(0));
    assert_eq!(discord.len(), 1);
    assert_eq!(
        discord[0]["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    let description = discord[0]["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains("\\[x\\]\\(https"), "{description}");
    assert!(!description.contains("[x](https"), "{description}");
    // ntfy: its markdown message escapes them too.
    let ntfy = receiver.accepted("/ntfy/");
    assert_eq!(ntfy.len(), 1);
    let message = ntfy[0]["message"].as_str().unwrap();
    assert!(
        !message.contains("<b>") && !message.contains("[x](https"),
        "{message}"
    );
}

/// Reconnect reminders: with the clock 7 days before Ana's authorisation ends, `recap --reminders`
/// posts one message per destination naming her, the day and the dashboard's `/connect`; a second run
/// posts nothing; once it has ended, one more per destination; a friend whose authorisation is far
/// from its end gets none; and no byte printed holds a destination's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_reminders_go_once_a_week_before_and_once_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let storage = earshot_core::Storage::local(dir.path());
    let db = earshot_tests::fresh_database("recap_reminders").await;
    let authorised = chrono::DateTime::parse_from_rfc3339("2026-06-10T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let state =
        |member: &str, at: chrono::DateTime<chrono::Utc>| earshot_state::fetch_state::MemberState {
            member: member.into(),
            display_name: member.into(),
            client_id: "app".into(),
            authorised_at: at,
            needs_reauth: None,
            cursor_after_ms: None,
            last_play_at: None,
            last_fetch_at: None,
            gaps: Vec::new(),
        };
    let ana = state("ana.mx", authorised);
    earshot_state::fetch_state::save(&storage, &ana)
        .await
        .unwrap();
    earshot_state::fetch_state::save(
        &storage,
        &state("ben_k", authorised + chrono::Duration::days(60)),
    )
    .await
    .unwrap();
    let (setup, receiver) = posting_to_a_receiver(db, dir).await;
    let at = |t: chrono::DateTime<chrono::Utc>| {
        recap_with(&setup, &["--reminders"], &[("EARSHOT_NOW", t.to_rfc3339())])
    };
    let ends = ana.authorisation_ends();
    let early = at(ends - chrono::Duration::days(8));
    assert!(early.status.success(), "{early:?}");
    assert_eq!(receiver.total(), 0, "nothing is due 8 days before");

    let week_before = ends - chrono::Duration::days(7) + chrono::Duration::hours(1);
    let first = at(week_before);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(receiver.total(), 4, "one message per destination");
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    let connect = format!("{DASHBOARD}/connect");
    let discord = &receiver.accepted(&path_of(0))[0];
    let content = discord["content"].as_str().unwrap();
    assert!(
        content.contains("Ana") && content.contains("2026\\-12\\-10") && content.contains(&connect),
        "{content}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
    let slack = receiver.accepted(&path_of(1))[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        slack.contains("Ana") && slack.contains("2026-12-10") && slack.contains(&connect),
        "{slack}"
    );
    let ntfy = &receiver.accepted("/ntfy/")[0];
    assert_eq!(ntfy["click"], connect.as_str());
    assert_eq!(
        ntfy["topic"].as_str().unwrap(),
        url::Url::parse(&setup.secrets[2])
            .unwrap()
            .path()
            .trim_start_matches("/ntfy/")
    );
    let hook = &receiver.accepted(&path_of(3))[0];
    assert_eq!(hook["kind"], "reconnect_reminder");
    assert_eq!(hook["member"], "ana.mx");
    assert_eq!(hook["due"], "ends_soon");
    assert_eq!(hook["ends_on"], "2026-12-10");
    assert!(
        !hook.to_string().contains("ben"),
        "Ben's authorisation is far from its end"
    );

    let again = at(week_before + chrono::Duration::days(1));
    assert!(again.status.success(), "{again:?}");
    assert_eq!(receiver.total(), 4, "a second run posts nothing");

    let ended = at(ends + chrono::Duration::hours(2));
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(
        receiver.total(),
        8,
        "once more per destination when it has ended"
    );
    assert_eq!(receiver.accepted(&path_of(3))[1]["due"], "ended");
    let later = at(ends + chrono::Duration::days(2));
    assert!(later.status.success());
    assert_eq!(receiver.total(), 8, "and only once");
    assert_no_secret(&setup, &[&early, &first, &again, &ended, &later]);
}
