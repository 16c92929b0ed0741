//! MongoDB names and identities: collection names (kept from the original project so its users find
//! their collections), the deterministic `_id` formulas of docs/architecture.md, the indexes the queries need, and
//! the one way every binary connects (fail fast, never print a password).

use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Database, IndexModel};

use crate::spotify::TimeRange;

/// One document per play.
pub const RAW_RECENTLY_PLAYED: &str = "rawdata_recentlyplayed";
/// One document per (member, time range, day, rank) of top tracks.
pub const RAW_TOP_TRACKS: &str = "rawdata_toptracks";
/// One document per (member, time range, day, rank) of top artists.
pub const RAW_TOP_ARTISTS: &str = "rawdata_topartists";
/// Podcast episodes and audiobook chapters imported from the streaming history (never mixed into the
/// music plays): one document per spoken play, `_id` [`history_play_id`] of the episode or chapter.
pub const RAW_SPOKEN: &str = "rawdata_spoken";
/// One document per track, `_id` = Spotify id.
pub const TRACKS: &str = "Tracks";
/// One document per album, `_id` = Spotify id.
pub const ALBUMS: &str = "Albums";
/// One document per artist, `_id` = Spotify id.
pub const ARTISTS: &str = "Artists";
/// One document per (play, artist).
pub const ARTIST_TRACK_LINK: &str = "ArtistTrackLink";
/// One document per (album, size), `_id` = image URL.
pub const IMAGES: &str = "Images";
/// Top-tracks rows (named "t50" after the original; they now hold up to 50).
pub const T50_TRACKS: &str = "t50_Tracks";
/// Top-tracks artists.
pub const T50_ARTISTS: &str = "t50_Artists";
/// Top-tracks images.
pub const T50_IMAGES: &str = "t50_Images";
/// One document per artist in any member's top artists (built from `rawdata_topartists`).
pub const T50_TOP_ARTISTS: &str = "t50_TopArtists";
/// One document per member of the group.
pub const MEMBERS: &str = "members";
/// Per-(track, local day) partials of [`TRACKS`]: what that day's plays of the track sum to. A track's
/// document is folded from its partials; an hour's plays rebuild only the partials of their days.
pub const TRACKS_BY_DAY: &str = "Tracks_by_day";
/// Per-(album, local day) partials of [`ALBUMS`] (and of [`IMAGES`]: each lists the album's image URLs
/// that day's plays carried).
pub const ALBUMS_BY_DAY: &str = "Albums_by_day";
/// Per-(artist, local day) partials of [`ARTISTS`].
pub const ARTISTS_BY_DAY: &str = "Artists_by_day";
/// Per-(album, local day) partials of [`IMAGES`]: the album's image URLs that day, each with its last
/// play.
pub const IMAGES_BY_DAY: &str = "Images_by_day";
/// Per-(member, local day) partials of [`MEMBERS`].
pub const MEMBERS_BY_DAY: &str = "members_by_day";
/// A partial's entity: the value of the key its derived document has as `_id` (or, for
/// [`IMAGES_BY_DAY`], the album).
pub const PARTIAL_ENTITY: &str = "e";
/// A partial's local day, `YYYY-MM-DD` (a play's `local_day`).
pub const PARTIAL_DAY: &str = "d";
/// Encrypted token records when the fetcher's token store is MongoDB (`--token-store mongodb`), one
/// document per member.
pub const FETCHER_TOKENS: &str = "fetcher_tokens";
/// The track catalogue: one document per track an imported streaming-history play names (`_id` = its
/// Spotify id), filled one `GET /v1/tracks/{id}` at a time by `data-fetcher enrich`: `status` `ok` with
/// the track's fields (as a converted record has them), or `unavailable` when Spotify answered 404;
/// `fetched_at` when it was asked.
pub const TRACK_CATALOGUE: &str = "track_catalogue";
/// `status` of a [`TRACK_CATALOGUE`] entry whose track Spotify returned.
pub const CATALOGUE_OK: &str = "ok";
/// `status` of a [`TRACK_CATALOGUE`] entry whose track Spotify answered 404 for.
pub const CATALOGUE_UNAVAILABLE: &str = "unavailable";
/// The upload ledger: one document per converted file data-upload has loaded (`_id` = its storage key,
/// or [`stdin_ledger_key`] for records read from stdin, [`enrich_ledger_key`] for plays an enrichment
/// filled in), written only after the file's upserts were
/// acknowledged. It lists the keys its records name ([`LEDGER_KEY_FIELDS`]) under `keys.<field>`, how
/// many of its records name each (`counts.<field>`, aligned; not for `_id`), and when it was loaded, so
/// create-collections rebuilds only what new plays touch, in batches sized without reading the plays.
pub const UPLOAD_LEDGER: &str = "upload_ledger";
/// One document per derived collection (`_id` = its name): how far through the upload ledger its last
/// completed build got (`built_through`, a server time; entries loaded after it are still to build).
pub const BUILD_WATERMARKS: &str = "build_watermarks";
/// A watermark's server time: entries loaded after it are still to build, but those of [`WATERMARK_BUILT`].
pub const WATERMARK_THROUGH: &str = "built_through";
/// What a watermark's collection was built as (the daily builds' model; null for the others).
pub const WATERMARK_MODEL: &str = "model";
/// The entries loaded after [`WATERMARK_THROUGH`] that the build did build (`{_id, loaded_at}`): a build
/// trails the server's clock by a margin, and these are not built again by the next run. An entry
/// loaded again has a new `loaded_at`, and is.
pub const WATERMARK_BUILT: &str = "built";
/// The raw-record fields whose values an upload-ledger entry lists, under `keys.<field>` (lists are
/// flattened: `artist_ids` lists every artist id).
pub const LEDGER_KEY_FIELDS: &[&str] = &[
    "_id",
    "user_id",
    "track_id",
    "track_key",
    "album_id",
    "artist_ids",
    "artist_id",
];
/// The weekly recap's posts (`recap`): one document per period and destination
/// (`_id` = [`recap_post_key`]), written once the destination accepted the message, so that a re-run
/// or a retried task never posts a week twice. It names no member.
pub const RECAP_POSTS: &str = "recap_posts";

/// [`RECAP_POSTS`] `_id` of a period's post to a destination: `<period>|<destination name>`.
pub fn recap_post_key(period: &str, destination: &str) -> String {
    [period, destination].join(ID_SEPARATOR)
}

/// The dashboard's sessions, in the group's database: one document per signed-in browser
/// (`_id` = the SHA-256 of the session id its cookie carries, never the id itself), with whom it
/// belongs to (the group password's guest, or a member), when it was made, last seen and ends.
/// Signing out deletes it; see `earshot_state::sessions`.
pub const DASHBOARD_SESSIONS: &str = "dashboard_sessions";

/// The dashboard's "Sign in with Spotify" between its two requests, in the group's database: one
/// document per sign-in begun (`_id` = the SHA-256 of its random `state`), holding the PKCE verifier,
/// the app and the redirect URI until the callback takes it (once) or it expires (10 minutes).
pub const DASHBOARD_SIGN_INS: &str = "dashboard_sign_ins";

/// One document per analytics run stored in `analytics_*` (`_id` = the run id): when it was stored and
/// whether it was asked for a period or group (kept) or is a scheduled run (only the newest are kept).
pub const ANALYTICS_RUNS: &str = "analytics_runs";

/// Prefix of every analytics result collection.
pub const ANALYTICS_PREFIX: &str = "analytics_";

/// The raw collections: each row is one member's (`user_id`). Everything else that holds member data in
/// MongoDB is derived from them (the derived collections, `analytics_*`) or named above
/// ([`FETCHER_TOKENS`], [`TRACK_CATALOGUE`], [`UPLOAD_LEDGER`]).
pub const MEMBER_ROW_COLLECTIONS: &[&str] = &[
    RAW_RECENTLY_PLAYED,
    RAW_TOP_TRACKS,
    RAW_TOP_ARTISTS,
    RAW_SPOKEN,
];
/// The `_id` of an `analytics_*` row: `<run>|<metric>|<subject>` (the subject is the row's key
/// columns, joined the same way), so that re-storing a run replaces its rows.
pub fn analytics_row_id(run: &str, metric: &str, subject: &str) -> String {
    [run, metric, subject].join(ID_SEPARATOR)
}

/// What joins the parts of a composite `_id`.
pub const ID_SEPARATOR: &str = "|";

/// RFC 3339 in UTC with milliseconds and `Z`, the one spelling used in ids and records.
pub fn format_utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `_id` of a play: `<user_id>|<played_at RFC 3339 UTC, milliseconds>`.
pub fn play_id(user_id: &str, played_at: DateTime<Utc>) -> String {
    [user_id, &format_utc(played_at)].join(ID_SEPARATOR)
}

/// `_id` of a play from beyond Spotify (a listen, an imported scrobble):
/// `<user_id>|<played_at RFC 3339 UTC>|<source>|<name key>`. The same listen submitted or imported
/// again has the same id, so it is stored once.
pub fn listen_play_id(
    user_id: &str,
    played_at: DateTime<Utc>,
    source: &str,
    name_key: &str,
) -> String {
    [user_id, &format_utc(played_at), source, name_key].join(ID_SEPARATOR)
}

/// [`UPLOAD_LEDGER`] `_id` of the records of one stdin load: `<stdin>|<time RFC 3339 UTC>`.
pub fn stdin_ledger_key(at: DateTime<Utc>) -> String {
    ["<stdin>", &format_utc(at)].join(ID_SEPARATOR)
}

/// [`UPLOAD_LEDGER`] `_id` of the imported plays one enrichment filled in: `<enrich>|<track_id>`.
pub fn enrich_ledger_key(track_id: &str) -> String {
    ["<enrich>", track_id].join(ID_SEPARATOR)
}

/// The start of every [`erasure_ledger_key`].
pub const ERASURE_LEDGER_PREFIX: &str = "<erasure>|";

/// Upload-ledger key of what an erase took away from `collection` at `at`: the days and keys the erased
/// member's rows named (never the member's id or row ids), so that the next build rebuilds what those
/// rows were part of; for recently played one entry per local `day` (`<erasure>|<collection>|<at>|<day>`),
/// so that a day's entities are that day's alone. Removed once that build has run.
pub fn erasure_ledger_key(collection: &str, at: DateTime<Utc>, day: Option<&str>) -> String {
    let mut key = format!("{ERASURE_LEDGER_PREFIX}{collection}|{}", format_utc(at));
    if let Some(day) = day {
        key.push_str(ID_SEPARATOR);
        key.push_str(day);
    }
    key
}

/// A BSON number (Int32, Int64 or Double, as servers and drivers send counts) as a count; `None` for
/// a negative number or anything else.
pub fn bson_u64(value: &Bson) -> Option<u64> {
    match value {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(n) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    }
}

/// `_id` of a play imported from the streaming history:
/// `<user_id>|<end RFC 3339 UTC, milliseconds>|history|<track_id>|<ms_played>`. The same entry repeated
/// across an export's files, or in a later export, gets the same id; it never equals an API play's.
pub fn history_play_id(
    user_id: &str,
    ended: DateTime<Utc>,
    track_id: &str,
    ms_played: u64,
) -> String {
    [
        user_id,
        &format_utc(ended),
        "history",
        track_id,
        &ms_played.to_string(),
    ]
    .join(ID_SEPARATOR)
}

/// `_id` of a top-tracks or top-artists row: `<user_id>|<time_range>|<YYYY-MM-DD>|<rank>`.
pub fn top_item_id(user_id: &str, time_range: TimeRange, date: NaiveDate, rank: u32) -> String {
    [
        user_id,
        time_range.as_str(),
        &date.format("%Y-%m-%d").to_string(),
        &rank.to_string(),
    ]
    .join(ID_SEPARATOR)
}

/// `_id` of an ArtistTrackLink document: `<play _id>|<artist_id>`.
pub fn artist_track_link_id(play_id: &str, artist_id: &str) -> String {
    [play_id, artist_id].join(ID_SEPARATOR)
}

/// [`artist_track_link_id`] as an aggregation expression over two fields of the input document, for the
/// server-side build: `{"$concat": ["$<play_id_field>", "|", "$<artist_id_field>"]}`.
pub fn artist_track_link_id_expr(play_id_field: &str, artist_id_field: &str) -> Bson {
    Bson::Document(doc! {"$concat": [
        format!("${play_id_field}"),
        ID_SEPARATOR,
        format!("${artist_id_field}"),
    ]})
}

/// A partial's `_id`, `<entity>|<day>` ([`TRACKS_BY_DAY`] and the other partials), as an aggregation
/// expression over two fields of the input document.
pub fn partial_id_expr(entity_field: &str, day_field: &str) -> Bson {
    artist_track_link_id_expr(entity_field, day_field)
}

/// An index: its name and its keys in order, `1` ascending, `-1` descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    /// Collection the index belongs to.
    pub collection: &'static str,
    /// Index name (stable, so creating it again is a no-op).
    pub name: &'static str,
    /// Key fields and directions.
    pub keys: &'static [(&'static str, i32)],
}

const fn partial_index(
    collection: &'static str,
    name: &'static str,
    keys: &'static [(&'static str, i32)],
) -> IndexSpec {
    IndexSpec {
        collection,
        name,
        keys,
    }
}

/// The indexes the loaders and the builds create and the queries rely on.
pub const INDEXES: &[IndexSpec] = &[
    IndexSpec {
        collection: RAW_SPOKEN,
        name: "user_played_at",
        keys: &[("user_id", 1), ("played_at", -1)],
    },
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "user_played_at",
        keys: &[("user_id", 1), ("played_at", -1)],
    },
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "track_id",
        keys: &[("track_id", 1)],
    },
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "artist_ids",
        keys: &[("artist_ids", 1)],
    },
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "played_at",
        keys: &[("played_at", -1)],
    },
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "album_id",
        keys: &[("album_id", 1)],
    },
    // Matching imported plays with API plays (data-upload): a member's plays of one source by time.
    IndexSpec {
        collection: RAW_RECENTLY_PLAYED,
        name: "source_user_played_at",
        keys: &[("source", 1), ("user_id", 1), ("played_at", -1)],
    },
    IndexSpec {
        collection: RAW_TOP_TRACKS,
        name: "user_range_date",
        keys: &[("user_id", 1), ("time_range", 1), ("date_data_fetched", -1)],
    },
    IndexSpec {
        collection: RAW_TOP_TRACKS,
        name: "track_id",
        keys: &[("track_id", 1)],
    },
    IndexSpec {
        collection: RAW_TOP_TRACKS,
        name: "artist_ids",
        keys: &[("artist_ids", 1)],
    },
    IndexSpec {
        collection: RAW_TOP_TRACKS,
        name: "album_id",
        keys: &[("album_id", 1)],
    },
    IndexSpec {
        collection: RAW_TOP_ARTISTS,
        name: "user_range_date",
        keys: &[("user_id", 1), ("time_range", 1), ("date_data_fetched", -1)],
    },
    IndexSpec {
        collection: RAW_TOP_ARTISTS,
        name: "artist_id",
        keys: &[("artist_id", 1)],
    },
    partial_index(
        TRACKS_BY_DAY,
        "entity_day",
        &[(PARTIAL_ENTITY, 1), (PARTIAL_DAY, 1)],
    ),
    partial_index(TRACKS_BY_DAY, "day", &[(PARTIAL_DAY, 1)]),
    partial_index(
        ALBUMS_BY_DAY,
        "entity_day",
        &[(PARTIAL_ENTITY, 1), (PARTIAL_DAY, 1)],
    ),
    partial_index(ALBUMS_BY_DAY, "day", &[(PARTIAL_DAY, 1)]),
    partial_index(
        ARTISTS_BY_DAY,
        "entity_day",
        &[(PARTIAL_ENTITY, 1), (PARTIAL_DAY, 1)],
    ),
    partial_index(ARTISTS_BY_DAY, "day", &[(PARTIAL_DAY, 1)]),
    partial_index(
        IMAGES_BY_DAY,
        "entity_day",
        &[(PARTIAL_ENTITY, 1), (PARTIAL_DAY, 1)],
    ),
    partial_index(IMAGES_BY_DAY, "day", &[(PARTIAL_DAY, 1)]),
    partial_index(IMAGES_BY_DAY, "url", &[("images.url", 1)]),
    partial_index(
        MEMBERS_BY_DAY,
        "entity_day",
        &[(PARTIAL_ENTITY, 1), (PARTIAL_DAY, 1)],
    ),
    partial_index(MEMBERS_BY_DAY, "day", &[(PARTIAL_DAY, 1)]),
    IndexSpec {
        collection: UPLOAD_LEDGER,
        name: "collection_loaded_at",
        keys: &[("collection", 1), ("loaded_at", 1)],
    },
];

/// `mongodb://user:secret@host` → `mongodb://user:***@host`: connection strings are never logged whole.
pub fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &uri[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..scheme_end + 3], &uri[at..])
        }
        _ => uri.to_string(),
    }
}

/// Connect and check the server answers, failing within seconds with a clear message.
pub async fn connect(uri: &str, database: &str) -> Result<Database> {
    connect_within(uri, database, Duration::from_secs(10)).await
}

/// [`connect`], waiting at most `wait` for a server (unless the URI sets its own
/// `serverSelectionTimeoutMS`): for a step that reads MongoDB only to add to what it shows.
pub async fn connect_within(uri: &str, database: &str, wait: Duration) -> Result<Database> {
    let shown = redact_uri(uri);
    let mut options = ClientOptions::parse(uri)
        .await
        .with_context(|| format!("invalid MongoDB URI `{shown}`"))?;
    if options.server_selection_timeout.is_none() {
        options.server_selection_timeout = Some(wait);
    }
    options
        .app_name
        .get_or_insert_with(|| "earshot".to_string());
    let client = Client::with_options(options)
        .with_context(|| format!("invalid MongoDB options for `{shown}`"))?;
    let db = client.database(database);
    db.run_command(doc! {"ping": 1})
        .await
        .with_context(|| format!("cannot reach MongoDB at `{shown}`"))?;
    Ok(db)
}

/// Create the indexes of `collection` that earshot-core lists (named, so creating them again is a no-op).
pub async fn ensure_indexes(db: &Database, collection: &str) -> Result<()> {
    let specs: Vec<&IndexSpec> = INDEXES
        .iter()
        .filter(|i| i.collection == collection)
        .collect();
    if specs.is_empty() {
        return Ok(());
    }
    let models: Vec<IndexModel> = specs
        .iter()
        .map(|spec| {
            let mut keys = Document::new();
            for (field, direction) in spec.keys {
                keys.insert(*field, *direction);
            }
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(spec.name.to_string()).build())
                .build()
        })
        .collect();
    db.collection::<Document>(collection)
        .create_indexes(models)
        .await
        .with_context(|| format!("creating the indexes of `{collection}`"))?;
    Ok(())
}

/// The distinct values of `field` in the documents of `collection` matching `filter` (those without
/// the field left out), as MongoDB's `distinct` gives them, read with a `$group`. The embedded dev
/// server answers `distinct` over 1M plays by growing to 13.9 GiB, and the `$group` within 3.4 GiB in
/// half the time (BENCHMARKS.md, "What the 1M export holds"); on MongoDB both are bounded. Every
/// distinct read goes through here.
pub async fn distinct(
    db: &Database,
    collection: &str,
    field: &str,
    filter: Document,
) -> Result<Vec<Bson>> {
    let mut matched = filter;
    if !matched.contains_key(field) {
        matched.insert(field, doc! {"$exists": true});
    }
    let mut groups = db
        .collection::<Document>(collection)
        .aggregate(vec![
            doc! {"$match": matched},
            doc! {"$group": {"_id": format!("${field}")}},
        ])
        .await
        .with_context(|| format!("reading the values of `{field}` in `{collection}`"))?;
    let mut values = Vec::new();
    while groups
        .advance()
        .await
        .with_context(|| format!("reading the values of `{field}` in `{collection}`"))?
    {
        if let Some(value) = groups.deserialize_current()?.remove("_id") {
            values.push(value);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_uri("mongodb+srv://ana:s3cret@cluster0.x.net/db"),
            "mongodb+srv://ana:***@cluster0.x.net/db"
        );
        assert_eq!(
            redact_uri("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
    }

    #[test]
    fn ids_follow_the_design_formulas() {
        let at = DateTime::parse_from_rfc3339("2024-03-01T18:15:00.5+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(play_id("ana", at), "ana|2024-03-01T18:15:00.500Z");
        assert_eq!(stdin_ledger_key(at), "<stdin>|2024-03-01T18:15:00.500Z");
        assert_eq!(enrich_ledger_key("t1"), "<enrich>|t1");
        assert_eq!(bson_u64(&Bson::Int32(7)), Some(7));
        assert_eq!(bson_u64(&Bson::Double(2.0)), Some(2));
        assert_eq!(bson_u64(&Bson::Int64(-1)), None);
        assert_eq!(bson_u64(&Bson::Null), None);
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        assert_eq!(
            top_item_id("ana", TimeRange::ShortTerm, day, 7),
            "ana|short_term|2024-03-01|7"
        );
        assert_eq!(artist_track_link_id("ana|x", "art1"), "ana|x|art1");
    }
}
