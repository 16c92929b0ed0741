//! `data-fetcher fetch` against the mock Spotify: refresh, isolation, rate limits, retries, gaps, and a
//! simulated week of hourly runs.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::Harness;
use data_fetcher::fetch::{MemberResult, What};
use earshot_core::cli::Outcome;
use earshot_spotify::api::MAX_ATTEMPTS;
use earshot_state::{fetch_state, status};
use earshot_testkit::fixtures::MemberListening;
use earshot_testkit::spotify::{Endpoint, Fault, FaultRule};

fn result<'a>(report: &'a data_fetcher::fetch::RunReport, member: &str) -> &'a MemberResult {
    &report.members.iter().find(|(m, _)| m == member).unwrap().1
}

#[tokio::test]
async fn tokens_refresh_before_expiry_and_on_401_and_rotation_is_persisted() {
    let h = Harness::new().await;
    h.connect("ana.mx").await;
    let original = h.store.load("ana.mx").await.unwrap().unwrap();

    // Two hours later the access token has expired by the clock: refreshed before the call.
    h.mock.advance(chrono::Duration::hours(2));
    let report = h.fetch(What::RecentlyPlayed).await;
    assert!(
        matches!(result(&report, "ana.mx"), MemberResult::Fetched { .. }),
        "{report:?}"
    );
    let rotated = h.store.load("ana.mx").await.unwrap().unwrap();
    assert_ne!(
        rotated.refresh_token, original.refresh_token,
        "the rotated refresh token was saved at once"
    );
    assert!(
        h.mock.requests().iter().all(|r| r.status != 401),
        "no call was made with the expired token"
    );

    // The server expires the token early: 401, refresh, retry. This refresh returns no refresh token.
    h.mock.clear_requests();
    h.mock.expire_access_tokens();
    let report = h.fetch(What::RecentlyPlayed).await;
    assert!(
        matches!(result(&report, "ana.mx"), MemberResult::Fetched { .. }),
        "{report:?}"
    );
    let statuses: Vec<(Endpoint, u16)> = h
        .mock
        .requests()
        .iter()
        .map(|r| (r.endpoint, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (Endpoint::RecentlyPlayed, 401),
            (Endpoint::Token, 200),
            (Endpoint::RecentlyPlayed, 200)
        ]
    );
    let kept = h.store.load("ana.mx").await.unwrap().unwrap();
    assert_eq!(
        kept.refresh_token, rotated.refresh_token,
        "a refresh without a new refresh token keeps the old one"
    );
    assert_ne!(kept.access_token, rotated.access_token);
}

#[tokio::test]
async fn invalid_grant_isolates_one_member() {
    let h = Harness::new().await;
    h.connect("ana.mx").await;
    h.connect("ben_k").await;
    h.mock.advance(chrono::Duration::hours(2));
    h.mock
        .push_fault(FaultRule::new(Endpoint::Token, Fault::InvalidGrant, 1).for_member("ben_k"));
    let report = h.fetch(What::All).await;
    assert!(
        matches!(
            result(&report, "ana.mx"),
            MemberResult::Fetched { top_pages: 6, .. }
        ),
        "{report:?}"
    );
    assert!(
        matches!(result(&report, "ben_k"), MemberResult::NeedsAuth(_)),
        "{report:?}"
    );
    assert_eq!(report.outcome(), Outcome::Partial);
    let ben = fetch_state::load(&h.storage, "ben_k")
        .await
        .unwrap()
        .unwrap();
    assert!(ben.needs_reauth.is_some());
    let rows = status::statuses(&[ben.clone()], &h.group, &Default::default(), h.mock.now());
    assert_eq!(rows[0].state, "needs re-auth");
    // The next run does not even ask Spotify for ben.
    h.mock.clear_requests();
    let again = h.fetch(What::RecentlyPlayed).await;
    assert!(matches!(
        result(&again, "ben_k"),
        MemberResult::NeedsAuth(_)
    ));
    assert!(
        h.mock
            .requests()
            .iter()
            .all(|r| r.member.as_deref() != Some("ben_k"))
    );
    // Reconnecting clears it.
    h.connect("ben_k").await;
    assert!(matches!(
        result(&h.fetch(What::RecentlyPlayed).await, "ben_k"),
        MemberResult::Fetched { .. }
    ));
}

#[tokio::test]
async fn a_429_is_waited_as_spotify_asks() {
    let h = Harness::new().await;
    h.connect("chloe-r").await;
    h.mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::RateLimited {
            retry_after: 7,
            quota: false,
        },
        1,
    ));
    let before = h.mock.now();
    let report = h.fetch(What::RecentlyPlayed).await;
    assert!(
        matches!(result(&report, "chloe-r"), MemberResult::Fetched { .. }),
        "{report:?}"
    );
    assert_eq!(*h.clock.waits.lock().unwrap(), [Duration::from_secs(7)]);
    assert_eq!(h.mock.now() - before, chrono::Duration::seconds(7));
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up_clearly() {
    let h = Harness::new().await;
    h.connect("dev.p").await;
    h.connect("emi").await;
    h.mock.push_fault(
        FaultRule::new(Endpoint::RecentlyPlayed, Fault::Status(502), 2).for_member("emi"),
    );
    h.mock.push_fault(
        FaultRule::new(Endpoint::RecentlyPlayed, Fault::Status(500), 100).for_member("dev.p"),
    );
    let report = h.fetch(What::RecentlyPlayed).await;
    assert!(
        matches!(result(&report, "emi"), MemberResult::Fetched { .. }),
        "two 502s, then success"
    );
    let MemberResult::Failed(reason) = result(&report, "dev.p") else {
        panic!("{report:?}")
    };
    assert!(
        reason.contains("dev.p")
            && reason.contains("GET /v1/me/player/recently-played")
            && reason.contains("HTTP 500")
            && reason.contains(&format!("after {MAX_ATTEMPTS} attempts")),
        "{reason}"
    );
    let tries = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.member.as_deref() == Some("dev.p") && r.endpoint == Endpoint::RecentlyPlayed)
        .count();
    assert_eq!(tries as u32, MAX_ATTEMPTS);
    let waits = h.clock.waits.lock().unwrap().clone();
    assert!(
        waits
            .iter()
            .all(|w| *w <= earshot_spotify::api::BACKOFF_CAP),
        "{waits:?}"
    );
    assert_eq!(report.outcome(), Outcome::Partial);
}

#[tokio::test]
async fn a_slow_response_times_out_and_is_retried() {
    let h = Harness::new().await;
    h.connect("ben_k").await;
    h.mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::Slow(Duration::from_secs(3)),
        1,
    ));
    let endpoints = earshot_spotify::api::Endpoints {
        api: h.mock.base_url(),
        accounts: h.mock.base_url(),
    };
    let spotify = earshot_spotify::api::Spotify::with_timeout(
        endpoints,
        h.clock.clone(),
        earshot_spotify::api::Budget::new(Duration::from_secs(60)),
        Duration::from_millis(500),
    )
    .unwrap();
    let fetcher = data_fetcher::fetch::Fetcher {
        spotify,
        ..h.fetcher(Duration::from_secs(60), 1)
    };
    let report = fetcher.run(What::RecentlyPlayed, &[]).await.unwrap();
    assert!(
        matches!(result(&report, "ben_k"), MemberResult::Fetched { plays, .. } if *plays > 0),
        "{report:?}"
    );
    let tries = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::RecentlyPlayed)
        .count();
    assert_eq!(tries, 2, "the timed-out request was retried once");
    assert_eq!(h.clock.waits.lock().unwrap().len(), 1, "after one backoff");
}

#[tokio::test]
async fn a_retry_after_of_hours_ends_the_run_at_once_with_cursors_saved() {
    let h = Harness::new().await;
    for member in ["ana.mx", "ben_k", "chloe-r"] {
        h.connect(member).await;
    }
    let first = h.fetch(What::RecentlyPlayed).await;
    assert_eq!(first.outcome(), Outcome::Success);
    let cursors: HashMap<String, Option<i64>> = fetch_state::list(&h.storage)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.member, s.cursor_after_ms))
        .collect();
    h.mock.advance(chrono::Duration::minutes(30));
    h.mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::RateLimited {
            retry_after: 20 * 3600,
            quota: true,
        },
        1,
    ));
    let report = h
        .fetcher(Duration::from_secs(600), 1)
        .run(What::RecentlyPlayed, &[])
        .await
        .unwrap();
    assert_eq!(report.outcome(), Outcome::Partial);
    assert!(
        report
            .members
            .iter()
            .all(|(_, r)| matches!(r, MemberResult::Stopped(_))),
        "{report:?}"
    );
    let MemberResult::Stopped(reason) = &report.members[0].1 else {
        unreachable!()
    };
    assert!(
        reason.contains("72000") && reason.contains("--max-wait"),
        "{reason}"
    );
    assert!(
        h.clock.waits.lock().unwrap().is_empty(),
        "never slept for hours"
    );
    let after: HashMap<String, Option<i64>> = fetch_state::list(&h.storage)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.member, s.cursor_after_ms))
        .collect();
    assert_eq!(after, cursors, "cursors kept for the next scheduled run");
}

#[tokio::test]
async fn truncated_json_names_member_and_endpoint_and_the_cursor_stays() {
    let h = Harness::new().await;
    h.mock
        .set_now(Utc.with_ymd_and_hms(2024, 11, 1, 12, 0, 0).unwrap());
    h.connect("emi").await;
    h.fetch(What::RecentlyPlayed).await;
    let before = fetch_state::load(&h.storage, "emi").await.unwrap().unwrap();
    let pages_before = h
        .storage
        .list("raw/recently_played/user=emi/")
        .await
        .unwrap();
    h.mock.advance(chrono::Duration::days(1));
    h.mock.push_fault(FaultRule::new(
        Endpoint::RecentlyPlayed,
        Fault::Truncated,
        1,
    ));
    let report = h.fetch(What::RecentlyPlayed).await;
    let MemberResult::Failed(reason) = result(&report, "emi") else {
        panic!("{report:?}")
    };
    assert!(
        reason.contains("`emi`")
            && reason.contains("GET /v1/me/player/recently-played")
            && reason.contains("invalid response body"),
        "{reason}"
    );
    let after = fetch_state::load(&h.storage, "emi").await.unwrap().unwrap();
    assert_eq!(
        after.cursor_after_ms, before.cursor_after_ms,
        "the cursor did not advance"
    );
    assert_eq!(
        h.storage
            .list("raw/recently_played/user=emi/")
            .await
            .unwrap(),
        pages_before,
        "no page stored"
    );
    // The next run gets the same plays.
    assert!(
        matches!(result(&h.fetch(What::RecentlyPlayed).await, "emi"), MemberResult::Fetched { plays, .. } if *plays > 0)
    );
}

#[tokio::test]
async fn a_member_authorised_170_days_ago_is_reported_as_expiring() {
    let h = Harness::new().await;
    h.connect("ana.mx").await;
    h.mock.advance(chrono::Duration::days(170));
    let members = fetch_state::list(&h.storage).await.unwrap();
    let rows = status::statuses(&members, &h.group, &Default::default(), h.mock.now());
    let ana = rows.iter().find(|r| r.member == "ana.mx").unwrap();
    let days = ana.days_left.unwrap();
    assert!((0..=14).contains(&days), "{days}");
    assert_eq!(ana.state, format!("expiring in {days} days"));
    assert!(
        rows.iter()
            .any(|r| r.member == "ben_k" && r.state == "not connected")
    );
    // Still fetches (Spotify has not ended it yet) ...
    assert!(matches!(
        result(&h.fetch(What::RecentlyPlayed).await, "ana.mx"),
        MemberResult::Fetched { .. }
    ));
    // ... until the sixth month is over.
    h.mock.advance(chrono::Duration::days(20));
    assert!(matches!(
        result(&h.fetch(What::RecentlyPlayed).await, "ana.mx"),
        MemberResult::NeedsAuth(_)
    ));
}

#[tokio::test]
async fn top_items_are_fetched_for_all_three_ranges_fifty_each() {
    let h = Harness::new().await;
    h.connect("ben_k").await;
    h.fetch(What::Top).await;
    for (kind, folder) in [("tracks", "top_tracks"), ("artists", "top_artists")] {
        for range in ["short_term", "medium_term", "long_term"] {
            let keys = h
                .storage
                .list(&format!("raw/{folder}/user=ben_k/time_range={range}/"))
                .await
                .unwrap();
            assert_eq!(keys.len(), 1, "{kind} {range}");
            let page: serde_json::Value =
                serde_json::from_slice(&h.storage.read_all(&keys[0]).await.unwrap()).unwrap();
            let expected = if kind == "tracks" {
                &h.listening.member("ben_k").unwrap().top_tracks[range]
            } else {
                &h.listening.member("ben_k").unwrap().top_artists[range]
            };
            assert_eq!(
                page["items"].as_array().unwrap().len(),
                expected.len().min(50)
            );
            assert_eq!(page["limit"], 50);
        }
    }
}

/// A week of hourly runs over the fixture group's listening, across the heavy listener's burst of more
/// than 50 plays in one hour: every play after joining is stored exactly once, except those inside a
/// recorded gap, and the burst is recorded as a gap.
#[tokio::test]
async fn a_simulated_week_of_hourly_runs_stores_every_play_once_and_reports_the_gap() {
    let h = Harness::new().await;
    let start = chrono_tz::America::Los_Angeles
        .with_ymd_and_hms(2024, 10, 28, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    h.mock.set_now(start);
    let members: Vec<String> = h
        .listening
        .members
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    for member in &members {
        h.connect(member).await;
    }
    for _ in 0..(7 * 24) {
        h.mock.advance(chrono::Duration::hours(1));
        let report = h.fetch(What::RecentlyPlayed).await;
        assert_eq!(report.outcome(), Outcome::Success, "{report:?}");
    }
    let end = h.mock.now();
    for member in &members {
        let stored = h.stored_plays(member).await;
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for ms in &stored {
            *seen.entry(*ms).or_default() += 1;
        }
        assert!(
            seen.values().all(|n| *n == 1),
            "{member}: a play stored twice"
        );
        let gaps = fetch_state::load(&h.storage, member)
            .await
            .unwrap()
            .unwrap()
            .gaps;
        let in_gap = |at: DateTime<Utc>| gaps.iter().any(|g| at > g.after && at < g.before);
        let week: Vec<DateTime<Utc>> = h
            .listening
            .member(member)
            .unwrap()
            .plays
            .iter()
            .map(MemberListening::played_at)
            .filter(|t| *t > start && *t <= end)
            .collect();
        let mut missing = 0;
        for at in &week {
            match (seen.contains_key(&at.timestamp_millis()), in_gap(*at)) {
                (true, _) => {}
                (false, true) => missing += 1,
                (false, false) => {
                    panic!("{member}: the play at {at} was lost outside any recorded gap")
                }
            }
        }
        if member == "dev.p" {
            assert!(
                !gaps.is_empty(),
                "the heavy listener's burst must be recorded as a gap"
            );
            assert!(
                missing > 0,
                "the burst lost plays, and they are all inside the gap"
            );
            // The burst starts at 14:00:20 PDT on 2024-10-30; its first plays fell out of reach.
            let burst_start = chrono_tz::America::Los_Angeles
                .with_ymd_and_hms(2024, 10, 30, 14, 0, 20)
                .unwrap()
                .with_timezone(&Utc);
            assert!(
                gaps.iter()
                    .any(|g| g.after < burst_start && g.before > burst_start),
                "{gaps:?}"
            );
        } else {
            assert!(gaps.is_empty(), "{member}: {gaps:?}");
            assert_eq!(missing, 0);
        }
    }
}

// ---- Issue 37: every writer honours an erase; only the config's members are fetched.

/// Every object of `member` in storage: their raw pages, converted files and state objects.
async fn objects_of(h: &Harness, member: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in earshot_core::layout::member_prefixes(member) {
        found.extend(h.storage.list(&prefix).await.unwrap());
    }
    for key in earshot_core::layout::member_keys(member) {
        if h.storage.exists(&key).await.unwrap() {
            found.push(key);
        }
    }
    found
}

/// What `members erase` does to storage, in its order: the marker, the epoch, the member's objects,
/// the marker gone.
async fn erase_from_storage(h: &Harness, member: &str) {
    use earshot_core::{erasure, layout};
    h.storage
        .write(&layout::erasure_key(member), b"{}".to_vec().into())
        .await
        .unwrap();
    erasure::advance_epoch(&h.storage).await.unwrap();
    for key in objects_of(h, member).await {
        h.storage.delete(&key).await.unwrap();
    }
    h.storage
        .delete(&layout::erasure_key(member))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_flight_during_an_erase_writes_nothing_of_the_member_back() {
    let h = Harness::new().await;
    h.connect("ben_k").await;
    h.connect("ana.mx").await;
    assert!(!objects_of(&h, "ben_k").await.is_empty());
    // Ben's recently played answers slowly: the erase runs while his fetch waits for it.
    h.mock.push_fault(
        FaultRule::new(
            Endpoint::RecentlyPlayed,
            Fault::Slow(Duration::from_secs(2)),
            1,
        )
        .for_member("ben_k"),
    );
    let fetcher = h.fetcher(Duration::from_secs(60), 2);
    let fetch = tokio::spawn(async move { fetcher.run(What::All, &[]).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    erase_from_storage(&h, "ben_k").await;
    let report = fetch.await.unwrap();
    assert!(
        matches!(result(&report, "ben_k"), MemberResult::Erased),
        "{report:?}"
    );
    assert!(
        matches!(result(&report, "ana.mx"), MemberResult::Fetched { plays, .. } if *plays > 0),
        "the others are fetched: {report:?}"
    );
    assert_eq!(
        objects_of(&h, "ben_k").await,
        Vec::<String>::new(),
        "nothing of the erased member was written back"
    );
    // The converter after it finds nothing of his either.
    for raw in earshot_core::layout::RawKind::ALL {
        let converter = json_converter::Converter::new(raw, h.group.clone()).unwrap();
        json_converter::convert_storage(
            &h.storage,
            &converter,
            &earshot_core::layout::raw_prefix(raw),
            false,
            false,
        )
        .await
        .unwrap();
    }
    assert_eq!(objects_of(&h, "ben_k").await, Vec::<String>::new());
    assert!(!objects_of(&h, "ana.mx").await.is_empty());
    // While a marker exists, a fetch and a conversion refuse to start.
    h.storage
        .write(
            &earshot_core::layout::erasure_key("ana.mx"),
            b"{}".to_vec().into(),
        )
        .await
        .unwrap();
    let err = h
        .fetcher(Duration::from_secs(60), 2)
        .run(What::All, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ana.mx`") && err.contains("being erased"),
        "{err}"
    );
    let converter = json_converter::Converter::new(
        earshot_core::layout::RawKind::RecentlyPlayed,
        h.group.clone(),
    )
    .unwrap();
    assert!(
        json_converter::convert_storage(&h.storage, &converter, "raw/", false, false)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn fetch_skips_a_member_the_group_config_no_longer_lists() {
    let h = Harness::new().await;
    h.connect("ben_k").await;
    h.connect("ana.mx").await;
    let mut fetcher = h.fetcher(Duration::from_secs(60), 2);
    fetcher.group.members.retain(|m| m.id != "ben_k");
    let report = fetcher.run(What::RecentlyPlayed, &[]).await.unwrap();
    assert!(
        report.members.iter().all(|(m, _)| m != "ben_k"),
        "{report:?}"
    );
    assert!(h.stored_plays("ben_k").await.is_empty());
    assert!(!h.stored_plays("ana.mx").await.is_empty());
    assert!(
        h.mock
            .requests()
            .iter()
            .all(|r| r.member.as_deref() != Some("ben_k")
                || !matches!(
                    r.endpoint,
                    Endpoint::RecentlyPlayed | Endpoint::TopTracks | Endpoint::TopArtists
                )),
        "no request for ben_k's listening"
    );
}

/// A friend who erased themselves from the dashboard has left: still listed in the group config and
/// still holding a grant, they are not fetched, `--member` names why, an import is refused, and
/// `status` says "left on <date>" until they sign in again.
#[tokio::test]
async fn a_member_who_left_is_not_fetched_while_the_config_still_lists_them() {
    let h = Harness::new().await;
    h.connect("ben_k").await;
    h.connect("ana.mx").await;
    let left_at = h.mock.now();
    earshot_core::erasure::mark_left(&h.storage, "ben_k", left_at)
        .await
        .unwrap();
    let report = h.fetch(What::RecentlyPlayed).await;
    assert!(
        report.members.iter().all(|(m, _)| m != "ben_k"),
        "{report:?}"
    );
    assert!(h.stored_plays("ben_k").await.is_empty());
    assert!(!h.stored_plays("ana.mx").await.is_empty());
    let fetcher = h.fetcher(Duration::from_secs(60), 2);
    let err = fetcher
        .run(What::RecentlyPlayed, &["ben_k".to_string()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`--member ben_k` left the group"), "{err}");
    let states = fetch_state::list(&h.storage).await.unwrap();
    let left = earshot_core::erasure::departures(&h.storage).await.unwrap();
    let rows = status::statuses(&states, &h.group, &left, h.mock.now());
    let ben = rows.iter().find(|r| r.member == "ben_k").unwrap();
    assert_eq!(ben.state, format!("left on {}", left_at.format("%Y-%m-%d")));
    // Signing in again (the departure goes) brings them back.
    assert!(
        earshot_core::erasure::rejoin(&h.storage, "ben_k")
            .await
            .unwrap()
    );
    let back = h.fetch(What::RecentlyPlayed).await;
    assert!(back.members.iter().any(|(m, _)| m == "ben_k"), "{back:?}");
}
