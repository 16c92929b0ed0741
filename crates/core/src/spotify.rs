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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `{"spotify": "https://open.spotify.com/…"}`; empty for local files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalUrls {
    /// The Spotify URL of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotify: Option<String>,
}

/// An image; Spotify sends `null` height and width for some images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Source URL of the image.
    pub url: String,
    /// Height in pixels, when known.
    pub height: Option<u32>,
    /// Width in pixels, when known.
    pub width: Option<u32>,
}

/// An artist as embedded in tracks and albums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimplifiedArtist {
    /// Spotify id; null for local files.
    pub id: Option<String>,
    /// Artist name.
    pub name: String,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Web API endpoint of the artist.
    #[serde(default)]
    pub href: Option<String>,
    /// Spotify URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Always `artist`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// An album as embedded in a track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimplifiedAlbum {
    /// Spotify id; null for local files.
    pub id: Option<String>,
    /// Album name.
    pub name: String,
    /// `album`, `single` or `compilation` (older captures use upper case).
    #[serde(default)]
    pub album_type: Option<String>,
    /// Number of tracks on the album.
    #[serde(default)]
    pub total_tracks: Option<u32>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, per `release_date_precision`.
    #[serde(default)]
    pub release_date: Option<String>,
    /// `year`, `month` or `day`.
    #[serde(default)]
    pub release_date_precision: Option<String>,
    /// Cover art, widest first.
    #[serde(default)]
    pub images: Vec<Image>,
    /// The album's artists.
    #[serde(default)]
    pub artists: Vec<SimplifiedArtist>,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Web API endpoint of the album.
    #[serde(default)]
    pub href: Option<String>,
    /// Spotify URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Always `album`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_markets: Option<Vec<String>>,
}

/// A full track object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Spotify id; null for local files.
    pub id: Option<String>,
    /// Track name, verbatim (may hold markup, emoji, anything).
    pub name: String,
    /// The album on which the track appears.
    pub album: SimplifiedAlbum,
    /// The artists who performed the track, in billing order.
    pub artists: Vec<SimplifiedArtist>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<serde_json::Map<String, serde_json::Value>>,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Web API endpoint of the track.
    #[serde(default)]
    pub href: Option<String>,
    /// Spotify URI (`spotify:local:…` for local files).
    #[serde(default)]
    pub uri: Option<String>,
    /// Always `track`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Present only when the request named a market.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_playable: Option<bool>,
    /// 0–100. Removed for development-mode apps in 2026: `None` is unknown, never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u32>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_markets: Option<Vec<String>>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_from: Option<serde_json::Value>,
    /// Deprecated by Spotify (null for most tracks since 2024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
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
pub struct Artist {
    /// Spotify id.
    pub id: String,
    /// Artist name.
    pub name: String,
    /// Genres Spotify associates with the artist (often empty today).
    #[serde(default)]
    pub genres: Vec<String>,
    /// Artist images, widest first.
    #[serde(default)]
    pub images: Vec<Image>,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Web API endpoint of the artist.
    #[serde(default)]
    pub href: Option<String>,
    /// Spotify URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Always `artist`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Followers>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<u32>,
}

/// Where a track was played from: a playlist, album, artist or show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// `album`, `artist`, `playlist`, `show`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Web API endpoint of the context.
    #[serde(default)]
    pub href: Option<String>,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Spotify URI of the context.
    #[serde(default)]
    pub uri: Option<String>,
}

/// One item of /me/player/recently-played: a play of 30 s or more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayHistory {
    /// The track played.
    pub track: Track,
    /// When it was played (UTC, with milliseconds). Sometimes the start, sometimes the end of the play.
    pub played_at: DateTime<Utc>,
    /// Null when played outside a playlist/album/artist context.
    #[serde(default)]
    pub context: Option<Context>,
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
pub type RecentlyPlayedPage = CursorPage<PlayHistory>;

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
pub type TopTracksPage = Paging<Track>;
/// A /me/top/artists page.
pub type TopArtistsPage = Paging<Artist>;

/// /v1/me: the member who authorised. `email`, `country`, `product` were removed in 2026.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateUser {
    /// Spotify user id.
    pub id: String,
    /// Display name, if the member set one.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Known external URLs.
    #[serde(default)]
    pub external_urls: ExternalUrls,
    /// Web API endpoint of the user.
    #[serde(default)]
    pub href: Option<String>,
    /// Profile images.
    #[serde(default)]
    pub images: Vec<Image>,
    /// Spotify URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Always `user`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Removed for development-mode apps in 2026.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
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
