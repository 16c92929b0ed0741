//! Incremental builds: equal to a build from the plays, and touching only what new plays touch.
use super::*;

/// Load `files` (converted storage keys) as data-upload loads them.
async fn load(db: &Database, storage: &earshot_core::Storage, files: &[(RawKind, String)]) {
    for (kind, key) in files {
        let options = earshot_upload::LoadOptions::default();
        earshot_upload::load_storage(db, storage, *kind, key, options)
            .await
            .unwrap();
    }
}

/// The derived collections equal, document for document, what one aggregation of every row gives.
async fn assert_as_from_plays(db: &Database, when: &str) -> BTreeMap<String, Vec<String>> {
    let built = dump(db).await;
    let reference = from_plays::reference(db).await;
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{when}"
    );
    for (collection, documents) in &reference {
        let mut ours = built[collection].clone();
        if collection == mongo::MEMBERS {
            // The members with no plays (yet, or left), which the build adds.
            ours.retain(|d| !d.contains("\"first_play\":null"));
        }
        for (a, b) in ours.iter().zip(documents) {
            assert_eq!(a, b, "{when}: {collection}");
        }
        assert_eq!(
            ours.len(),
            documents.len(),
            "{when}: {collection} document count"
        );
    }
    built
}

/// Issue #23 (and #11): the fixture group loaded hour by hour (as the hourly runs load it), each hour
/// followed by an incremental build; then the members' streaming histories imported into old days, an
/// enrichment that renames a track, and an erase. After each, the derived collections equal, document
/// for document, what one aggregation of all of the rows gives (the definition the builds had before
/// the per-day partials), and so does a rebuild from scratch at the end.
#[tokio::test]
async fn incremental_builds_equal_a_build_from_plays() {
    let (_dir, storage) = earshot_tests::converted_storage_with(true).await;
    let db = earshot_tests::fresh_database("collections_incremental").await;
    let group = common::group();
    // Every converted API file, grouped by the hour it was fetched in (its file name), oldest first;
    // the imported histories apart.
    let mut hours: BTreeMap<String, Vec<(RawKind, String)>> = BTreeMap::new();
    let mut history = Vec::new();
    for kind in RawKind::ALL {
        for key in storage.list(&layout::converted_prefix(kind)).await.unwrap() {
            if matches!(kind, RawKind::StreamingHistory | RawKind::SpokenHistory) {
                history.push((kind, key));
                continue;
            }
            let stamp = key.rsplit('/').next().unwrap();
            hours
                .entry(stamp[..11].to_string())
                .or_default()
                .push((kind, key));
        }
    }
    assert!(hours.len() > 10, "{} hours", hours.len());
    assert!(!history.is_empty());
    let incremental = BuildOptions {
        mode: Mode::Incremental,
        margin: std::time::Duration::ZERO,
    };
    for (hour, files) in &hours {
        load(&db, &storage, files).await;
        build_with(&db, Target::All, &group, incremental)
            .await
            .unwrap();
        assert_as_from_plays(&db, &format!("hour {hour}")).await;
    }
    let built_hourly = dump(&db).await;
    assert_eq!(
        built_hourly[mongo::ARTIST_TRACK_LINK].len(),
        fact_count("artist_links")
    );
    // Nothing new: a run changes nothing.
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    assert_eq!(dump(&db).await, built_hourly);

    // The histories, into days the hourly builds already folded.
    load(&db, &storage, &history).await;
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    let imported = assert_as_from_plays(&db, "after the import").await;
    assert_ne!(imported[mongo::MEMBERS], built_hourly[mongo::MEMBERS]);

    // An enrichment renames a track whose latest play is an imported one (as `data-fetcher enrich`
    // does: its imported plays take the catalogue's fields, and the ledger names what they touch).
    let track = latest_imported_track(&db).await;
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let imported_plays = doc! {"source": "history", "track_id": &track};
    plays
        .update_many(
            imported_plays.clone(),
            doc! {"$set": {"track_name": "Renamed (Remastered)", "clean_track_name": "Renamed"}},
        )
        .await
        .unwrap();
    let mut cursor = plays
        .find(imported_plays)
        .projection(earshot_core::ledger::source_projection())
        .await
        .unwrap();
    let mut rows = Vec::new();
    while cursor.advance().await.unwrap() {
        rows.push(cursor.deserialize_current().unwrap());
    }
    let mut entry = vec![earshot_core::ledger::LedgerEntry::new(
        &mongo::enrich_ledger_key(&track),
        mongo::RAW_RECENTLY_PLAYED,
        &rows,
    )];
    earshot_upload::loaded_files::record(&db, &mut entry)
        .await
        .unwrap();
    build_with(&db, Target::All, &group, incremental)
        .await
        .unwrap();
    assert_as_from_plays(&db, "after the rename").await;
    let renamed = db
        .collection::<Document>(mongo::TRACKS)
        .find_one(doc! {"_id": &track})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renamed.get_str("track_name").unwrap(),
        "Renamed (Remastered)"
    );

    // An erase, as `members erase` does it: what their rows touch recorded, their rows and ledger
    // entries removed, a build, the erasure entries removed.
    let member = "ana.mx";
    // Half of their entries as the ledger wrote them before it listed days: the erase reads those
    // days from the rows.
    let ledger = db.collection::<Document>(mongo::UPLOAD_LEDGER);
    let theirs = ledger
        .distinct("_id", doc! {"keys.user_id": member})
        .await
        .unwrap();
    let older: Vec<_> = theirs.iter().step_by(2).cloned().collect();
    assert!(!older.is_empty());
    ledger
        .update_many(
            doc! {"_id": {"$in": older}},
            doc! {"$unset": {"keys.day": "", "counts.day": ""}},
        )
        .await
        .unwrap();
    earshot_collections::forget_member(&db, member)
        .await
        .unwrap();
    for collection in mongo::MEMBER_ROW_COLLECTIONS {
        db.collection::<Document>(collection)
            .delete_many(doc! {"user_id": member})
            .await
            .unwrap();
    }
    db.collection::<Document>(mongo::UPLOAD_LEDGER)
        .delete_many(doc! {"keys.user_id": member})
        .await
        .unwrap();
    let mut without = group.clone();
    without.members.retain(|m| m.id != member);
    build_with(&db, Target::All, &without, incremental)
        .await
        .unwrap();
    assert!(earshot_collections::forget_erasures(&db).await.unwrap() > 0);
    let erased = assert_as_from_plays(&db, "after the erase").await;
    for (collection, documents) in &erased {
        assert!(
            documents.iter().all(|d| !d.contains(member)),
            "{collection} still names {member}"
        );
    }
    for partials in earshot_collections::partial_collections(Target::All) {
        let left = db
            .collection::<Document>(partials)
            .count_documents(doc! {"$or": [
                {mongo::PARTIAL_ENTITY: member},
                {"listeners": member},
            ]})
            .await
            .unwrap();
        assert_eq!(left, 0, "{partials} still names {member}");
    }

    // From scratch: the same documents.
    let scratch = BuildOptions {
        mode: Mode::Rebuild,
        ..incremental
    };
    build_with(&db, Target::All, &without, scratch)
        .await
        .unwrap();
    assert_eq!(assert_as_from_plays(&db, "rebuilt").await, erased);
}

/// A track whose latest play is an imported one.
async fn latest_imported_track(db: &Database) -> String {
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let tracks = plays
        .distinct("track_id", doc! {"source": "history"})
        .await
        .unwrap();
    for track in tracks.iter().filter_map(|t| t.as_str()) {
        let latest = plays
            .find_one(doc! {"track_id": track})
            .sort(doc! {"played_at": -1})
            .await
            .unwrap()
            .unwrap();
        if latest.get_str("source") == Ok("history") {
            return track.to_string();
        }
    }
    panic!("no track whose latest play is imported");
}

/// Mark every derived document, so that a later build shows what it rewrote: a rebuilt document is
/// replaced whole (`$merge` with `replace`) and loses the mark.
async fn mark_every_document(db: &Database) {
    for collection in earshot_collections::collections(Target::All) {
        db.collection::<Document>(collection)
            .update_many(doc! {}, doc! {"$set": {"_marked": true}})
            .await
            .unwrap();
    }
}

/// The `_id`s of each derived collection's documents a build rewrote since [`mark_every_document`].
async fn rewritten(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for collection in earshot_collections::collections(Target::All) {
        let mut cursor = db
            .collection::<Document>(collection)
            .find(doc! {"_marked": {"$exists": false}})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        let mut ids = Vec::new();
        while cursor.advance().await.unwrap() {
            ids.push(cursor.current().get_str("_id").unwrap().to_string());
        }
        if !ids.is_empty() {
            out.insert(collection.to_string(), ids);
        }
    }
    out
}

/// Issue #23: a build trails the server's clock by a margin (a minute by default), yet a run right
/// after another builds nothing the last one built: its watermark lists the entries it built within
/// the margin, and never moves back (after a `--rebuild`). An entry loaded again (a new load time) is
/// built again.
#[tokio::test]
async fn a_run_within_the_margin_does_not_build_again_what_the_last_built() {
    let (db, _dir, _storage) = common::loaded_database("collections_margin").await;
    let group = common::group();
    let options = BuildOptions::default();
    assert!(options.margin.as_secs() >= 60, "{options:?}");
    build_with(&db, Target::All, &group, options).await.unwrap();
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "the first build's entries, all within the margin, are not built again"
    );

    // A rebuild's watermark is its start; the next run's start less the margin is earlier, and the
    // watermark must not move back to it (which would build the rebuild's last minute again).
    build_with(
        &db,
        Target::All,
        &group,
        BuildOptions {
            mode: Mode::Rebuild,
            ..options
        },
    )
    .await
    .unwrap();
    mark_every_document(&db).await;

    // A new play: built once, then not again.
    let (top_id, _) = fact_track("top_track.group");
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut play = plays
        .find_one(doc! {"user_id": "ben_k", "track_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    play.insert("_id", "ben_k|2024-11-12T21:00:00.000Z");
    played_at(&mut play, "2024-11-12T21:00:00Z");
    plays.insert_one(play.clone()).await.unwrap();
    let file = "converted/recently_played/user=ben_k/20241112T210100.000Z.jsonl";
    let record = || async {
        let mut entry = vec![earshot_core::ledger::LedgerEntry::new(
            file,
            mongo::RAW_RECENTLY_PLAYED,
            std::slice::from_ref(&play),
        )];
        earshot_upload::loaded_files::record(&db, &mut entry)
            .await
            .unwrap();
    };
    record().await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    let first = rewritten(&db).await;
    assert_eq!(
        first.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "{first:#?}"
    );
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "the new entry, within the margin, is not built twice"
    );

    // The same file loaded again: a new load time, built again.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    record().await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        rewritten(&db).await.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "an entry loaded again is built again"
    );
}

/// Issue #11: with nothing loaded since the last build, a build reads the ledger and rewrites
/// nothing; one new play makes it rewrite exactly the documents that play touches.
#[tokio::test]
async fn a_build_rewrites_only_what_new_plays_touch() {
    let (db, _dir, _storage) = common::loaded_database("collections_nothing_new").await;
    let group = common::group();
    let options = BuildOptions {
        mode: Mode::Incremental,
        margin: std::time::Duration::ZERO,
    };
    build_with(&db, Target::All, &group, options).await.unwrap();
    let watermarks = || async {
        let mut cursor = db
            .collection::<Document>(mongo::BUILD_WATERMARKS)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap();
        let mut all = Vec::new();
        while cursor.advance().await.unwrap() {
            all.push(cursor.deserialize_current().unwrap());
        }
        all
    };
    let before: Vec<Document> = watermarks().await;
    assert_eq!(
        before.len(),
        earshot_collections::collections(Target::All).len(),
        "a watermark per build"
    );
    mark_every_document(&db).await;
    build_with(&db, Target::All, &group, options).await.unwrap();
    assert_eq!(
        watermarks().await,
        before,
        "nothing new: no watermark moved"
    );
    assert_eq!(
        rewritten(&db).await,
        BTreeMap::new(),
        "nothing new: nothing rewritten"
    );

    // One more play by Ana of the group's top track, recorded in the ledger as data-upload does.
    let (top_id, _) = fact_track("top_track.group");
    let plays = db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED);
    let mut play = plays
        .find_one(doc! {"user_id": "ana.mx", "track_id": &top_id})
        .await
        .unwrap()
        .unwrap();
    play.insert("_id", "ana.mx|2024-11-12T20:00:00.000Z");
    played_at(&mut play, "2024-11-12T20:00:00Z");
    plays.insert_one(play.clone()).await.unwrap();
    let mut entry = vec![earshot_core::ledger::LedgerEntry::new(
        "converted/recently_played/user=ana.mx/20241112T200100.000Z.jsonl",
        mongo::RAW_RECENTLY_PLAYED,
        std::slice::from_ref(&play),
    )];
    earshot_upload::loaded_files::record(&db, &mut entry)
        .await
        .unwrap();
    build_with(&db, Target::All, &group, options).await.unwrap();

    let artists: Vec<String> = play
        .get_array("artist_ids")
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let album = play.get_str("album_id").unwrap().to_string();
    let mut sorted_artists = artists.clone();
    sorted_artists.sort();
    let done = rewritten(&db).await;
    assert_eq!(
        done.get(mongo::TRACKS),
        Some(&vec![top_id.clone()]),
        "{done:#?}"
    );
    assert_eq!(
        done.get(mongo::ALBUMS),
        Some(&vec![album.clone()]),
        "{done:#?}"
    );
    assert_eq!(done.get(mongo::ARTISTS), Some(&sorted_artists), "{done:#?}");
    assert_eq!(
        done.get(mongo::MEMBERS),
        Some(&vec!["ana.mx".to_string()]),
        "{done:#?}"
    );
    let links = &done[mongo::ARTIST_TRACK_LINK];
    assert_eq!(
        links.len(),
        artists.len(),
        "a new link per artist, no old link rewritten: {links:?}"
    );
    assert!(
        links
            .iter()
            .all(|id| id.starts_with("ana.mx|2024-11-12T20:00:00.000Z")),
        "{links:?}"
    );
    for (collection, ids) in &done {
        assert!(
            [
                mongo::TRACKS,
                mongo::ALBUMS,
                mongo::ARTISTS,
                mongo::MEMBERS,
                mongo::ARTIST_TRACK_LINK,
                mongo::IMAGES
            ]
            .contains(&collection.as_str()),
            "{collection} rewrote {ids:?}"
        );
    }
    if let Some(images) = done.get(mongo::IMAGES) {
        for id in images {
            let image = db
                .collection::<Document>(mongo::IMAGES)
                .find_one(doc! {"_id": id})
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                image.get_str("album_id").unwrap(),
                album,
                "only the album's images"
            );
        }
    }
    assert_ne!(
        watermarks().await,
        before,
        "the builds that ran moved their watermarks"
    );
}
