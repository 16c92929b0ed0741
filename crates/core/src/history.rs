//! Spotify's Extended Streaming History (`my_spotify_data.zip`, requested from the account's privacy
//! page): the entry model, what is kept, and what never leaves the import.
//!
//! An export holds `Spotify Extended Streaming History/Streaming_History_Audio_<years>_<n>.json` (and
//! `Streaming_History_Video_*.json`), each a JSON array of entries. `ts` is when the stream ended (UTC);
//! `ms_played` how long it lasted.
//!
//! **Stripped.** [`HistoryEntry`] names the fields Earshot keeps; everything else in an entry
//! (`ip_addr`, `conn_country`, `platform`, `user_agent_decrypted`, `username` and any field Spotify
//! adds later) is dropped when the entry is read, so it never reaches storage, the database or a log.
//!
//! **Kept.** One play per music entry: a `spotify:track:` URI and at least [`MIN_MS_PLAYED`] played
//! (the threshold at which the Web API counts a play), not in incognito mode. Everything else is set
//! aside from the music plays and counted by [`Disposition`]; of what is set aside, podcast episodes
//! and audiobook chapters played the same way (30 s or more, not incognito, a valid URI) are kept
//! apart as spoken plays ([`HistoryEntry::spoken`]), never mixed into the music.
//!
//! **Checked.** A file is a user's upload, hostile until checked: a track or episode URI whose id is
//! not a Spotify id (22 base-62 characters; `spotify:track:../me?x=`) is set aside as
//! [`Disposition::InvalidUri`], never a play, so it never reaches a request path; an entry dated before
//! Spotify existed or after the import is set aside as [`Disposition::OutOfRange`]. `username` is read
//! only to check the export is the member's, and never written.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::spotify::SpotifyId;

/// A stream counts as a play from 30 s on, as it does for the Web API's recently played.
pub const MIN_MS_PLAYED: u64 = 30_000;

/// An imported play and an API play of the same member and track within this many seconds of each
/// other (by the stream's start or its end, see [`matches`]) are one play. 90 s covers the clock skew
/// between a device and Spotify's servers and the seconds a client takes to report, and stays below
/// the 2 min of all but the shortest tracks, so that a track played twice in a row stays two plays.
pub const DEFAULT_MATCH_TOLERANCE_S: u64 = 90;

/// The longest stream the matching looks back over when an API play arrives after the history: a
/// history play's start is `ts − ms_played`, so an API play at `t` can match a history play ending as
/// late as `t + tolerance + ms_played`. Longer streams still match by their end.
pub const MAX_MATCH_STREAM_MS: u64 = 3 * 60 * 60 * 1000;

/// No play is older than Spotify (launched in October 2008): an entry dated before this is set aside
/// as [`Disposition::OutOfRange`], as is one dated after the import's own time.
pub const EARLIEST_PLAY: &str = "2008-01-01T00:00:00Z";

/// [`EARLIEST_PLAY`] as a time.
pub fn earliest_play() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(EARLIEST_PLAY)
        .expect("a valid time")
        .with_timezone(&Utc)
}

/// Prefix of an export's audio files (`Streaming_History_Audio_2023-2024_3.json`).
pub const AUDIO_FILE_PREFIX: &str = "Streaming_History_Audio_";
/// Prefix of an export's video files (`Streaming_History_Video_2023-2024.json`): set aside whole.
pub const VIDEO_FILE_PREFIX: &str = "Streaming_History_Video_";

/// Whether a file name inside an export is one the import reads.
pub fn is_history_file(name: &str) -> bool {
    (name.starts_with(AUDIO_FILE_PREFIX) || name.starts_with(VIDEO_FILE_PREFIX))
        && name.ends_with(".json")
}

/// One entry of an export, with only the fields Earshot keeps (the rest are dropped as it is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry<'a> {
    /// When the stream ended, UTC (`2024-10-21T07:15:03Z`).
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    /// How long the stream lasted.
    pub ms_played: u64,
    /// Track name (null for episodes and audiobooks).
    #[serde(borrow, default)]
    pub master_metadata_track_name: Option<Cow<'a, str>>,
    /// The album's artist (the export has no other artist).
    #[serde(borrow, default)]
    pub master_metadata_album_artist_name: Option<Cow<'a, str>>,
    /// Album name.
    #[serde(borrow, default)]
    pub master_metadata_album_album_name: Option<Cow<'a, str>>,
    /// `spotify:track:<id>`; null for episodes, audiobooks, some local files and removed tracks.
    #[serde(borrow, default)]
    pub spotify_track_uri: Option<Cow<'a, str>>,
    /// Podcast episode name.
    #[serde(borrow, default)]
    pub episode_name: Option<Cow<'a, str>>,
    /// Podcast name.
    #[serde(borrow, default)]
    pub episode_show_name: Option<Cow<'a, str>>,
    /// `spotify:episode:<id>`.
    #[serde(borrow, default)]
    pub spotify_episode_uri: Option<Cow<'a, str>>,
    /// Audiobook title.
    #[serde(borrow, default)]
    pub audiobook_title: Option<Cow<'a, str>>,
    /// `spotify:audiobook:<id>`.
    #[serde(borrow, default)]
    pub audiobook_uri: Option<Cow<'a, str>>,
    /// `spotify:chapter:<id>`.
    #[serde(borrow, default)]
    pub audiobook_chapter_uri: Option<Cow<'a, str>>,
    /// Audiobook chapter title.
    #[serde(borrow, default)]
    pub audiobook_chapter_title: Option<Cow<'a, str>>,
    /// Why the stream started (`trackdone`, `clickrow`, …).
    #[serde(borrow, default)]
    pub reason_start: Option<Cow<'a, str>>,
    /// Why it ended.
    #[serde(borrow, default)]
    pub reason_end: Option<Cow<'a, str>>,
    /// Shuffle on.
    #[serde(default)]
    pub shuffle: Option<bool>,
    /// Skipped to the next track.
    #[serde(default)]
    pub skipped: Option<bool>,
    /// Played offline.
    #[serde(default)]
    pub offline: Option<bool>,
    /// When an offline play happened (Unix time, as the export gives it).
    #[serde(default)]
    pub offline_timestamp: Option<i64>,
    /// Played in a private (incognito) session.
    #[serde(default)]
    pub incognito_mode: Option<bool>,
    /// The Spotify account the export belongs to: read to check that the export is the member's,
    /// never written anywhere.
    #[serde(borrow, default, skip_serializing)]
    pub username: Option<Cow<'a, str>>,
}

/// What the import does with an entry: keep it as a play, or set it aside for one reason (checked in
/// this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// A music play: imported.
    Kept,
    /// A podcast episode.
    Episode,
    /// An audiobook chapter.
    Audiobook,
    /// An entry of a video file.
    Video,
    /// Music with no `spotify:track:` URI (a local file, a track since removed): nothing to match.
    NoTrackUri,
    /// A track or episode URI that is not `spotify:track:<id>` / `spotify:episode:<id>` with a valid
    /// Spotify id (a crafted or damaged file).
    InvalidUri,
    /// Played in a private session, which the member chose not to share.
    Incognito,
    /// Shorter than [`MIN_MS_PLAYED`].
    Short,
    /// Dated before Spotify existed ([`EARLIEST_PLAY`]) or after the import's own time: a damaged or
    /// crafted entry, never a play.
    OutOfRange,
}

impl Disposition {
    /// Every disposition, kept first.
    pub const ALL: [Disposition; 9] = [
        Disposition::Kept,
        Disposition::Episode,
        Disposition::Audiobook,
        Disposition::Video,
        Disposition::NoTrackUri,
        Disposition::InvalidUri,
        Disposition::Incognito,
        Disposition::Short,
        Disposition::OutOfRange,
    ];

    /// The name used in state files, logs and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Kept => "kept",
            Disposition::Episode => "episode",
            Disposition::Audiobook => "audiobook",
            Disposition::Video => "video",
            Disposition::NoTrackUri => "no_track_uri",
            Disposition::InvalidUri => "invalid_uri",
            Disposition::Incognito => "incognito",
            Disposition::Short => "short",
            Disposition::OutOfRange => "out_of_range",
        }
    }
}

/// What a spoken play is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpokenKind {
    /// A podcast episode (`spotify:episode:`).
    Episode,
    /// An audiobook chapter (`spotify:chapter:` of a `spotify:audiobook:`).
    Audiobook,
}

impl SpokenKind {
    /// The stored value: `episode` or `audiobook`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpokenKind::Episode => "episode",
            SpokenKind::Audiobook => "audiobook",
        }
    }
}

/// A spoken play of an entry: what it is, and the id of the episode or chapter played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoken<'e> {
    /// Episode or audiobook.
    pub kind: SpokenKind,
    /// The episode's or the chapter's Spotify id.
    pub item_id: &'e str,
    /// The audiobook's Spotify id (none for an episode: the export names its show only by name).
    pub book_id: Option<&'e str>,
}

impl<'a> HistoryEntry<'a> {
    /// The entry as a spoken play: an episode or audiobook chapter with a valid Spotify id, played
    /// [`MIN_MS_PLAYED`] or more, not in a private session. `None` for anything else (music, video,
    /// short, incognito, crafted URIs).
    pub fn spoken(&self, video: bool) -> Option<Spoken<'_>> {
        self.spoken_at(video, Utc::now())
    }

    /// [`HistoryEntry::spoken`] for an import at `now` (an entry dated out of range is none).
    pub fn spoken_at(&self, video: bool, now: DateTime<Utc>) -> Option<Spoken<'_>> {
        if self.ms_played < MIN_MS_PLAYED
            || self.incognito_mode == Some(true)
            || self.out_of_range(now)
        {
            return None;
        }
        match self.disposition(video) {
            Disposition::Episode => Some(Spoken {
                kind: SpokenKind::Episode,
                item_id: SpotifyId::from_uri(self.spotify_episode_uri.as_deref()?, "episode")?,
                book_id: None,
            }),
            Disposition::Audiobook => Some(Spoken {
                kind: SpokenKind::Audiobook,
                item_id: SpotifyId::from_uri(self.audiobook_chapter_uri.as_deref()?, "chapter")?,
                book_id: self
                    .audiobook_uri
                    .as_deref()
                    .and_then(|u| SpotifyId::from_uri(u, "audiobook")),
            }),
            _ => None,
        }
    }

    /// The Spotify track id of a `spotify:track:<id>` URI, when the id is a valid Spotify id.
    pub fn track_id(&self) -> Option<&str> {
        SpotifyId::from_uri(self.spotify_track_uri.as_deref()?, "track")
    }

    /// [`HistoryEntry::track_id`], borrowed from the file where the URI was.
    pub fn track_id_cow(&self) -> Option<Cow<'a, str>> {
        match &self.spotify_track_uri {
            Some(Cow::Borrowed(uri)) => SpotifyId::from_uri(uri, "track").map(Cow::Borrowed),
            _ => self.track_id().map(|id| Cow::Owned(id.to_string())),
        }
    }

    /// Whether a track or episode URI is present but not a valid one.
    fn has_invalid_uri(&self) -> bool {
        // A local file's `spotify:local:…` is no Spotify id, and no crafted one either.
        let bad = |uri: &Option<Cow<'a, str>>, kind: &str| {
            uri.as_deref().is_some_and(|u| {
                !u.starts_with("spotify:local:") && SpotifyId::from_uri(u, kind).is_none()
            })
        };
        bad(&self.spotify_track_uri, "track") || bad(&self.spotify_episode_uri, "episode")
    }

    /// `ts` as a time.
    pub fn ended_at(&self) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(&self.ts).map(|t| t.with_timezone(&Utc))
    }

    /// Whether `ts` is a time before [`EARLIEST_PLAY`] or after `now` (a `ts` that is no time at all is
    /// not out of range: it is an error of the file, reported as such).
    pub fn out_of_range(&self, now: DateTime<Utc>) -> bool {
        self.ended_at()
            .is_ok_and(|at| at < earliest_play() || at > now)
    }

    /// What the import does with this entry of a file (`video`: from a video file), judged now.
    pub fn disposition(&self, video: bool) -> Disposition {
        self.disposition_at(video, Utc::now())
    }

    /// What an import at `now` does with this entry of a file (`video`: from a video file).
    pub fn disposition_at(&self, video: bool, now: DateTime<Utc>) -> Disposition {
        if video {
            Disposition::Video
        } else if self.has_invalid_uri() {
            Disposition::InvalidUri
        } else if self.out_of_range(now) {
            Disposition::OutOfRange
        } else if self.spotify_episode_uri.is_some() || self.episode_name.is_some() {
            Disposition::Episode
        } else if self.audiobook_uri.is_some() || self.audiobook_chapter_uri.is_some() {
            Disposition::Audiobook
        } else if self.track_id().is_none() {
            Disposition::NoTrackUri
        } else if self.incognito_mode == Some(true) {
            Disposition::Incognito
        } else if self.ms_played < MIN_MS_PLAYED {
            Disposition::Short
        } else {
            Disposition::Kept
        }
    }

    /// What makes two entries the same record (an export repeats records across its files): the end,
    /// what was played and for how long.
    pub fn identity(&self) -> String {
        let what = self
            .spotify_track_uri
            .as_deref()
            .or(self.spotify_episode_uri.as_deref())
            .or(self.audiobook_chapter_uri.as_deref())
            .or(self.master_metadata_track_name.as_deref())
            .or(self.episode_name.as_deref())
            .unwrap_or("");
        format!("{}|{what}|{}", self.ts, self.ms_played)
    }
}

/// Whether a history play (ended at `ended`, `ms_played` long) and an API play at `played_at` are one
/// play: the API's `played_at` is sometimes the start of the play and sometimes its end (Spotify's
/// own issue tracker documents both, from different apps and offline play), so either the start
/// (`ended − ms_played`) or the end within `tolerance_ms` of `played_at` matches. Returns the
/// distance of the closer one when they match.
pub fn matches(
    ended: DateTime<Utc>,
    ms_played: u64,
    played_at: DateTime<Utc>,
    tolerance_ms: u64,
) -> Option<u64> {
    let end = ended.timestamp_millis();
    let start = end - ms_played as i64;
    let at = played_at.timestamp_millis();
    let distance = (end - at).unsigned_abs().min((start - at).unsigned_abs());
    (distance <= tolerance_ms).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_play_matches_by_its_start_or_its_end() {
        let ended = at("2024-10-21T07:15:00Z");
        let tolerance = DEFAULT_MATCH_TOLERANCE_S * 1000;
        // The API stamped the end (a few seconds late)…
        assert_eq!(
            matches(ended, 200_000, at("2024-10-21T07:15:05Z"), tolerance),
            Some(5_000)
        );
        // …or the start (200 s before the end).
        assert_eq!(
            matches(ended, 200_000, at("2024-10-21T07:11:41Z"), tolerance),
            Some(1_000)
        );
        // Neither: in the middle of a long stream, or far away.
        assert_eq!(
            matches(ended, 600_000, at("2024-10-21T07:10:00Z"), tolerance),
            None
        );
        assert_eq!(
            matches(ended, 200_000, at("2024-10-21T07:17:00Z"), tolerance),
            None
        );
    }

    #[test]
    fn unknown_fields_are_dropped_as_an_entry_is_read() {
        let raw = r#"{"ts":"2024-10-21T07:15:00Z","username":"ana","platform":"Android OS 14",
            "ms_played":215000,"conn_country":"MX","ip_addr":"203.0.113.7",
            "user_agent_decrypted":"unknown","master_metadata_track_name":"Song",
            "master_metadata_album_artist_name":"Band","master_metadata_album_album_name":"Album",
            "spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKUQC","episode_name":null,"episode_show_name":null,
            "spotify_episode_uri":null,"reason_start":"trackdone","reason_end":"trackdone",
            "shuffle":false,"skipped":null,"offline":false,"offline_timestamp":1729494685,
            "incognito_mode":false}"#;
        let entry: HistoryEntry = serde_json::from_str(raw).unwrap();
        let written = serde_json::to_string(&entry).unwrap();
        for field in [
            "ip_addr",
            "conn_country",
            "platform",
            "user_agent",
            "username",
            "203.0.113",
        ] {
            assert!(!written.contains(field), "{field} in {written}");
        }
        assert_eq!(entry.track_id(), Some("4uLU6hMCjMI75M1A2tKUQC"));
        assert_eq!(entry.disposition(false), Disposition::Kept);
        assert_eq!(entry.disposition(true), Disposition::Video);
    }

    #[test]
    fn entries_are_set_aside_for_one_reason() {
        let entry = |json: &str| -> HistoryEntry<'static> {
            serde_json::from_str(Box::leak(json.to_string().into_boxed_str())).unwrap()
        };
        let music = r#""spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKUQC""#;
        let cases = [
            (
                format!(r#"{{"ts":"2024-01-01T00:00:00Z","ms_played":40000,{music}}}"#),
                Disposition::Kept,
            ),
            (
                format!(r#"{{"ts":"2024-01-01T00:00:00Z","ms_played":29999,{music}}}"#),
                Disposition::Short,
            ),
            (
                format!(
                    r#"{{"ts":"2024-01-01T00:00:00Z","ms_played":40000,"incognito_mode":true,{music}}}"#
                ),
                Disposition::Incognito,
            ),
            (
                r#"{"ts":"2024-01-01T00:00:00Z","ms_played":40000,"spotify_track_uri":null}"#
                    .to_string(),
                Disposition::NoTrackUri,
            ),
            (
                r#"{"ts":"2024-01-01T00:00:00Z","ms_played":40000,"spotify_episode_uri":"spotify:episode:5Xt5DXGzch68nYYamXrNxZ","episode_name":"E"}"#
                    .to_string(),
                Disposition::Episode,
            ),
            (
                r#"{"ts":"2024-01-01T00:00:00Z","ms_played":40000,"spotify_track_uri":"spotify:local:Band:Album:Song:184"}"#
                    .to_string(),
                Disposition::NoTrackUri,
            ),
            (
                r#"{"ts":"2024-01-01T00:00:00Z","ms_played":40000,"audiobook_chapter_uri":"spotify:chapter:c"}"#
                    .to_string(),
                Disposition::Audiobook,
            ),
        ];
        for (json, want) in cases {
            assert_eq!(entry(&json).disposition(false), want, "{json}");
        }
    }

    #[test]
    fn episodes_and_chapters_played_30_s_or_more_in_the_open_are_spoken_plays() {
        let entry = |extra: &str| -> HistoryEntry<'static> {
            let json = format!(r#"{{"ts":"2024-01-01T00:00:00Z",{extra}}}"#);
            serde_json::from_str(Box::leak(json.into_boxed_str())).unwrap()
        };
        let episode = r#""spotify_episode_uri":"spotify:episode:5Xt5DXGzch68nYYamXrNxZ","episode_name":"E","episode_show_name":"S""#;
        let chapter = r#""audiobook_title":"B","audiobook_uri":"spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe","audiobook_chapter_uri":"spotify:chapter:3VZmChrnVW8JK6ano4gSED""#;
        let kept = entry(&format!(r#""ms_played":30000,{episode}"#));
        assert_eq!(
            kept.spoken(false),
            Some(Spoken {
                kind: SpokenKind::Episode,
                item_id: "5Xt5DXGzch68nYYamXrNxZ",
                book_id: None
            })
        );
        let book = entry(&format!(r#""ms_played":600000,{chapter}"#));
        let spoken = book.spoken(false).unwrap();
        assert_eq!(spoken.kind, SpokenKind::Audiobook);
        assert_eq!(spoken.item_id, "3VZmChrnVW8JK6ano4gSED");
        assert_eq!(spoken.book_id, Some("7iHfbu1YPACw6oZPAFJtqe"));
        for (why, e) in [
            ("short", entry(&format!(r#""ms_played":29999,{episode}"#))),
            (
                "incognito",
                entry(&format!(
                    r#""ms_played":60000,"incognito_mode":true,{chapter}"#
                )),
            ),
            ("video", entry(&format!(r#""ms_played":60000,{episode}"#))),
            (
                "no chapter uri",
                entry(
                    r#""ms_played":60000,"audiobook_uri":"spotify:audiobook:7iHfbu1YPACw6oZPAFJtqe""#,
                ),
            ),
            (
                "crafted",
                entry(
                    r#""ms_played":60000,"spotify_episode_uri":"spotify:episode:../me","episode_name":"E""#,
                ),
            ),
            (
                "music",
                entry(
                    r#""ms_played":60000,"spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKUQC""#,
                ),
            ),
        ] {
            assert_eq!(e.spoken(why == "video"), None, "{why}");
        }
    }

    #[test]
    fn a_uri_that_is_no_spotify_id_is_set_aside() {
        for uri in [
            r#""spotify_track_uri":"spotify:track:../me?x=""#,
            r#""spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKUQ""#,
            r#""spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKUQCX""#,
            r#""spotify_track_uri":"spotify:track:4uLU6hMCjMI75M1A2tKU%2F""#,
            r#""spotify_track_uri":"spotify:track:""#,
            r#""spotify_track_uri":"spotify:episode:4uLU6hMCjMI75M1A2tKUQC""#,
            r#""spotify_track_uri":"https://api.spotify.com/v1/me""#,
            r#""spotify_episode_uri":"spotify:episode:../../v1/me","episode_name":"E""#,
        ] {
            let json = format!(r#"{{"ts":"2024-01-01T00:00:00Z","ms_played":40000,{uri}}}"#);
            let entry: HistoryEntry = serde_json::from_str(&json).unwrap();
            assert_eq!(entry.disposition(false), Disposition::InvalidUri, "{uri}");
            assert_eq!(entry.track_id(), None, "{uri}");
            assert_eq!(entry.track_id_cow(), None, "{uri}");
        }
        assert_eq!(Disposition::InvalidUri.as_str(), "invalid_uri");
    }
}
