//! Storage keys of the data contract (docs/architecture.md, "Stores"): Hive-style partition folders.
//!
//! ```text
//! raw/recently_played/user=<id>/<fetched_at>.json
//! raw/top_tracks/user=<id>/time_range=<range>/<fetched_at>.json
//! raw/top_artists/user=<id>/time_range=<range>/<fetched_at>.json
//! raw/streaming_history/user=<id>/<export file name>-<content hash>.json   imported, stripped
//! converted/<same key as the raw file>.jsonl
//! exports/<collection>/snapshot=<run id>/part-00000.parquet, …, _SUCCESS
//! reports/<run id>/report.json, <chart>.png, <chart>.svg, spark/…
//! state/members/<id>.json      fetch state (cursor, gaps, authorisation dates)
//! state/tokens/<id>.json       encrypted tokens
//! state/imports/<id>.json      streaming-history import progress (counts, never device fields)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum RawKind {
    /// /me/player/recently-played pages.
    RecentlyPlayed,
    /// /me/top/tracks pages.
    TopTracks,
    /// /me/top/artists pages.
    TopArtists,
    /// Files of Spotify's Extended Streaming History, stripped of device fields by `data-fetcher import`.
    StreamingHistory,
    /// The podcast episodes and audiobook chapters of the same imported files: converted on their own
    /// (`converted/spoken_history/`) into `rawdata_spoken`, apart from the music.
    SpokenHistory,
    /// Listens from beyond Spotify (`raw/listens/`): submissions of ListenBrainz clients, stored
    /// verbatim by the listen API, and histories imported from other services by `data-fetcher import
    /// --format`, stored in the same shape ([`listen_import_key`]). Their plays go with the others.
    Listens,
}

impl RawKind {
    /// Every kind, in pipeline order.
    pub const ALL: [RawKind; 6] = [
        RawKind::RecentlyPlayed,
        RawKind::StreamingHistory,
        RawKind::SpokenHistory,
        RawKind::Listens,
        RawKind::TopTracks,
        RawKind::TopArtists,
    ];

    /// The `rawdata_*` collection this kind's converted records are loaded into (imported plays go
    /// with the API's).
    pub fn collection(self) -> &'static str {
        match self {
            RawKind::RecentlyPlayed | RawKind::StreamingHistory | RawKind::Listens => {
                crate::mongo::RAW_RECENTLY_PLAYED
            }
            RawKind::SpokenHistory => crate::mongo::RAW_SPOKEN,
            RawKind::TopTracks => crate::mongo::RAW_TOP_TRACKS,
            RawKind::TopArtists => crate::mongo::RAW_TOP_ARTISTS,
        }
    }

    /// The kind's folder name under `converted/` (and under `raw/`, but for [`RawKind::raw_folder`]).
    pub fn folder(self) -> &'static str {
        match self {
            RawKind::RecentlyPlayed => "recently_played",
            RawKind::TopTracks => "top_tracks",
            RawKind::TopArtists => "top_artists",
            RawKind::StreamingHistory => "streaming_history",
            RawKind::SpokenHistory => "spoken_history",
            RawKind::Listens => "listens",
        }
    }

    /// The folder under `raw/` the kind's raw files are in: spoken plays are read from the imported
    /// streaming-history files themselves (stored once, and imports made before spoken plays were
    /// kept are counted without importing again).
    pub fn raw_folder(self) -> &'static str {
        match self {
            RawKind::SpokenHistory => RawKind::StreamingHistory.folder(),
            other => other.folder(),
        }
    }
}

/// What a step processes: one kind of data, or all of them (the first argument of `data-upload` and
/// `create-collections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Recently played and imported streaming history: `rawdata_recentlyplayed` and what is built
    /// from it.
    RecentlyPlayed,
    /// Top tracks: `rawdata_toptracks` and what is built from it.
    TopTracks,
    /// Top artists: `rawdata_topartists` and what is built from it.
    TopArtists,
    /// All three.
    All,
}

impl Target {
    /// The kinds this target covers, in pipeline order.
    pub fn kinds(self) -> &'static [RawKind] {
        match self {
            Target::RecentlyPlayed => &RawKind::ALL[0..4],
            Target::TopTracks => &RawKind::ALL[4..5],
            Target::TopArtists => &RawKind::ALL[5..6],
            Target::All => &RawKind::ALL,
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

/// The file suffix of a raw page.
pub const RAW_SUFFIX: &str = ".json";
/// The file suffix of a converted file (JSON Lines).
pub const CONVERTED_SUFFIX: &str = ".jsonl";

/// Whether `key` is a raw page of `kind`.
pub fn is_raw_page(key: &str, kind: RawKind) -> bool {
    key.starts_with(&raw_prefix(kind)) && key.ends_with(RAW_SUFFIX)
}

/// Whether `key` is a converted file of `kind`.
pub fn is_converted_file(key: &str, kind: RawKind) -> bool {
    key.starts_with(&converted_prefix(kind)) && key.ends_with(CONVERTED_SUFFIX)
}

/// A raw page's or converted file's name without its suffix (a raw page's fetch time,
/// [`fetched_at_stamp`]).
pub fn file_stem(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.strip_suffix(CONVERTED_SUFFIX)
        .or_else(|| name.strip_suffix(RAW_SUFFIX))
        .unwrap_or(name)
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
        "{RAW}/{}/user={user_id}{range}/{}{RAW_SUFFIX}",
        kind.folder(),
        fetched_at_stamp(fetched_at)
    )
}

/// Prefix of every raw page of one kind.
pub fn raw_prefix(kind: RawKind) -> String {
    format!("{RAW}/{}/", kind.raw_folder())
}

/// Prefix of every converted file of one kind: `converted/<kind>/`.
pub fn converted_prefix(kind: RawKind) -> String {
    format!("{CONVERTED}/{}/", kind.folder())
}

/// The converted key of a raw key of `kind`: `raw/<raw folder>/<rest>.json` →
/// `converted/<folder>/<rest>.jsonl` (the same path but for spoken plays, whose raw files are the
/// streaming history's).
///
/// Returns `None` when `raw_key` is not under the kind's raw folder or does not end in `.json`.
pub fn converted_key(kind: RawKind, raw_key: &str) -> Option<String> {
    let rest = raw_key
        .strip_prefix(&raw_prefix(kind))?
        .strip_suffix(RAW_SUFFIX)?;
    Some(format!(
        "{}{rest}{CONVERTED_SUFFIX}",
        converted_prefix(kind)
    ))
}

/// Folder of one Parquet snapshot of a collection.
pub fn export_prefix(collection: &str, run_id: &str) -> String {
    format!("{EXPORTS}/{collection}/snapshot={run_id}/")
}

/// A run id (of a snapshot, an analytics run): UTC, second precision, sortable by time:
/// `20241111T090000Z` (Airflow's `ts_nodash` has the same shape).
pub fn run_id(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Folder of one analytics run's outputs: `reports/<run>/`.
pub fn report_prefix(run: &str) -> String {
    format!("{REPORTS}/{run}/")
}

/// The report every analytics run writes.
pub const REPORT_JSON: &str = "report.json";

/// A file of an analytics run: `reports/<run>/<name>` (`report.json`, `<chart>.svg`, …).
pub fn report_key(run: &str, name: &str) -> String {
    format!("{}{name}", report_prefix(run))
}

/// Where a Spark run on GCS writes its result tables: `reports/<run>/spark/`.
pub fn spark_output_prefix(run: &str) -> String {
    report_key(run, "spark/")
}

/// Prefix of every scheduled step's run record.
pub fn step_runs_prefix() -> String {
    format!("{STATE}/steps/")
}

/// A scheduled step's recent runs ([`crate::step_runs`]): `state/steps/<step>.json`.
pub fn step_runs_key(step: &str) -> String {
    format!("{}{step}.json", step_runs_prefix())
}

/// Prefix of every open alarm incident (`recap --alarms`).
pub fn alarms_prefix() -> String {
    format!("{STATE}/alarms/")
}

/// The stall alarm's open incident about a member: `state/alarms/members/<id>.json` (erased with the
/// member).
pub fn member_alarm_key(member: &str) -> String {
    format!("{}members/{member}.json", alarms_prefix())
}

/// The alarm's open incident about a failing scheduled step: `state/alarms/steps/<step>.json`.
pub fn step_alarm_key(step: &str) -> String {
    format!("{}steps/{step}.json", alarms_prefix())
}

/// Prefix of every member's fetch state file.
pub fn member_states_prefix() -> String {
    format!("{STATE}/members/")
}

/// A member's fetch state (cursor, gaps, authorisation dates; not secret): `state/members/<id>.json`.
pub fn member_state_key(member: &str) -> String {
    format!("{}{member}.json", member_states_prefix())
}

/// The member id of a [`member_state_key`], `None` for another key.
pub fn member_of_state_key(key: &str) -> Option<&str> {
    key.strip_prefix(&member_states_prefix())?
        .strip_suffix(".json")
}

/// A member's encrypted token record: `state/tokens/<id>.json`.
pub fn token_key(member: &str) -> String {
    format!("{STATE}/tokens/{member}.json")
}

/// Prefix of a member's imported streaming-history files: `raw/streaming_history/user=<id>/`.
pub fn history_prefix(member: &str) -> String {
    format!("{}user={member}/", raw_prefix(RawKind::StreamingHistory))
}

/// Key of one imported export file, stripped: `raw/streaming_history/user=<id>/<stem>-<hash>.json`,
/// where `<stem>` is the file's name in the export and `<hash>` identifies its content, so the same
/// file imported again lands on the same key and a later export's file of the same name does not
/// replace an earlier one.
pub fn history_key(member: &str, file_name: &str, content_hash: &str) -> String {
    let stem = file_name.strip_suffix(".json").unwrap_or(file_name);
    format!("{}{stem}-{content_hash}.json", history_prefix(member))
}

/// A member's streaming-history import progress: `state/imports/<id>.json`.
pub fn import_state_key(member: &str) -> String {
    format!("{}{member}.json", import_states_prefix())
}

/// Prefix of every member's import progress.
pub fn import_states_prefix() -> String {
    format!("{STATE}/imports/")
}

/// Prefix of every erasure in progress.
pub fn erasures_prefix() -> String {
    format!("{STATE}/erasures/")
}

/// The marker of an erasure in progress: `state/erasures/<id>.json`. Written before `members erase`
/// removes anything and removed after the last store is clean, so an interrupted erase is finished by
/// the next run even where no row of the member is left to find.
pub fn erasure_key(member: &str) -> String {
    format!("{}{member}.json", erasures_prefix())
}

/// Prefix of every member's consent: `state/consent/`.
pub fn consents_prefix() -> String {
    format!("{STATE}/consent/")
}

/// A member's consent choices (`hide_from_comparisons`): `state/consent/<id>.json`
/// ([`crate::consent`]).
pub fn consent_key(member: &str) -> String {
    format!("{}{member}.json", consents_prefix())
}

/// Prefix of every departure: `state/left/`.
pub fn departures_prefix() -> String {
    format!("{STATE}/left/")
}

/// A member who erased themselves from the dashboard and left the group: `state/left/<id>.json`
/// (the member and the time; [`crate::erasure::Departure`]). It outlives the erase, and no step
/// fetches, imports, converts or uploads the member while it exists; they remove it by signing in
/// again.
pub fn departure_key(member: &str) -> String {
    format!("{}{member}.json", departures_prefix())
}

/// The member a key of a member's own prefix belongs to (its `user=<id>` folder), if any.
pub fn member_of_key(key: &str) -> Option<&str> {
    key.split('/')
        .find_map(|segment| segment.strip_prefix("user="))
}

/// The erasure epoch: `state/erasure_epoch.json`, a count of the erases started (naming no one), so a
/// run can tell that an erase ran while it did ([`crate::erasure`]).
pub fn erasure_epoch_key() -> String {
    format!("{STATE}/erasure_epoch.json")
}

/// Every storage prefix that holds objects of one member only: their raw pages and imported history
/// (`raw/<kind>/user=<id>/`), their converted files (`converted/<kind>/user=<id>/`), of every kind,
/// and the listens their clients submitted (`raw/listens/user=<id>/`).
/// With [`member_keys`], every place in storage a member's own data lives; Parquet snapshots and
/// reports hold every member's rows together.
pub fn member_prefixes(member: &str) -> Vec<String> {
    let mut prefixes: Vec<String> = RawKind::ALL
        .iter()
        .flat_map(|kind| {
            [
                format!("{}user={member}/", raw_prefix(*kind)),
                format!("{}user={member}/", converted_prefix(*kind)),
            ]
        })
        .collect();
    // Spoken plays' raw files are the streaming history's: one prefix, listed once.
    let mut seen = std::collections::HashSet::new();
    prefixes.retain(|p| seen.insert(p.clone()));
    prefixes
}

/// Prefix of every member's listens as ListenBrainz clients submitted them:
/// `raw/listens/user=<id>/`. Each submission is stored verbatim, as a Spotify page is.
pub fn listens_raw_prefix(member: &str) -> String {
    format!("{}user={member}/", raw_prefix(RawKind::Listens))
}

/// One part of a history imported from another service: `raw/listens/user=<id>/import-<source>-<digest>.json`,
/// in the shape of a `submit-listens` body (`listen_type` `import`, at most
/// [`crate::listens::MAX_LISTENS_PER_REQUEST`] listens), `digest` a hash of the part: importing the same
/// file again writes the same objects.
pub fn listen_import_key(member: &str, source: &str, digest: &str) -> String {
    format!(
        "{}{LISTEN_IMPORT_PREFIX}{source}-{digest}{RAW_SUFFIX}",
        listens_raw_prefix(member)
    )
}

/// The start of an imported part's file name ([`listen_import_key`]).
pub const LISTEN_IMPORT_PREFIX: &str = "import-";

/// The source a stored listens file names: an imported part's (`import-<source>-…`), else `None` (a
/// submission of the listen API).
pub fn listen_import_source(key: &str) -> Option<&str> {
    file_stem(key)
        .strip_prefix(LISTEN_IMPORT_PREFIX)?
        .split('-')
        .next()
}

/// One submission of a member's listens: `raw/listens/user=<id>/<received, basic UTC>-<digest>.json`,
/// `digest` a hash of the body (a client that sends the same body again in the same second writes the
/// same object).
pub fn listen_submission_key(member: &str, received: DateTime<Utc>, digest: &str) -> String {
    format!(
        "{}{}-{digest}{RAW_SUFFIX}",
        listens_raw_prefix(member),
        received.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// What a member's client says is playing now, with its expiry: `state/now-playing/<id>.json`. Not a
/// play: it is replaced by the next and read only until it expires.
pub fn now_playing_key(member: &str) -> String {
    format!("{STATE}/now-playing/{member}.json")
}

/// Prefix of every member's listen token: `state/listen-tokens/`.
pub fn listen_tokens_prefix() -> String {
    format!("{STATE}/listen-tokens/")
}

/// The hash of a member's listen token (what a ListenBrainz client submits with):
/// `state/listen-tokens/<id>.json` (earshot-state's `listen_tokens`).
pub fn listen_token_key(member: &str) -> String {
    format!("{}{member}.json", listen_tokens_prefix())
}

/// The single state objects of one member: fetch state, encrypted tokens, import progress, consent,
/// listen token, now playing.
pub fn member_keys(member: &str) -> Vec<String> {
    vec![
        member_state_key(member),
        token_key(member),
        import_state_key(member),
        consent_key(member),
        listen_token_key(member),
        now_playing_key(member),
        member_alarm_key(member),
    ]
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
            converted_key(RawKind::TopTracks, &key).unwrap(),
            "converted/top_tracks/user=ana/time_range=long_term/20240301T181500.123Z.jsonl"
        );
        assert_eq!(partition_value(&key, "user"), Some("ana"));
        assert_eq!(parse_fetched_at_stamp("20240301T181500.123Z"), Some(at));
        assert_eq!(parse_fetched_at_stamp("2024-03-01"), None);
        assert_eq!(partition_value(&key, "time_range"), Some("long_term"));
        assert_eq!(converted_key(RawKind::TopTracks, "exports/x.json"), None);
        assert_eq!(
            converted_key(RawKind::TopArtists, &key),
            None,
            "another kind's page"
        );
        assert_eq!(export_prefix("Tracks", "r1"), "exports/Tracks/snapshot=r1/");
        assert_eq!(
            converted_prefix(RawKind::TopArtists),
            "converted/top_artists/"
        );
        assert_eq!(run_id(at), "20240301T181500Z");
        assert_eq!(report_key("r1", REPORT_JSON), "reports/r1/report.json");
        assert_eq!(spark_output_prefix("r1"), "reports/r1/spark/");
        assert_eq!(member_state_key("ana"), "state/members/ana.json");
        assert_eq!(member_of_state_key("state/members/ana.json"), Some("ana"));
        assert_eq!(member_of_state_key("state/tokens/ana.json"), None);
        assert_eq!(token_key("ana"), "state/tokens/ana.json");
        assert_eq!(Target::All.kinds(), RawKind::ALL);
        assert_eq!(Target::TopTracks.kinds(), [RawKind::TopTracks]);
        assert_eq!(
            Target::RecentlyPlayed.kinds(),
            [
                RawKind::RecentlyPlayed,
                RawKind::StreamingHistory,
                RawKind::SpokenHistory,
                RawKind::Listens
            ]
        );
        let part = listen_import_key("ana", "maloja", "0a1b");
        assert_eq!(part, "raw/listens/user=ana/import-maloja-0a1b.json");
        assert!(is_raw_page(&part, RawKind::Listens));
        assert_eq!(listen_import_source(&part), Some("maloja"));
        let submitted = listen_submission_key("ana", at, "0a1b");
        assert_eq!(listen_import_source(&submitted), None);
        assert_eq!(
            converted_key(RawKind::Listens, &submitted).unwrap(),
            "converted/listens/user=ana/20240301T181500.123Z-0a1b.jsonl"
        );
        assert_eq!(
            history_key("ana", "Streaming_History_Audio_2024_1.json", "0a1b"),
            "raw/streaming_history/user=ana/Streaming_History_Audio_2024_1-0a1b.json"
        );
        assert_eq!(
            converted_key(
                RawKind::StreamingHistory,
                &history_key("ana", "x.json", "h")
            )
            .unwrap(),
            "converted/streaming_history/user=ana/x-h.jsonl"
        );
        // Spoken plays are converted from the same imported files, into their own folder.
        assert_eq!(raw_prefix(RawKind::SpokenHistory), "raw/streaming_history/");
        assert_eq!(
            converted_key(RawKind::SpokenHistory, &history_key("ana", "x.json", "h")).unwrap(),
            "converted/spoken_history/user=ana/x-h.jsonl"
        );
        assert_eq!(import_state_key("ana"), "state/imports/ana.json");
    }
}
