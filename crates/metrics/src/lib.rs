//! The metric model, one home for what `analytics` computes and everything that reads it:
//!
//! - [`METRICS`]: each metric's name (the `analytics_<name>` collection, `sql/<name>.sql`), its SQL
//!   (the text polars and Spark SQL run), the columns that identify a row, and every output column
//!   with its [`Role`]: which columns name a member, and so what a member's export keeps and what an
//!   erase clears, is declared here (and checked against the SQL's output by analytics' tests), never
//!   inferred from a column's name;
//! - [`rows`]: typed rows of the metrics, for everything other than the store that reads them (the
//!   dashboard, report.json);
//! - [`report`]: report.json, one type for its writer (analytics) and its readers (the dashboard);
//! - [`store`]: reading the stored runs and their rows (the dashboard, the posted weekly recap).

pub mod report;
pub mod rows;
pub mod runs;
pub mod store;

/// One side of a pairwise row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `member_a` (the smaller id).
    A,
    /// `member_b`.
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What a column holds, as far as a member's rights are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The member whose row it is (`user_id`): their export holds the row, their erase removes it.
    Owner,
    /// One of the two members whose row it is (`member_a`, `member_b`): both exports hold the row
    /// (each without the other's [`Role::Of`] columns), and either erase removes it.
    Pair(Side),
    /// A value about one side of a pair only (`plays_a`): an export of the other side leaves it out.
    Of(Side),
    /// Names a member without the row being theirs (`only_listener`): an erase removes the row, an
    /// export does not include it.
    Mentions,
    /// Anything else: a value of the row's subject or of the group.
    Value,
}

impl Role {
    /// Whether the column holds a member's id.
    pub fn names_member(self) -> bool {
        matches!(self, Role::Owner | Role::Pair(_) | Role::Mentions)
    }
}

/// An output column of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name in the SQL's output, in MongoDB and in report.json.
    pub name: &'static str,
    /// What it holds.
    pub role: Role,
}

/// A table a run stores: its name, the columns that identify one of its rows (the `_id` of its
/// documents in MongoDB), and its columns in the SQL's output order.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Name (`analytics_<name>`).
    pub name: &'static str,
    /// Key columns of a row.
    pub subject: &'static [&'static str],
    /// Every column, in output order.
    pub columns: &'static [Column],
}

impl Table {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The side of a pairwise row that holds `member`, read from the row's [`Role::Pair`] columns by
    /// `value_of` (None: the row is not a pair's, or not theirs).
    pub fn side_of<'a>(
        &self,
        member: &str,
        value_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<Side> {
        self.columns.iter().find_map(|c| match c.role {
            Role::Pair(side) if value_of(c.name) == Some(member) => Some(side),
            _ => None,
        })
    }

    /// The columns that compare two members ([`Role::Pair`]): a row naming, in one of them, a friend
    /// who hides from comparisons ([`earshot_core::consent`]) is never stored, shown or posted.
    pub fn comparison_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns
            .iter()
            .filter(|c| matches!(c.role, Role::Pair(_)))
            .map(|c| c.name)
    }

    /// The MongoDB filter that leaves out the rows comparing anyone with a member of `hidden` (empty:
    /// every row; a table without comparison columns: every row).
    pub fn comparisons_without(
        &self,
        hidden: &std::collections::BTreeSet<String>,
    ) -> mongodb::bson::Document {
        let mut filter = mongodb::bson::Document::new();
        if hidden.is_empty() {
            return filter;
        }
        let ids: Vec<&String> = hidden.iter().collect();
        for column in self.comparison_columns() {
            filter.insert(column, mongodb::bson::doc! {"$nin": &ids});
        }
        filter
    }

    /// The columns an export for the member on `side` of a pair leaves out: the other side's values.
    pub fn hidden_from(&self, side: Side) -> impl Iterator<Item = &'static str> + '_ {
        self.columns
            .iter()
            .filter(move |c| c.role == Role::Of(side.other()))
            .map(|c| c.name)
    }
}

/// A metric: a [`Table`] computed by one SQL file.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// What it stores.
    pub table: Table,
    /// The query (`sql/<name>.sql`), shared with Spark and the DuckDB benchmark.
    pub sql: &'static str,
}

impl std::ops::Deref for Metric {
    type Target = Table;
    fn deref(&self) -> &Table {
        &self.table
    }
}

/// The input table of the members who hide from comparisons (one column, `user_id`), which both
/// engines register beside the snapshot's tables: `sql/views/similarity.sql` leaves them out on both
/// sides, so no taste match, closest friend or recommendation is drawn from their plays.
pub const HIDDEN_MEMBERS: &str = "hidden_members";

/// Column names that more than one metric or reader uses.
pub mod col {
    /// The member a row is about.
    pub const USER_ID: &str = "user_id";
    /// The first member of a pair (the smaller id).
    pub const MEMBER_A: &str = "member_a";
    /// The second member of a pair.
    pub const MEMBER_B: &str = "member_b";
    /// A track: its Spotify id, or `local:<name>` for a local file.
    pub const TRACK_KEY: &str = "track_key";
    /// An artist's Spotify id.
    pub const ARTIST_ID: &str = "artist_id";
    /// An album's Spotify id.
    pub const ALBUM_ID: &str = "album_id";
    /// A display name of the row's subject.
    pub const NAME: &str = "name";
    /// Plays.
    pub const PLAYS: &str = "plays";
    /// Minutes listened.
    pub const MINUTES: &str = "minutes";
    /// Members who played a track.
    pub const LISTENERS: &str = "listeners";
    /// The one member who played a track, when only one did.
    pub const ONLY_LISTENER: &str = "only_listener";
    /// Taste match, 0–100.
    pub const TASTE_MATCH: &str = "taste_match";
    /// Shared tracks of a pair.
    pub const SHARED: &str = "shared";
    /// A recommendation's score.
    pub const SCORE: &str = "score";
    /// A top list's time range.
    pub const TIME_RANGE: &str = "time_range";
    /// A local day, `YYYY-MM-DD`.
    pub const DAY: &str = "day";
    /// An ISO weekday, 1 (Monday) to 7.
    pub const WEEKDAY: &str = "weekday";
    /// A local hour, 0–23.
    pub const HOUR: &str = "hour";
    /// A podcast's name, or an audiobook's title.
    pub const SHOW_NAME: &str = "show_name";
    /// `episode` or `audiobook`.
    pub const KIND: &str = "kind";
    /// A member's minutes of podcasts.
    pub const PODCAST_MINUTES: &str = "podcast_minutes";
}

macro_rules! columns {
    ($($name:literal $( : $role:expr )?),* $(,)?) => {
        &[$(Column { name: $name, role: columns!(@role $($role)?) }),*]
    };
    (@role) => { Role::Value };
    (@role $role:expr) => { $role };
}

macro_rules! metric {
    ($name:literal, [$($subject:literal),*], $columns:expr) => {
        Metric {
            table: Table { name: $name, subject: &[$($subject),*], columns: $columns },
            sql: include_str!(concat!("../sql/", $name, ".sql")),
        }
    };
}

macro_rules! view {
    ($name:literal) => {
        ($name, include_str!(concat!("../sql/views/", $name, ".sql")))
    };
}

use Role::{Mentions, Of, Owner, Pair};
const A: Side = Side::A;
const B: Side = Side::B;

/// Every metric the SQL engines compute (every file in `sql/`; a test holds the two equal).
pub const METRICS: &[Metric] = &[
    metric!(
        "member_summary",
        ["user_id"],
        columns!["user_id": Owner, "plays", "minutes", "unique_tracks", "unique_artists"]
    ),
    metric!(
        "member_tracks",
        ["user_id", "track_key"],
        columns!["user_id": Owner, "track_key", "name", "plays", "minutes"]
    ),
    metric!(
        "member_artists",
        ["user_id", "artist_id"],
        columns!["user_id": Owner, "artist_id", "name", "plays", "minutes"]
    ),
    metric!(
        "member_albums",
        ["user_id", "album_id"],
        columns!["user_id": Owner, "album_id", "name", "plays", "minutes"]
    ),
    metric!(
        "listening_clock",
        ["user_id", "weekday", "hour"],
        columns!["user_id": Owner, "weekday", "hour", "plays"]
    ),
    metric!(
        "track_listeners",
        ["track_key"],
        columns!["track_key", "name", "track_name", "listeners", "plays", "only_listener": Mentions]
    ),
    metric!(
        "top_listener_by_track",
        ["track_key", "user_id"],
        columns!["track_key", "user_id": Owner, "plays"]
    ),
    metric!(
        "top_listener_by_artist",
        ["artist_id", "user_id"],
        columns!["artist_id", "user_id": Owner, "plays"]
    ),
    metric!(
        "obscure",
        ["user_id"],
        columns!["user_id": Owner, "obscure_plays", "unknown_popularity_plays", "known_popularity_plays"]
    ),
    metric!(
        "shared_tracks",
        ["member_a", "member_b"],
        columns!["member_a": Pair(A), "member_b": Pair(B), "shared", "jaccard"]
    ),
    metric!(
        "shared_favourite",
        ["member_a", "member_b", "track_key"],
        columns!["member_a": Pair(A), "member_b": Pair(B), "track_key", "plays_a": Of(A), "plays_b": Of(B), "plays"]
    ),
    metric!(
        "taste_match",
        ["member_a", "member_b"],
        columns!["member_a": Pair(A), "member_b": Pair(B), "taste_match"]
    ),
    metric!(
        "top_list_overlap",
        ["member_a", "member_b", "time_range"],
        columns!["member_a": Pair(A), "member_b": Pair(B), "time_range", "overlap"]
    ),
    metric!(
        "recommendation_scores",
        ["user_id", "track_key"],
        columns!["user_id": Owner, "track_key", "name", "track_name", "score"]
    ),
    metric!(
        "plays_per_day",
        ["user_id", "day"],
        columns!["user_id": Owner, "day", "plays"]
    ),
    metric!(
        "recap_members",
        ["user_id"],
        columns![
            "user_id": Owner, "plays", "minutes", "top_track_key", "top_track_name", "top_track_plays",
            "top_artist_id", "top_artist_name", "top_artist_plays", "top_album_id", "top_album_name", "top_album_plays",
            "artists_discovered", "longest_streak_days", "busiest_day", "busiest_day_plays", "top_listener_of",
        ]
    ),
    metric!(
        "recap_discovered",
        ["user_id", "artist_id"],
        columns!["user_id": Owner, "artist_id", "name", "plays"]
    ),
    metric!(
        "recap_group",
        ["scope"],
        columns![
            "scope", "most_shared_track_key", "most_shared_track_name", "most_shared_listeners", "most_shared_plays",
            "closest_a": Mentions, "closest_b": Mentions, "closest_taste_match",
        ]
    ),
    metric!(
        "spoken_summary",
        ["user_id"],
        columns![
            "user_id": Owner, "podcast_minutes", "episodes", "shows", "audiobook_minutes", "chapters", "books",
        ]
    ),
    metric!(
        "show_minutes",
        ["user_id", "kind", "show_name"],
        columns!["user_id": Owner, "kind", "show_name", "minutes", "plays"]
    ),
    metric!(
        "shared_shows",
        ["show_name"],
        columns!["show_name", "listeners", "plays", "minutes"]
    ),
];

/// ALS recommendations, computed on Spark only (pyspark.ml, not SQL: `spark/earshot_job.py`).
pub const RECOMMENDATIONS_ALS: Table = Table {
    name: "recommendations_als",
    subject: &["user_id", "track_key"],
    columns: columns!["user_id": Owner, "track_key", "score", "rank"],
};

/// Views the metrics read besides the input tables (`sql/views/<name>.sql`), in name order: a view
/// reads the input tables and the views before it. Each engine registers them before the metrics, and
/// computes each once for all of them (polars collects it into memory, Spark caches it): they are the
/// groupings of the plays and links that several metrics share (by member and track, artist or album),
/// and the names joined onto them afterwards, so that a metric reads a few thousand grouped rows instead
/// of every play, and no name is aggregated per play (BENCHMARKS.md, issue #24).
pub const VIEWS: &[(&str, &str)] = &[
    view!("album_names"),
    view!("artist_keys"),
    view!("artist_names"),
    view!("member_album_plays"),
    view!("member_artist_debuts"),
    view!("member_artist_plays"),
    view!("member_track_plays"),
    view!("similarity"),
    view!("track_names"),
];

/// A metric by name.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// Every table a run stores: the SQL metrics, and ALS.
pub fn tables() -> impl Iterator<Item = &'static Table> {
    METRICS
        .iter()
        .map(|m| &m.table)
        .chain([&RECOMMENDATIONS_ALS])
}

/// A stored table by name (a metric, or ALS).
pub fn table(name: &str) -> Option<&'static Table> {
    tables().find(|t| t.name == name)
}

/// The columns that identify a row of a stored table; empty for another name.
pub fn subject_columns(name: &str) -> &'static [&'static str] {
    table(name).map_or(&[], |t| t.subject)
}

/// The distinct names of the columns, over every table, whose role `keep` selects, in declaration
/// order.
fn columns_where(keep: impl Fn(Role) -> bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for column in tables().flat_map(|t| t.columns) {
        if keep(column.role) && !out.contains(&column.name) {
            out.push(column.name);
        }
    }
    out
}

/// The columns that say whose row it is ([`Role::Owner`], [`Role::Pair`]), over every table: a
/// member's rows are those with their id in one of these.
pub fn member_columns() -> Vec<&'static str> {
    columns_where(|role| matches!(role, Role::Owner | Role::Pair(_)))
}

/// The columns that name a member without the row being theirs ([`Role::Mentions`]).
pub fn mention_columns() -> Vec<&'static str> {
    columns_where(|role| role == Role::Mentions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a SQL text reads the table or view `name` (names it after `FROM` or `JOIN`).
    fn reads(sql: &str, name: &str) -> bool {
        let words: Vec<String> = sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        words
            .windows(2)
            .any(|pair| (pair[0] == "from" || pair[0] == "join") && pair[1] == name)
    }

    fn sql_files(folder: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".sql").map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// Spark and the DuckDB benchmark run every file of `sql/` (and register every `sql/views/`), so
    /// the registry lists exactly those files.
    #[test]
    fn every_sql_file_is_a_listed_metric_and_every_view_is_registered() {
        let mut listed: Vec<String> = METRICS.iter().map(|m| m.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, sql_files("sql"));
        // In name order, as Spark and the DuckDB runner register the folder: a view may read those before it.
        let views: Vec<String> = VIEWS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(views, sql_files("sql/views"));
        for (i, (name, text)) in VIEWS.iter().enumerate() {
            for (later, _) in &VIEWS[i + 1..] {
                assert!(
                    !reads(text, later),
                    "view `{name}` reads `{later}`, which is registered after it"
                );
            }
        }
        assert!(reads(VIEWS.last().unwrap().1, "plays"));
        assert!(reads(
            "SELECT 1 FROM a JOIN member_track_plays AS m",
            "member_track_plays"
        ));
        assert!(!reads(
            "SELECT member_track_plays FROM plays",
            "member_track_plays"
        ));
    }

    #[test]
    fn subjects_are_columns_and_pairs_have_both_sides() {
        for table in tables() {
            for key in table.subject {
                assert!(
                    table.column(key).is_some(),
                    "{}: subject `{key}` is not a column",
                    table.name
                );
            }
            let sides: Vec<Side> = table
                .columns
                .iter()
                .filter_map(|c| match c.role {
                    Role::Pair(s) | Role::Of(s) => Some(s),
                    _ => None,
                })
                .collect();
            let pairs = table
                .columns
                .iter()
                .filter(|c| matches!(c.role, Role::Pair(_)))
                .count();
            assert!(
                sides.is_empty() || pairs == 2,
                "{}: a side's value without both members",
                table.name
            );
        }
    }

    #[test]
    fn an_export_of_one_side_hides_the_other_sides_values_only() {
        let favourite = table("shared_favourite").unwrap();
        assert_eq!(
            favourite.hidden_from(Side::A).collect::<Vec<_>>(),
            ["plays_b"]
        );
        assert_eq!(
            favourite.hidden_from(Side::B).collect::<Vec<_>>(),
            ["plays_a"]
        );
        let row = [("member_a", "ana"), ("member_b", "ben")];
        let value = |k: &str| row.iter().find(|(c, _)| *c == k).map(|(_, v)| *v);
        assert_eq!(favourite.side_of("ben", value), Some(Side::B));
        assert_eq!(favourite.side_of("cy", value), None);
        assert_eq!(
            table("taste_match").unwrap().hidden_from(Side::A).count(),
            0
        );
    }

    /// The shared column names are the registry's: each is a column of some table.
    #[test]
    fn every_shared_column_name_is_a_declared_column() {
        for name in [
            col::USER_ID,
            col::MEMBER_A,
            col::MEMBER_B,
            col::TRACK_KEY,
            col::ARTIST_ID,
            col::ALBUM_ID,
            col::NAME,
            col::PLAYS,
            col::MINUTES,
            col::LISTENERS,
            col::ONLY_LISTENER,
            col::TASTE_MATCH,
            col::SHARED,
            col::SCORE,
            col::TIME_RANGE,
            col::DAY,
            col::WEEKDAY,
            col::HOUR,
        ] {
            assert!(
                tables().any(|t| t.column(name).is_some()),
                "`{name}` is no table's column"
            );
        }
    }

    #[test]
    fn member_and_mention_columns_are_read_from_the_roles() {
        assert_eq!(member_columns(), ["user_id", "member_a", "member_b"]);
        assert_eq!(
            mention_columns(),
            ["only_listener", "closest_a", "closest_b"]
        );
    }
}
