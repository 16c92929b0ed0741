//! The stall alarm (`recap --alarms`), driven by the clock (`EARSHOT_NOW`): Ana's plays stop and the
//! export fails three runs in a row; one message per incident and destination when each opens, none
//! on the next run, one more each when they clear, and no byte printed holds a destination's URL.

use super::*;

use chrono::{DateTime, Duration, Utc};
use earshot_core::mongo;
use earshot_core::step_runs::{self, RunOutcome, StepRun};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A play of `member` at `when`, as data-upload stores it (what the alarm reads of it).
async fn play(db: &mongodb::Database, member: &str, when: DateTime<Utc>) {
    db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .insert_one(doc! {
            "_id": mongo::play_id(member, when),
            "user_id": member,
            "played_at": mongodb::bson::DateTime::from_millis(when.timestamp_millis()),
            "source": "api",
            "track_id": "4uLU6hMCjMI75M1A2tKUQC",
        })
        .await
        .unwrap();
}

async fn export_run(storage: &earshot_core::Storage, when: DateTime<Utc>, outcome: RunOutcome) {
    let run = StepRun {
        started_at: when,
        duration_ms: 1200,
        outcome,
        rate_limited: 0,
        spotify_wait_ms: 0,
        peak_memory_bytes: None,
        batch_settings: Default::default(),
    };
    step_runs::record(storage, "gcs_export", run).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_and_a_failing_step_are_told_once_when_they_begin_and_once_when_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let storage = earshot_core::Storage::local(dir.path());
    let db = earshot_tests::fresh_database("recap_alarms").await;
    // Ana and Ben are connected to Spotify; the other friends are not, so they are not watched.
    for member in ["ana.mx", "ben_k"] {
        let state = earshot_state::fetch_state::MemberState {
            member: member.into(),
            display_name: member.into(),
            client_id: "app".into(),
            authorised_at: at("2026-11-01T09:00:00Z"),
            needs_reauth: None,
            cursor_after_ms: None,
            last_play_at: None,
            last_fetch_at: None,
            gaps: Vec::new(),
        };
        earshot_state::fetch_state::save(&storage, &state)
            .await
            .unwrap();
    }
    let t0 = at("2026-12-01T10:00:00Z");
    play(&db, "ana.mx", t0 - Duration::hours(3)).await;
    play(&db, "ana.mx", t0).await;
    play(&db, "ben_k", t0 + Duration::hours(40)).await;
    export_run(&storage, t0 + Duration::hours(44), RunOutcome::Success).await;
    export_run(&storage, t0 + Duration::hours(45), RunOutcome::Failure).await;
    export_run(&storage, t0 + Duration::hours(46), RunOutcome::Failure).await;

    let (setup, receiver) = posting_to_a_receiver(db.clone(), dir).await;
    let run_at =
        |t: DateTime<Utc>| recap_with(&setup, &["--alarms"], &[("EARSHOT_NOW", t.to_rfc3339())]);
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };

    // 47 hours after Ana's newest play, two failures: nothing yet.
    let quiet = run_at(t0 + Duration::hours(47));
    assert!(quiet.status.success(), "{quiet:?}");
    assert_eq!(receiver.total(), 0, "nothing has stopped yet");

    // 49 hours, and a third failure: one message per incident and destination.
    export_run(&storage, t0 + Duration::hours(48), RunOutcome::Failure).await;
    let opened = run_at(t0 + Duration::hours(49));
    assert!(opened.status.success(), "{opened:?}");
    assert_eq!(receiver.total(), 8, "two incidents, four destinations");
    let hooks = receiver.accepted(&path_of(3));
    let by_alarm = |alarm: &str, state: &str| -> Vec<&Value> {
        hooks
            .iter()
            .filter(|h| h["alarm"] == alarm && h["state"] == state)
            .collect()
    };
    let stall = by_alarm("stalled_member", "opened");
    assert_eq!(stall.len(), 1, "{hooks:?}");
    assert_eq!(stall[0]["kind"], "stall_alarm");
    assert_eq!(stall[0]["member"], "ana.mx");
    assert_eq!(stall[0]["name"], "Ana");
    assert_eq!(stall[0]["threshold"], 48);
    // Newest play 2026-12-01 10:00 UTC, in the fixture group's zone.
    let zone: chrono_tz::Tz = earshot_tests::fixture_group_config().zone().unwrap();
    let since = t0.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string();
    assert_eq!(stall[0]["since"], since.as_str());
    let failing = by_alarm("failing_step", "opened");
    assert_eq!(failing.len(), 1, "{hooks:?}");
    assert_eq!(failing[0]["step"], "gcs_export");
    assert_eq!(failing[0]["failed_runs"], 3);
    assert!(
        !hooks.iter().any(|h| h["member"] == "ben_k"),
        "Ben played 9 hours ago"
    );
    let discord: Vec<String> = receiver
        .accepted(&path_of(0))
        .iter()
        .map(|d| d["content"].as_str().unwrap().to_string())
        .collect();
    assert!(
        discord
            .iter()
            .any(|c| c.contains("Ana") && c.contains("48 hours")),
        "{discord:?}"
    );
    assert!(
        discord.iter().any(|c| c.contains("gcs\\_export")),
        "Discord's markdown escaped: {discord:?}"
    );
    let ntfy = receiver.accepted("/ntfy/");
    assert!(
        ntfy.iter()
            .all(|n| n["title"] == "Earshot: something stopped")
    );
    let incidents = recap::alarms::incidents(&storage).await.unwrap();
    assert_eq!(incidents.len(), 2);
    let ledger = db
        .collection::<Document>(mongo::RECAP_POSTS)
        .distinct("_id", doc! {})
        .await
        .unwrap();
    assert_eq!(ledger.len(), 8);
    assert!(
        ledger.iter().all(|id| {
            let id = id.as_str().unwrap();
            !id.contains("ana") && !id.contains("export")
        }),
        "the ledger names no one and no step: {ledger:?}"
    );

    // The next run, still stalled and failing (Ana's late import of an older play changes nothing):
    // nothing more.
    play(&db, "ana.mx", t0 - Duration::hours(1)).await;
    export_run(&storage, t0 + Duration::hours(49), RunOutcome::Failure).await;
    let again = run_at(t0 + Duration::hours(50));
    assert!(again.status.success(), "{again:?}");
    assert_eq!(receiver.total(), 8, "one message per incident");

    // Ana plays again and the export works: one more message each.
    play(&db, "ana.mx", t0 + Duration::hours(50)).await;
    export_run(&storage, t0 + Duration::hours(50), RunOutcome::Success).await;
    let cleared = run_at(t0 + Duration::hours(51));
    assert!(cleared.status.success(), "{cleared:?}");
    assert_eq!(
        receiver.total(),
        16,
        "each incident cleared, once per destination"
    );
    let hooks = receiver.accepted(&path_of(3));
    assert_eq!(
        hooks
            .iter()
            .filter(|h| h["state"] == "cleared")
            .map(|h| h["alarm"].as_str().unwrap())
            .collect::<BTreeSet<_>>(),
        set(&["failing_step", "stalled_member"])
    );
    assert!(
        recap::alarms::incidents(&storage).await.unwrap().is_empty(),
        "told everywhere: forgotten"
    );
    let later = run_at(t0 + Duration::hours(52));
    assert!(later.status.success());
    assert_eq!(receiver.total(), 16, "and only once");

    assert_no_secret(&setup, &[&quiet, &opened, &again, &cleared, &later]);
}
