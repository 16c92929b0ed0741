//! Converted records: the flat rows json-converter writes (one JSON object a line) and data-upload
//! loads into MongoDB.
//!
//! Each record carries its deterministic `_id` (see [`crate::mongo`]), so loading is an upsert and a
//! re-run changes nothing. Times are UTC (`played_at`, RFC 3339 with milliseconds) plus the local time
//! in the group's zone computed with chrono-tz ([`LocalTime`]: `played_at_local`, `local_day`,
//! `local_hour`, `local_weekday`), never a shifted UTC value.
//! Durations keep `duration_ms` and add `duration` as `m:ss`. Markets are dropped.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::listens::Listen;
use crate::spotify::{Image, PlayHistory, Track};
use crate::{mongo, recording};

mod local_time;
mod top;
pub use local_time::{LOCAL_DAY, LOCAL_DAY_NUMBER, LOCAL_HOUR, LOCAL_WEEKDAY, LocalTime};
pub use top::{TopArtistRecord, TopTrackRecord};

/// The track fields every converted record shares. Strings borrow from the page they were read from
/// where no escape forced a copy (`Cow`), so converting a page allocates little beyond the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackFields<'a> {
    /// Spotify track id; null for local files.
    #[serde(borrow)]
    pub track_id: Option<Cow<'a, str>>,
    /// Track name, verbatim.
    #[serde(borrow)]
    pub track_name: Cow<'a, str>,
    /// Text before the first `(`, `[` or `{`, trimmed (see [`clean_track_name`]).
    #[serde(borrow)]
    pub clean_track_name: Cow<'a, str>,
    /// `A, B - clean name`.
    pub artist_song_name: String,
    /// Artist ids in billing order; null for a local file's artists.
    #[serde(borrow)]
    pub artist_ids: Vec<Option<Cow<'a, str>>>,
    /// Artist names, aligned with `artist_ids`.
    #[serde(borrow)]
    pub artist_names: Vec<Cow<'a, str>>,
    /// Artist URLs, aligned with `artist_ids`.
    #[serde(borrow)]
    pub artist_urls: Vec<Option<Cow<'a, str>>>,
    /// Spotify album id; null for local files.
    #[serde(borrow)]
    pub album_id: Option<Cow<'a, str>>,
    /// Album name.
    #[serde(borrow)]
    pub album_name: Cow<'a, str>,
    /// `album`, `single`, `compilation` (lower case).
    #[serde(borrow)]
    pub album_type: Option<Cow<'a, str>>,
    /// As Spotify gives it: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(borrow)]
    pub release_date: Option<Cow<'a, str>>,
    /// Tracks on the album.
    pub total_tracks: Option<u32>,
    /// Length in milliseconds; null for a play imported from the streaming history whose track is
    /// not enriched yet (the export does not say).
    pub duration_ms: Option<u64>,
    /// Length as `m:ss` (`215000` → `3:35`); null when `duration_ms` is.
    pub duration: Option<String>,
    /// 0–100 where Spotify still returned it; null is unknown, never 0.
    pub popularity: Option<u32>,
    /// Explicit lyrics; null when unknown (an imported play not enriched yet).
    pub explicit: Option<bool>,
    /// A local file of the member's.
    pub is_local: bool,
    /// open.spotify.com URL of the track.
    #[serde(borrow)]
    pub track_url: Option<Cow<'a, str>>,
    /// Album cover images.
    #[serde(borrow)]
    pub images: Vec<Image<'a>>,
    /// The recording's ISRC ([`recording::valid_isrc`]): Spotify's `external_ids.isrc`, or a listen's.
    #[serde(default)]
    pub isrc: Option<String>,
    /// The MusicBrainz recording id a listen named.
    #[serde(default)]
    pub recording_mbid: Option<String>,
    /// One recording across services and releases ([`recording::recording_key`]): `isrc:…`, else
    /// `mbid:…`, else `name:<artist> — <title>`; null only for a play without names.
    #[serde(default)]
    pub recording_key: Option<String>,
    /// The `name:` key of the first artist and the title ([`recording::name_key`]), whatever ids the
    /// play has: the metric views resolve a play known by names only to the id a play of the same names
    /// carries, and the upload matches plays from two sources by it.
    #[serde(default)]
    pub name_key: Option<String>,
    /// Each artist's name normalised ([`recording::normalise_artist`]), aligned with `artist_names`:
    /// an artist a play from beyond Spotify credits by name only meets the Spotify artist of the same
    /// key in the metric views.
    #[serde(default)]
    pub artist_keys: Vec<String>,
    /// The play's track as the collections and the snapshot name it: the Spotify track id; else
    /// `local:<track name>` for a local file; else the recording key (a play from beyond Spotify
    /// without a Spotify id, which gets a `Tracks` document of its own). The metric views group these by
    /// recording (earshot-metrics' `views/member_track_plays.sql`).
    #[serde(default)]
    pub track_key: Option<String>,
}

/// The start of a local file's [`TrackFields::track_key`]: `local:<track name>`.
pub const LOCAL_PREFIX: &str = "local:";

impl TrackFields<'_> {
    /// Set the recording keys from the ids and names already on the fields.
    fn with_keys(mut self) -> Self {
        let artist = self.artist_names.first().map_or("", |a| a.as_ref());
        self.name_key = recording::name_key(artist, &self.track_name);
        self.artist_keys = self
            .artist_names
            .iter()
            .map(|name| recording::normalise_artist(name))
            .collect();
        self.recording_key = recording::recording_key(
            self.isrc.as_deref(),
            self.recording_mbid.as_deref(),
            artist,
            &self.track_name,
        );
        // After the recording key, which it falls back to.
        self.track_key = match (&self.track_id, self.is_local) {
            (Some(id), _) => Some(id.to_string()),
            (None, true) => Some(format!("{LOCAL_PREFIX}{}", self.track_name)),
            (None, false) => self.recording_key.clone(),
        };
        self
    }
}

impl<'a> TrackFields<'a> {
    /// Flatten a Spotify track, dropping markets; its strings move into the record.
    pub fn from_track(track: Track<'a>) -> TrackFields<'a> {
        let clean = clean_track_name_of(&track.name);
        let mut artist_song_name = String::with_capacity(track.name.len() + 32);
        for (i, artist) in track.artists.iter().enumerate() {
            if i > 0 {
                artist_song_name.push_str(", ");
            }
            artist_song_name.push_str(&artist.name);
        }
        artist_song_name.push_str(" - ");
        artist_song_name.push_str(&track.name[clean.clone()]);
        let clean_track_name = sub_cow(&track.name, clean);
        let mut artist_ids = Vec::with_capacity(track.artists.len());
        let mut artist_names = Vec::with_capacity(track.artists.len());
        let mut artist_urls = Vec::with_capacity(track.artists.len());
        for artist in track.artists {
            artist_ids.push(artist.id);
            artist_names.push(artist.name);
            artist_urls.push(artist.external_urls.spotify);
        }
        let album = track.album;
        let isrc = track
            .external_ids
            .as_ref()
            .and_then(|ids| ids.isrc.as_deref())
            .and_then(recording::valid_isrc);
        TrackFields {
            track_id: track.id,
            track_name: track.name,
            clean_track_name,
            artist_song_name,
            artist_ids,
            artist_names,
            artist_urls,
            album_id: album.id,
            album_name: album.name,
            album_type: album.album_type.map(|t| {
                if t.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(t.to_lowercase())
                } else {
                    t
                }
            }),
            release_date: album.release_date,
            total_tracks: album.total_tracks,
            duration_ms: Some(track.duration_ms),
            duration: Some(format_duration(track.duration_ms)),
            popularity: track.popularity,
            explicit: Some(track.explicit),
            is_local: track.is_local,
            track_url: track.external_urls.spotify,
            images: album.images,
            isrc,
            recording_mbid: None,
            recording_key: None,
            name_key: None,
            artist_keys: Vec::new(),
            track_key: None,
        }
        .with_keys()
    }
}

/// One play, as stored in `rawdata_recentlyplayed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentlyPlayedRecord<'a> {
    /// `<user_id>|<played_at RFC 3339 UTC>` ([`mongo::play_id`]).
    #[serde(rename = "_id")]
    pub id: String,
    /// Spotify user id of the member.
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    /// The member's display name in the group.
    #[serde(borrow)]
    pub user_name: Cow<'a, str>,
    /// When Spotify says the track was played, UTC.
    #[serde(with = "rfc3339_millis")]
    pub played_at: DateTime<Utc>,
    /// The same instant in the group's zone.
    #[serde(flatten)]
    pub local: LocalTime,
    /// The track's fields.
    #[serde(borrow, flatten)]
    pub track: TrackFields<'a>,
    /// `playlist`, `album`, `artist`, … or `none` when Spotify sent a null context (or the play came
    /// from the streaming history, which has none).
    #[serde(borrow)]
    pub context_type: Cow<'a, str>,
    /// Where the play came from: the Web API's recently played, an imported streaming history, or a
    /// listen from beyond Spotify.
    pub source: PlaySource,
    /// How long the stream lasted, from the streaming history (also on an API play the history
    /// matched); null when only the API knows the play.
    #[serde(default)]
    pub ms_played: Option<u64>,
}

/// Where a play came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaySource {
    /// `GET /me/player/recently-played`.
    Api,
    /// Spotify's Extended Streaming History export, imported by `data-fetcher import`.
    History,
    /// A listen a ListenBrainz client submitted (`POST /1/submit-listens`), or a ListenBrainz export
    /// imported by `data-fetcher import --format listenbrainz`.
    Listenbrainz,
    /// A Maloja export (`data-fetcher import --format maloja`).
    Maloja,
    /// A scrobble CSV, as Last.fm exporters write (`data-fetcher import --format csv`).
    Csv,
}

impl PlaySource {
    /// The stored value: `api` or `history`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaySource::Api => "api",
            PlaySource::History => "history",
            PlaySource::Listenbrainz => "listenbrainz",
            PlaySource::Maloja => "maloja",
            PlaySource::Csv => "csv",
        }
    }

    /// Every source, in the order `status` lists them.
    pub const ALL: [PlaySource; 5] = [
        PlaySource::Api,
        PlaySource::History,
        PlaySource::Listenbrainz,
        PlaySource::Maloja,
        PlaySource::Csv,
    ];

    /// A source from beyond Spotify: its plays are known by names and the ids a client sent, and are
    /// matched with plays from other sources by their recording ([`TrackFields::name_key`]).
    pub fn is_external(self) -> bool {
        matches!(
            self,
            PlaySource::Listenbrainz | PlaySource::Maloja | PlaySource::Csv
        )
    }
}

impl<'a> RecentlyPlayedRecord<'a> {
    /// Convert one play of `user_id`.
    pub fn from_play(
        user_id: &'a str,
        user_name: &'a str,
        play: PlayHistory<'a>,
        zone: Tz,
    ) -> RecentlyPlayedRecord<'a> {
        RecentlyPlayedRecord {
            id: mongo::play_id(user_id, play.played_at),
            user_id: Cow::Borrowed(user_id),
            user_name: Cow::Borrowed(user_name),
            played_at: play.played_at,
            local: LocalTime::of(play.played_at, zone),
            track: TrackFields::from_track(play.track),
            context_type: play.context.map_or(Cow::Borrowed("none"), |c| c.kind),
            source: PlaySource::Api,
            ms_played: None,
        }
    }

    /// Convert one music play of an imported streaming history (see
    /// [`crate::history::Disposition::Kept`]): the names the export has, the track id from its URI,
    /// and the stream's end as `played_at`; artist and album ids, duration and images stay unknown
    /// until the track is enriched. `None` for an entry that is not a kept music play.
    pub fn from_history(
        user_id: &'a str,
        user_name: &'a str,
        entry: &crate::history::HistoryEntry<'a>,
        zone: Tz,
    ) -> Option<RecentlyPlayedRecord<'a>> {
        let track_id = entry.track_id_cow()?;
        let played_at = entry.ended_at().ok()?;
        let name = entry.master_metadata_track_name.clone().unwrap_or_default();
        let artist = entry
            .master_metadata_album_artist_name
            .clone()
            .unwrap_or_default();
        let clean = clean_track_name_of(&name);
        let artist_song_name = format!("{artist} - {}", &name[clean.clone()]);
        let clean_track_name = sub_cow(&name, clean);
        let track = TrackFields {
            track_url: Some(Cow::Owned(format!(
                "https://open.spotify.com/track/{track_id}"
            ))),
            track_id: Some(track_id.clone()),
            track_name: name,
            clean_track_name,
            artist_song_name,
            // The export names the album's artist only, without an id: one artist of unknown id.
            artist_ids: vec![None],
            artist_names: vec![artist],
            artist_urls: vec![None],
            album_id: None,
            album_name: entry
                .master_metadata_album_album_name
                .clone()
                .unwrap_or_default(),
            album_type: None,
            release_date: None,
            total_tracks: None,
            duration_ms: None,
            duration: None,
            popularity: None,
            explicit: None,
            is_local: false,
            images: Vec::new(),
            isrc: None,
            recording_mbid: None,
            recording_key: None,
            name_key: None,
            artist_keys: Vec::new(),
            track_key: None,
        }
        .with_keys();
        Some(RecentlyPlayedRecord {
            id: mongo::history_play_id(user_id, played_at, &track_id, entry.ms_played),
            user_id: Cow::Borrowed(user_id),
            user_name: Cow::Borrowed(user_name),
            played_at,
            local: LocalTime::of(played_at, zone),
            track,
            context_type: Cow::Borrowed("none"),
            source: PlaySource::History,
            ms_played: Some(entry.ms_played),
        })
    }
}

impl RecentlyPlayedRecord<'static> {
    /// Convert one listen from beyond Spotify (a submitted or imported listen, a scrobble): the names
    /// and ids it has, its start as `played_at`; the Spotify track id and link when the client named
    /// one. `None` for a listen without a time.
    pub fn from_listen(
        user_id: &str,
        user_name: &str,
        listen: &Listen,
        source: PlaySource,
        zone: Tz,
    ) -> Option<RecentlyPlayedRecord<'static>> {
        let played_at = DateTime::from_timestamp(listen.listened_at?, 0)?;
        let name = listen.track_name.clone();
        let clean = clean_track_name_of(&name);
        let artist_song_name = format!("{} - {}", listen.artist_name, &name[clean.clone()]);
        let clean_track_name = Cow::Owned(name[clean].to_string());
        let track_id = listen.spotify_track_id.clone();
        let track = TrackFields {
            track_url: track_id
                .as_ref()
                .map(|id| Cow::Owned(format!("https://open.spotify.com/track/{id}"))),
            track_id: track_id.map(Cow::Owned),
            track_name: Cow::Owned(name),
            clean_track_name,
            artist_song_name,
            artist_ids: vec![None],
            artist_names: vec![Cow::Owned(listen.artist_name.clone())],
            artist_urls: vec![None],
            album_id: None,
            album_name: Cow::Owned(listen.release_name.clone().unwrap_or_default()),
            album_type: None,
            release_date: None,
            total_tracks: None,
            duration_ms: listen.duration_ms,
            duration: listen.duration_ms.map(format_duration),
            popularity: None,
            explicit: None,
            is_local: false,
            images: Vec::new(),
            isrc: listen.isrc.clone(),
            recording_mbid: listen.recording_mbid.clone(),
            recording_key: None,
            name_key: None,
            artist_keys: Vec::new(),
            track_key: None,
        }
        .with_keys();
        let key = track.name_key.clone().unwrap_or_default();
        Some(RecentlyPlayedRecord {
            id: mongo::listen_play_id(user_id, played_at, source.as_str(), &key),
            user_id: Cow::Owned(user_id.to_string()),
            user_name: Cow::Owned(user_name.to_string()),
            played_at,
            local: LocalTime::of(played_at, zone),
            track,
            context_type: Cow::Borrowed("none"),
            source,
            ms_played: None,
        })
    }
}

/// One podcast episode or audiobook chapter played, as stored in `rawdata_spoken` (imported from the
/// streaming history: the Web API's recently played lists music only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpokenPlayRecord<'a> {
    /// [`mongo::history_play_id`] of the episode or chapter.
    #[serde(rename = "_id")]
    pub id: String,
    /// Spotify user id of the member.
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    /// The member's display name in the group.
    #[serde(borrow)]
    pub user_name: Cow<'a, str>,
    /// `episode` or `audiobook`.
    pub kind: crate::history::SpokenKind,
    /// The podcast (show) or the audiobook's title.
    #[serde(borrow)]
    pub show_name: Cow<'a, str>,
    /// The audiobook's Spotify id (none for an episode: the export names a show only by name).
    #[serde(borrow, default)]
    pub show_id: Option<Cow<'a, str>>,
    /// The episode's name or the chapter's title.
    #[serde(borrow)]
    pub item_name: Cow<'a, str>,
    /// The episode's or chapter's Spotify id.
    #[serde(borrow)]
    pub item_id: Cow<'a, str>,
    /// When the stream ended, UTC.
    #[serde(with = "rfc3339_millis")]
    pub played_at: DateTime<Utc>,
    /// `YYYY-MM-DD HH:MM:SS TZ` in the group's zone ([`LocalTime`]).
    pub played_at_local: String,
    /// The local day, `YYYY-MM-DD` ([`LocalTime`]).
    pub local_day: String,
    /// The local hour, 0–23.
    pub local_hour: u8,
    /// The local ISO weekday, 1 (Monday) to 7 (Sunday).
    pub local_weekday: u8,
    /// The local day counted from 1970-01-01.
    pub local_day_number: i64,
    /// How long the stream lasted.
    pub ms_played: u64,
    /// The same as `m:ss`.
    pub duration: String,
    /// Always `history`.
    pub source: PlaySource,
}

impl<'a> SpokenPlayRecord<'a> {
    /// The spoken play of an imported entry (see [`crate::history::HistoryEntry::spoken`]); `None` for
    /// any other entry.
    pub fn from_history(
        user_id: &'a str,
        user_name: &'a str,
        entry: &'a crate::history::HistoryEntry<'a>,
        zone: Tz,
    ) -> Option<SpokenPlayRecord<'a>> {
        let spoken = entry.spoken(false)?;
        let played_at = entry.ended_at().ok()?;
        let (show, item) = match spoken.kind {
            crate::history::SpokenKind::Episode => (&entry.episode_show_name, &entry.episode_name),
            crate::history::SpokenKind::Audiobook => {
                (&entry.audiobook_title, &entry.audiobook_chapter_title)
            }
        };
        let local = LocalTime::of(played_at, zone);
        Some(SpokenPlayRecord {
            id: mongo::history_play_id(user_id, played_at, spoken.item_id, entry.ms_played),
            user_id: Cow::Borrowed(user_id),
            user_name: Cow::Borrowed(user_name),
            kind: spoken.kind,
            show_name: show.clone().unwrap_or_default(),
            show_id: spoken.book_id.map(Cow::Borrowed),
            item_name: item.clone().unwrap_or_default(),
            item_id: Cow::Borrowed(spoken.item_id),
            played_at,
            played_at_local: local.played_at_local,
            local_day: local.local_day,
            local_hour: local.local_hour,
            local_weekday: local.local_weekday,
            local_day_number: local.local_day_number,
            ms_played: entry.ms_played,
            duration: format_duration(entry.ms_played),
            source: PlaySource::History,
        })
    }
}

/// `m:ss`, minutes not padded: `215000` → `3:35`, `59999` → `0:59`, `3600000` → `60:00`.
pub fn format_duration(duration_ms: u64) -> String {
    let seconds = duration_ms / 1000;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// The text before the first `(`, `[` or `{`, trimmed; the whole name, trimmed, when that is empty.
///
/// `Song (feat. X)` → `Song`; `[Intro]` → `[Intro]` (a name that is all bracket keeps itself).
pub fn clean_track_name(name: &str) -> &str {
    &name[clean_track_name_of(name)]
}

/// Where [`clean_track_name`] lies in `name`, as a byte range.
/// `name[range]`, still borrowed from the page where `name` is.
fn sub_cow<'a>(name: &Cow<'a, str>, range: std::ops::Range<usize>) -> Cow<'a, str> {
    match name {
        Cow::Borrowed(name) => Cow::Borrowed(&name[range]),
        Cow::Owned(name) => Cow::Owned(name[range].to_string()),
    }
}

fn clean_track_name_of(name: &str) -> std::ops::Range<usize> {
    let head = name.find(['(', '[', '{']).map_or(name, |i| &name[..i]);
    let kept = if head.trim().is_empty() { name } else { head };
    let start = kept.len() - kept.trim_start().len();
    start..start + kept.trim().len()
}

use crate::mongo::format_utc;

/// serde_json's message without the " at line L column C" it appends: callers that report the position
/// themselves (with the file, page or line they know) use this.
pub fn serde_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

/// Serde helper: a UTC time as RFC 3339 with milliseconds.
pub mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as `2024-03-01T18:15:00.000Z`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_utc(*at))
    }

    /// Accept any RFC 3339 time and normalise it to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}

#[cfg(test)]
mod tests;
