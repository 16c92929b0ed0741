//! A member's plays exported as ListenBrainz listens.

use super::*;

/// ListenBrainz's checks of a submitted listen (its JSON documentation and `validate_listen` in
/// listenbrainz-server's `api_tools.py`), written here apart from the exporter: `None` when `line`
/// passes, else what fails.
fn listenbrainz_fault(line: &str) -> Option<String> {
    const MAX_LISTEN_SIZE: usize = 10_240;
    const LISTEN_MINIMUM_TS: i64 = 1_033_430_400;
    const MAX_DURATION_MS: i64 = 2_073_600_000;
    const MAX_DURATION: i64 = 2_073_600;
    const MAX_TAGS: usize = 50;
    const MAX_TAG_SIZE: usize = 64;
    if line.len() > MAX_LISTEN_SIZE {
        return Some(format!("{} bytes", line.len()));
    }
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(line) else {
        return Some("not a JSON object".into());
    };
    let keys: BTreeSet<&str> = top.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["listened_at", "track_metadata"]) {
        return Some(format!("top-level keys {keys:?}"));
    }
    let Some(at) = top["listened_at"].as_i64() else {
        return Some(format!("listened_at {}", top["listened_at"]));
    };
    if at < LISTEN_MINIMUM_TS || at > Utc::now().timestamp() + 3600 {
        return Some(format!("listened_at {at}"));
    }
    let Some(metadata) = top["track_metadata"].as_object() else {
        return Some("track_metadata not an object".into());
    };
    for required in ["artist_name", "track_name"] {
        if metadata[required]
            .as_str()
            .is_none_or(|s| s.trim().is_empty())
        {
            return Some(format!("{required} {:?}", metadata.get(required)));
        }
    }
    if let Some(release) = metadata.get("release_name")
        && release.as_str().is_none_or(str::is_empty)
    {
        return Some(format!("release_name {release}"));
    }
    // No additional_info passes.
    let info = metadata.get("additional_info")?;
    let Some(info) = info.as_object() else {
        return Some("additional_info not an object".into());
    };
    if info.contains_key("duration") && info.contains_key("duration_ms") {
        return Some("both duration and duration_ms".into());
    }
    for (key, max) in [("duration_ms", MAX_DURATION_MS), ("duration", MAX_DURATION)] {
        if let Some(value) = info.get(key)
            && value.as_i64().is_none_or(|v| v <= 0 || v > max)
        {
            return Some(format!("{key} {value}"));
        }
    }
    if let Some(tags) = info.get("tags") {
        let Some(tags) = tags.as_array() else {
            return Some("tags not a list".into());
        };
        if tags.len() > MAX_TAGS
            || tags
                .iter()
                .any(|t| t.as_str().is_none_or(|t| t.chars().count() > MAX_TAG_SIZE))
        {
            return Some("tags".into());
        }
    }
    for key in [
        "release_mbid",
        "recording_mbid",
        "release_group_mbid",
        "track_mbid",
        "artist_mbids",
        "work_mbids",
    ] {
        if info.contains_key(key) {
            return Some(format!("{key} (Earshot has no MusicBrainz ids)"));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listenbrainz_export_holds_exactly_their_plays_each_a_valid_listen() {
    let p = pipeline("members_listenbrainz", None).await;
    let export = |member: &str, path: &Path| {
        let path = path.display().to_string();
        let args = ["export", "--member", member, "--output", &path];
        p.output(
            "members",
            &[&args[..], &["--format", "listenbrainz"]].concat(),
        )
    };
    let path = p.root.join("listens.jsonl");
    let out = export(MEMBER, &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The checks catch what ListenBrainz refuses.
    let good = lines[0];
    assert_eq!(listenbrainz_fault(good), None, "{good}");
    let mut bad: Value = serde_json::from_str(good).unwrap();
    bad["track_metadata"]["artist_name"] = Value::from("");
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    bad["track_metadata"]["artist_name"] = Value::from("x".repeat(10_240));
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    let mut bad: Value = serde_json::from_str(good).unwrap();
    bad["extra"] = Value::from(1);
    assert!(listenbrainz_fault(&bad.to_string()).is_some());
    for line in &lines {
        assert_eq!(listenbrainz_fault(line), None, "{line}");
    }

    // Exactly their plays, fetched and imported: each play with a track and an artist name is one
    // listen at its second, the others are counted as left out.
    let plays: Vec<Document> =
        p.db.collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
            .find(doc! {"user_id": MEMBER})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
    let named = |d: &Document, f: &str| d.get_str(f).is_ok_and(|s| !s.trim().is_empty());
    let mut expected: Vec<(i64, String)> = plays
        .iter()
        .filter(|d| {
            named(d, "track_name")
                && d.get_array("artist_names").is_ok_and(|a| {
                    a.iter()
                        .any(|n| n.as_str().is_some_and(|n| !n.trim().is_empty()))
                })
        })
        .map(|d| {
            let at = d
                .get_datetime("played_at")
                .unwrap()
                .timestamp_millis()
                .div_euclid(1000);
            (at, d.get_str("track_name").unwrap().trim().to_string())
        })
        .collect();
    let listens: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got: Vec<(i64, String)> = listens
        .iter()
        .map(|l| {
            let name = l["track_metadata"]["track_name"]
                .as_str()
                .unwrap()
                .to_string();
            (l["listened_at"].as_i64().unwrap(), name)
        })
        .collect();
    expected.sort();
    got.sort();
    assert!(!got.is_empty());
    assert_eq!(got, expected);
    let printed = String::from_utf8_lossy(&out.stderr);
    assert!(
        printed.contains(&format!("{} ListenBrainz listens", got.len())),
        "{printed}"
    );
    let left_out = plays.len() - got.len();
    assert!(left_out == 0 || printed.contains("Left out"), "{printed}");
    // Both sources, their Spotify links, in time order.
    let sources: BTreeSet<&str> = listens
        .iter()
        .filter_map(|l| l["track_metadata"]["additional_info"]["source"].as_str())
        .collect();
    assert_eq!(sources, BTreeSet::from(["api", "history"]));
    let linked = plays
        .iter()
        .find_map(|d| d.get_str("track_id").ok())
        .unwrap();
    let link = format!("https://open.spotify.com/track/{linked}");
    assert!(
        listens
            .iter()
            .any(|l| l["track_metadata"]["additional_info"]["spotify_id"] == link.as_str())
    );
    let times: Vec<i64> = listens
        .iter()
        .map(|l| l["listened_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // A member Earshot holds nothing of: an error naming them, and no file.
    let none = p.root.join("none.jsonl");
    let out = export("nobody", &none);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nobody`"));
    assert!(!none.exists());
}
