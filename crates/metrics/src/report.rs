//! `reports/<run>/report.json`: written by `analytics`, read by the dashboard (the weekly recap) and
//! by people. One type for both sides.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::rows::{
    AlsRecommendation, ArtistTopListener, MemberAlbum, MemberArtist, MemberTrack, PlaysPerDay,
    RecommendationScore, TasteMatch, TopListOverlap, TrackListeners, TrackTopListener,
};

/// How many items each "top" list keeps.
pub const TOP_N: usize = 10;

/// How many tracks the group chart keeps.
pub const CHART_LENGTH: usize = 20;

/// The report of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was computed, from what.
    pub meta: Meta,
    /// Every member: those with plays, and those the group lists who have none in the period.
    pub members: Vec<MemberReport>,
    /// Who listened to each track and artist most.
    pub who_listened_most: WhoListenedMost,
    /// Per pair: shared tracks and their shared favourite.
    pub shared_songs: Vec<SharedSongs>,
    /// Per pair: taste match.
    pub taste_match: Vec<TasteMatch>,
    /// The group chart (most friends, then most plays).
    pub group_chart: Vec<TrackListeners>,
    /// Per pair and time range: shared top tracks.
    pub top_list_overlap: Vec<TopListOverlap>,
    /// The last whole week, per member.
    pub weekly_recap: Vec<WeeklyRecap>,
    /// Plays per member and local day.
    pub plays_per_day: Vec<PlaysPerDay>,
}

/// What a run computed, from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The run id.
    pub run: String,
    /// `polars` or `spark`.
    pub engine: String,
    /// The snapshot read.
    pub snapshot: String,
    /// The group's name.
    pub group: String,
    /// The group's time zone.
    pub time_zone: String,
    /// Plays at or after this instant (none: from the start).
    pub from: Option<DateTime<Utc>>,
    /// Plays before this instant (none: to the end).
    pub to: Option<DateTime<Utc>>,
    /// Only these members (empty: everyone).
    pub members_filter: Vec<String>,
    /// Plays counted.
    pub plays: u64,
    /// The Monday (local) of the weekly recap's week, `YYYY-MM-DD`.
    pub weekly_recap_week_starting: String,
}

/// One member's part of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    /// Member id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Plays.
    pub plays: i64,
    /// Minutes listened.
    pub minutes: f64,
    /// Distinct tracks.
    pub unique_tracks: i64,
    /// Distinct artists.
    pub unique_artists: i64,
    /// Most played tracks.
    pub top_tracks_by_plays: Vec<MemberTrack>,
    /// Tracks with most minutes.
    pub top_tracks_by_minutes: Vec<MemberTrack>,
    /// Most played artists.
    pub top_artists_by_plays: Vec<MemberArtist>,
    /// Artists with most minutes.
    pub top_artists_by_minutes: Vec<MemberArtist>,
    /// Most played albums.
    pub top_albums_by_plays: Vec<MemberAlbum>,
    /// Albums with most minutes.
    pub top_albums_by_minutes: Vec<MemberAlbum>,
    /// Plays by weekday and hour.
    pub listening_clock: ClockMatrix,
    /// Tracks nobody else in the group played.
    pub deep_cuts: DeepCuts,
    /// Plays of little-known tracks.
    pub obscure: ObscureCounts,
    /// Tracks recommended from friends' plays.
    pub recommendations: Vec<RecommendationScore>,
    /// ALS recommendations (Spark only).
    pub recommendations_als: Vec<AlsRecommendation>,
}

/// Plays by weekday (rows, Monday first) and hour (columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockMatrix {
    /// What the rows are.
    pub rows: String,
    /// What the columns are.
    pub columns: String,
    /// 7 × 24 plays.
    pub plays: Vec<Vec<i64>>,
}

/// Tracks only this member played.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepCuts {
    /// How many.
    pub count: usize,
    /// The first few names.
    pub examples: Vec<String>,
}

/// A member's plays by popularity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObscureCounts {
    /// Plays of tracks with popularity under 30.
    pub obscure_plays: Option<i64>,
    /// Plays of tracks whose popularity is unknown.
    pub unknown_popularity_plays: Option<i64>,
    /// Plays of tracks whose popularity is known.
    pub known_popularity_plays: Option<i64>,
}

/// Who listened most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoListenedMost {
    /// The group chart's tracks, each with its top listeners.
    pub tracks: Vec<ChartEntry>,
    /// Each artist's top listeners.
    pub artists: Vec<ArtistTopListener>,
}

/// A track of the group chart and who played it most (ties listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartEntry {
    /// The track.
    pub track_key: String,
    /// Its name.
    pub name: String,
    /// Members who played it.
    pub listeners: i64,
    /// Plays.
    pub plays: i64,
    /// Who played it most.
    pub listened_most: Vec<Leader>,
}

/// A member and their plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leader {
    /// Member id.
    pub member: String,
    /// Plays.
    pub plays: i64,
}

/// A pair's shared songs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedSongs {
    /// First member.
    pub member_a: String,
    /// Second member.
    pub member_b: String,
    /// Tracks both played.
    pub shared: i64,
    /// Jaccard index of their tracks.
    pub jaccard: f64,
    /// The track they played most together.
    pub favourite: Option<Favourite>,
}

/// A pair's shared favourite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Favourite {
    /// The track.
    pub track_key: String,
    /// The first member's plays.
    pub plays_a: i64,
    /// The second member's plays.
    pub plays_b: i64,
}

/// A member's last whole week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyRecap {
    /// Member id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Distinct tracks.
    pub unique_tracks: i64,
    /// Distinct artists.
    pub unique_artists: Option<i64>,
    /// Their most played track.
    pub top_track: Option<MemberTrack>,
}

/// The group chart's first tracks, each with who played it most (ties listed).
pub fn chart_with_leaders(
    listeners: &[TrackListeners],
    leaders: &[TrackTopListener],
) -> Vec<ChartEntry> {
    listeners
        .iter()
        .take(CHART_LENGTH)
        .map(|t| ChartEntry {
            track_key: t.track_key.clone(),
            name: t.name.clone(),
            listeners: t.listeners,
            plays: t.plays,
            listened_most: leaders
                .iter()
                .filter(|l| l.track_key == t.track_key)
                .map(|l| Leader {
                    member: l.user_id.clone(),
                    plays: l.plays,
                })
                .collect(),
        })
        .collect()
}

impl Report {
    /// The member `id`'s display name, else the id.
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map_or(id, |m| m.name.as_str())
    }
}
