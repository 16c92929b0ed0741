//! A killed import resumes, no device field is stored, and the zip imports as its folder does.

use super::*;

#[tokio::test]
async fn an_import_killed_mid_way_resumes_to_the_exact_count() {
    // A big export (many files), so that the import is still running when it is killed.
    let listening = Listening::fixture_group().unwrap();
    let member = &listening.members[0];
    let shape = HistoryShape {
        seed: 7,
        days_before: 3_000,
        plays_per_day: 12,
        per_file: 3_000,
        overlap_days: 4,
        quirks: true,
    };
    let export = tempfile::tempdir().unwrap();
    for (name, entries) in streaming_history(member, 0, &shape) {
        std::fs::write(
            export.path().join(name),
            serde_json::to_vec(&entries).unwrap(),
        )
        .unwrap();
    }
    let files = std::fs::read_dir(export.path()).unwrap().count();
    assert!(files >= 10, "{files} files");
    let group_file = fixtures_dir().join("group.toml");
    let run = |storage: &std::path::Path| {
        let mut command = std::process::Command::new(binary("data-fetcher"));
        command
            .args(["import", "--member", member.id()])
            .arg(export.path())
            .arg("--storage")
            .arg(storage)
            .arg("--group-config")
            .arg(&group_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    // The count an uninterrupted import reaches.
    let clean = tempfile::tempdir().unwrap();
    let output = run(clean.path()).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: ImportState = {
        let storage = Storage::local(clean.path());
        earshot_state::import_progress::read_state(&storage, member.id())
            .await
            .unwrap()
            .unwrap()
    };
    assert!(expected.plays > 30_000, "{}", expected.plays);
    // Killed as soon as its first file is stored (tried again if it was already done).
    let mut killed_mid_way = false;
    for _ in 0..5 {
        let storage_dir = tempfile::tempdir().unwrap();
        let history = storage_dir.path().join(layout::history_prefix(member.id()));
        let mut child = run(storage_dir.path()).spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let stored = std::fs::read_dir(&history).map_or(0, |d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
                })
                .count()
            });
            if stored >= 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let storage = Storage::local(storage_dir.path());
        let state_after_kill = earshot_state::import_progress::read_state(&storage, member.id())
            .await
            .unwrap();
        if state_after_kill.is_some() {
            continue; // it finished first: try again
        }
        killed_mid_way = true;
        let output = run(storage_dir.path()).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let resumed = earshot_state::import_progress::read_state(&storage, member.id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ImportState {
                updated_at: None,
                ..resumed
            },
            ImportState {
                updated_at: None,
                ..expected.clone()
            }
        );
        // No temp file left behind counts: every stored file is a complete export file.
        for key in storage
            .list(&layout::history_prefix(member.id()))
            .await
            .unwrap()
        {
            let bytes = storage.read_all(&key).await.unwrap();
            serde_json::from_slice::<Vec<serde_json::Value>>(&bytes)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        break;
    }
    assert!(
        killed_mid_way,
        "the import always finished before it could be killed"
    );
}

#[tokio::test]
async fn no_device_field_reaches_any_store() {
    let (dir, storage) = converted_storage().await;
    // Through the binary, to read its log too.
    let mut logs = String::new();
    for member in fixture_member_ids() {
        let output = std::process::Command::new(binary("data-fetcher"))
            .args(["import", "--member", &member])
            .arg(history_dir(&fixtures_dir(), &member))
            .arg("--storage")
            .arg(dir.path())
            .arg("--group-config")
            .arg(fixtures_dir().join("group.toml"))
            .env("EARSHOT_LOG", "debug")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&output.stdout));
        logs.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    convert_history(&storage).await;
    let db = fresh_database("no_device_fields").await;
    for kind in [RawKind::RecentlyPlayed, RawKind::StreamingHistory] {
        upload(&db, &storage, kind).await;
    }
    earshot_collections::build(
        &db,
        earshot_core::layout::Target::All,
        &fixture_group_config(),
    )
    .await
    .unwrap();
    let mut needles: Vec<String> = HISTORY_DEVICE_FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect();
    needles.push(HISTORY_PLATFORM.to_string());
    needles.extend((0..5).map(history_ip_addr));
    let hits = |text: &str| -> Vec<String> {
        needles
            .iter()
            .filter(|n| text.contains(n.as_str()))
            .cloned()
            .collect()
    };
    assert!(hits(&logs).is_empty(), "in the logs: {:?}", hits(&logs));
    // Every stored file.
    let mut searched = 0;
    for key in storage.list("").await.unwrap() {
        let text = String::from_utf8_lossy(&storage.read_all(&key).await.unwrap()).into_owned();
        assert!(hits(&text).is_empty(), "{key}: {:?}", hits(&text));
        searched += 1;
    }
    assert!(searched > 100, "{searched} files");
    // Every document of every collection.
    let mut documents = 0;
    earshot_tests::each_document(&db, |name, document| {
        let text = format!("{document:?}");
        assert!(hits(&text).is_empty(), "{name}: {:?}", hits(&text));
        documents += 1;
    })
    .await;
    assert!(documents > 1000, "{documents} documents");
    // The export files themselves do hold them (the search would find them).
    let raw = std::fs::read_to_string(
        std::fs::read_dir(history_dir(&fixtures_dir(), &fixture_member_ids()[0]))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert_eq!(hits(&raw).len(), needles.len() - 4, "{:?}", hits(&raw));
}

#[tokio::test]
async fn the_zip_spotify_sends_imports_as_its_folder_does() {
    use std::io::Write as _;
    let member = fixture_member_ids().remove(1);
    let dir = tempfile::tempdir().unwrap();
    // `my_spotify_data.zip` as Spotify sends it: the history in a folder, beside other files.
    let zip_path = dir.path().join("my_spotify_data.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(
        "Spotify Extended Streaming History/ReadMeFirst_ExtendedStreamingHistory.pdf",
        options,
    )
    .unwrap();
    zip.write_all(b"%PDF-1.4 not read").unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(history_dir(&fixtures_dir(), &member))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        zip.start_file(
            format!("Spotify Extended Streaming History/{name}"),
            options,
        )
        .unwrap();
        zip.write_all(&std::fs::read(file).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    let group = fixture_group_config();
    let from_zip = Storage::local(dir.path().join("a"));
    let zipped = import(&from_zip, &group, &member, &[zip_path], Utc::now())
        .await
        .unwrap();
    let from_folder = Storage::local(dir.path().join("b"));
    let folder = import(
        &from_folder,
        &group,
        &member,
        &export_of(&member),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(zipped.files_read, files.len(), "the PDF is not read");
    assert_eq!(
        ImportState {
            updated_at: None,
            ..zipped.state
        },
        ImportState {
            updated_at: None,
            ..folder.state
        }
    );
    // The same stored files, byte for byte.
    let prefix = layout::history_prefix(&member);
    let (a, b) = (
        from_zip.list(&prefix).await.unwrap(),
        from_folder.list(&prefix).await.unwrap(),
    );
    assert_eq!(a, b);
    for key in &a {
        assert_eq!(
            from_zip.read_all(key).await.unwrap(),
            from_folder.read_all(key).await.unwrap()
        );
    }
}
