//! An erase: no trace left, the others' results as a group without them, and the pipeline's steps racing it.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_leaves_no_trace_and_the_others_results_equal_a_group_without_them() {
    let (p, track) = connected_group("members_erase").await;
    let needles = [MEMBER, NAME, track.as_str()];
    // What the listen API keeps of the member (issue #39): their token's hash, a submission as their
    // client sent it, and their "now playing".
    earshot_state::listen_tokens::create(&p.storage, MEMBER, Utc::now())
        .await
        .unwrap();
    let listen = format!(
        r#"{{"listen_type":"single","payload":[{{"listened_at":1700000000,"track_metadata":{{"artist_name":"{NAME}","track_name":"{track}"}}}}]}}"#
    );
    p.storage
        .write(
            &layout::listen_submission_key(MEMBER, Utc::now(), "0123456789abcdef"),
            listen.into_bytes().into(),
        )
        .await
        .unwrap();
    p.storage
        .write(
            &layout::now_playing_key(MEMBER),
            format!(r#"{{"member":"{MEMBER}","track_name":"{track}"}}"#)
                .into_bytes()
                .into(),
        )
        .await
        .unwrap();
    assert!(
        find_traces(&p, &needles).await.len() > 10,
        "the search finds the member before the erase"
    );

    // Refused while the group config lists them, naming the file and the entry.
    let refused = earshot_rights::erase::refuse_if_listed(&p.stores(), MEMBER, &p.config)
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains(&p.config.display().to_string()) && message.contains("id = \"chloe-r\"")
    );
    let out = p.output("members", &["erase", "--member", MEMBER, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[[members]]"));
    assert!(
        plays_of(&p.db, MEMBER).await > 0,
        "nothing removed by a refused erase"
    );

    // The admin removes them from the config, then erases (the binary, as a person runs it).
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    let out = p.output("members", &["erase", "--member", MEMBER, "--yes"]);
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("mongodb rawdata_recentlyplayed")
            && printed.contains("spotify.com/account/apps")
    );

    // The next daily run (export, analytics) on the erased group.
    p.export_and_analyse("20250102T000000Z");
    let traces = find_traces(&p, &needles).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));

    // A second erase finds nothing to remove.
    let again = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(!again.found);
    assert!(again.summary(MEMBER).contains("nothing to remove"));

    // The others' results equal those of a group that never had the member.
    let without = pipeline("members_erase_baseline", Some(MEMBER)).await;
    without.export_and_analyse("20250102T000000Z");
    for collection in earshot_collections::collections(Target::All)
        .into_iter()
        .chain(earshot_collections::partial_collections(Target::All))
    {
        assert_eq!(
            rows(&p.db, collection, doc! {}, &[]).await,
            rows(&without.db, collection, doc! {}, &[]).await,
            "derived collection {collection}"
        );
    }
    for collection in [
        mongo::RAW_RECENTLY_PLAYED,
        mongo::RAW_TOP_TRACKS,
        mongo::RAW_TOP_ARTISTS,
        mongo::RAW_SPOKEN,
    ] {
        let (ours, theirs) = (
            rows(&p.db, collection, doc! {}, &[]).await,
            rows(&without.db, collection, doc! {}, &[]).await,
        );
        assert!(!ours.is_empty(), "{collection} has rows after the erase");
        let differ: Vec<&String> = ours.symmetric_difference(&theirs).take(4).collect();
        assert!(differ.is_empty(), "{collection}: {differ:#?}");
    }
    // Pairwise rows too: with the member gone, every pair left is of two members both groups have.
    let metrics = earshot_rights::analytics_rows::analytics_collections(&without.db)
        .await
        .unwrap();
    assert!(metrics.len() >= 10, "{metrics:?}");
    for name in &metrics {
        let ours = rows(&p.db, name, doc! {}, &[]).await;
        assert!(!ours.is_empty(), "{name} has rows after the erase");
        assert_eq!(ours, rows(&without.db, name, doc! {}, &[]).await, "{name}");
    }
    let report = |p: &Pipeline| {
        let path = p
            .root
            .join(layout::report_key("20250102T000000Z", layout::REPORT_JSON));
        let mut report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        report.as_object_mut().unwrap().remove("generated_at");
        canonical(&report["members"])
    };
    assert!(report(&p) == report(&without), "report.json members differ");
}

/// Run a binary on the pipeline's stores in the background, its logs as JSON lines on stderr.
fn spawn(p: &Pipeline, program: &str, args: &[&str]) -> std::process::Child {
    p.command(program, args, "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analytics_run_racing_an_erase_leaves_no_trace_of_the_member() {
    let (p, track) = connected_group("members_erase_race").await;
    std::fs::write(&p.config, group_toml(Some(MEMBER))).unwrap();
    let p = Pipeline {
        group: GroupConfig::load(&p.config).unwrap(),
        ..p
    };
    // A crashed write left a temp file among the member's converted files.
    let converted = p
        .root
        .join(layout::converted_prefix(RawKind::RecentlyPlayed))
        .join(format!("user={MEMBER}"));
    std::fs::write(converted.join(".earshot-tmp-crashed"), MEMBER).unwrap();

    // Analytics starts (it has read the snapshot's plans) ...
    let mut analytics = spawn(
        &p,
        "analytics",
        &[
            "--snapshot",
            "20250101T000000Z",
            "--run",
            "20250103T000000Z",
        ],
    );
    let mut stderr = std::io::BufReader::new(analytics.stderr.take().unwrap());
    let mut log = String::new();
    loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "analytics ended before it started: {log}");
        log.push_str(&line);
        if line.contains("Analytics started.") {
            break;
        }
    }
    // ... and the member is erased while it computes.
    let erased = earshot_rights::erase::erase(&p.stores(), MEMBER)
        .await
        .unwrap();
    assert!(erased.found);
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let status = analytics.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the racing run stops: {log}");
    assert!(
        log.contains("was erased while this run was in progress"),
        "{log}"
    );
    assert!(
        !p.root.join("reports/20250103T000000Z").exists(),
        "the racing run's report folder is withdrawn"
    );

    // Nothing of the member anywhere, the temp file and its folder included.
    let needles = [MEMBER, NAME, track.as_str()];
    let traces = find_traces(&p, &needles).await;
    assert!(traces.is_empty(), "traces left:\n{}", traces.join("\n"));
    assert!(!converted.exists(), "the member's folder is gone");
    let mut everything = Vec::new();
    let mut pending = vec![p.root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            everything.push(path.display().to_string());
        }
    }
    assert!(
        everything.iter().all(|path| !path.contains(MEMBER)),
        "{everything:?}"
    );

    // The next daily run computes without them; a second erase finds nothing, exports and reports
    // included.
    p.export_and_analyse("20250104T000000Z");
    assert!(find_traces(&p, &needles).await.is_empty());
    let erase_again = || async {
        earshot_rights::erase::erase(&p.stores(), MEMBER)
            .await
            .unwrap()
    };
    assert!(!erase_again().await.found);

    // A temp file a crash left where nothing else of theirs is: listings never show it, erase finds it.
    std::fs::create_dir_all(&converted).unwrap();
    std::fs::write(converted.join(".earshot-tmp-late"), MEMBER).unwrap();
    assert!(erase_again().await.found);
    assert!(!converted.exists());
    assert!(!erase_again().await.found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_refuses_to_start_during_an_erase_and_an_erase_needs_a_config() {
    let (p, _) = connected_group("members_erase_marker").await;
    // An erase in progress (its marker), as a crashed or running `members erase` leaves it.
    p.storage
        .write(&layout::erasure_key(MEMBER), b"{}".to_vec().into())
        .await
        .unwrap();
    for (program, args) in [
        ("data-upload", vec!["all"]),
        ("create-collections", vec!["all"]),
        ("gcs-export", vec!["--snapshot", "20250105T000000Z"]),
        (
            "analytics",
            vec![
                "--snapshot",
                "20250101T000000Z",
                "--run",
                "20250105T000000Z",
            ],
        ),
    ] {
        let out = p.output(program, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{program}: {stderr}");
        assert!(
            stderr.contains(&format!("`{MEMBER}` is being erased")),
            "{program}: {stderr}"
        );
    }
    assert!(
        !p.root
            .join("exports/Tracks/snapshot=20250105T000000Z")
            .exists()
            && !p.root.join("reports/20250105T000000Z").exists(),
        "nothing written"
    );

    // Without a group config file, an erase is refused unless told explicitly.
    let out = p
        .command("members", &["erase", "--member", MEMBER, "--yes"], "warn")
        .current_dir(&p.root)
        .env_remove("EARSHOT_GROUP_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no group config file") && stderr.contains("--without-config"),
        "{stderr}"
    );
    assert!(plays_of(&p.db, MEMBER).await > 0, "nothing erased");
}
