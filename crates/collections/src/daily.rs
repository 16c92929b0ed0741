//! The derived collections that sum over plays (`Tracks`, `Albums`, `Artists`, `Images`, `members`),
//! folded from partial documents per (entity, local day).
//!
//! A partial (`Tracks_by_day`, …, named in earshot-core) holds what one local day's plays of one
//! entity sum to, in a form that folds: counts and minutes as sums, first and last plays as min and
//! max, sets (listeners, tracks) as sets, and the fields a derived document takes from the entity's
//! latest play together with that play's `(played_at, _id)`, so that the fold can take the latest
//! partial's. `_id` is `<entity>|<day>`; `e` is the entity, `d` the day.
//!
//! Two aggregations per derived collection:
//! - [`Daily::partial_pipeline`]: a day's plays ([`days_match`]: a bounded range of the `played_at`
//!   index) → the partials of those days, `$merge`d into the partial collection;
//! - [`Daily::fold_pipeline`]: an entity's partials (hundreds of small documents, never its plays) → its
//!   derived document, `$merge`d into the derived collection.
//!
//! The fold gives exactly the document that one aggregation of all of the entity's plays gives (the
//! create-collections test holds them equal, field order and types included): a sum of sums is the
//! sum, the latest of the days' latest plays is the latest play, a union of sets is the set.

use std::collections::{BTreeMap, BTreeSet};

use earshot_core::mongo::{self, PARTIAL_DAY, PARTIAL_ENTITY};
use mongodb::bson::{Bson, DateTime as BsonDateTime, Document, doc};

use crate::pipelines::{merge, sorted_set, unwind_artists};

/// The raw field of a play's local day (`YYYY-MM-DD`, written by the converter).
pub const DAY_FIELD: &str = earshot_core::records::LOCAL_DAY;

/// Which derived collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Tracks`, by `track_key` (the Spotify id, or the recording key of a play from beyond Spotify
    /// without one); local files have none.
    Tracks,
    /// `Albums`, by `album_id`.
    Albums,
    /// `Artists`, by each of `artist_ids`.
    Artists,
    /// `Images`, one document per image URL; its partials are per album (`album_id`).
    Images,
    /// `members`, by `user_id`.
    Members,
}

/// A derived collection folded from per-day partials.
#[derive(Debug, Clone, Copy)]
pub struct Daily {
    /// Which one.
    pub kind: Kind,
    /// The derived collection written.
    pub into: &'static str,
    /// Its partials.
    pub partials: &'static str,
    /// The raw field that names a play's entity (what the upload ledger lists), e.g. `track_id`.
    pub key: &'static str,
    /// The field of a partial whose values are the derived documents' `_id`s: `e`, or for `Images`
    /// the URLs its partials list.
    pub fold_key: &'static str,
}

/// The five, in build order.
pub const DAILY: [Daily; 5] = [
    Daily {
        kind: Kind::Tracks,
        into: mongo::TRACKS,
        partials: mongo::TRACKS_BY_DAY,
        key: "track_key",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Albums,
        into: mongo::ALBUMS,
        partials: mongo::ALBUMS_BY_DAY,
        key: "album_id",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Artists,
        into: mongo::ARTISTS,
        partials: mongo::ARTISTS_BY_DAY,
        key: "artist_ids",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Images,
        into: mongo::IMAGES,
        partials: mongo::IMAGES_BY_DAY,
        key: "album_id",
        fold_key: "images.url",
    },
    Daily {
        kind: Kind::Members,
        into: mongo::MEMBERS,
        partials: mongo::MEMBERS_BY_DAY,
        key: "user_id",
        fold_key: PARTIAL_ENTITY,
    },
];

/// Local days `[from, to)`: `from` and `to` are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    /// The first day.
    pub from: String,
    /// The day after the last.
    pub to: String,
}

/// Local time runs at most this far ahead of UTC (UTC+14, Kiribati).
const MOST_AHEAD_HOURS: i64 = 14;
/// Local time runs at most this far behind UTC (UTC-12).
const MOST_BEHIND_HOURS: i64 = 12;

/// The plays of local days `ranges`: `local_day` from `YYYY-MM-DD` up to the day after, read through the
/// `played_at` index over the instants those days span in any time zone (from 14 hours before the
/// first day's midnight UTC to 12 hours after the last day's end). So a day is the day the converter
/// wrote, whatever zone it wrote it in, and no other index is needed.
pub fn days_match(ranges: &[DayRange]) -> Document {
    let mut each: Vec<Document> = ranges
        .iter()
        .map(|r| {
            let mut day = doc! {DAY_FIELD: {"$gte": &r.from, "$lt": &r.to}};
            if let (Some(from), Some(to)) = (midnight_utc(&r.from), midnight_utc(&r.to)) {
                let from = from - chrono::Duration::hours(MOST_AHEAD_HOURS);
                let to = to + chrono::Duration::hours(MOST_BEHIND_HOURS);
                day.insert(
                    "played_at",
                    doc! {"$gte": BsonDateTime::from_millis(from.timestamp_millis()), "$lt": BsonDateTime::from_millis(to.timestamp_millis())},
                );
            }
            day
        })
        .collect();
    if each.len() == 1 {
        each.remove(0)
    } else {
        doc! {"$or": each}
    }
}

/// Midnight UTC of `day` (`YYYY-MM-DD`).
fn midnight_utc(day: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// A play's local day.
pub(crate) fn day() -> Bson {
    Bson::String(format!("${DAY_FIELD}"))
}

/// The entities whose partials to rebuild, per local day (`YYYY-MM-DD`).
pub type Wanted = BTreeMap<String, BTreeSet<String>>;

/// True when the document's local day is one of `wanted`'s and `field` (an expression) is one of that
/// day's entities: exactly the plays of the wanted (entity, day) pairs, so that a rebuild of an hour's
/// pairs never reads the other entities' plays of a busy day into its `$group`.
fn wanted_expr(field: &str, wanted: &Wanted) -> Document {
    let branches: Vec<Document> = wanted
        .iter()
        .map(|(day, entities)| {
            let entities: Vec<&String> = entities.iter().collect();
            doc! {"case": {"$eq": ["$$day", day]}, "then": {"$in": [field, entities]}}
        })
        .collect();
    doc! {"$let": {
        "vars": {"day": day()},
        "in": {"$switch": {"branches": branches, "default": false}},
    }}
}

/// `$group` by (entity, day) with `fields`, its `sets` sorted (so that a partial rebuilt from the same
/// plays is the same document), then `e`, `d` and `_id` set, `$merge`d into `partials`.
fn partials_of(entity: &str, fields: Document, sets: &[&str], partials: &str) -> Vec<Document> {
    let mut group = doc! {"_id": {PARTIAL_ENTITY: format!("${entity}"), PARTIAL_DAY: day()}};
    group.extend(fields);
    let sorted: Document = sets
        .iter()
        .map(|s| (s.to_string(), sorted_set(s)))
        .collect();
    vec![
        doc! {"$group": group},
        doc! {"$set": sorted},
        doc! {"$set": {
            PARTIAL_ENTITY: format!("$_id.{PARTIAL_ENTITY}"),
            PARTIAL_DAY: format!("$_id.{PARTIAL_DAY}"),
        }},
        doc! {"$set": {"_id": mongo::partial_id_expr(PARTIAL_ENTITY, PARTIAL_DAY)}},
        merge(partials),
    ]
}

/// The union of the sets a fold `$push`ed (a list of lists), in ascending order.
fn sorted_union(field: &str) -> Bson {
    Bson::Document(doc! {"$sortArray": {
        "input": {"$reduce": {
            "input": format!("${field}"),
            "initialValue": [],
            "in": {"$setUnion": ["$$value", "$$this"]},
        }},
        "sortBy": 1,
    }})
}

/// `{$last: "$<field>"}` for each field: the value of the latest play (or partial).
fn latest(fields: &[&str]) -> Document {
    fields
        .iter()
        .map(|f| {
            (
                f.to_string(),
                Bson::Document(doc! {"$last": format!("${f}")}),
            )
        })
        .collect()
}

const TRACK_FIELDS: &[&str] = &[
    "track_name",
    "clean_track_name",
    "artist_song_name",
    "artist_ids",
    "artist_names",
    "album_id",
    "album_name",
    "duration_ms",
    "duration",
    "explicit",
    "track_url",
    // The recording the track is one release of (earshot-core's `recording`): its ISRC and key.
    "isrc",
    "recording_key",
];
const ALBUM_FIELDS: &[&str] = &[
    "album_name",
    "album_type",
    "release_date",
    "total_tracks",
    "images",
];
const ARTIST_FIELDS: &[&str] = &["artist_name", "artist_url"];

impl Daily {
    /// A filter of the plays of `wanted`'s days down to those naming one of that day's entities, as
    /// an expression, so that no index serves it: the plays are read through the `played_at` index
    /// ([`days_match`]), one day's worth, rather than through the entity's index, which would read
    /// every play of a popular entity (a planner may pick either for a filter it can index). `None`
    /// for `Artists`, whose partial pipeline keeps the wanted artists after unwinding each play's.
    pub fn plays_of(&self, wanted: &Wanted) -> Option<Document> {
        (self.kind != Kind::Artists)
            .then(|| doc! {"$expr": wanted_expr(&format!("${}", self.key), wanted)})
    }

    /// The stages from plays to partials, after the caller's `$match` of days (and entities). For
    /// `Artists`, `wanted` (when given) also keeps only the wanted artists of each play's artists, each
    /// on its days.
    pub fn partial_pipeline(&self, wanted: Option<&Wanted>) -> Vec<Document> {
        let by_time = doc! {"$sort": {"played_at": 1, "_id": 1}};
        match self.kind {
            Kind::Tracks => {
                let mut fields = latest(TRACK_FIELDS);
                fields.extend(doc! {
                    // Highest popularity Spotify returned; null when it never did (unknown, not 0).
                    "popularity": {"$max": "$popularity"},
                    "plays": {"$sum": 1},
                    "listeners": {"$addToSet": "$user_id"},
                    "first_played": {"$min": "$played_at"},
                    "last_played": {"$max": "$played_at"},
                    "last_id": {"$last": "$_id"},
                });
                // Every track but a member's local files: a recording known only from beyond Spotify
                // gets a document of its own, under its recording key.
                let mut stages = vec![
                    doc! {"$match": {"track_key": {"$type": "string"}, "is_local": {"$ne": true}}},
                    by_time,
                ];
                stages.extend(partials_of(
                    "track_key",
                    fields,
                    &["listeners"],
                    self.partials,
                ));
                stages
            }
            Kind::Albums => {
                let mut fields = latest(ALBUM_FIELDS);
                fields.extend(doc! {
                    "plays": {"$sum": 1},
                    "tracks": {"$addToSet": "$track_id"},
                    "last_played": {"$max": "$played_at"},
                    "last_id": {"$last": "$_id"},
                });
                let mut stages = vec![doc! {"$match": {"album_id": {"$type": "string"}}}, by_time];
                stages.extend(partials_of("album_id", fields, &["tracks"], self.partials));
                stages
            }
            Kind::Artists => {
                let mut stages = vec![by_time];
                stages.extend(unwind_artists());
                if let Some(wanted) = wanted {
                    stages.push(doc! {"$match": {"$expr": wanted_expr("$artist_id", wanted)}});
                }
                let mut fields = latest(ARTIST_FIELDS);
                fields.extend(doc! {
                    "plays": {"$sum": 1},
                    "tracks": {"$addToSet": "$track_id"},
                    "listeners": {"$addToSet": "$user_id"},
                    "first_played": {"$min": "$played_at"},
                    "last_played": {"$max": "$played_at"},
                    "last_id": {"$last": "$_id"},
                });
                stages.extend(partials_of(
                    "artist_id",
                    fields,
                    &["tracks", "listeners"],
                    self.partials,
                ));
                stages
            }
            Kind::Images => images_partials(by_time, self.partials),
            Kind::Members => {
                let mut fields = latest(&["user_name"]);
                fields.extend(doc! {
                    "first_play": {"$min": "$played_at"},
                    "last_play": {"$max": "$played_at"},
                    "plays": {"$sum": 1},
                    "listened_ms": {"$sum": "$duration_ms"},
                    "tracks": {"$addToSet": {"$ifNull": ["$track_id", "$track_name"]}},
                    "last_id": {"$last": "$_id"},
                });
                let mut stages = vec![by_time];
                stages.extend(partials_of("user_id", fields, &["tracks"], self.partials));
                stages
            }
        }
    }

    /// The stages from partials to derived documents: those of `keys` (values of [`Daily::fold_key`]),
    /// or of every partial when `None`. Each `$group` lists the fields in the order a build from plays
    /// gives them.
    pub fn fold_pipeline(&self, keys: Option<&[String]>) -> Vec<Document> {
        let mut stages: Vec<Document> = keys
            .map(|k| doc! {"$match": {self.fold_key: {"$in": k}}})
            .into_iter()
            .collect();
        let by_time = doc! {"$sort": {"last_played": 1, "last_id": 1}};
        let entity = format!("${PARTIAL_ENTITY}");
        match self.kind {
            Kind::Tracks => {
                let mut group = doc! {"_id": entity};
                group.extend(latest(TRACK_FIELDS));
                group.extend(doc! {
                    "popularity": {"$max": "$popularity"},
                    "plays": {"$sum": "$plays"},
                    "listeners": {"$push": "$listeners"},
                    "first_played": {"$min": "$first_played"},
                    "last_played": {"$max": "$last_played"},
                });
                stages.extend([
                    by_time,
                    doc! {"$group": group},
                    doc! {"$set": {"listeners": sorted_union("listeners")}},
                ]);
            }
            Kind::Albums => {
                let mut group = doc! {"_id": entity};
                group.extend(latest(ALBUM_FIELDS));
                group.extend(doc! {
                    "plays": {"$sum": "$plays"},
                    "tracks": {"$push": "$tracks"},
                });
                stages.extend([
                    by_time,
                    doc! {"$group": group},
                    doc! {"$set": {"tracks": sorted_union("tracks")}},
                ]);
            }
            Kind::Artists => {
                let mut group = doc! {"_id": entity};
                group.extend(latest(ARTIST_FIELDS));
                group.extend(doc! {
                    "plays": {"$sum": "$plays"},
                    "tracks": {"$push": "$tracks"},
                    "listeners": {"$push": "$listeners"},
                    "first_played": {"$min": "$first_played"},
                    "last_played": {"$max": "$last_played"},
                });
                stages.extend([
                    by_time,
                    doc! {"$group": group},
                    doc! {"$set": {
                        "tracks": sorted_union("tracks"),
                        "listeners": sorted_union("listeners"),
                    }},
                ]);
            }
            Kind::Images => {
                stages.push(doc! {"$unwind": "$images"});
                if let Some(keys) = keys {
                    stages.push(doc! {"$match": {"images.url": {"$in": keys}}});
                }
                stages.extend([
                    doc! {"$sort": {"images.last_played": 1, "images.last_id": 1}},
                    doc! {"$group": {
                        "_id": "$images.url",
                        "album_id": {"$last": entity},
                        "height": {"$last": "$images.height"},
                        "width": {"$last": "$images.width"},
                    }},
                ]);
            }
            Kind::Members => stages.extend(fold_members()),
        }
        stages.push(merge(self.into));
        stages
    }
}

/// Images' partials: per (album, day, URL) the last play carrying the URL, then one partial per
/// (album, day) listing them.
fn images_partials(by_time: Document, partials: &str) -> Vec<Document> {
    let url_day = doc! {
        PARTIAL_ENTITY: "$album_id",
        PARTIAL_DAY: day(),
        "url": "$images.url",
    };
    vec![
        doc! {"$match": {"album_id": {"$type": "string"}}},
        doc! {"$unwind": "$images"},
        by_time,
        doc! {"$group": {
            "_id": url_day,
            "height": {"$last": "$images.height"},
            "width": {"$last": "$images.width"},
            "last_played": {"$last": "$played_at"},
            "last_id": {"$last": "$_id"},
        }},
        doc! {"$sort": {"_id.url": 1}},
        doc! {"$group": {
            "_id": {
                PARTIAL_ENTITY: format!("$_id.{PARTIAL_ENTITY}"),
                PARTIAL_DAY: format!("$_id.{PARTIAL_DAY}"),
            },
            "images": {"$push": {
                "url": "$_id.url",
                "height": "$height",
                "width": "$width",
                "last_played": "$last_played",
                "last_id": "$last_id",
            }},
        }},
        doc! {"$set": {
            PARTIAL_ENTITY: format!("$_id.{PARTIAL_ENTITY}"),
            PARTIAL_DAY: format!("$_id.{PARTIAL_DAY}"),
        }},
        doc! {"$set": {"_id": mongo::partial_id_expr(PARTIAL_ENTITY, PARTIAL_DAY)}},
        merge(partials),
    ]
}

/// The fold of `members`: the latest name, first and last play, plays and minutes summed, the union
/// of tracks counted.
fn fold_members() -> Vec<Document> {
    let mut group = doc! {"_id": format!("${PARTIAL_ENTITY}")};
    group.extend(latest(&["user_name"]));
    group.extend(doc! {
        "first_play": {"$min": "$first_play"},
        "last_play": {"$max": "$last_play"},
        "plays": {"$sum": "$plays"},
        "listened_ms": {"$sum": "$listened_ms"},
        "tracks": {"$push": "$tracks"},
    });
    vec![
        doc! {"$sort": {"last_play": 1, "last_id": 1}},
        doc! {"$group": group},
        doc! {"$set": {"unique_tracks": {"$size": {"$reduce": {
            "input": "$tracks",
            "initialValue": [],
            "in": {"$setUnion": ["$$value", "$$this"]},
        }}}}},
        doc! {"$unset": "tracks"},
    ]
}
