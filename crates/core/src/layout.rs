//! Storage keys of the data contract (DESIGN.md "Data contracts"): Hive-style partition folders.
//!
//! ```text
//! raw/recently_played/user=<id>/<fetched_at>.json
//! raw/top_tracks/user=<id>/time_range=<range>/<fetched_at>.json
//! raw/top_artists/user=<id>/time_range=<range>/<fetched_at>.json
//! converted/<same key as the raw file>.jsonl
//! exports/<collection>/snapshot=<run id>/part-0.parquet
//! reports/<run id>/…
//! state/…
//! ```

use chrono::{DateTime, Utc};

use crate::spotify::TimeRange;

/// Root of verbatim API pages.
pub const RAW: &str = "raw";
/// Root of converted JSON Lines files.
pub const CONVERTED: &str = "converted";
/// Root of Parquet snapshots.
pub const EXPORTS: &str = "exports";
/// Root of analytics reports.
pub const REPORTS: &str = "reports";
/// Root of fetch state and encrypted tokens.
pub const STATE: &str = "state";

/// The kinds of raw page the fetcher keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawKind {
    /// /me/player/recently-played pages.
    RecentlyPlayed,
    /// /me/top/tracks pages.
    TopTracks,
    /// /me/top/artists pages.
    TopArtists,
}

impl RawKind {
    /// The folder name under `raw/`.
    pub fn folder(self) -> &'static str {
        match self {
            RawKind::RecentlyPlayed => "recently_played",
            RawKind::TopTracks => "top_tracks",
            RawKind::TopArtists => "top_artists",
        }
    }
}

/// `fetched_at` as RFC 3339 basic format in UTC, with milliseconds: `20240301T181500.123Z`. Sorts by time.
pub fn fetched_at_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Parse a [`fetched_at_stamp`] back into a time.
pub fn parse_fetched_at_stamp(stamp: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.fZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Key of a raw page: `raw/<kind>/user=<id>[/time_range=<range>]/<fetched_at>.json`.
pub fn raw_key(
    kind: RawKind,
    user_id: &str,
    time_range: Option<TimeRange>,
    fetched_at: DateTime<Utc>,
) -> String {
    let range = time_range
        .map(|r| format!("/time_range={r}"))
        .unwrap_or_default();
    format!(
        "{RAW}/{}/user={user_id}{range}/{}.json",
        kind.folder(),
        fetched_at_stamp(fetched_at)
    )
}

/// Prefix of every raw page of one kind.
pub fn raw_prefix(kind: RawKind) -> String {
    format!("{RAW}/{}/", kind.folder())
}

/// The converted key of a raw key: `raw/<rest>.json` → `converted/<rest>.jsonl`.
///
/// Returns `None` when `raw_key` is not under `raw/` or does not end in `.json`.
pub fn converted_key(raw_key: &str) -> Option<String> {
    let rest = raw_key.strip_prefix("raw/")?.strip_suffix(".json")?;
    Some(format!("{CONVERTED}/{rest}.jsonl"))
}

/// Folder of one Parquet snapshot of a collection.
pub fn export_prefix(collection: &str, run_id: &str) -> String {
    format!("{EXPORTS}/{collection}/snapshot={run_id}/")
}

/// The value of a `name=value` partition segment of a key, e.g. `user` of `…/user=ana/…`.
pub fn partition_value<'a>(key: &'a str, name: &str) -> Option<&'a str> {
    key.split('/')
        .find_map(|segment| segment.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_data_contract() {
        let at = DateTime::parse_from_rfc3339("2024-03-01T18:15:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let key = raw_key(RawKind::TopTracks, "ana", Some(TimeRange::LongTerm), at);
        assert_eq!(
            key,
            "raw/top_tracks/user=ana/time_range=long_term/20240301T181500.123Z.json"
        );
        assert_eq!(
            converted_key(&key).unwrap(),
            "converted/top_tracks/user=ana/time_range=long_term/20240301T181500.123Z.jsonl"
        );
        assert_eq!(partition_value(&key, "user"), Some("ana"));
        assert_eq!(parse_fetched_at_stamp("20240301T181500.123Z"), Some(at));
        assert_eq!(parse_fetched_at_stamp("2024-03-01"), None);
        assert_eq!(partition_value(&key, "time_range"), Some("long_term"));
        assert_eq!(converted_key("exports/x.json"), None);
        assert_eq!(export_prefix("Tracks", "r1"), "exports/Tracks/snapshot=r1/");
    }
}
