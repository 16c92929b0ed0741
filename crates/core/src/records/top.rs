//! Top items: a member's top tracks and top artists on one day, as stored in `rawdata_toptracks` and
//! `rawdata_topartists`.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::TrackFields;
use crate::mongo;
use crate::spotify::{Artist, Image, TimeRange, Track};

/// One row of a member's top tracks on one day, as stored in `rawdata_toptracks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopTrackRecord<'a> {
    /// `<user_id>|<time_range>|<date>|<rank>` ([`mongo::top_item_id`]).
    #[serde(rename = "_id")]
    pub id: String,
    /// Spotify user id of the member.
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    /// The member's display name in the group.
    #[serde(borrow)]
    pub user_name: Cow<'a, str>,
    /// `short_term`, `medium_term` or `long_term`.
    pub time_range: TimeRange,
    /// The day the list was fetched, `YYYY-MM-DD` in the group's zone.
    pub date_data_fetched: NaiveDate,
    /// 1 for the top track.
    pub rank: u32,
    /// The track's fields.
    #[serde(borrow, flatten)]
    pub track: TrackFields<'a>,
}

/// One row of a member's top artists on one day, as stored in `rawdata_topartists`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopArtistRecord<'a> {
    /// `<user_id>|<time_range>|<date>|<rank>` ([`mongo::top_item_id`]).
    #[serde(rename = "_id")]
    pub id: String,
    /// Spotify user id of the member.
    #[serde(borrow)]
    pub user_id: Cow<'a, str>,
    /// The member's display name in the group.
    #[serde(borrow)]
    pub user_name: Cow<'a, str>,
    /// `short_term`, `medium_term` or `long_term`.
    pub time_range: TimeRange,
    /// The day the list was fetched, `YYYY-MM-DD` in the group's zone.
    pub date_data_fetched: NaiveDate,
    /// 1 for the top artist.
    pub rank: u32,
    /// Spotify artist id.
    #[serde(borrow)]
    pub artist_id: Cow<'a, str>,
    /// Artist name.
    #[serde(borrow)]
    pub artist_name: Cow<'a, str>,
    /// Genres, often empty today.
    #[serde(borrow)]
    pub genres: Vec<Cow<'a, str>>,
    /// open.spotify.com URL of the artist.
    #[serde(borrow)]
    pub artist_url: Option<Cow<'a, str>>,
    /// Artist images.
    #[serde(borrow)]
    pub images: Vec<Image<'a>>,
    /// Where Spotify still returned it; null is unknown.
    pub popularity: Option<u32>,
    /// Where Spotify still returned it; null is unknown.
    pub followers: Option<u64>,
}

impl<'a> TopArtistRecord<'a> {
    /// Flatten one ranked artist.
    pub fn from_artist(
        user_id: &'a str,
        user_name: &'a str,
        time_range: TimeRange,
        date: NaiveDate,
        rank: u32,
        artist: Artist<'a>,
    ) -> TopArtistRecord<'a> {
        TopArtistRecord {
            id: mongo::top_item_id(user_id, time_range, date, rank),
            user_id: Cow::Borrowed(user_id),
            user_name: Cow::Borrowed(user_name),
            time_range,
            date_data_fetched: date,
            rank,
            artist_id: artist.id,
            artist_name: artist.name,
            genres: artist.genres,
            artist_url: artist.external_urls.spotify,
            images: artist.images,
            popularity: artist.popularity,
            followers: artist.followers.map(|f| f.total),
        }
    }
}

impl<'a> TopTrackRecord<'a> {
    /// Flatten one ranked track.
    pub fn from_track(
        user_id: &'a str,
        user_name: &'a str,
        time_range: TimeRange,
        date: NaiveDate,
        rank: u32,
        track: Track<'a>,
    ) -> TopTrackRecord<'a> {
        TopTrackRecord {
            id: mongo::top_item_id(user_id, time_range, date, rank),
            user_id: Cow::Borrowed(user_id),
            user_name: Cow::Borrowed(user_name),
            time_range,
            date_data_fetched: date,
            rank,
            track: TrackFields::from_track(track),
        }
    }
}
