//! An import trusts nothing in its file (issue 21): a zip that expands past the cap (declared, and
//! lying about its size), a zip with too many entries, a zip of 20,000 files read in linear time, a
//! track id that would choose an API path, and a malformed third file. Each gives a clear error or a
//! set-aside, and a refused import leaves storage as it was.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use data_fetcher::import::{MAX_FILE_BYTES, MAX_ZIP_ENTRIES, import, import_with};
use earshot_core::history::Disposition;
use earshot_core::layout::{self, RawKind};
use earshot_core::{GroupConfig, Storage};
use earshot_testkit::fixtures::fixtures_dir;
use zip::write::SimpleFileOptions;

const MEMBER: &str = "ana.mx";
const TRACK: &str = "4uLU6hMCjMI75M1A2tKUQC";

fn group() -> GroupConfig {
    GroupConfig::load(&fixtures_dir().join("group.toml")).unwrap()
}

/// One history entry of a music play of `uri`.
fn entry(ts: &str, uri: &str) -> String {
    format!(
        r#"{{"ts":"{ts}","ms_played":180000,"master_metadata_track_name":"Song",
        "master_metadata_album_artist_name":"Band","master_metadata_album_album_name":"Album",
        "spotify_track_uri":"{uri}","ip_addr":"203.0.113.7","incognito_mode":false}}"#
    )
}

/// A zip of `(name, bytes)` entries, deflated or stored.
fn zip_of(entries: impl IntoIterator<Item = (String, Vec<u8>)>, deflate: bool) -> Vec<u8> {
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .large_file(false);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        writer.start_file(name, options).unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn audio(n: usize) -> String {
    format!("Spotify Extended Streaming History/Streaming_History_Audio_2024_{n}.json")
}

/// Everything in storage, key and bytes.
async fn snapshot(storage: &Storage) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for key in storage.list("").await.unwrap() {
        out.push((key.clone(), storage.read_all(&key).await.unwrap().to_vec()));
    }
    out.sort();
    out
}

/// A storage holding one earlier import of the member, and the path of a file that gave it.
async fn storage_with_an_earlier_import(dir: &Path) -> Storage {
    let storage = Storage::local(dir.join("storage"));
    let earlier = dir.join("Streaming_History_Audio_2023_0.json");
    std::fs::write(
        &earlier,
        format!(
            "[{}]",
            entry("2023-05-01T10:00:00Z", &format!("spotify:track:{TRACK}"))
        ),
    )
    .unwrap();
    import(&storage, &group(), MEMBER, &[earlier], Utc::now())
        .await
        .unwrap();
    storage
}

async fn refused(storage: &Storage, path: PathBuf) -> String {
    let before = snapshot(storage).await;
    let err = import(storage, &group(), MEMBER, &[path], Utc::now())
        .await
        .expect_err("the import is refused");
    assert_eq!(
        snapshot(storage).await,
        before,
        "storage unchanged by a refused import"
    );
    format!("{err:#}")
}

#[tokio::test]
async fn a_zip_that_expands_past_the_cap_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_with_an_earlier_import(dir.path()).await;
    // A good file first, then one entry of spaces one byte over the cap: a few hundred KiB zipped.
    let good = format!(
        "[{}]",
        entry("2024-01-01T10:00:00Z", &format!("spotify:track:{TRACK}"))
    );
    let mut bomb = vec![b' '; MAX_FILE_BYTES as usize + 1];
    bomb[0] = b'[';
    let bytes = zip_of([(audio(0), good.into_bytes()), (audio(1), bomb)], true);
    assert!(bytes.len() < 1024 * 1024, "{} bytes zipped", bytes.len());
    let path = dir.path().join("my_spotify_data.zip");
    std::fs::write(&path, &bytes).unwrap();
    let err = refused(&storage, path.clone()).await;
    assert!(
        err.contains("Streaming_History_Audio_2024_1.json") && err.contains("declares"),
        "{err}"
    );
    assert!(err.contains(&MAX_FILE_BYTES.to_string()), "{err}");

    // The same zip lying about the entry's size: read through the limit, refused all the same.
    let mut lying = bytes;
    let declared = (MAX_FILE_BYTES as u32 + 1).to_le_bytes();
    let small = 1000u32.to_le_bytes();
    let mut patched = 0;
    for at in 0..lying.len().saturating_sub(4) {
        if lying[at..at + 4] == declared {
            lying[at..at + 4].copy_from_slice(&small);
            patched += 1;
        }
    }
    assert!(
        patched >= 2,
        "the local and central headers declare the size"
    );
    std::fs::write(&path, &lying).unwrap();
    let err = refused(&storage, path).await;
    assert!(err.contains("Streaming_History_Audio_2024_1.json"), "{err}");
}

#[tokio::test]
async fn a_zip_with_too_many_entries_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_with_an_earlier_import(dir.path()).await;
    let path = dir.path().join("my_spotify_data.zip");
    let entries = (0..=MAX_ZIP_ENTRIES).map(|n| (format!("junk/{n}"), Vec::new()));
    std::fs::write(&path, zip_of(entries, false)).unwrap();
    let err = refused(&storage, path).await;
    assert!(
        err.contains(&format!("{} entries", MAX_ZIP_ENTRIES + 1))
            && err.contains("my_spotify_data.zip"),
        "{err}"
    );
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds on the CPU first).
/// `#[tokio::test]` runs the import on the test's own thread, so unlike wall time this does not grow
/// when the other tests (or other test binaries) keep the machine's cores busy.
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let nanos: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(nanos)
}

/// The CPU time to check (dry run) a zip of `n` one-play history files.
async fn time_to_check(dir: &Path, n: usize) -> Duration {
    let path = dir.join(format!("export-{n}.zip"));
    let entries = (0..n).map(|i| {
        let ts = format!(
            "2024-01-01T{:02}:{:02}:{:02}Z",
            i / 3600 % 24,
            i / 60 % 60,
            i % 60
        );
        (
            audio(i),
            format!("[{}]", entry(&ts, &format!("spotify:track:{TRACK}"))).into_bytes(),
        )
    });
    std::fs::write(&path, zip_of(entries, false)).unwrap();
    let storage = Storage::local(dir.join(format!("storage-{n}")));
    let started = thread_cpu_time();
    let report = import_with(&storage, &group(), MEMBER, &[path], Utc::now(), true)
        .await
        .unwrap();
    let took = thread_cpu_time() - started;
    assert_eq!(report.files_read, n);
    assert_eq!(report.files_new, n);
    assert!(
        storage.list("").await.unwrap().is_empty(),
        "a dry run stores nothing"
    );
    took
}

#[tokio::test]
async fn a_zip_of_twenty_thousand_files_is_read_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    // The better of two runs each, in the thread's CPU time: this machine is shared with other tests.
    let ten = time_to_check(dir.path(), 10_000)
        .await
        .min(time_to_check(dir.path(), 10_000).await);
    let twenty = time_to_check(dir.path(), 20_000)
        .await
        .min(time_to_check(dir.path(), 20_000).await);
    // Reading the index once per file made this quadratic (4× for twice the files).
    let ratio = twenty.as_secs_f64() / ten.as_secs_f64();
    assert!(ratio < 3.0, "10k: {ten:?}, 20k: {twenty:?} ({ratio:.1}×)");
}

#[tokio::test]
async fn a_track_id_that_is_no_spotify_id_is_set_aside_and_never_a_play() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage"));
    let file = dir.path().join("Streaming_History_Audio_2024_0.json");
    let entries = [
        entry("2024-02-01T10:00:00Z", &format!("spotify:track:{TRACK}")),
        entry("2024-02-01T10:05:00Z", "spotify:track:../me?x="),
        entry(
            "2024-02-01T10:10:00Z",
            "spotify:track:4uLU6hMCjMI75M1A2tKU/C",
        ),
    ];
    std::fs::write(&file, format!("[{}]", entries.join(","))).unwrap();
    let report = import(&storage, &group(), MEMBER, &[file], Utc::now())
        .await
        .unwrap();
    assert_eq!(report.state.plays, 1);
    assert_eq!(
        report.state.set_aside.get(Disposition::InvalidUri.as_str()),
        Some(&2)
    );
    assert_eq!(report.state.tracks, 1);
    // The converter makes no record of them, so nothing downstream (enrichment's request paths
    // included) ever sees them.
    let converter = json_converter::Converter::new(RawKind::StreamingHistory, group()).unwrap();
    json_converter::convert_storage(
        &storage,
        &converter,
        &layout::raw_prefix(RawKind::StreamingHistory),
        false,
        false,
    )
    .await
    .unwrap();
    let mut records = 0;
    for key in storage
        .list(&layout::converted_prefix(RawKind::StreamingHistory))
        .await
        .unwrap()
    {
        let text = String::from_utf8(storage.read_all(&key).await.unwrap().to_vec()).unwrap();
        assert!(!text.contains("../me") && !text.contains("KU/C"), "{text}");
        records += text.lines().count();
    }
    assert_eq!(records, 1);
}

#[tokio::test]
async fn a_malformed_third_file_leaves_nothing_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_with_an_earlier_import(dir.path()).await;
    let export = dir.path().join("Spotify Extended Streaming History");
    std::fs::create_dir(&export).unwrap();
    for n in 0..2 {
        std::fs::write(
            export.join(format!("Streaming_History_Audio_2024_{n}.json")),
            format!(
                "[{}]",
                entry(
                    &format!("2024-03-0{}T10:00:00Z", n + 1),
                    &format!("spotify:track:{TRACK}")
                )
            ),
        )
        .unwrap();
    }
    std::fs::write(
        export.join("Streaming_History_Audio_2024_2.json"),
        "[\n  {\"ts\": \"2024-03-05T10:00:00Z\",\n   \"ms_played\": \"long\"}\n]",
    )
    .unwrap();
    let err = refused(&storage, export).await;
    assert!(
        err.contains("Streaming_History_Audio_2024_2.json")
            && err.contains("line 3")
            && err.contains("column")
            && err.contains("ms_played"),
        "{err}"
    );
    let prefix = layout::history_prefix(MEMBER);
    assert_eq!(
        storage.list(&prefix).await.unwrap().len(),
        1,
        "only the earlier import's file"
    );
}

// ---- Issue 37: imports keep only what is real.

#[tokio::test]
async fn a_symlink_in_a_folder_import_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage"));
    let export = dir.path().join("Spotify Extended Streaming History");
    std::fs::create_dir(&export).unwrap();
    std::fs::write(
        export.join("Streaming_History_Audio_2024_0.json"),
        format!(
            "[{}]",
            entry("2024-02-01T10:00:00Z", &format!("spotify:track:{TRACK}"))
        ),
    )
    .unwrap();
    // What an `unzip` of a crafted zip restores: a link to a JSON file outside the folder.
    let outside = dir.path().join("someone_else.json");
    std::fs::write(
        &outside,
        format!(
            "[{}]",
            entry("2024-03-01T10:00:00Z", &format!("spotify:track:{TRACK}"))
        ),
    )
    .unwrap();
    let link = export.join("Streaming_History_Audio_2024_1.json");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let err = import(&storage, &group(), MEMBER, &[export.clone()], Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("symbolic link") && err.contains("Streaming_History_Audio_2024_1.json"),
        "{err}"
    );
    assert!(snapshot(&storage).await.is_empty(), "nothing stored");
    // A linked folder is refused the same way.
    std::fs::remove_file(&link).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, export.join("more")).unwrap();
    let err = import(&storage, &group(), MEMBER, &[export], Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("symbolic link") && err.contains("more"),
        "{err}"
    );
    assert!(snapshot(&storage).await.is_empty());
}

#[tokio::test]
async fn impossible_dates_are_set_aside_and_only_used_entries_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage"));
    let file = dir.path().join("Streaming_History_Audio_2024_0.json");
    let uri = format!("spotify:track:{TRACK}");
    let incognito = entry("2024-02-01T11:00:00Z", &uri)
        .replace("\"incognito_mode\":false", "\"incognito_mode\":true");
    let short = entry("2024-02-01T12:00:00Z", &uri).replace("180000", "1000");
    let entries = [
        entry("2024-02-01T10:00:00Z", &uri),
        entry("0001-01-01T00:00:00Z", &uri),
        entry("2999-12-31T23:59:59Z", &uri),
        entry("2007-12-31T23:59:59Z", &uri),
        incognito,
        short,
    ];
    std::fs::write(&file, format!("[{}]", entries.join(","))).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2024-11-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let report = import(&storage, &group(), MEMBER, &[file.clone()], now)
        .await
        .unwrap();
    assert_eq!(report.state.plays, 1);
    assert_eq!(report.state.set_aside.get("out_of_range"), Some(&3));
    assert_eq!(report.state.set_aside.get("incognito"), Some(&1));
    assert_eq!(report.state.set_aside.get("short"), Some(&1));
    assert_eq!(report.state.first_play, report.state.last_play);
    // The stored file holds the one play: no incognito, short or impossible entry.
    let keys = storage.list(&layout::history_prefix(MEMBER)).await.unwrap();
    assert_eq!(keys.len(), 1);
    let stored: Vec<serde_json::Value> =
        serde_json::from_slice(&storage.read_all(&keys[0]).await.unwrap()).unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["ts"], "2024-02-01T10:00:00Z");
    // Imported again: nothing changes, the counts included.
    let again = import(&storage, &group(), MEMBER, &[file], now)
        .await
        .unwrap();
    assert_eq!(again.files_new, 0);
    assert_eq!(again.state.set_aside, report.state.set_aside);
    assert_eq!(again.state.plays, 1);
}

#[tokio::test]
async fn an_export_of_another_account_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::local(dir.path().join("storage"));
    let file = dir.path().join("Streaming_History_Audio_2024_0.json");
    let uri = format!("spotify:track:{TRACK}");
    let theirs = entry("2024-02-01T10:00:00Z", &uri)
        .replace("{\"ts\"", "{\"username\":\"someone.else\",\"ts\"");
    std::fs::write(&file, format!("[{theirs}]")).unwrap();
    let err = import(&storage, &group(), MEMBER, &[file.clone()], Utc::now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("someone.else") && err.contains("--force"),
        "{err}"
    );
    assert!(snapshot(&storage).await.is_empty());
    let options = data_fetcher::import::ImportOptions {
        force: true,
        ..Default::default()
    };
    let report = data_fetcher::import::import_with_options(
        &storage,
        &group(),
        MEMBER,
        &[file.clone()],
        Utc::now(),
        options,
    )
    .await
    .unwrap();
    assert_eq!(report.state.plays, 1);
    // The username is never stored.
    for (_, bytes) in snapshot(&storage).await {
        assert!(!String::from_utf8_lossy(&bytes).contains("someone.else"));
    }
    // The member's own name is fine.
    let own = entry("2024-02-01T10:00:00Z", &uri)
        .replace("{\"ts\"", &format!("{{\"username\":\"{MEMBER}\",\"ts\""));
    std::fs::write(&file, format!("[{own}]")).unwrap();
    assert!(
        import(&storage, &group(), MEMBER, &[file], Utc::now())
            .await
            .is_ok()
    );
}
