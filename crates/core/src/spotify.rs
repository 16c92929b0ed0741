//! Serde models of the Spotify Web API objects the pipeline reads.
//!
//! They follow the community OpenAPI description (`fixed-spotify-open-api.yml`, 2026.5.31) with the
//! differences real responses show: `context` may be null, recently-played has no `total`, `cursors` is
//! null when there are no items, cursors are unix-ms strings, `played_at` carries milliseconds.
//!
//! Every field Spotify deprecated or removed for development-mode apps in 2026 (`popularity`,
//! `available_markets`, `linked_from`, `preview_url`, `followers`, `/me` `email`, `country`, `product`;
//! `label` belongs to the full album object, which the pipeline does not read) is an `Option`: a missing value is unknown, never zero. Local files (`is_local`) have null
//! ids and URLs, so ids are optional on tracks, albums and artists too. Unknown fields are ignored:
//! Spotify adds fields without notice, and the raw pages are kept verbatim anyway.

use std::fmt;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// `{"spotify": "https://open.spotify.com/…"}`; empty for local files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalUrls<'a> {
    /// The Spotify URL of the object.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub spotify: Option<Cow<'a, str>>,
}

/// The length of a Spotify id (base-62, as in `spotify:track:4uLU6hMCjMI75M1A2tKUQC`).
pub const SPOTIFY_ID_LEN: usize = 22;

/// Whether `text` is a Spotify id: exactly [`SPOTIFY_ID_LEN`] characters of `[0-9A-Za-z]`. What comes
/// from a user's file must pass this before it names a play or goes into a request path.
pub fn is_spotify_id(text: &str) -> bool {
    text.len() == SPOTIFY_ID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A checked Spotify id: the only thing an API path is built from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpotifyId(String);

impl SpotifyId {
    /// `Some` when `text` is a Spotify id ([`is_spotify_id`]).
    pub fn parse(text: &str) -> Option<SpotifyId> {
        is_spotify_id(text).then(|| SpotifyId(text.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a URI of this kind (`spotify:<kind>:<id>`), when it is one and the id is valid.
    pub fn from_uri<'u>(uri: &'u str, kind: &str) -> Option<&'u str> {
        uri.strip_prefix("spotify:")?
            .strip_prefix(kind)?
            .strip_prefix(':')
            .filter(|id| is_spotify_id(id))
    }
}

impl std::fmt::Display for SpotifyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image; Spotify sends `null` height and width for some images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image<'a> {
    /// Source URL of the image.
    #[serde(borrow)]
    pub url: Cow<'a, str>,
    /// Height in pixels, when known.
    pub height: Option<u32>,
    /// Width in pixels, when known.
    pub width: Option<u32>,
}

/// An artist as embedded in tracks and albums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimplifiedArtist<'a> {
    /// Spotify id; null for local files.
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    /// Artist name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Web API endpoint of the artist.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Spotify URI.
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
    /// Always `artist`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
}

/// An album as embedded in a track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimplifiedAlbum<'a> {
    /// Spotify id; null for local files.
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    /// Album name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// `album`, `single` or `compilation` (older captures use upper case).
    #[serde(borrow, default)]
    pub album_type: Option<Cow<'a, str>>,
    /// Number of tracks on the album.
    #[serde(default)]
    pub total_tracks: Option<u32>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, per `release_date_precision`.
    #[serde(borrow, default)]
    pub release_date: Option<Cow<'a, str>>,
    /// `year`, `month` or `day`.
    #[serde(borrow, default)]
    pub release_date_precision: Option<Cow<'a, str>>,
    /// Cover art, widest first.
    #[serde(borrow, default)]
    pub images: Vec<Image<'a>>,
    /// The album's artists.
    #[serde(borrow, default)]
    pub artists: Vec<SimplifiedArtist<'a>>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Web API endpoint of the album.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Spotify URI.
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
    /// Always `album`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    /// How many markets Spotify listed (removed for development-mode apps in 2026). The codes are
    /// read past without being kept: Earshot drops them.
    #[serde(default, skip_serializing, deserialize_with = "count_items")]
    pub available_markets: Option<usize>,
}

/// A full track object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track<'a> {
    /// Spotify id; null for local files.
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    /// Track name, verbatim (may hold markup, emoji, anything).
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The album on which the track appears.
    #[serde(borrow)]
    pub album: SimplifiedAlbum<'a>,
    /// The artists who performed the track, in billing order.
    #[serde(borrow)]
    pub artists: Vec<SimplifiedArtist<'a>>,
    /// Track length in milliseconds.
    pub duration_ms: u64,
    /// Whether the track has explicit lyrics (false when unknown).
    #[serde(default)]
    pub explicit: bool,
    /// Whether the track is a local file of the member's.
    #[serde(default)]
    pub is_local: bool,
    /// Disc number (usually 1).
    #[serde(default)]
    pub disc_number: Option<u32>,
    /// Position on its disc.
    #[serde(default)]
    pub track_number: Option<u32>,
    /// Known external ids (`isrc`, `ean`, `upc`).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds<'a>>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Web API endpoint of the track.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Spotify URI (`spotify:local:…` for local files).
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
    /// Always `track`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    /// Present only when the request named a market.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_playable: Option<bool>,
    /// 0–100. Removed for development-mode apps in 2026: `None` is unknown, never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u32>,
    /// How many markets Spotify listed (removed for development-mode apps in 2026). The codes are
    /// read past without being kept: Earshot drops them.
    #[serde(default, skip_serializing, deserialize_with = "count_items")]
    pub available_markets: Option<usize>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_from: Option<serde_json::Value>,
    /// Deprecated by Spotify (null for most tracks since 2024).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<Cow<'a, str>>,
}

/// `{"isrc": …, "ean": …, "upc": …}`: the identifiers Spotify knows for a track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalIds<'a> {
    /// International Standard Recording Code.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<Cow<'a, str>>,
    /// International Article Number.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub ean: Option<Cow<'a, str>>,
    /// Universal Product Code.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub upc: Option<Cow<'a, str>>,
}

/// A list read past without keeping it: how many items it held (`None` for null or absent). Markets
/// are dropped by Earshot, and hundreds of codes a play need not become strings first.
fn count_items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = Option<usize>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list or null")
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(Count)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(Some(n))
        }
    }
    deserializer.deserialize_option(Count)
}

/// `{"href": null, "total": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followers {
    /// Always null in today's API.
    #[serde(default)]
    pub href: Option<String>,
    /// Number of followers.
    pub total: u64,
}

/// A full artist object, as /me/top/artists returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artist<'a> {
    /// Spotify id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Artist name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Genres Spotify associates with the artist (often empty today).
    #[serde(borrow, default)]
    pub genres: Vec<Cow<'a, str>>,
    /// Artist images, widest first.
    #[serde(borrow, default)]
    pub images: Vec<Image<'a>>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Web API endpoint of the artist.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Spotify URI.
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
    /// Always `artist`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Followers>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u32>,
}

/// Where a track was played from: a playlist, album, artist or show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context<'a> {
    /// `album`, `artist`, `playlist`, `show`, …
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    /// Web API endpoint of the context.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Spotify URI of the context.
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
}

/// One item of /me/player/recently-played: a play of 30 s or more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayHistory<'a> {
    /// The track played.
    #[serde(borrow)]
    pub track: Track<'a>,
    /// When it was played (UTC, with milliseconds). Sometimes the start, sometimes the end of the play.
    pub played_at: DateTime<Utc>,
    /// Null when played outside a playlist/album/artist context.
    #[serde(borrow, default)]
    pub context: Option<Context<'a>>,
}

/// `cursors` of a cursor page: unix milliseconds as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursors {
    /// `played_at` (unix ms) of the newest item in the page.
    #[serde(default)]
    pub after: Option<String>,
    /// `played_at` (unix ms) of the oldest item in the page.
    #[serde(default)]
    pub before: Option<String>,
}

impl Cursors {
    /// The `after` cursor as unix milliseconds, if present and numeric.
    pub fn after_ms(&self) -> Option<i64> {
        self.after.as_deref().and_then(|s| s.parse().ok())
    }

    /// The `before` cursor as unix milliseconds, if present and numeric.
    pub fn before_ms(&self) -> Option<i64> {
        self.before.as_deref().and_then(|s| s.parse().ok())
    }
}

/// A cursor-paged response (recently played). Real responses carry no `total`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorPage<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// URL of the next (older) page, or null.
    #[serde(default)]
    pub next: Option<String>,
    /// Null when there are no items.
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// The `limit` in force.
    pub limit: u32,
    /// The request URL.
    #[serde(default)]
    pub href: Option<String>,
    /// Listed in the OpenAPI description, absent from real recently-played responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
}

/// A recently-played page.
pub type RecentlyPlayedPage<'a> = CursorPage<PlayHistory<'a>>;

/// An offset-paged response (top tracks, top artists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paging<T> {
    /// The items of this page, best first for top items.
    pub items: Vec<T>,
    /// Total items available.
    pub total: u32,
    /// The `limit` in force.
    pub limit: u32,
    /// Offset of the first item.
    pub offset: u32,
    /// The request URL.
    #[serde(default)]
    pub href: Option<String>,
    /// URL of the next page, or null.
    #[serde(default)]
    pub next: Option<String>,
    /// URL of the previous page, or null.
    #[serde(default)]
    pub previous: Option<String>,
}

/// A /me/top/tracks page.
pub type TopTracksPage<'a> = Paging<Track<'a>>;
/// A /me/top/artists page.
pub type TopArtistsPage<'a> = Paging<Artist<'a>>;

/// /v1/me: the member who authorised. `email`, `country`, `product` were removed in 2026.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateUser<'a> {
    /// Spotify user id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Display name, if the member set one.
    #[serde(borrow, default)]
    pub display_name: Option<Cow<'a, str>>,
    /// Known external URLs.
    #[serde(borrow, default)]
    pub external_urls: ExternalUrls<'a>,
    /// Web API endpoint of the user.
    #[serde(borrow, default)]
    pub href: Option<Cow<'a, str>>,
    /// Profile images.
    #[serde(borrow, default)]
    pub images: Vec<Image<'a>>,
    /// Spotify URI.
    #[serde(borrow, default)]
    pub uri: Option<Cow<'a, str>>,
    /// Always `user`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    /// Removed for development-mode apps in 2026.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Cow<'a, str>>,
    /// Removed for development-mode apps in 2026.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Cow<'a, str>>,
    /// Removed for development-mode apps in 2026.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Cow<'a, str>>,
}

/// The accounts service's token response. `refresh_token` may be absent on a refresh (keep the old
/// one), `scope` is absent for client credentials. `Debug` never prints a token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Space-separated scopes granted.
    #[serde(default)]
    pub scope: Option<String>,
    /// A new refresh token; absent when the old one stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The Web API's error body: `{"error": {"status": 429, "message": "…", "reason": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error details.
    pub error: ApiErrorDetail,
}

/// Inside [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// HTTP status code.
    pub status: u16,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
    /// Machine-readable reason where Spotify gives one (e.g. `QUOTA_EXCEEDED` on 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The accounts service's error body: `{"error": "invalid_grant", "error_description": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthError {
    /// OAuth error code: `invalid_grant`, `invalid_client`, `invalid_request`, …
    pub error: String,
    /// Human-readable description.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Time range of /me/top/*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeRange {
    /// About the last 4 weeks.
    ShortTerm,
    /// About the last 6 months (Spotify's default).
    MediumTerm,
    /// About the last year.
    LongTerm,
}

impl TimeRange {
    /// All three, shortest first.
    pub const ALL: [TimeRange; 3] = [
        TimeRange::ShortTerm,
        TimeRange::MediumTerm,
        TimeRange::LongTerm,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeRange::ShortTerm => "short_term",
            TimeRange::MediumTerm => "medium_term",
            TimeRange::LongTerm => "long_term",
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TimeRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeRange::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown time range `{s}` (expected short_term, medium_term or long_term)")
            })
    }
}

/// The OAuth scopes Earshot asks for, and nothing more.
pub const SCOPES: &[&str] = &["user-read-recently-played", "user-top-read"];

/// The most plays recently-played returns, and the most items of one top-items page.
pub const MAX_LIMIT: u32 = 50;
