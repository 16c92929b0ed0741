//! `data-fetcher import --format listenbrainz|maloja|csv`: a member's history from another service,
//! once, complete, and stripped to what Earshot uses before anything is written.
//!
//! The formats, each read as its documents describe it:
//! - **`listenbrainz`**: ListenBrainz's export zip (`listens/<year>/<month>.jsonl` inside, or one
//!   `listens.jsonl` at its top as conversion tools write it; `user.json` and the feedback beside them
//!   are not read), a JSON Lines file of listens (the zip's files, what
//!   Earshot's own export writes), or a JSON array of listens (ListenBrainz's older export). A listen is
//!   `{"listened_at": <Unix s>, "track_metadata": {"artist_name", "track_name", "release_name",
//!   "additional_info": {…}, "mbid_mapping": {"recording_mbid"}}}`.
//! - **`maloja`**: Maloja's JSON export (`maloja_export_*.json`: `{"scrobbles": [{"time": <Unix s>,
//!   "track": {"artists": […], "title", "album": {"albumtitle"}, "length": <s>}, "duration": <s>}]}`),
//!   or the bare list of scrobbles.
//! - **`csv`**: a CSV of scrobbles ([`CSV_COLUMNS`]): with a header, as ghan's Last.fm exporter
//!   (`uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid`) and most others write;
//!   or without one, as benjaminbenben's lastfm-to-csv writes (`artist,album,track,date`, the date as
//!   `31 Jan 2021 18:15` in UTC).
//!
//! Every listen is then held to ListenBrainz's own rules ([`earshot_core::listens::validate_listen`]:
//! an artist and a title, a time after 2002-10-01 and not in the future, the size of a listen), so an
//! import and a submission to the listen API are one thing. What Earshot does not use (tags, client
//! names, message ids, the feedback, the user) is dropped; the listens are sorted, repeats kept once,
//! and stored in parts of at most 1,000 (`raw/listens/user=<id>/import-<format>-<hash>.json`, in the
//! shape of a `submit-listens` body). `json-converter listens` turns them into plays, and `data-upload`
//! merges those with the plays Earshot already holds of the same recording within the match tolerance.
//!
//! **Caps and refusals**: a path that is a symlink, or a folder, is refused; a file over
//! [`MAX_FILE_BYTES`] (as the zip declares it or as read), more than [`MAX_TOTAL_BYTES`] read in all,
//! more than [`MAX_ZIP_ENTRIES`] entries in a zip, or more than [`MAX_LISTENS`] listens, stops the
//! import. A bad listen stops it too, naming the file, the line or entry, and ListenBrainz's reason.
//! Nothing is stored until every file has been read and checked: all or nothing. Importing the same
//! file again writes the same parts (their names are their content's hash), so it changes nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use earshot_core::listens::{Listen, ListenType, MAX_LISTENS_PER_REQUEST, validate_listen};
use earshot_core::records::PlaySource;
use earshot_core::{GroupConfig, Storage, layout};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::info;

pub use crate::import::{MAX_FILE_BYTES, MAX_TOTAL_BYTES, MAX_ZIP_ENTRIES};

/// The most listens one import reads (a heavy listener's twenty years is about 300,000).
pub const MAX_LISTENS: usize = 2_000_000;

/// The CSV columns read (header names, case-insensitive; other columns are ignored): the artist, the
/// track, and the time are required.
pub const CSV_COLUMNS: &str = "artist (or artist_name); track (or title, track_name); uts, timestamp \
    or listened_at (Unix seconds), or utc_time, date or time (RFC 3339, `2021-01-31 18:15:00`, or \
    `31 Jan 2021 18:15`, in UTC); optional: album (or release_name), track_mbid (or recording_mbid), \
    isrc, duration_ms";

/// What an import of another service's history reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Spotify's Extended Streaming History (`my_spotify_data.zip`).
    Spotify,
    /// ListenBrainz's export zip, JSON Lines of listens, or a JSON array of them.
    Listenbrainz,
    /// Maloja's JSON export.
    Maloja,
    /// A CSV of scrobbles (Last.fm exporters).
    Csv,
}

impl Format {
    /// The source its plays carry; `None` for Spotify's own history.
    pub fn source(self) -> Option<PlaySource> {
        match self {
            Format::Spotify => None,
            Format::Listenbrainz => Some(PlaySource::Listenbrainz),
            Format::Maloja => Some(PlaySource::Maloja),
            Format::Csv => Some(PlaySource::Csv),
        }
    }
}

/// What an import did, printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrobbleReport {
    /// The member.
    pub member: String,
    /// `listenbrainz`, `maloja` or `csv`.
    pub source: &'static str,
    /// Listens read and kept (repeats once).
    pub listens: usize,
    /// Repeated listens (the same time and recording) left out.
    pub repeats: usize,
    /// Parts stored now.
    pub parts_new: usize,
    /// Parts that were stored already (the same file imported before).
    pub parts_known: usize,
    /// Only checked: nothing stored.
    pub dry_run: bool,
}

/// Import `paths` of `format` (not Spotify's) for `member`; with `dry_run` only read and check.
pub async fn import(
    storage: &Storage,
    group: &GroupConfig,
    member: &str,
    format: Format,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<ScrobbleReport> {
    let source = format
        .source()
        .context("Spotify's history is imported by `import` itself")?;
    let guard = crate::import::begin(storage, group, member).await?;
    let mut reader = Reader {
        format,
        now: now.timestamp(),
        read: 0,
        listens: BTreeMap::new(),
        repeats: 0,
    };
    for path in paths {
        reader.read_path(path)?;
    }
    let parts = parts(&reader.listens, member, source)?;
    let mut report = ScrobbleReport {
        member: member.to_string(),
        source: source.as_str(),
        listens: reader.listens.len(),
        repeats: reader.repeats,
        parts_new: 0,
        parts_known: 0,
        dry_run,
    };
    let mut new = Vec::new();
    for (key, body) in parts {
        if storage.exists(&key).await? {
            report.parts_known += 1;
        } else {
            new.push((key, body));
        }
    }
    report.parts_new = new.len();
    if dry_run || new.is_empty() {
        return Ok(report);
    }
    let keys: Vec<String> = new.iter().map(|(k, _)| k.clone()).collect();
    storage.write_batch(new).await?;
    // An erase begun meanwhile: what this import stored goes (run it again after the erase).
    if let Err(err) = guard.check(true).await {
        for key in &keys {
            storage.delete(key).await?;
        }
        return Err(err.into());
    }
    info!(
        member,
        source = source.as_str(),
        listens = report.listens,
        parts_new = report.parts_new,
        "Imported a history from another service."
    );
    Ok(report)
}

/// The listens read so far, by (time, name key, title, artist): sorted, each once.
struct Reader {
    format: Format,
    now: i64,
    read: u64,
    listens: BTreeMap<(i64, String, String, String), Value>,
    repeats: usize,
}

impl Reader {
    fn read_path(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        if meta.file_type().is_symlink() {
            bail!(
                "`{}` is a symlink: give the file itself (an import never follows links)",
                path.display()
            );
        }
        if meta.is_dir() {
            bail!(
                "`{}` is a folder: give the export's file (a zip, JSON, JSON Lines or CSV)",
                path.display()
            );
        }
        let origin = path.display().to_string();
        let is_zip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip {
            if self.format != Format::Listenbrainz {
                bail!("`{origin}`: a zip is read for `--format listenbrainz` only");
            }
            return self.read_zip(path, &origin);
        }
        let file = std::fs::File::open(path).with_context(|| format!("reading `{origin}`"))?;
        let bytes = self.capped(file, meta.len(), &origin)?;
        self.read_bytes(&bytes, &origin)
    }

    fn read_zip(&mut self, path: &Path, origin: &str) -> Result<()> {
        let file = std::fs::File::open(path).with_context(|| format!("reading `{origin}`"))?;
        let mut zip = zip::ZipArchive::new(file)
            .with_context(|| format!("`{origin}` is not a readable zip"))?;
        if zip.len() > MAX_ZIP_ENTRIES {
            bail!(
                "`{origin}` lists {} entries, over the import's cap of {MAX_ZIP_ENTRIES}: not a ListenBrainz export",
                zip.len()
            );
        }
        let mut found = 0;
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index)?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            let listens = entry.is_file()
                && name.ends_with(".jsonl")
                && (name.starts_with("listens/") || name == "listens.jsonl");
            if !listens {
                continue;
            }
            found += 1;
            let declared = entry.size();
            let within = format!("{origin}: {name}");
            let bytes = self.capped(&mut entry, declared, &within)?;
            self.read_bytes(&bytes, &within)?;
        }
        if found == 0 {
            bail!("`{origin}` holds no `listens/….jsonl` file: not a ListenBrainz export");
        }
        Ok(())
    }

    /// Read all of `from` (declared `size` bytes) within the per-file and total caps.
    fn capped(&mut self, from: impl Read, size: u64, origin: &str) -> Result<Vec<u8>> {
        if size > MAX_FILE_BYTES {
            bail!(
                "`{origin}`: {size} bytes, over the import's cap of {MAX_FILE_BYTES} bytes per file. Nothing was stored."
            );
        }
        let mut bytes = Vec::new();
        from.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading `{origin}`"))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            bail!(
                "`{origin}`: over the import's cap of {MAX_FILE_BYTES} bytes per file. Nothing was stored."
            );
        }
        self.read += bytes.len() as u64;
        if self.read > MAX_TOTAL_BYTES {
            bail!(
                "the import read over its cap of {MAX_TOTAL_BYTES} bytes in all at `{origin}`. Nothing was stored."
            );
        }
        Ok(bytes)
    }

    fn read_bytes(&mut self, bytes: &[u8], origin: &str) -> Result<()> {
        let text =
            std::str::from_utf8(bytes).with_context(|| format!("`{origin}` is not UTF-8 text"))?;
        match self.format {
            Format::Csv => self.read_csv(text, origin),
            Format::Maloja => {
                let data: Value = serde_json::from_str(text)
                    .with_context(|| format!("`{origin}` is not JSON"))?;
                let scrobbles = match &data {
                    Value::Array(list) => list,
                    Value::Object(o) => match o.get("scrobbles") {
                        Some(Value::Array(list)) => list,
                        _ => bail!("`{origin}` has no `scrobbles` list: not a Maloja export"),
                    },
                    _ => bail!("`{origin}` is not a Maloja export (an object with `scrobbles`)"),
                };
                for (i, scrobble) in scrobbles.iter().enumerate() {
                    let at = format!("`{origin}`, scrobble {}", i + 1);
                    self.add(maloja_listen(scrobble), &at)?;
                }
                Ok(())
            }
            Format::Listenbrainz => {
                let trimmed = text.trim_start();
                if trimmed.starts_with('[') {
                    let list: Vec<Value> = serde_json::from_str(text)
                        .with_context(|| format!("`{origin}` is not a JSON array of listens"))?;
                    for (i, listen) in list.into_iter().enumerate() {
                        self.add(
                            listenbrainz_listen(listen),
                            &format!("`{origin}`, listen {}", i + 1),
                        )?;
                    }
                } else {
                    for (i, line) in text.lines().enumerate() {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let at = format!("`{origin}`, line {}", i + 1);
                        let listen: Value = serde_json::from_str(line)
                            .with_context(|| format!("{at}: not JSON"))?;
                        self.add(listenbrainz_listen(listen), &at)?;
                    }
                }
                Ok(())
            }
            Format::Spotify => unreachable!("Spotify's history is imported by `import`"),
        }
    }

    fn read_csv(&mut self, text: &str, origin: &str) -> Result<()> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, first)) = lines.next() else {
            bail!("`{origin}` is empty");
        };
        let first_fields = csv_fields(first);
        let header: Option<Vec<String>> = {
            let names: Vec<String> = first_fields
                .iter()
                .map(|f| f.trim().to_lowercase())
                .collect();
            names
                .iter()
                .any(|n| n == "artist" || n == "artist_name")
                .then_some(names)
        };
        let rows: Vec<(usize, Vec<String>)> = match &header {
            Some(_) => lines.map(|(i, l)| (i + 1, csv_fields(l))).collect(),
            None => std::iter::once((1, first_fields))
                .chain(lines.map(|(i, l)| (i + 1, csv_fields(l))))
                .collect(),
        };
        for (line, row) in rows {
            let at = format!("`{origin}`, line {line}");
            let listen = match &header {
                Some(names) => csv_listen(names, &row),
                None => lastfm_to_csv_listen(&row),
            }
            .map_err(|message| anyhow::anyhow!("{at}: {message}"))?;
            self.add(listen, &at)?;
        }
        Ok(())
    }

    /// Check one listen by ListenBrainz's rules and keep what Earshot uses of it.
    fn add(&mut self, listen: Value, at: &str) -> Result<()> {
        let checked = validate_listen(&listen, ListenType::Import, self.now)
            .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        let key = (
            checked.listened_at.unwrap_or_default(),
            earshot_core::recording::name_key(&checked.artist_name, &checked.track_name)
                .unwrap_or_default(),
            checked.track_name.clone(),
            checked.artist_name.clone(),
        );
        if self.listens.contains_key(&key) {
            self.repeats += 1;
            return Ok(());
        }
        if self.listens.len() >= MAX_LISTENS {
            bail!("{at}: over the import's cap of {MAX_LISTENS} listens. Nothing was stored.");
        }
        self.listens.insert(key, stripped(&checked));
        Ok(())
    }
}

/// A listen as stored: only what the converter reads.
fn stripped(listen: &Listen) -> Value {
    let mut info = Map::new();
    if let Some(ms) = listen.duration_ms {
        info.insert("duration_ms".into(), json!(ms));
    }
    if let Some(isrc) = &listen.isrc {
        info.insert("isrc".into(), json!(isrc));
    }
    if let Some(mbid) = &listen.recording_mbid {
        info.insert("recording_mbid".into(), json!(mbid));
    }
    if let Some(id) = &listen.spotify_track_id {
        info.insert(
            "spotify_id".into(),
            json!(format!("https://open.spotify.com/track/{id}")),
        );
    }
    let mut metadata = Map::new();
    metadata.insert("artist_name".into(), json!(listen.artist_name));
    metadata.insert("track_name".into(), json!(listen.track_name));
    if let Some(release) = &listen.release_name {
        metadata.insert("release_name".into(), json!(release));
    }
    if !info.is_empty() {
        metadata.insert("additional_info".into(), Value::Object(info));
    }
    json!({"listened_at": listen.listened_at, "track_metadata": metadata})
}

/// The stored parts: `submit-listens` bodies of at most [`MAX_LISTENS_PER_REQUEST`] listens, in time
/// order, each named by its content's hash.
fn parts(
    listens: &BTreeMap<(i64, String, String, String), Value>,
    member: &str,
    source: PlaySource,
) -> Result<Vec<(String, Bytes)>> {
    let all: Vec<&Value> = listens.values().collect();
    let mut out = Vec::new();
    for chunk in all.chunks(MAX_LISTENS_PER_REQUEST) {
        let body = serde_json::to_vec(&json!({"listen_type": "import", "payload": chunk}))?;
        let digest = earshot_state::sessions::hex(&Sha256::digest(&body)[..8]);
        out.push((
            layout::listen_import_key(member, source.as_str(), &digest),
            Bytes::from(body),
        ));
    }
    Ok(out)
}

/// A ListenBrainz listen as exported: the recording MBID the mapping found counts as the listen's.
fn listenbrainz_listen(mut listen: Value) -> Value {
    let Some(Value::Object(metadata)) = listen.get_mut("track_metadata") else {
        return listen;
    };
    let mapped = metadata
        .get("mbid_mapping")
        .and_then(|m| m.get("recording_mbid"))
        .cloned();
    metadata.remove("mbid_mapping");
    if let Some(mbid) = mapped {
        let info = metadata
            .entry("additional_info")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(info) = info {
            info.entry("recording_mbid").or_insert(mbid);
        }
    }
    // Only the two keys ListenBrainz allows at the top: the export adds its own (user, ids).
    json!({
        "listened_at": listen.get("listened_at").cloned().unwrap_or(Value::Null),
        "track_metadata": listen.get("track_metadata").cloned().unwrap_or(Value::Null),
    })
}

/// A Maloja scrobble as a listen: the first artist credited (the others are features), the title,
/// the album, and the track's length.
fn maloja_listen(scrobble: &Value) -> Value {
    let track = scrobble.get("track").unwrap_or(scrobble);
    let artists: Vec<&str> = track
        .get("artists")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let album = match track.get("album") {
        Some(Value::Object(album)) => album
            .get("albumtitle")
            .or_else(|| album.get("name"))
            .and_then(Value::as_str),
        Some(Value::String(album)) => Some(album.as_str()),
        _ => None,
    };
    let length = track
        .get("length")
        .or_else(|| scrobble.get("duration"))
        .and_then(Value::as_i64)
        .filter(|s| *s > 0);
    let mut metadata = json!({
        "artist_name": artists.join(", "),
        "track_name": track.get("title").cloned().unwrap_or(Value::Null),
    });
    if let Some(album) = album {
        metadata["release_name"] = json!(album);
    }
    if let Some(length) = length {
        metadata["additional_info"] = json!({"duration_ms": length * 1000});
    }
    json!({"listened_at": scrobble.get("time").cloned().unwrap_or(Value::Null), "track_metadata": metadata})
}

/// A CSV row with a header as a listen.
fn csv_listen(names: &[String], row: &[String]) -> Result<Value, String> {
    let get = |wanted: &[&str]| -> Option<&str> {
        wanted.iter().find_map(|w| {
            names
                .iter()
                .position(|n| n == w)
                .and_then(|i| row.get(i))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        })
    };
    let at = match get(&["uts", "timestamp", "listened_at"]) {
        Some(seconds) => seconds
            .parse::<i64>()
            .map_err(|_| format!("`{seconds}` is not a time in Unix seconds"))?,
        None => {
            let text = get(&["utc_time", "date", "time"]).ok_or(
                "no time: the header has none of uts, timestamp, listened_at, utc_time, date, time",
            )?;
            parse_time(text).ok_or_else(|| format!("`{text}` is not a time this import reads"))?
        }
    };
    let mut info = Map::new();
    if let Some(mbid) = get(&["track_mbid", "recording_mbid"]) {
        info.insert("recording_mbid".into(), json!(mbid));
    }
    if let Some(isrc) = get(&["isrc"]) {
        info.insert("isrc".into(), json!(isrc));
    }
    if let Some(ms) = get(&["duration_ms"]).and_then(|ms| ms.parse::<i64>().ok()) {
        info.insert("duration_ms".into(), json!(ms));
    }
    let mut metadata = json!({
        "artist_name": get(&["artist", "artist_name"]).unwrap_or_default(),
        "track_name": get(&["track", "title", "track_name"]).unwrap_or_default(),
        "additional_info": info,
    });
    if let Some(album) = get(&["album", "release_name"]) {
        metadata["release_name"] = json!(album);
    }
    Ok(json!({"listened_at": at, "track_metadata": metadata}))
}

/// A row of lastfm-to-csv (no header): artist, album, track, date.
fn lastfm_to_csv_listen(row: &[String]) -> Result<Value, String> {
    let [artist, album, track, date] = row else {
        return Err(format!(
            "{} columns: a CSV without a header is read as lastfm-to-csv's artist, album, track, date",
            row.len()
        ));
    };
    let at = parse_time(date.trim())
        .ok_or_else(|| format!("`{date}` is not a time this import reads"))?;
    let mut metadata = json!({"artist_name": artist.trim(), "track_name": track.trim()});
    if !album.trim().is_empty() {
        metadata["release_name"] = json!(album.trim());
    }
    Ok(json!({"listened_at": at, "track_metadata": metadata}))
}

/// A time in UTC: RFC 3339, `2021-01-31 18:15:00`, or `31 Jan 2021 18:15` / `31 Jan 2021, 18:15`.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.timestamp());
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d %b %Y %H:%M",
        "%d %b %Y, %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc().timestamp())
}

/// The fields of one CSV line: commas or semicolons between them, double quotes around a field that
/// holds one (a doubled quote inside is one quote).
fn csv_fields(line: &str) -> Vec<String> {
    let separator = if !line.contains(',') && line.contains(';') {
        ';'
    } else {
        ','
    };
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == separator && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests;
