//! analytics on the fixture group's snapshot: every metric against the facts fixtures/facts.py
//! computed independently (fixtures/README.md), ties, filters, a member with no plays, a single-member
//! group, and results stored without duplicates.

use analytics::snapshot::Filters;
use analytics::tables::rows;
use analytics::{analyse, save};
use earshot_core::mongo::ANALYTICS_PREFIX;
use earshot_metrics::runs::{AnalyticsRun, RUN_PERIOD, RUN_SCHEDULED};
use earshot_testkit::fixtures::{fact, fact_count, fixture_member_ids};
use earshot_tests::{exported_snapshot, exported_snapshot_with, fixture_group_config};
use mongodb::bson::{Document, doc};
use serde_json::{Map, Value};

mod runs;

fn s<'a>(row: &'a Map<String, Value>, key: &str) -> &'a str {
    row[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {row:?}"))
}

fn n(row: &Map<String, Value>, key: &str) -> f64 {
    row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {row:?}"))
}

#[tokio::test]
async fn every_metric_matches_the_independently_computed_facts() {
    let (db, _dir, storage) = exported_snapshot("analytics_facts", "20241111T090000Z").await;
    let group = fixture_group_config();
    let out = analyse(&storage, None, &Filters::default(), &group, None)
        .await
        .unwrap();
    assert_eq!(out.run, "20241111T090000Z");
    let table = |name: &str| rows(&out.metrics[name]);

    let summary = table("member_summary");
    assert_eq!(summary.len(), fact_count("members"), "a row per member");
    for row in &summary {
        assert_eq!(
            n(row, "plays") as usize,
            fact_count(&format!("plays.{}", s(row, "user_id")))
        );
    }
    let chart = table("track_listeners");
    for i in 0..3 {
        let row = &chart[i];
        let line = format!(
            "{} [{}]: {} members, {} plays",
            s(row, "track_name"),
            s(row, "track_key"),
            n(row, "listeners"),
            n(row, "plays")
        );
        assert_eq!(
            line,
            fact(&format!("chart.{}", i + 1)),
            "chart position {}",
            i + 1
        );
    }
    // Who listened to the group's top track most: a tie, both listed.
    let top_key = s(&chart[0], "track_key").to_string();
    let leaders: Vec<Map<String, Value>> = table("top_listener_by_track")
        .into_iter()
        .filter(|r| s(r, "track_key") == top_key)
        .collect();
    assert!(leaders.len() > 1, "the fixture's top track is a tie");
    assert!(
        leaders
            .iter()
            .all(|r| n(r, "plays") == n(&leaders[0], "plays"))
    );
    assert_eq!(
        format!(
            "{} [{top_key}]: {} ({})",
            s(&chart[0], "track_name"),
            leaders
                .iter()
                .map(|r| s(r, "user_id"))
                .collect::<Vec<_>>()
                .join(" / "),
            n(&leaders[0], "plays")
        ),
        fact("most_played_track.top_listener")
    );
    for member in fixture_member_ids() {
        let member = member.as_str();
        let deep = chart
            .iter()
            .filter(|r| n(r, "listeners") == 1.0 && s(r, "only_listener") == member)
            .count();
        assert_eq!(
            deep.to_string(),
            fact(&format!("deep_cuts.{member}")),
            "{member}"
        );
        let obscure = table("obscure")
            .into_iter()
            .find(|r| s(r, "user_id") == member)
            .unwrap();
        assert_eq!(
            format!(
                "{} obscure, {} unknown",
                n(&obscure, "obscure_plays"),
                n(&obscure, "unknown_popularity_plays")
            ),
            fact(&format!("obscure.{member}"))
        );
    }
    let clock: Vec<Map<String, Value>> = table("listening_clock")
        .into_iter()
        .filter(|r| s(r, "user_id") == "ana.mx")
        .collect();
    let busiest = clock.iter().map(|r| n(r, "plays")).fold(0.0, f64::max);
    let cell = clock.iter().find(|r| n(r, "plays") == busiest).unwrap();
    assert_eq!(
        format!(
            "weekday {} hour {}: {} plays",
            n(cell, "weekday"),
            n(cell, "hour"),
            busiest
        ),
        fact("clock.ana.mx")
    );
    let taste = &table("taste_match")[0];
    assert_eq!(
        format!(
            "{}+{}: {:.2}",
            s(taste, "member_a"),
            s(taste, "member_b"),
            n(taste, "taste_match")
        ),
        fact("taste.top")
    );
    let pair = table("shared_tracks")
        .into_iter()
        .find(|r| s(r, "member_a") == "ana.mx" && s(r, "member_b") == "ben_k")
        .unwrap();
    assert_eq!(
        format!("{:.4}", n(&pair, "jaccard")),
        fact("jaccard.ana.mx+ben_k")
    );
    assert!(
        fact("shared.most_pair").starts_with(&format!("ana.mx+ben_k ({})", n(&pair, "shared")))
    );
    let rec = table("recommendation_scores")
        .into_iter()
        .find(|r| s(r, "user_id") == "ana.mx")
        .unwrap();
    assert_eq!(
        format!("{} [{}]", s(&rec, "track_name"), s(&rec, "track_key")),
        fact("recommend.ana.mx")
    );
    // Recommendations never include a track the member played.
    let played: std::collections::HashSet<String> = table("member_tracks")
        .iter()
        .filter(|r| s(r, "user_id") == "ana.mx")
        .map(|r| s(r, "track_key").to_string())
        .collect();
    assert!(
        table("recommendation_scores")
            .iter()
            .filter(|r| s(r, "user_id") == "ana.mx")
            .all(|r| !played.contains(s(r, "track_key")))
    );

    // Tops by plays and by minutes, artists, albums, top-list overlap, the weekly recap.
    let ana = &out.report_json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "ana.mx")
        .unwrap()
        .clone();
    let by_minutes = &ana["top_tracks_by_minutes"][0];
    let track_name = table("track_listeners")
        .into_iter()
        .find(|r| r["track_key"] == by_minutes["track_key"])
        .unwrap()["track_name"]
        .clone();
    assert_eq!(
        format!(
            "{} [{}]: {:.4}",
            track_name.as_str().unwrap(),
            by_minutes["track_key"].as_str().unwrap(),
            by_minutes["minutes"].as_f64().unwrap()
        ),
        fact("top_by_minutes.ana.mx")
    );
    assert_eq!(
        format!("{:.4}", ana["minutes"].as_f64().unwrap()),
        fact("minutes.ana.mx")
    );
    let artist = &ana["top_artists_by_plays"][0];
    assert_eq!(
        format!("{}: {}", artist["name"].as_str().unwrap(), artist["plays"]),
        fact("top_artist.ana.mx")
    );
    let artist_leaders: Vec<String> = table("top_listener_by_artist")
        .iter()
        .filter(|r| r["artist_id"] == artist["artist_id"])
        .map(|r| format!("{} ({})", s(r, "user_id"), n(r, "plays")))
        .collect();
    assert_eq!(
        format!(
            "{}: {}",
            artist["name"].as_str().unwrap(),
            artist_leaders.join(" / ")
        ),
        fact("artist_top_listener")
    );
    let album = &ana["top_albums_by_plays"][0];
    assert_eq!(
        format!(
            "{} [{}]: {}",
            album["name"].as_str().unwrap(),
            album["album_id"].as_str().unwrap(),
            album["plays"]
        ),
        fact("top_album.ana.mx")
    );
    let overlap = table("top_list_overlap")
        .into_iter()
        .find(|r| {
            s(r, "member_a") == "ana.mx"
                && s(r, "member_b") == "ben_k"
                && s(r, "time_range") == "long_term"
        })
        .unwrap();
    assert_eq!(
        n(&overlap, "overlap").to_string(),
        fact("overlap.ana.mx+ben_k.long_term")
    );
    assert_eq!(
        out.report.meta.weekly_recap_week_starting,
        fact("weekly.week_start")
    );
    let recap = &out.report.weekly_recap;
    assert_eq!(recap.len(), fact_count("members"), "a recap row per member");
    for member in recap {
        let id = &member.id;
        assert_eq!(
            format!("{} tracks", member.unique_tracks),
            fact(&format!("weekly.{id}")),
            "{id}"
        );
    }

    // Stored twice: replaced, never duplicated.
    save::metric_rows(&db, &out.run, &out.metrics)
        .await
        .unwrap();
    save::metric_rows(&db, &out.run, &out.metrics)
        .await
        .unwrap();
    for (metric, frame) in &out.metrics {
        let stored = db
            .collection::<Document>(&format!("{ANALYTICS_PREFIX}{metric}"))
            .count_documents(doc! {"run": &out.run})
            .await
            .unwrap();
        assert_eq!(stored as usize, frame.height(), "{metric}");
    }
    // The report lists every member the group config does: the five on Spotify, and the sixth friend,
    // who scrobbles, with nothing played in this snapshot.
    assert_eq!(
        out.report_json()["members"].as_array().unwrap().len(),
        fact_count("members") + 1
    );
    assert_eq!(group.members.len(), fact_count("members") + 1);
}

/// The podcasts and audiobooks of the imported histories, counted apart: every spoken metric equals
/// fixtures/facts.py's, and the music's answers are those of the music alone.
#[tokio::test]
async fn the_spoken_metrics_match_the_facts_and_leave_the_music_alone() {
    let (_db, _dir, storage) =
        exported_snapshot_with("analytics_spoken", "20241111T090000Z", true).await;
    let out = crate::analyse_fixture_group(&storage).await;
    let table = |name: &str| rows(&out.metrics[name]);
    let summary = table("spoken_summary");
    let shows = table("show_minutes");
    let members = fixture_member_ids();
    assert_eq!(summary.len(), members.len());
    for member in &members {
        let row = summary
            .iter()
            .find(|r| s(r, "user_id") == member)
            .unwrap_or_else(|| panic!("{member}'s spoken summary"));
        let fact_of = |what: &str| fact(&format!("spoken.{member}.{what}"));
        assert_eq!(
            n(row, "episodes") as usize,
            fact_count(&format!("spoken.{member}.episodes"))
        );
        assert_eq!(
            n(row, "shows") as usize,
            fact_count(&format!("spoken.{member}.shows"))
        );
        assert_eq!(
            format!("{:.1}", n(row, "podcast_minutes")),
            fact_of("podcast_minutes")
        );
        assert_eq!(
            format!("{:.1}", n(row, "audiobook_minutes")),
            fact_of("audiobook_minutes")
        );
        // Their top show: the first of their podcasts, most minutes first (ties listed).
        let theirs: Vec<_> = shows
            .iter()
            .filter(|r| s(r, "user_id") == member && s(r, "kind") == "episode")
            .collect();
        let best = n(theirs[0], "minutes");
        assert!(
            theirs.iter().all(|r| n(r, "minutes") <= best),
            "most minutes first"
        );
        let mut winners: Vec<&str> = theirs
            .iter()
            .filter(|r| n(r, "minutes") == best)
            .map(|r| s(r, "show_name"))
            .collect();
        winners.sort();
        assert_eq!(
            format!("{} ({best:.1} min)", winners.join(" / ")),
            fact_of("top_show")
        );
    }
    let mut shared: Vec<(String, i64)> = table("shared_shows")
        .iter()
        .map(|r| (s(r, "show_name").to_string(), n(r, "listeners") as i64))
        .collect();
    shared.sort();
    let shared: Vec<String> = shared
        .iter()
        .map(|(show, n)| format!("{show} ({n})"))
        .collect();
    assert_eq!(shared.join(" / "), fact("spoken.shared_shows"));
    let spoken_plays: f64 = shows.iter().map(|r| n(r, "plays")).sum();
    assert_eq!(spoken_plays as usize, fact_count("spoken.plays"));
    // The music: exactly the API plays and the imported music plays, no episode among them.
    for row in &table("member_summary") {
        let member = s(row, "user_id");
        assert_eq!(
            n(row, "plays") as usize,
            fact_count(&format!("plays_with_history.{member}")),
            "{member}'s music plays"
        );
    }
}
