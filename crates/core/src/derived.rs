//! The derived collections' documents as readers see them (the dashboard's track and artist pages):
//! the fields create-collections' pipelines write (`earshot-collections`), typed. Fields a reader does
//! not need are left out; a null one reads as empty (a recording heard beyond Spotify has no album).

use mongodb::bson::DateTime;
use serde::Deserialize;

/// A document of [`crate::mongo::TRACKS`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TrackDocument {
    /// The Spotify track id.
    #[serde(rename = "_id")]
    pub id: String,
    /// "Artist – Song".
    pub artist_song_name: Option<String>,
    /// Each artist's Spotify id (none for an artist Spotify has no id for).
    pub artist_ids: Vec<Option<String>>,
    /// Each artist's name, in the same order.
    pub artist_names: Vec<Option<String>>,
    /// The album's name.
    pub album_name: Option<String>,
    /// `m:ss`.
    pub duration: Option<String>,
    /// Its page on Spotify.
    pub track_url: Option<String>,
    /// Plays by the whole group, all time.
    pub plays: i64,
    /// The first play, all time.
    pub first_played: Option<DateTime>,
    /// The last play, all time.
    pub last_played: Option<DateTime>,
}

/// A document of [`crate::mongo::ARTISTS`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ArtistDocument {
    /// The Spotify artist id.
    #[serde(rename = "_id")]
    pub id: String,
    /// The artist's name.
    pub artist_name: Option<String>,
    /// Their page on Spotify.
    pub artist_url: Option<String>,
    /// Plays by the whole group, all time.
    pub plays: i64,
    /// The first play, all time.
    pub first_played: Option<DateTime>,
    /// The last play, all time.
    pub last_played: Option<DateTime>,
}
