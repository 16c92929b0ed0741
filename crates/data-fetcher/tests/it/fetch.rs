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

mod members;

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
