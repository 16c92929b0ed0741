//! `members export --format listenbrainz`: a member's plays (fetched and imported) as ListenBrainz
//! listens, so that they can take their history there.
//!
//! One listen per line, in the shape of ListenBrainz's JSON documentation
//! (<https://listenbrainz.readthedocs.io/en/latest/users/json.html>) and of the checks its API makes of
//! every submitted listen (`validate_listen` in listenbrainz-server's
//! `listenbrainz/webserver/views/api_tools.py`):
//!
//! - exactly two top-level keys, `listened_at` (whole seconds since the epoch, not before
//!   [`LISTEN_MINIMUM_TS`]) and `track_metadata`;
//! - `track_metadata.artist_name` and `track_name`, non-empty strings (a play without them, such as a
//!   local file with no artist, is skipped and counted); `release_name` when the album has a name;
//! - `additional_info`: `duration_ms` (a positive whole number, at most [`MAX_DURATION_MS`]; never with
//!   `duration`), the Spotify links (`spotify_id`, `spotify_album_id`, `spotify_artist_ids`),
//!   `artist_names`, `music_service`, `submission_client` and its version, and `source` (Earshot's: `api`
//!   or `history`). No MusicBrainz ids and no tags: Earshot has none;
//! - at most [`MAX_LISTEN_SIZE`] bytes a listen: a longer one loses its artist lists, and is skipped
//!   when still too long.
//!
//! ListenBrainz takes at most [`MAX_LISTENS_PER_REQUEST`] listens per `import` request: a client
//! submitting the file sends it in slices of that many lines.

use std::io::Write;

use anyhow::{Context as _, Result};
use futures::TryStreamExt as _;
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Map, Value, json};

use earshot_core::mongo;
use earshot_state::Stores;

/// The most bytes a listen may take (`MAX_LISTEN_SIZE`).
pub const MAX_LISTEN_SIZE: usize = 10_240;
/// The earliest `listened_at` accepted (`LISTEN_MINIMUM_TS`: 2002-10-01).
pub const LISTEN_MINIMUM_TS: i64 = 1_033_430_400;
/// The longest `duration_ms` accepted (`MAX_DURATION_MS_LIMIT`: 24 days).
pub const MAX_DURATION_MS: u64 = 2_073_600_000;
/// The most listens one `import` request takes (`MAX_LISTENS_PER_REQUEST`).
pub const MAX_LISTENS_PER_REQUEST: usize = 1_000;

/// The music service every play comes from, as ListenBrainz names it (a domain).
const MUSIC_SERVICE: &str = "spotify.com";
/// This export, as ListenBrainz's `submission_client`.
const SUBMISSION_CLIENT: &str = "Earshot";

/// Why a play was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// No track name.
    NoTrackName,
    /// No artist name (a local file Spotify knows no artist of).
    NoArtist,
    /// Played before ListenBrainz's earliest accepted time.
    TooEarly,
    /// Longer than [`MAX_LISTEN_SIZE`] even without its artist lists.
    TooLarge,
}

impl Skip {
    /// The reason, for a person.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::NoTrackName => "without a track name",
            Skip::NoArtist => "without an artist name",
            Skip::TooEarly => "played before 2002-10-01 (ListenBrainz's earliest)",
            Skip::TooLarge => "over 10,240 bytes even without their artist lists",
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenCounts {
    /// Listens written.
    pub listens: u64,
    /// Plays left out, by reason.
    pub skipped: std::collections::BTreeMap<Skip, u64>,
}

impl ListenCounts {
    /// A line for the terminal.
    pub fn summary(&self, member: &str, output: &std::path::Path) -> String {
        let mut line = format!(
            "Exported `{member}`'s plays to {} as {} ListenBrainz listens (JSON Lines; submit them in slices of at most {MAX_LISTENS_PER_REQUEST}).",
            output.display(),
            self.listens
        );
        if !self.skipped.is_empty() {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(skip, n)| format!("{n} {}", skip.reason()))
                .collect();
            line.push_str(&format!(" Left out: {}.", reasons.join(", ")));
        }
        line
    }
}

/// One stored play (a `rawdata_recentlyplayed` document) as a ListenBrainz listen, or why it cannot be
/// one.
pub fn listen(play: &Document) -> std::result::Result<Value, Skip> {
    let text = |field: &str| {
        play.get_str(field)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let track_name = text("track_name").ok_or(Skip::NoTrackName)?;
    let artist_names: Vec<&str> = play
        .get_array("artist_names")
        .map(|names| {
            names
                .iter()
                .filter_map(Bson::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if artist_names.is_empty() {
        return Err(Skip::NoArtist);
    }
    let listened_at = play
        .get_datetime("played_at")
        .map(|at| at.timestamp_millis().div_euclid(1000))
        .map_err(|_| Skip::TooEarly)?;
    if listened_at < LISTEN_MINIMUM_TS {
        return Err(Skip::TooEarly);
    }
    let mut info = Map::new();
    if let Some(ms) = play
        .get("duration_ms")
        .and_then(mongo::bson_u64)
        .filter(|ms| (1..=MAX_DURATION_MS).contains(ms))
    {
        info.insert("duration_ms".into(), json!(ms));
    }
    if let Some(id) = text("track_id") {
        info.insert("spotify_id".into(), json!(spotify_url("track", id)));
    }
    if let Some(id) = text("album_id") {
        info.insert("spotify_album_id".into(), json!(spotify_url("album", id)));
    }
    let artist_ids: Vec<String> = play
        .get_array("artist_ids")
        .map(|ids| {
            ids.iter()
                .filter_map(Bson::as_str)
                .map(|id| spotify_url("artist", id))
                .collect()
        })
        .unwrap_or_default();
    if !artist_ids.is_empty() {
        info.insert("spotify_artist_ids".into(), json!(artist_ids));
    }
    info.insert("artist_names".into(), json!(artist_names));
    info.insert("music_service".into(), json!(MUSIC_SERVICE));
    info.insert("submission_client".into(), json!(SUBMISSION_CLIENT));
    info.insert(
        "submission_client_version".into(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    if let Some(source) = text("source") {
        info.insert("source".into(), json!(source));
    }
    let mut metadata = Map::new();
    metadata.insert("artist_name".into(), json!(artist_names.join(", ")));
    metadata.insert("track_name".into(), json!(track_name));
    if let Some(album) = text("album_name") {
        metadata.insert("release_name".into(), json!(album));
    }
    metadata.insert("additional_info".into(), Value::Object(info));
    let mut listen = json!({"listened_at": listened_at, "track_metadata": metadata});
    if size(&listen) > MAX_LISTEN_SIZE {
        let info = &mut listen["track_metadata"]["additional_info"];
        if let Some(info) = info.as_object_mut() {
            info.remove("artist_names");
            info.remove("spotify_artist_ids");
        }
        if size(&listen) > MAX_LISTEN_SIZE {
            return Err(Skip::TooLarge);
        }
    }
    Ok(listen)
}

/// A Spotify object's web link, as ListenBrainz's `spotify_id` takes it.
fn spotify_url(kind: &str, id: &str) -> String {
    format!("https://open.spotify.com/{kind}/{id}")
}

/// A listen's size as submitted: its compact JSON, in bytes.
pub fn size(listen: &Value) -> usize {
    serde_json::to_vec(listen).map_or(usize::MAX, |b| b.len())
}

/// Write `member`'s plays, oldest first, to `out` as ListenBrainz listens, one per line.
pub async fn write_listens(
    stores: &Stores,
    member: &str,
    out: &mut impl Write,
) -> Result<ListenCounts> {
    let mut cursor = stores
        .db
        .collection::<Document>(mongo::RAW_RECENTLY_PLAYED)
        .find(doc! {"user_id": member})
        .sort(doc! {"played_at": 1, "_id": 1})
        .await
        .with_context(|| format!("reading `{}`", mongo::RAW_RECENTLY_PLAYED))?;
    let mut counts = ListenCounts::default();
    while let Some(play) = cursor.try_next().await? {
        match listen(&play) {
            Ok(listen) => {
                serde_json::to_writer(&mut *out, &listen)?;
                out.write_all(b"\n")?;
                counts.listens += 1;
            }
            Err(skip) => *counts.skipped.entry(skip).or_default() += 1,
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::DateTime as BsonDateTime;

    use super::*;

    fn play() -> Document {
        doc! {
            "played_at": BsonDateTime::from_millis(1_709_316_900_500),
            "track_name": "Song",
            "track_id": "t1",
            "album_name": "Album",
            "album_id": "a1",
            "artist_names": ["One", "Two"],
            "artist_ids": ["r1", "r2"],
            "duration_ms": 201_000_i64,
            "source": "api",
        }
    }

    #[test]
    fn a_play_is_a_listen_of_the_documented_shape() {
        let listen = listen(&play()).unwrap();
        assert_eq!(listen["listened_at"], 1_709_316_900);
        let metadata = &listen["track_metadata"];
        assert_eq!(metadata["artist_name"], "One, Two");
        assert_eq!(metadata["track_name"], "Song");
        assert_eq!(metadata["release_name"], "Album");
        let info = &metadata["additional_info"];
        assert_eq!(info["duration_ms"], 201_000);
        assert_eq!(info["spotify_id"], "https://open.spotify.com/track/t1");
        assert_eq!(
            info["spotify_album_id"],
            "https://open.spotify.com/album/a1"
        );
        assert_eq!(
            info["spotify_artist_ids"][1],
            "https://open.spotify.com/artist/r2"
        );
        assert_eq!(info["source"], "api");
        assert_eq!(listen.as_object().unwrap().len(), 2);
    }

    #[test]
    fn what_listenbrainz_refuses_is_left_out_or_dropped() {
        let mut p = play();
        p.insert("artist_names", Bson::Array(vec![]));
        assert_eq!(listen(&p), Err(Skip::NoArtist));
        let mut p = play();
        p.insert("track_name", "  ");
        assert_eq!(listen(&p), Err(Skip::NoTrackName));
        let mut p = play();
        p.insert("played_at", BsonDateTime::from_millis(1_000_000_000_000));
        assert_eq!(listen(&p), Err(Skip::TooEarly));
        // A zero or absurd duration is left out, the listen kept.
        for ms in [0_i64, 3_000_000_000] {
            let mut p = play();
            p.insert("duration_ms", ms);
            let listen = listen(&p).unwrap();
            assert!(
                listen["track_metadata"]["additional_info"]
                    .get("duration_ms")
                    .is_none()
            );
        }
        // Too long with its artist lists: kept without them, within the limit.
        let mut p = play();
        let many: Vec<Bson> = (0..400)
            .map(|i| Bson::String(format!("artist-{i:04}-xxxxxxxx")))
            .collect();
        p.insert("artist_ids", Bson::Array(many.clone()));
        p.insert("artist_names", Bson::Array(many[..3].to_vec()));
        let kept = listen(&p).unwrap();
        assert!(size(&kept) <= MAX_LISTEN_SIZE);
        assert!(
            kept["track_metadata"]["additional_info"]
                .get("spotify_artist_ids")
                .is_none()
        );
        // Too long whatever is dropped: left out.
        let mut p = play();
        p.insert("track_name", "x".repeat(MAX_LISTEN_SIZE));
        assert_eq!(listen(&p), Err(Skip::TooLarge));
    }
}
