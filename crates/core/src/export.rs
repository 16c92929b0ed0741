//! The Parquet export contract: which collections `gcs-export` snapshots, the stable schema of each
//! (so analytics on polars and on Spark read the same columns and types whatever the data), and how a
//! reader finds the newest complete snapshot.
//!
//! `exports/<collection>/snapshot=<run id>/part-NNNNN.parquet`, then `_SUCCESS` last: a snapshot
//! without the marker is incomplete and readers skip it. Run ids must sort by time (the default,
//! `20241111T090000Z`, and Airflow's `ts_nodash` do): "newest" is the greatest id.

use crate::layout::{self, EXPORTS};
use crate::mongo;
use crate::storage::{Storage, StorageError};

/// The marker written after every part of a snapshot.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// What a snapshot's `_SUCCESS` marker holds: a summary of the snapshot, and the members whose data it
/// may hold (every member with rows in the database when it was exported), so that `members erase`
/// can tell whether a snapshot still names someone without reading its Parquet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotSummary {
    /// The collection.
    pub collection: String,
    /// The snapshot (run) id.
    pub snapshot: String,
    /// Rows written.
    pub rows: u64,
    /// Part files written.
    pub parts: usize,
    /// `name:Kind` of every column.
    pub schema: Vec<String>,
    /// Members with rows in the database at export time (absent in snapshots written before this
    /// field existed: such a snapshot may name anyone).
    #[serde(default)]
    pub members: Option<Vec<String>>,
}

impl SnapshotSummary {
    /// Whether the snapshot may hold `member`'s data.
    pub fn may_name(&self, member: &str) -> bool {
        self.members
            .as_ref()
            .is_none_or(|members| members.iter().any(|m| m == member))
    }
}

/// A column's type in the Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// UTF-8 string.
    Str,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Boolean.
    Bool,
    /// Timestamp, milliseconds, UTC (from BSON dates).
    Time,
    /// List of strings (elements may be null).
    StrList,
    /// Nested data (images) as relaxed extended JSON text.
    Json,
}

/// `(column, kind)` in file order.
pub type Schema = Vec<(&'static str, ColumnKind)>;

use ColumnKind::{Bool, Int, Json, Str, StrList, Time};

const TRACK_FIELDS: [(&str, ColumnKind); 25] = [
    ("track_id", Str),
    ("track_name", Str),
    ("clean_track_name", Str),
    ("artist_song_name", Str),
    ("artist_ids", StrList),
    ("artist_names", StrList),
    ("artist_urls", StrList),
    ("album_id", Str),
    ("album_name", Str),
    ("album_type", Str),
    ("release_date", Str),
    ("total_tracks", Int),
    ("duration_ms", Int),
    ("duration", Str),
    ("popularity", Int),
    ("explicit", Bool),
    ("is_local", Bool),
    ("track_url", Str),
    ("images", Json),
    ("isrc", Str),
    ("recording_mbid", Str),
    ("recording_key", Str),
    ("name_key", Str),
    ("artist_keys", StrList),
    ("track_key", Str),
];

const RAW_RECENTLY_PLAYED_HEAD: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_id", Str),
    ("user_name", Str),
    ("played_at", Time),
    ("played_at_local", Str),
    ("context_type", Str),
    ("source", Str),
    ("ms_played", Int),
];

const RAW_SPOKEN_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_id", Str),
    ("user_name", Str),
    ("kind", Str),
    ("show_name", Str),
    ("show_id", Str),
    ("item_name", Str),
    ("item_id", Str),
    ("played_at", Time),
    ("played_at_local", Str),
    ("ms_played", Int),
    ("duration", Str),
    ("source", Str),
];

const RAW_TOP_TRACKS_HEAD: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_id", Str),
    ("user_name", Str),
    ("time_range", Str),
    ("date_data_fetched", Str),
    ("rank", Int),
];

const RAW_TOP_ARTISTS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_id", Str),
    ("user_name", Str),
    ("time_range", Str),
    ("date_data_fetched", Str),
    ("rank", Int),
    ("artist_id", Str),
    ("artist_name", Str),
    ("genres", StrList),
    ("artist_url", Str),
    ("images", Json),
    ("popularity", Int),
    ("followers", Int),
];

const TRACKS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("track_name", Str),
    ("clean_track_name", Str),
    ("artist_song_name", Str),
    ("artist_ids", StrList),
    ("artist_names", StrList),
    ("album_id", Str),
    ("album_name", Str),
    ("duration_ms", Int),
    ("duration", Str),
    ("explicit", Bool),
    ("track_url", Str),
    ("isrc", Str),
    ("recording_key", Str),
    ("popularity", Int),
    ("plays", Int),
    ("listeners", StrList),
    ("first_played", Time),
    ("last_played", Time),
];

const ALBUMS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("album_name", Str),
    ("album_type", Str),
    ("release_date", Str),
    ("total_tracks", Int),
    ("images", Json),
    ("plays", Int),
    ("tracks", StrList),
];

const ARTISTS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("artist_name", Str),
    ("artist_url", Str),
    ("plays", Int),
    ("tracks", StrList),
    ("listeners", StrList),
    ("first_played", Time),
    ("last_played", Time),
];

const ARTIST_TRACK_LINK_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("play_id", Str),
    ("user_id", Str),
    ("track_id", Str),
    ("artist_id", Str),
    ("artist_name", Str),
    ("artist_key", Str),
    ("played_at", Time),
    ("duration_ms", Int),
];

const IMAGES_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("album_id", Str),
    ("height", Int),
    ("width", Int),
];

const MEMBERS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_name", Str),
    ("first_play", Time),
    ("last_play", Time),
    ("plays", Int),
    ("listened_ms", Int),
    ("unique_tracks", Int),
];

const T50_TRACKS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("user_id", Str),
    ("user_name", Str),
    ("time_range", Str),
    ("date_data_fetched", Str),
    ("rank", Int),
    ("track_id", Str),
    ("track_name", Str),
    ("clean_track_name", Str),
    ("artist_song_name", Str),
    ("artist_ids", StrList),
    ("artist_names", StrList),
    ("album_id", Str),
    ("album_name", Str),
    ("duration_ms", Int),
    ("duration", Str),
    ("popularity", Int),
    ("explicit", Bool),
    ("track_url", Str),
];

const T50_ARTISTS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("artist_name", Str),
    ("artist_url", Str),
    ("appearances", Int),
    ("best_rank", Int),
    ("members", StrList),
];

const T50_TOP_ARTISTS_COLUMNS: &[(&str, ColumnKind)] = &[
    ("_id", Str),
    ("artist_name", Str),
    ("artist_url", Str),
    ("genres", StrList),
    ("images", Json),
    ("popularity", Int),
    ("best_rank", Int),
    ("members", StrList),
];

/// The snapshot schema of a collection; `None` for a collection that is not exported.
pub fn schema(collection: &str) -> Option<Schema> {
    let with_track = |head: &[(&'static str, ColumnKind)]| [head, &TRACK_FIELDS[..]].concat();
    Some(match collection {
        mongo::RAW_RECENTLY_PLAYED => with_track(RAW_RECENTLY_PLAYED_HEAD),
        mongo::RAW_TOP_TRACKS => with_track(RAW_TOP_TRACKS_HEAD),
        mongo::RAW_TOP_ARTISTS => RAW_TOP_ARTISTS_COLUMNS.to_vec(),
        mongo::RAW_SPOKEN => RAW_SPOKEN_COLUMNS.to_vec(),
        mongo::TRACKS => TRACKS_COLUMNS.to_vec(),
        mongo::ALBUMS => ALBUMS_COLUMNS.to_vec(),
        mongo::ARTISTS => ARTISTS_COLUMNS.to_vec(),
        mongo::ARTIST_TRACK_LINK => ARTIST_TRACK_LINK_COLUMNS.to_vec(),
        mongo::IMAGES | mongo::T50_IMAGES => IMAGES_COLUMNS.to_vec(),
        mongo::MEMBERS => MEMBERS_COLUMNS.to_vec(),
        mongo::T50_TRACKS => T50_TRACKS_COLUMNS.to_vec(),
        mongo::T50_ARTISTS => T50_ARTISTS_COLUMNS.to_vec(),
        mongo::T50_TOP_ARTISTS => T50_TOP_ARTISTS_COLUMNS.to_vec(),
        _ => return None,
    })
}

/// A column `gcs-export` computes from a play's stored fields and writes after them, so that no engine
/// recomputes it per play in every plan (polars, Spark and the DuckDB benchmark read it as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// The local day of `played_at_local`, `YYYY-MM-DD`.
    LocalDay,
    /// The local hour, 0–23.
    LocalHour,
    /// The local ISO weekday, 1 (Monday) to 7 (Sunday).
    LocalWeekday,
}

impl Derived {
    /// The column's name.
    pub fn name(self) -> &'static str {
        match self {
            Derived::LocalDay => "local_day",
            Derived::LocalHour => "local_hour",
            Derived::LocalWeekday => "local_weekday",
        }
    }

    /// The column's type.
    pub fn kind(self) -> ColumnKind {
        match self {
            Derived::LocalDay => Str,
            Derived::LocalHour | Derived::LocalWeekday => Int,
        }
    }

    /// The value for a play document (`played_at_local` as stored: the converter writes
    /// `YYYY-MM-DD HH:MM:SS TZ`); null when the fields do not give one.
    pub fn value(self, play: &mongodb::bson::Document) -> mongodb::bson::Bson {
        use mongodb::bson::Bson;
        let local = play.get_str("played_at_local").ok();
        // Parsed only by the columns that need the day (this runs per play and column).
        let day = || {
            local
                .and_then(|l| l.get(..10))
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        match self {
            Derived::LocalDay => day().map_or(Bson::Null, |d| {
                Bson::String(d.format("%Y-%m-%d").to_string())
            }),
            Derived::LocalHour => local
                .and_then(|l| l.get(11..13))
                .and_then(|h| h.parse::<i64>().ok())
                .filter(|h| (0..24).contains(h))
                .map_or(Bson::Null, Bson::Int64),
            Derived::LocalWeekday => day().map_or(Bson::Null, |d| {
                use chrono::Datelike as _;
                Bson::Int64(i64::from(d.weekday().number_from_monday()))
            }),
        }
    }
}

/// The columns `gcs-export` derives for a collection's snapshot, after its stored ones (plays only).
pub fn derived(collection: &str) -> &'static [Derived] {
    match collection {
        mongo::RAW_RECENTLY_PLAYED => {
            &[Derived::LocalDay, Derived::LocalHour, Derived::LocalWeekday]
        }
        _ => &[],
    }
}

/// Every column of a collection's snapshot files: the stored ones ([`schema`]), then the derived
/// ([`derived`]).
pub fn snapshot_columns(collection: &str) -> Option<Schema> {
    let mut columns = schema(collection)?;
    columns.extend(derived(collection).iter().map(|d| (d.name(), d.kind())));
    Some(columns)
}

/// Every exported collection, in pipeline order.
pub const COLLECTIONS: &[&str] = &[
    mongo::RAW_RECENTLY_PLAYED,
    mongo::RAW_TOP_TRACKS,
    mongo::RAW_TOP_ARTISTS,
    mongo::RAW_SPOKEN,
    mongo::TRACKS,
    mongo::ALBUMS,
    mongo::ARTISTS,
    mongo::ARTIST_TRACK_LINK,
    mongo::IMAGES,
    mongo::MEMBERS,
    mongo::T50_TRACKS,
    mongo::T50_ARTISTS,
    mongo::T50_IMAGES,
    mongo::T50_TOP_ARTISTS,
];

/// The key of a snapshot's `_SUCCESS` marker.
pub fn marker_key(collection: &str, snapshot: &str) -> String {
    format!(
        "{}{SUCCESS_MARKER}",
        layout::export_prefix(collection, snapshot)
    )
}

/// `part-00003.parquet`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// The newest snapshot of `collection` that has its `_SUCCESS` marker.
pub async fn latest_complete_snapshot(
    storage: &Storage,
    collection: &str,
) -> Result<Option<String>, StorageError> {
    let prefix = format!("{EXPORTS}/{collection}/");
    let mut complete: Vec<String> = storage
        .list(&prefix)
        .await?
        .iter()
        .filter(|key| key.ends_with(&format!("/{SUCCESS_MARKER}")))
        .filter_map(|key| layout::partition_value(key, "snapshot").map(str::to_string))
        .collect();
    complete.sort();
    Ok(complete.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exported_collection_has_a_schema_with_an_id_first() {
        for collection in COLLECTIONS {
            let columns = schema(collection).unwrap_or_else(|| panic!("{collection}"));
            assert_eq!(columns[0], ("_id", Str), "{collection}");
            let mut names: Vec<&str> = columns.iter().map(|c| c.0).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), columns.len(), "{collection}: duplicate column");
        }
        let plays = schema(mongo::RAW_RECENTLY_PLAYED).unwrap();
        assert!(
            plays.contains(&("played_at", Time))
                && plays.contains(&("popularity", Int))
                && plays.contains(&("track_name", Str))
        );
        assert_eq!(part_name(3), "part-00003.parquet");
    }

    #[test]
    fn a_plays_derived_columns_come_from_its_local_time() {
        use mongodb::bson::{Bson, doc};
        let play = doc! {
            "track_id": "4uLU6hMCjMI75M1A2tKUQC", "track_name": "Song",
            "played_at_local": "2024-11-03 01:30:00 PST",
        };
        let values: Vec<Bson> = derived(mongo::RAW_RECENTLY_PLAYED)
            .iter()
            .map(|d| d.value(&play))
            .collect();
        assert_eq!(
            values,
            [
                Bson::String("2024-11-03".into()),
                Bson::Int64(1),
                // 2024-11-03 is a Sunday: ISO 7.
                Bson::Int64(7),
            ]
        );
        let local = doc! {"played_at_local": "2024-03-11 23:05:00 PDT"};
        assert_eq!(Derived::LocalWeekday.value(&local), Bson::Int64(1));
        assert_eq!(
            Derived::LocalHour.value(&doc! {"played_at_local": "garbage"}),
            Bson::Null
        );
        let columns = snapshot_columns(mongo::RAW_RECENTLY_PLAYED).unwrap();
        assert_eq!(columns.last(), Some(&("local_weekday", Int)));
        assert!(
            columns.contains(&("track_key", Str)),
            "stored by the converter"
        );
        assert_eq!(snapshot_columns(mongo::TRACKS), schema(mongo::TRACKS));
    }

    #[tokio::test]
    async fn only_complete_snapshots_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        assert_eq!(
            latest_complete_snapshot(&storage, "Tracks").await.unwrap(),
            None
        );
        for (key, body) in [
            (
                "exports/Tracks/snapshot=20241101T000000Z/part-00000.parquet",
                "x",
            ),
            ("exports/Tracks/snapshot=20241101T000000Z/_SUCCESS", "{}"),
            (
                "exports/Tracks/snapshot=20241102T000000Z/part-00000.parquet",
                "x",
            ),
            ("exports/Albums/snapshot=20241103T000000Z/_SUCCESS", "{}"),
        ] {
            storage.write(key, bytes::Bytes::from(body)).await.unwrap();
        }
        assert_eq!(
            latest_complete_snapshot(&storage, "Tracks")
                .await
                .unwrap()
                .as_deref(),
            Some("20241101T000000Z")
        );
    }
}
