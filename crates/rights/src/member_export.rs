//! `members export`: everything Earshot holds about one member, as a zip of open formats.
//!
//! The zip is written to a temporary file beside the output and renamed into place when complete (or
//! copied to stdout for `-`), so a failed export leaves no half-written zip behind.

use std::collections::BTreeMap;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use earshot_core::layout::{self, RawKind};
use earshot_core::mongo;
use futures::TryStreamExt as _;
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Value, json};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use earshot_state::Stores;

use crate::analytics_rows::{analytics_collections, names_member, own_side};

/// What an export wrote: lines (or bytes, for stored files) per zip entry.
#[derive(Debug, Default, Clone)]
pub struct ExportCounts {
    /// Zip entry → records written (JSON Lines) or 1 (a stored file).
    pub files: BTreeMap<String, u64>,
}

impl ExportCounts {
    /// Records in one JSON Lines entry (0 when absent).
    pub fn records(&self, entry: &str) -> u64 {
        self.files.get(entry).copied().unwrap_or(0)
    }

    /// A line for the terminal.
    pub fn summary(&self, member: &str, output: &Path) -> String {
        let stored = self
            .files
            .keys()
            .filter(|k| k.starts_with("storage/"))
            .count();
        format!(
            "Exported `{member}` to {}: {} plays, {} top tracks, {} top artists, {} analytics rows, {stored} stored files.",
            output.display(),
            self.records(PLAYS),
            self.records(TOP_TRACKS),
            self.records(TOP_ARTISTS),
            self.files
                .iter()
                .filter(|(k, _)| k.starts_with("analytics/"))
                .map(|(_, n)| n)
                .sum::<u64>(),
        )
    }
}

/// The member's plays, in the converted record shape.
pub const PLAYS: &str = "plays.jsonl";
/// The member's top tracks.
pub const TOP_TRACKS: &str = "top_tracks.jsonl";
/// The member's top artists.
pub const TOP_ARTISTS: &str = "top_artists.jsonl";
/// The member's podcast episodes and audiobook chapters (imported).
pub const SPOKEN: &str = "spoken.jsonl";

const README: &str = r#"# Your data in Earshot

Earshot is the tool your friend group uses to share and analyse its Spotify listening. This archive
holds everything it keeps about you, in open formats (JSON Lines: one JSON object per line).

| file | what it holds |
|---|---|
| `member.json` | your id and name in the group, when this archive was made, and how many records each file holds |
| `plays.jsonl` | every play Earshot stored for you (fetched from Spotify's recently played, imported from your Extended Streaming History, sent by your ListenBrainz client or imported from another service: `source`), one per line, oldest first: track, artists, album, duration, `played_at` (UTC) and `played_at_local` (the group's time zone) |
| `top_tracks.jsonl` | your top tracks as Spotify listed them on each day Earshot asked, per time range, with their rank |
| `top_artists.jsonl` | your top artists, the same way |
| `spoken.jsonl` | the podcast episodes and audiobook chapters of your imported streaming history (30 s or more, not in a private session), one per line, oldest first: show or book, episode or chapter, `ms_played`, `played_at` and `played_at_local` |
| `derived/member.json` | your totals as the group's `members` collection holds them |
| `analytics/<metric>.jsonl` | your rows of each analytics result, from every stored run (`run`). A pairwise row (taste match, shared songs) names the friend it pairs you with, and nothing more about them |
| `state/fetch_state.json` | Earshot's bookkeeping for fetching your plays: when you authorised it, the cursor, gaps it noticed |
| `state/import.json` | the progress of your streaming-history import, when you imported one |
| `state/listen_token.json` | the SHA-256 of your listen token (never the token) and when it was made, when you have one |
| `state/now_playing.json` | what your ListenBrainz client last said was playing, until it expires |
| `storage/raw/…` | the Spotify API pages fetched for you, the streaming-history files you imported (stripped of IP address, country, platform and user agent), and the listens your ListenBrainz client sent or you imported from another service, exactly as stored |
| `storage/converted/…` | the same pages converted to JSON Lines, as stored |

Not included, on purpose: your Spotify tokens and your listen token (they are secrets, and only let Earshot read your
listening), other members' data, and public track metadata Earshot looked up on Spotify.

To have Earshot erase everything it holds about you, ask the group's admin to remove you from the
group config and run `members erase --member <your id>`.
"#;

/// Write one member's export to `output` (`-`: stdout).
pub async fn export_to(stores: &Stores, member: &str, output: &Path) -> Result<ExportCounts> {
    let temp = temp_beside(output)?;
    let counts = {
        let file = temp.reopen().context("opening the temporary file")?;
        let mut zip = ZipWriter::new(BufWriter::new(file));
        let counts = write_export(stores, member, &mut zip).await?;
        zip.finish()
            .context("finishing the zip")?
            .flush()
            .context("writing the zip")?;
        counts
    };
    deliver(temp, output)?;
    Ok(counts)
}

/// Write one member's plays to `output` (`-`: stdout) as ListenBrainz listens
/// ([`crate::listenbrainz`]).
pub async fn export_listens_to(
    stores: &Stores,
    member: &str,
    output: &Path,
) -> Result<crate::listenbrainz::ListenCounts> {
    let temp = temp_beside(output)?;
    let counts = {
        let mut out = BufWriter::new(temp.reopen().context("opening the temporary file")?);
        let counts = crate::listenbrainz::write_listens(stores, member, &mut out).await?;
        out.flush().context("writing the listens")?;
        counts
    };
    if counts.listens == 0 && counts.skipped.is_empty() {
        bail!("Earshot holds no plays of member `{member}`");
    }
    deliver(temp, output)?;
    Ok(counts)
}

/// A temporary file beside `output` (in the temporary folder for `-`), renamed into place by
/// [`deliver`] once whole.
fn temp_beside(output: &Path) -> Result<tempfile::NamedTempFile> {
    let to_stdout = output.as_os_str() == "-";
    let folder = match output.parent() {
        Some(parent) if !to_stdout && !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ if to_stdout => std::env::temp_dir(),
        _ => std::env::current_dir()?,
    };
    tempfile::NamedTempFile::new_in(&folder)
        .with_context(|| format!("creating a temporary file in `{}`", folder.display()))
}

/// Move a complete `temp` to `output`, or copy it to stdout for `-`.
fn deliver(temp: tempfile::NamedTempFile, output: &Path) -> Result<()> {
    if output.as_os_str() == "-" {
        let mut file = temp.reopen()?;
        file.rewind()?;
        std::io::copy(&mut file, &mut std::io::stdout().lock()).context("writing to stdout")?;
    } else {
        temp.persist(output)
            .with_context(|| format!("writing `{}`", output.display()))?;
    }
    Ok(())
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true)
}

/// Every entry of the export, into `zip`.
pub async fn write_export<W: Write + Seek>(
    stores: &Stores,
    member: &str,
    zip: &mut ZipWriter<W>,
) -> Result<ExportCounts> {
    let mut counts = ExportCounts::default();
    for (entry, collection) in [
        (PLAYS, mongo::RAW_RECENTLY_PLAYED),
        (TOP_TRACKS, mongo::RAW_TOP_TRACKS),
        (TOP_ARTISTS, mongo::RAW_TOP_ARTISTS),
        (SPOKEN, mongo::RAW_SPOKEN),
    ] {
        let sort = if [mongo::RAW_RECENTLY_PLAYED, mongo::RAW_SPOKEN].contains(&collection) {
            doc! {"played_at": 1, "_id": 1}
        } else {
            doc! {"_id": 1}
        };
        let cursor = stores
            .db
            .collection::<Document>(collection)
            .find(doc! {"user_id": member})
            .sort(sort)
            .await
            .with_context(|| format!("reading `{collection}`"))?;
        let n = write_lines(zip, entry, true, cursor, record_shape).await?;
        counts.files.insert(entry.to_string(), n);
    }

    for name in analytics_collections(&stores.db).await? {
        let cursor = stores
            .db
            .collection::<Document>(&name)
            .find(names_member(member, false))
            .sort(doc! {"_id": 1})
            .await
            .with_context(|| format!("reading `{name}`"))?;
        let metric = name.trim_start_matches(mongo::ANALYTICS_PREFIX);
        let entry = format!("analytics/{metric}.jsonl");
        let n = write_lines(zip, &entry, false, cursor, |row| {
            own_side(metric, row, member)
        })
        .await?;
        if n > 0 {
            counts.files.insert(entry, n);
        }
    }

    write_stored(stores, member, zip, &mut counts).await?;

    if counts.files.values().all(|n| *n == 0) {
        bail!(
            "Earshot holds nothing about member `{member}` (no plays, top items, analytics rows, state or stored files)"
        );
    }
    // The config's name; the one they signed in with only when the config no longer lists them.
    let display_name = match stores.group.member(member) {
        Some(configured) => Some(configured.display_name.clone()),
        None => earshot_state::fetch_state::load(&stores.storage, member)
            .await?
            .map(|s| s.display_name),
    };
    zip.start_file("member.json", options())?;
    zip.write_all(&serde_json::to_vec_pretty(&json!({
        "member": member,
        "display_name": display_name,
        "exported_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "files": counts.files,
        "raw_kinds": RawKind::ALL.iter().map(|k| k.folder()).collect::<Vec<_>>(),
    }))?)?;
    zip.start_file("README.md", options())?;
    zip.write_all(README.as_bytes())?;
    Ok(counts)
}

/// The member's derived totals, their state objects and every stored object of theirs, into `zip`.
async fn write_stored<W: Write + Seek>(
    stores: &Stores,
    member: &str,
    zip: &mut ZipWriter<W>,
    counts: &mut ExportCounts,
) -> Result<()> {
    if let Some(totals) = stores
        .db
        .collection::<Document>(mongo::MEMBERS)
        .find_one(doc! {"_id": member})
        .await
        .with_context(|| format!("reading `{}`", mongo::MEMBERS))?
    {
        zip.start_file("derived/member.json", options())?;
        zip.write_all(&serde_json::to_vec_pretty(&json_of(totals))?)?;
        counts.files.insert("derived/member.json".into(), 1);
    }

    for (entry, key) in [
        ("state/fetch_state.json", layout::member_state_key(member)),
        ("state/import.json", layout::import_state_key(member)),
        // What the listen API keeps: the listen token's hash (never the token), and "now playing".
        ("state/listen_token.json", layout::listen_token_key(member)),
        ("state/now_playing.json", layout::now_playing_key(member)),
        // The stall alarm's open incident about them, if any.
        ("state/alarm.json", layout::member_alarm_key(member)),
    ] {
        if stores.storage.exists(&key).await? {
            let bytes = stores.storage.read_all(&key).await?;
            zip.start_file(entry, options())?;
            zip.write_all(&bytes)?;
            counts.files.insert(entry.to_string(), 1);
        }
    }

    for prefix in layout::member_prefixes(member) {
        for key in stores.storage.list(&prefix).await? {
            let bytes = stores.storage.read_all(&key).await?;
            let entry = format!("storage/{key}");
            zip.start_file(entry.as_str(), options())?;
            zip.write_all(&bytes)?;
            counts.files.insert(entry, 1);
        }
    }
    Ok(())
}

/// Write each document of `cursor` (as `shape` makes it) as one JSON line of `entry`; returns the
/// lines written. An empty cursor writes an empty entry when `even_empty`, none otherwise.
async fn write_lines<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    entry: &str,
    even_empty: bool,
    mut cursor: mongodb::Cursor<Document>,
    shape: impl Fn(Document) -> Document,
) -> Result<u64> {
    let mut n = 0u64;
    while let Some(row) = cursor.try_next().await? {
        if n == 0 {
            zip.start_file(entry, options())?;
        }
        let mut line = serde_json::to_vec(&json_of(shape(row)))?;
        line.push(b'\n');
        zip.write_all(&line)?;
        n += 1;
    }
    if n == 0 && even_empty {
        zip.start_file(entry, options())?;
    }
    Ok(n)
}

/// A stored play back in the converted record shape: MongoDB holds `played_at` as a date (so that it
/// sorts and ranges as one), the converted files as RFC 3339 text with milliseconds.
pub fn record_shape(mut row: Document) -> Document {
    if let Ok(at) = row.get_datetime("played_at") {
        let text = earshot_state::roster::rfc3339_millis(*at);
        row.insert("played_at", text);
    }
    row
}

/// A document as plain JSON (strings, numbers, arrays: the converted record shape).
fn json_of(document: Document) -> Value {
    Bson::Document(document).into_relaxed_extjson()
}
