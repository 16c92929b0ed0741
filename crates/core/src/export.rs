//! The Parquet export contract: which collections `gcs-export` snapshots, the stable schema of each
//! (so analytics on polars and on Spark read the same columns and types whatever the data), and how a
//! reader finds the newest complete snapshot.
//!
//! `exports/<collection>/snapshot=<run id>/part-NNNNN.parquet`, then `_SUCCESS` last: a snapshot
//! without the marker is incomplete and readers skip it. Run ids must sort by time (the default,
//! `20241111T090000Z`, and Airflow's `ts_nodash` do): "newest" is the greatest id.

use crate::layout::{self, EXPORTS};
use crate::storage::{Storage, StorageError};
use crate::{mongo, records};

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
    /// Members with rows in the database at export time.
    pub members: Vec<String>,
}

impl SnapshotSummary {
    /// Whether the snapshot may hold `member`'s data.
    pub fn may_name(&self, member: &str) -> bool {
        self.members.iter().any(|m| m == member)
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
    (records::LOCAL_DAY, Str),
    (records::LOCAL_HOUR, Int),
    (records::LOCAL_WEEKDAY, Int),
    (records::LOCAL_DAY_NUMBER, Int),
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
    (records::LOCAL_DAY, Str),
    (records::LOCAL_HOUR, Int),
    (records::LOCAL_WEEKDAY, Int),
    (records::LOCAL_DAY_NUMBER, Int),
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
    fn a_plays_local_time_is_stored_not_derived() {
        // The converter writes the local day, hour and weekday (records::LocalTime); the snapshot
        // carries them as stored, beside the time they come from.
        for collection in [mongo::RAW_RECENTLY_PLAYED, mongo::RAW_SPOKEN] {
            let columns = schema(collection).unwrap();
            let at = columns
                .iter()
                .position(|c| c.0 == "played_at_local")
                .unwrap();
            assert_eq!(
                columns[at + 1..at + 5],
                [
                    (records::LOCAL_DAY, Str),
                    (records::LOCAL_HOUR, Int),
                    (records::LOCAL_WEEKDAY, Int),
                    (records::LOCAL_DAY_NUMBER, Int)
                ],
                "{collection}"
            );
        }
        assert!(
            schema(mongo::RAW_RECENTLY_PLAYED)
                .unwrap()
                .contains(&("track_key", Str)),
            "stored by the converter"
        );
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
