//! Typed rows of the metrics: one struct per table, its fields the table's columns (analytics' tests
//! read every metric's output on the fixture group through these, so a renamed column fails there,
//! not as an empty cell on a page).
//!
//! Counts are `i64`, shares and minutes `f64`. A column that a LEFT JOIN can leave empty is an
//! `Option`; a name that Spotify can leave empty reads as `""`, and the minutes of plays whose
//! duration is unknown (an imported history's removed tracks) as 0.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// A row of one stored table.
pub trait MetricRow: Serialize + DeserializeOwned + Send + Sync + Unpin {
    /// The table (`analytics_<TABLE>`).
    const TABLE: &'static str;
    /// Its fields, in order (the table's columns).
    const FIELDS: &'static [&'static str];
}

/// A null number (minutes of plays whose duration is unknown) as 0.
fn zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or_default())
}

/// A null text column as `""`.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

macro_rules! row {
    ($(#[$doc:meta])* $name:ident = $table:literal { $($(#[$field_attr:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                #[allow(missing_docs)]
                $(#[$field_attr])*
                pub $field: $ty,
            )*
        }
        impl MetricRow for $name {
            const TABLE: &'static str = $table;
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}

row!(
    /// A member's plays, minutes, distinct tracks and artists.
    MemberSummary = "member_summary" { user_id: String, plays: i64, #[serde(deserialize_with = "zero")] minutes: f64, unique_tracks: i64, unique_artists: Option<i64> }
);
row!(
    /// A member's plays of a track.
    MemberTrack = "member_tracks" { user_id: String, track_key: String, #[serde(deserialize_with = "text")] name: String, plays: i64, #[serde(deserialize_with = "zero")] minutes: f64 }
);
row!(
    /// A member's plays of an artist.
    MemberArtist = "member_artists" { user_id: String, #[serde(deserialize_with = "text")] artist_id: String, #[serde(deserialize_with = "text")] name: String, plays: i64, #[serde(deserialize_with = "zero")] minutes: f64 }
);
row!(
    /// A member's plays of an album.
    MemberAlbum = "member_albums" { user_id: String, album_id: String, #[serde(deserialize_with = "text")] name: String, plays: i64, #[serde(deserialize_with = "zero")] minutes: f64 }
);
row!(
    /// A member's plays in one weekday (1 = Monday) and local hour.
    ClockCell = "listening_clock" { user_id: String, weekday: i64, hour: i64, plays: i64 }
);
row!(
    /// A track's listeners and plays in the group.
    TrackListeners = "track_listeners" { track_key: String, #[serde(deserialize_with = "text")] name: String, #[serde(deserialize_with = "text")] track_name: String, listeners: i64, plays: i64, only_listener: String }
);
row!(
    /// The member who played a track most (ties: a row each).
    TrackTopListener = "top_listener_by_track" { track_key: String, user_id: String, plays: i64 }
);
row!(
    /// The member who played an artist most (ties: a row each).
    ArtistTopListener = "top_listener_by_artist" { #[serde(deserialize_with = "text")] artist_id: String, user_id: String, plays: i64 }
);
row!(
    /// A member's plays of little-known tracks.
    Obscure = "obscure" { user_id: String, obscure_plays: i64, unknown_popularity_plays: i64, known_popularity_plays: i64 }
);
row!(
    /// Tracks two members both played, and their Jaccard index.
    SharedTracks = "shared_tracks" { member_a: String, member_b: String, shared: i64, jaccard: f64 }
);
row!(
    /// A track two members both played, with each one's plays.
    SharedFavourite = "shared_favourite" { member_a: String, member_b: String, track_key: String, plays_a: i64, plays_b: i64, plays: i64 }
);
row!(
    /// Two members' taste match, 0–100.
    TasteMatch = "taste_match" { member_a: String, member_b: String, taste_match: f64 }
);
row!(
    /// Tracks two members' latest top lists share, per time range.
    TopListOverlap = "top_list_overlap" { member_a: String, member_b: String, time_range: String, overlap: i64 }
);
row!(
    /// A track recommended to a member from their friends' plays.
    RecommendationScore = "recommendation_scores" { user_id: String, track_key: String, #[serde(deserialize_with = "text")] name: String, #[serde(deserialize_with = "text")] track_name: String, score: f64 }
);
row!(
    /// A member's plays on one local day.
    PlaysPerDay = "plays_per_day" { user_id: String, day: String, plays: i64 }
);
row!(
    /// A member's recap of the period.
    RecapMember = "recap_members" {
        user_id: String, plays: i64, #[serde(deserialize_with = "zero")] minutes: f64,
        top_track_key: Option<String>, top_track_name: Option<String>, top_track_plays: Option<i64>,
        top_artist_id: Option<String>, top_artist_name: Option<String>, top_artist_plays: Option<i64>,
        top_album_id: Option<String>, top_album_name: Option<String>, top_album_plays: Option<i64>,
        artists_discovered: i64, longest_streak_days: Option<i64>,
        busiest_day: Option<String>, busiest_day_plays: Option<i64>, top_listener_of: i64,
    }
);
row!(
    /// An artist a member first played in the period.
    RecapDiscovered = "recap_discovered" { user_id: String, artist_id: String, #[serde(deserialize_with = "text")] name: String, plays: i64 }
);
row!(
    /// The group's recap: its most shared track and its closest pair.
    RecapGroup = "recap_group" {
        scope: String, most_shared_track_key: String, #[serde(deserialize_with = "text")] most_shared_track_name: String,
        most_shared_listeners: i64, most_shared_plays: i64,
        closest_a: Option<String>, closest_b: Option<String>, closest_taste_match: Option<f64>,
    }
);
row!(
    /// A member's podcasts and audiobooks, in minutes and plays.
    SpokenSummary = "spoken_summary" {
        user_id: String, #[serde(deserialize_with = "zero")] podcast_minutes: f64, episodes: i64, shows: i64,
        #[serde(deserialize_with = "zero")] audiobook_minutes: f64, chapters: i64, books: i64,
    }
);
row!(
    /// A member's minutes of one show (a podcast, or an audiobook by its title).
    ShowMinutes = "show_minutes" { user_id: String, kind: String, #[serde(deserialize_with = "text")] show_name: String, minutes: f64, plays: i64 }
);
row!(
    /// A podcast two or more members played.
    SharedShow = "shared_shows" { #[serde(deserialize_with = "text")] show_name: String, listeners: i64, plays: i64, minutes: f64 }
);
row!(
    /// An ALS recommendation (Spark only).
    AlsRecommendation = "recommendations_als" { user_id: String, track_key: String, score: f64, rank: i64 }
);

/// Every row type's table and fields, for the test that holds them equal to the registry.
#[cfg(test)]
fn declared() -> Vec<(&'static str, &'static [&'static str])> {
    fn of<T: MetricRow>() -> (&'static str, &'static [&'static str]) {
        (T::TABLE, T::FIELDS)
    }
    vec![
        of::<MemberSummary>(),
        of::<MemberTrack>(),
        of::<MemberArtist>(),
        of::<MemberAlbum>(),
        of::<ClockCell>(),
        of::<TrackListeners>(),
        of::<TrackTopListener>(),
        of::<ArtistTopListener>(),
        of::<Obscure>(),
        of::<SharedTracks>(),
        of::<SharedFavourite>(),
        of::<TasteMatch>(),
        of::<TopListOverlap>(),
        of::<RecommendationScore>(),
        of::<PlaysPerDay>(),
        of::<RecapMember>(),
        of::<RecapDiscovered>(),
        of::<RecapGroup>(),
        of::<SpokenSummary>(),
        of::<ShowMinutes>(),
        of::<SharedShow>(),
        of::<AlsRecommendation>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stored table has a row type whose fields are its declared columns, in order.
    #[test]
    fn each_row_type_has_its_tables_columns() {
        let declared = declared();
        for table in crate::tables() {
            let (_, fields) = declared
                .iter()
                .find(|(name, _)| *name == table.name)
                .unwrap_or_else(|| panic!("no row type for `{}`", table.name));
            let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
            assert_eq!(fields.to_vec(), columns, "{}", table.name);
        }
        assert_eq!(declared.len(), crate::tables().count());
    }

    #[test]
    fn a_null_name_reads_as_empty_and_a_missing_column_fails() {
        let row: MemberTrack = serde_json::from_value(serde_json::json!(
            {"user_id": "ana", "track_key": "local:x", "name": null, "plays": 3, "minutes": 1.5}
        ))
        .unwrap();
        assert_eq!(row.name, "");
        assert!(
            serde_json::from_value::<MemberTrack>(
                serde_json::json!({"user_id": "ana", "plays": 3})
            )
            .is_err()
        );
    }
}
