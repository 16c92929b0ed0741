//! Filters, missing snapshots, pruned runs, the month's recap and the metric model.

use super::*;

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
    let out = crate::analyse_fixture_group(&storage).await;
    let runs = ["20241108T090000Z", "20241109T090000Z", "20241110T090000Z"];
    for run in runs {
        save::metric_rows(&db, run, &out.metrics).await.unwrap();
        earshot_metrics::runs::register(&db, &AnalyticsRun::new(run, RUN_SCHEDULED))
            .await
            .unwrap();
    }
    save::metric_rows(&db, "2024-period", &out.metrics)
        .await
        .unwrap();
    earshot_metrics::runs::register(&db, &AnalyticsRun::new("2024-period", RUN_PERIOD))
        .await
        .unwrap();
    let pruned = earshot_metrics::runs::prune(&db, 2).await.unwrap();
    assert_eq!(pruned, [runs[0]]);
    assert_eq!(
        earshot_metrics::runs::prune(&db, 2).await.unwrap(),
        Vec::<String>::new()
    );
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
    let out = crate::analyse_fixture_group(&storage).await;
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
        ($($t:ty),*) => { $( assert!(!analytics::assemble::typed::<$t>(&out.metrics).unwrap().is_empty(), "{}", <$t>::TABLE); )* };
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
