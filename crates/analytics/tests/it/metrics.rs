//! analytics on the fixture group's snapshot: every metric against the facts fixtures/facts.py
//! computed independently (fixtures/README.md), ties, filters, a member with no plays, a single-member
//! group, and results stored without duplicates.

use analytics::snapshot::Filters;
use analytics::tables::rows;
use analytics::{analyse, store};
use earshot_core::mongo::{ANALYTICS_PREFIX, AnalyticsRun, RUN_PERIOD, RUN_SCHEDULED};
use earshot_testkit::fixtures::{fact, fact_count, fixture_member_ids};
use earshot_tests::{exported_snapshot, exported_snapshot_with, fixture_group_config};
use mongodb::bson::{Document, doc};
use serde_json::{Map, Value};

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
    store::save(&db, &out.run, &out.metrics).await.unwrap();
    store::save(&db, &out.run, &out.metrics).await.unwrap();
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
    let out = analyse(
        &storage,
        None,
        &Filters::default(),
        &fixture_group_config(),
        None,
    )
    .await
    .unwrap();
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

/// A snapshot written before gcs-export derived `local_day`, `local_hour` and `local_weekday`: the
/// engine derives them itself, and every answer is the same.
#[tokio::test]
async fn a_snapshot_without_the_derived_columns_gives_the_same_answers() {
    use polars::prelude::*;
    let snapshot = "20241111T090000Z";
    let (_db, dir, storage) = exported_snapshot("analytics_old_snapshot", snapshot).await;
    let group = fixture_group_config();
    let derived = analyse(&storage, None, &Filters::default(), &group, Some("derived"))
        .await
        .unwrap();
    // The plays' parts and marker as an older gcs-export wrote them.
    let names: Vec<&str> = earshot_core::export::derived(earshot_core::mongo::RAW_RECENTLY_PLAYED)
        .iter()
        .map(|d| d.name())
        .collect();
    assert_eq!(names.len(), 3);
    let folder = dir.path().join(format!(
        "exports/rawdata_recentlyplayed/snapshot={snapshot}"
    ));
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let frame = ParquetReader::new(std::fs::File::open(&path).unwrap())
                .finish()
                .unwrap();
            let mut older = frame.drop_many(names.iter().copied());
            assert_eq!(older.width() + 3, frame.width());
            ParquetWriter::new(std::fs::File::create(&path).unwrap())
                .finish(&mut older)
                .unwrap();
        }
    }
    let marker = folder.join("_SUCCESS");
    let mut summary: Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    summary["schema"].as_array_mut().unwrap().retain(|c| {
        !names
            .iter()
            .any(|n| c.as_str().unwrap().starts_with(&format!("{n}:")))
    });
    std::fs::write(&marker, serde_json::to_vec(&summary).unwrap()).unwrap();
    let older = analyse(&storage, None, &Filters::default(), &group, Some("older"))
        .await
        .unwrap();
    assert_eq!(derived.metrics.len(), older.metrics.len());
    // Float sums may differ in their last bits between runs (parallel aggregation orders them), and
    // so may the order of rows whose scores tie but for those bits: compared rounded, as sets.
    let rounded = |frame: &DataFrame| -> Vec<String> {
        let mut out: Vec<String> = rows(frame)
            .into_iter()
            .map(|row| {
                let row: Map<String, Value> = row
                    .into_iter()
                    .map(|(k, v)| match v.as_f64() {
                        Some(x) if v.is_f64() => (k, Value::String(format!("{x:.9}"))),
                        _ => (k, v),
                    })
                    .collect();
                Value::Object(row).to_string()
            })
            .collect();
        out.sort();
        out
    };
    for (metric, frame) in &derived.metrics {
        assert_eq!(rounded(frame), rounded(&older.metrics[metric]), "{metric}");
    }
    assert!(!rows(&older.metrics["listening_clock"]).is_empty());
}

#[tokio::test]
async fn filters_a_single_member_group_and_a_member_with_no_plays() {
    let (_db, _dir, storage) = exported_snapshot("analytics_filters", "r1").await;
    let mut group = fixture_group_config();
    group.members.push(earshot_core::config::MemberConfig {
        id: "quiet.one".into(),
        display_name: "Quiet".into(),
        app: None,
        spotify: true,
    });
    let zone = chrono_tz::America::Los_Angeles;
    let local = |d: u32, m: u32| {
        chrono::TimeZone::with_ymd_and_hms(&zone, 2024, m, d, 0, 0, 0)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let week = Filters {
        from: Some(local(28, 10)),
        to: Some(local(4, 11)),
        ..Filters::default()
    };
    let out = analyse(&storage, None, &week, &group, None).await.unwrap();
    let summary = rows(&out.metrics["member_summary"]);
    assert_eq!(
        summary.len(),
        fact_count("members"),
        "every member played that week (facts week_2024_10_28.*)"
    );
    for row in summary {
        assert_eq!(
            n(&row, "plays") as usize,
            fact_count(&format!("week_2024_10_28.{}", s(&row, "user_id")))
        );
    }
    assert!(
        out.run.starts_with("r1-from"),
        "a filtered run has its own id: {}",
        out.run
    );
    let quiet = out
        .report
        .members
        .iter()
        .find(|m| m.id == "quiet.one")
        .expect("listed with no plays");
    assert_eq!(quiet.plays, 0);

    let alone = Filters {
        members: vec!["emi".into()],
        ..Filters::default()
    };
    let out = analyse(&storage, None, &alone, &group, None).await.unwrap();
    assert_eq!(rows(&out.metrics["member_summary"]).len(), 1);
    assert_eq!(
        n(&rows(&out.metrics["member_summary"])[0], "plays") as usize,
        fact_count("plays.emi")
    );
    for metric in [
        "shared_tracks",
        "taste_match",
        "recommendation_scores",
        "top_list_overlap",
    ] {
        assert_eq!(
            out.metrics[metric].height(),
            0,
            "{metric} needs two members"
        );
    }
    assert_eq!(out.report_json()["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_complete_snapshot_the_error_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let storage = earshot_core::Storage::local(dir.path());
    let err = format!(
        "{:#}",
        analyse(
            &storage,
            None,
            &Filters::default(),
            &fixture_group_config(),
            None
        )
        .await
        .unwrap_err()
    );
    assert!(
        err.contains("no complete snapshot") && err.contains("gcs-export"),
        "{err}"
    );
}

/// Issue #11: the newest N scheduled runs stay in `analytics_*`, older ones go from every collection;
/// runs asked for a period stay whatever their age.
#[tokio::test]
async fn old_scheduled_runs_are_pruned_and_period_runs_kept() {
    let (db, _dir, storage) = exported_snapshot("analytics_prune", "20241111T090000Z").await;
    let out = analyse(
        &storage,
        None,
        &Filters::default(),
        &fixture_group_config(),
        None,
    )
    .await
    .unwrap();
    let runs = ["20241108T090000Z", "20241109T090000Z", "20241110T090000Z"];
    for run in runs {
        store::save(&db, run, &out.metrics).await.unwrap();
        store::register(&db, &AnalyticsRun::new(run, RUN_SCHEDULED))
            .await
            .unwrap();
    }
    store::save(&db, "2024-period", &out.metrics).await.unwrap();
    store::register(&db, &AnalyticsRun::new("2024-period", RUN_PERIOD))
        .await
        .unwrap();
    let pruned = store::prune(&db, 2).await.unwrap();
    assert_eq!(pruned, [runs[0]]);
    assert_eq!(store::prune(&db, 2).await.unwrap(), Vec::<String>::new());
    for (metric, frame) in &out.metrics {
        let collection = db.collection::<Document>(&format!("{ANALYTICS_PREFIX}{metric}"));
        for (run, kept) in [
            (runs[0], false),
            (runs[1], true),
            (runs[2], true),
            ("2024-period", true),
        ] {
            let stored = collection.count_documents(doc! {"run": run}).await.unwrap() as usize;
            assert_eq!(
                stored,
                if kept { frame.height() } else { 0 },
                "{metric} {run}"
            );
        }
    }
    let listed = db
        .collection::<Document>(earshot_core::mongo::ANALYTICS_RUNS)
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(listed, 3);
}

/// The recap of October 2024 (`--period 2024-10`) against the facts fixtures/facts.py computed
/// independently: each member's minutes, tops, discovered artists (played before October or not), longest
/// streak, busiest day and tracks led; the group's most shared track and closest pair.
#[tokio::test]
async fn the_recap_of_a_month_matches_the_facts() {
    let (_db, _dir, storage) = exported_snapshot("analytics_recap", "20241111T090000Z").await;
    let group = fixture_group_config();
    let filters =
        Filters::for_period("2024-10".parse().unwrap(), chrono_tz::America::Los_Angeles).unwrap();
    let out = analyse(&storage, None, &filters, &group, None)
        .await
        .unwrap();
    let recap = rows(&out.metrics["recap_members"]);
    let discovered = rows(&out.metrics["recap_discovered"]);
    assert_eq!(recap.len(), fixture_member_ids().len());
    for row in &recap {
        let member = s(row, "user_id");
        let line = format!(
            "{:.4} min; track {} [{}] ({}); artist {} [{}] ({}); album [{}] ({}); {} discovered; \
             streak {} days; busiest {} ({}); top listener of {}",
            n(row, "minutes"),
            s(row, "top_track_name"),
            s(row, "top_track_key"),
            n(row, "top_track_plays"),
            s(row, "top_artist_name"),
            s(row, "top_artist_id"),
            n(row, "top_artist_plays"),
            s(row, "top_album_id"),
            n(row, "top_album_plays"),
            n(row, "artists_discovered"),
            n(row, "longest_streak_days"),
            s(row, "busiest_day"),
            n(row, "busiest_day_plays"),
            n(row, "top_listener_of"),
        );
        assert_eq!(line, fact(&format!("recap.2024-10.{member}")), "{member}");
        let listed = discovered
            .iter()
            .filter(|r| s(r, "user_id") == member)
            .count();
        assert_eq!(listed as f64, n(row, "artists_discovered"), "{member}");
    }
    let whole = rows(&out.metrics["recap_group"]);
    assert_eq!(whole.len(), 1);
    let g = &whole[0];
    assert_eq!(
        format!(
            "[{}]: {} members, {} plays",
            s(g, "most_shared_track_key"),
            n(g, "most_shared_listeners"),
            n(g, "most_shared_plays")
        ),
        fact("recap.2024-10.most_shared")
    );
    assert_eq!(
        format!(
            "{}+{}: {:.2}",
            s(g, "closest_a"),
            s(g, "closest_b"),
            n(g, "closest_taste_match")
        ),
        fact("recap.2024-10.closest")
    );

    // Over the whole history every artist is a discovery: the count is each member's distinct artists.
    let all = analyse(&storage, None, &Filters::default(), &group, None)
        .await
        .unwrap();
    let summary = rows(&all.metrics["member_summary"]);
    for row in rows(&all.metrics["recap_members"]) {
        let member = s(&row, "user_id");
        let artists = summary.iter().find(|r| s(r, "user_id") == member).unwrap();
        assert_eq!(
            n(&row, "artists_discovered"),
            n(artists, "unique_artists"),
            "{member}"
        );
    }
}

/// earshot-metrics' model against what the SQL really outputs on the fixture group: each metric's
/// columns, in order, are the declared ones; every row reads as its typed row; and a column holds
/// members' ids exactly when the model says it names a member (so an export's and an erase's
/// choices rest on the data, not on a naming habit). The histories are imported, so that the spoken
/// metrics have rows too.
#[tokio::test]
async fn the_metric_model_is_what_the_sql_outputs() {
    let (_db, _dir, storage) =
        exported_snapshot_with("analytics_model", "20241111T090000Z", true).await;
    let out = analyse(
        &storage,
        None,
        &Filters::default(),
        &fixture_group_config(),
        None,
    )
    .await
    .unwrap();
    let members = fixture_member_ids();
    for metric in earshot_metrics::METRICS {
        let frame = &out.metrics[metric.name];
        let output: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let declared: Vec<&str> = metric.columns.iter().map(|c| c.name).collect();
        assert_eq!(output, declared, "the columns of `{}`", metric.name);
        assert!(
            frame.height() > 0,
            "`{}` has rows on the fixture group",
            metric.name
        );
        for column in metric.columns {
            let values: Vec<Value> = rows(frame)
                .into_iter()
                .map(|r| r[column.name].clone())
                .collect();
            let ids = values
                .iter()
                .filter(|v| v.as_str().is_some_and(|s| members.iter().any(|m| m == s)));
            let holds_ids = ids.count() > 0;
            assert_eq!(
                holds_ids,
                column.role.names_member(),
                "`{}.{}` is declared {:?}",
                metric.name,
                column.name,
                column.role
            );
        }
    }
    use earshot_metrics::rows::*;
    macro_rules! reads {
        ($($t:ty),*) => { $( assert!(!analytics::report::typed::<$t>(&out.metrics).unwrap().is_empty(), "{}", <$t>::TABLE); )* };
    }
    reads!(
        SpokenSummary,
        ShowMinutes,
        SharedShow,
        MemberSummary,
        MemberTrack,
        MemberArtist,
        MemberAlbum,
        ClockCell,
        TrackListeners,
        TrackTopListener,
        ArtistTopListener,
        Obscure,
        SharedTracks,
        SharedFavourite,
        TasteMatch,
        TopListOverlap,
        RecommendationScore,
        PlaysPerDay,
        RecapMember,
        RecapDiscovered,
        RecapGroup
    );
}
