//! Expiring authorisations, top items, a week of hourly runs, erases and members who left.

use super::*;

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
