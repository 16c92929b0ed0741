//! The derived collections that sum over plays (`Tracks`, `Albums`, `Artists`, `Images`, `members`),
//! folded from partial documents per (entity, local day).
//!
//! A day partial (`Tracks_by_day`, …, named in earshot-core) holds what one member's plays of one
//! entity on one local day sum to, in a form that folds: counts and minutes as sums, first and last
//! plays as min and max, sets (listeners, tracks) as sets, and the fields a derived document takes
//! from the entity's latest play together with that play's `(played_at, _id)`, so that a fold can take
//! the latest partial's. `_id` is `<entity>|<day>|<member>`; `e` is the entity, `d` the day, `m` the
//! member. A monthly partial (`Tracks_by_month`, …) has the same fields, folded from the month's day
//! partials; `_id` is `<entity>|<month>`, and `d` the month (`YYYY-MM`).
//!
//! Three aggregations per derived collection:
//! - [`Daily::partial_pipeline`]: a day's plays ([`days_match`]: a bounded range of the `played_at`
//!   index) → the day partials of those days, `$merge`d into the day partials;
//! - [`Daily::month_pipeline`]: an entity's day partials of one month (at most 31 a member) → its
//!   monthly partial;
//! - [`Daily::fold_pipeline`]: an entity's monthly partials (one a month, never its days or plays) →
//!   its derived document, `$merge`d into the derived collection.
//!
//! So an entity played today costs a month of its day partials and one partial per month, whatever
//! its history; and a member's share of every entity is their own day partials, which an erase
//! removes before folding the months and entities they were part of again, without reading a play.
//!
//! The fold gives exactly the document that one aggregation of all of the entity's plays gives (the
//! create-collections test holds them equal, field order and types included): a sum of sums is the
//! sum, the latest of the days' latest plays is the latest play, a union of sets is the set.

use std::collections::{BTreeMap, BTreeSet};

use earshot_core::mongo::{self, PARTIAL_DAY, PARTIAL_ENTITY, PARTIAL_MEMBER};
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
    /// Its day partials, one per (entity, local day, member).
    pub partials: &'static str,
    /// Its monthly partials, one per (entity, month), folded from the day partials.
    pub months: &'static str,
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
        months: mongo::TRACKS_BY_MONTH,
        key: "track_key",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Albums,
        into: mongo::ALBUMS,
        partials: mongo::ALBUMS_BY_DAY,
        months: mongo::ALBUMS_BY_MONTH,
        key: "album_id",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Artists,
        into: mongo::ARTISTS,
        partials: mongo::ARTISTS_BY_DAY,
        months: mongo::ARTISTS_BY_MONTH,
        key: "artist_ids",
        fold_key: PARTIAL_ENTITY,
    },
    Daily {
        kind: Kind::Images,
        into: mongo::IMAGES,
        partials: mongo::IMAGES_BY_DAY,
        months: mongo::IMAGES_BY_MONTH,
        key: "album_id",
        fold_key: "images.url",
    },
    Daily {
        kind: Kind::Members,
        into: mongo::MEMBERS,
        partials: mongo::MEMBERS_BY_DAY,
        months: mongo::MEMBERS_BY_MONTH,
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

/// A day partial's key fields: entity, day and member.
const DAY_KEY: &[&str] = &[PARTIAL_ENTITY, PARTIAL_DAY, PARTIAL_MEMBER];
/// A monthly partial's key fields: entity and month.
const MONTH_KEY: &[&str] = &[PARTIAL_ENTITY, PARTIAL_DAY];

/// The stages that give a partial its key fields (`key`, from the `$group`'s `_id`) and its `_id`
/// (them joined), then `$merge` it into `into`.
fn keyed_into(key: &[&str], into: &str) -> Vec<Document> {
    let fields: Document = key
        .iter()
        .map(|f| (f.to_string(), Bson::String(format!("$_id.{f}"))))
        .collect();
    vec![
        doc! {"$set": fields},
        doc! {"$set": {"_id": mongo::partial_id_expr(key)}},
        merge(into),
    ]
}

/// `$group` by (entity, day, member) with `fields`, its `sets` sorted (so that a partial rebuilt from
/// the same plays is the same document), then `e`, `d`, `m` and `_id` set, `$merge`d into `partials`.
fn partials_of(entity: &str, fields: Document, sets: &[&str], partials: &str) -> Vec<Document> {
    let mut group = doc! {"_id": {
        PARTIAL_ENTITY: format!("${entity}"),
        PARTIAL_DAY: day(),
        PARTIAL_MEMBER: "$user_id",
    }};
    group.extend(fields);
    let sorted: Document = sets
        .iter()
        .map(|s| (s.to_string(), sorted_set(s)))
        .collect();
    let mut stages = vec![doc! {"$group": group}, doc! {"$set": sorted}];
    stages.extend(keyed_into(DAY_KEY, partials));
    stages
}

/// A partial's month: the first seven characters of its day.
fn month_of_day() -> Bson {
    Bson::Document(doc! {"$substrCP": [format!("${PARTIAL_DAY}"), 0, 7]})
}

/// How partials of one kind fold: the order to read them in (oldest latest play first), the field
/// holding a partial's latest play, the accumulators of a `$group` over them in the order a derived
/// document lists its fields, and which of those `$push` sets to union.
struct PartialFold {
    by_time: Document,
    time: &'static str,
    fields: Document,
    sets: &'static [&'static str],
}

/// The union of each of `sets` (each a list of the sets a fold `$push`ed).
fn unions(sets: &[&str]) -> Document {
    sets.iter()
        .map(|s| (s.to_string(), sorted_union(s)))
        .collect()
}

/// How `kind`'s partials fold (`Images` fold by URL, in [`images_fold`]).
fn partial_fold(kind: Kind) -> PartialFold {
    let by_time = doc! {"$sort": {"last_played": 1, "last_id": 1}};
    match kind {
        Kind::Tracks => {
            let mut fields = latest(TRACK_FIELDS);
            fields.extend(doc! {
                "popularity": {"$max": "$popularity"},
                "plays": {"$sum": "$plays"},
                "listeners": {"$push": "$listeners"},
                "first_played": {"$min": "$first_played"},
                "last_played": {"$max": "$last_played"},
            });
            PartialFold {
                by_time,
                time: "last_played",
                fields,
                sets: &["listeners"],
            }
        }
        Kind::Albums => {
            let mut fields = latest(ALBUM_FIELDS);
            fields.extend(doc! {
                "plays": {"$sum": "$plays"},
                "tracks": {"$push": "$tracks"},
            });
            PartialFold {
                by_time,
                time: "last_played",
                fields,
                sets: &["tracks"],
            }
        }
        Kind::Artists => {
            let mut fields = latest(ARTIST_FIELDS);
            fields.extend(doc! {
                "plays": {"$sum": "$plays"},
                "tracks": {"$push": "$tracks"},
                "listeners": {"$push": "$listeners"},
                "first_played": {"$min": "$first_played"},
                "last_played": {"$max": "$last_played"},
            });
            PartialFold {
                by_time,
                time: "last_played",
                fields,
                sets: &["tracks", "listeners"],
            }
        }
        Kind::Members => {
            let mut fields = latest(&["user_name"]);
            fields.extend(doc! {
                "first_play": {"$min": "$first_play"},
                "last_play": {"$max": "$last_play"},
                "plays": {"$sum": "$plays"},
                "listened_ms": {"$sum": "$listened_ms"},
                "tracks": {"$push": "$tracks"},
            });
            PartialFold {
                by_time: doc! {"$sort": {"last_play": 1, "last_id": 1}},
                time: "last_play",
                fields,
                sets: &["tracks"],
            }
        }
        Kind::Images => unreachable!("images fold by URL: images_fold"),
    }
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
            Kind::Images => images_partials(self.partials),
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

    /// The stages from the day partials of `months` (each month with its entities) to their monthly
    /// partials, `$merge`d into [`Daily::months`]: each (entity, month)'s day partials folded, with
    /// the latest play's time and `_id` kept so that the months fold in turn. `None` folds every day
    /// partial the caller's `$match` passes (a rebuild, in batches of entities).
    pub fn month_pipeline(&self, months: Option<&Wanted>) -> Vec<Document> {
        let mut stages: Vec<Document> = months
            .map(|months| doc! {"$match": months_match(months)})
            .into_iter()
            .collect();
        let key = doc! {PARTIAL_ENTITY: format!("${PARTIAL_ENTITY}"), PARTIAL_DAY: month_of_day()};
        if self.kind == Kind::Images {
            stages.extend(images_listed(
                key,
                doc! {
                    "height": {"$last": "$images.height"},
                    "width": {"$last": "$images.width"},
                    "last_played": {"$last": "$images.last_played"},
                    "last_id": {"$last": "$images.last_id"},
                },
            ));
            stages.extend(keyed_into(MONTH_KEY, self.months));
            return stages;
        }
        let fold = partial_fold(self.kind);
        let mut group = doc! {"_id": key};
        group.extend(fold.fields);
        if !group.contains_key(fold.time) {
            group.insert(fold.time, doc! {"$max": format!("${}", fold.time)});
        }
        group.insert("last_id", doc! {"$last": "$last_id"});
        stages.extend([
            fold.by_time,
            doc! {"$group": group},
            doc! {"$set": unions(fold.sets)},
        ]);
        stages.extend(keyed_into(MONTH_KEY, self.months));
        stages
    }

    /// The stages from monthly partials to derived documents: those of `keys` (values of
    /// [`Daily::fold_key`]), or of every partial when `None`. Each `$group` lists the fields in the
    /// order a build from plays gives them.
    pub fn fold_pipeline(&self, keys: Option<&[String]>) -> Vec<Document> {
        let mut stages: Vec<Document> = keys
            .map(|k| doc! {"$match": {self.fold_key: {"$in": k}}})
            .into_iter()
            .collect();
        match self.kind {
            Kind::Images => {
                stages.push(doc! {"$unwind": "$images"});
                if let Some(keys) = keys {
                    stages.push(doc! {"$match": {"images.url": {"$in": keys}}});
                }
                stages.extend([
                    doc! {"$sort": {"images.last_played": 1, "images.last_id": 1}},
                    doc! {"$group": {
                        "_id": "$images.url",
                        "album_id": {"$last": format!("${PARTIAL_ENTITY}")},
                        "height": {"$last": "$images.height"},
                        "width": {"$last": "$images.width"},
                    }},
                ]);
            }
            kind => {
                let fold = partial_fold(kind);
                let mut group = doc! {"_id": format!("${PARTIAL_ENTITY}")};
                group.extend(fold.fields);
                stages.extend([
                    fold.by_time,
                    doc! {"$group": group},
                    doc! {"$set": unions(fold.sets)},
                ]);
                if kind == Kind::Members {
                    stages.extend([
                        doc! {"$set": {"unique_tracks": {"$size": "$tracks"}}},
                        doc! {"$unset": "tracks"},
                    ]);
                }
            }
        }
        stages.push(merge(self.into));
        stages
    }
}

/// The day partials of `months`' entities in each month: the (entity, day) index read over each
/// month's days.
fn months_match(months: &Wanted) -> Document {
    let each: Vec<Document> = months
        .iter()
        .map(|(month, entities)| {
            let entities: Vec<&String> = entities.iter().collect();
            doc! {
                PARTIAL_ENTITY: {"$in": entities},
                PARTIAL_DAY: {"$gte": format!("{month}-01"), "$lt": format!("{month}-32")},
            }
        })
        .collect();
    match <[Document; 1]>::try_from(each) {
        Ok([one]) => one,
        Err(each) => doc! {"$or": each},
    }
}

/// The month (`YYYY-MM`) of each day of `wanted`, with the entities wanted on its days.
pub fn months_of(wanted: &Wanted) -> Wanted {
    let mut months = Wanted::new();
    for (day, entities) in wanted {
        if let Some(month) = day.get(..7) {
            months
                .entry(month.to_string())
                .or_default()
                .extend(entities.iter().cloned());
        }
    }
    months
}

/// Images listed per album: each URL's latest occurrence under `key` (an `_id` of entity and day or
/// month, the member too for a day partial) from `$images` (unwound, with `latest`'s accumulators),
/// then one document per `key` listing its URLs in order.
fn images_listed(key: Document, latest: Document) -> Vec<Document> {
    let mut by_url = key.clone();
    by_url.insert("url", "$images.url");
    let mut group = doc! {"_id": by_url};
    group.extend(latest);
    let outer: Document = key
        .keys()
        .map(|k| (k.clone(), Bson::String(format!("$_id.{k}"))))
        .collect();
    vec![
        doc! {"$unwind": "$images"},
        doc! {"$sort": {"images.last_played": 1, "images.last_id": 1}},
        doc! {"$group": group},
        doc! {"$sort": {"_id.url": 1}},
        doc! {"$group": {
            "_id": outer,
            "images": {"$push": {
                "url": "$_id.url",
                "height": "$height",
                "width": "$width",
                "last_played": "$last_played",
                "last_id": "$last_id",
            }},
        }},
    ]
}

/// Images' day partials: per (album, day, member, URL) the last play carrying the URL, then one
/// partial per (album, day, member) listing them.
fn images_partials(partials: &str) -> Vec<Document> {
    let mut stages = vec![
        doc! {"$match": {"album_id": {"$type": "string"}}},
        // A play's images as its partials list them, so that the listing reads plays and partials
        // alike.
        doc! {"$set": {"images": {"$map": {"input": "$images", "in": {
            "url": "$$this.url",
            "height": "$$this.height",
            "width": "$$this.width",
            "last_played": "$played_at",
            "last_id": "$_id",
        }}}}},
    ];
    stages.extend(images_listed(
        doc! {
            PARTIAL_ENTITY: "$album_id",
            PARTIAL_DAY: day(),
            PARTIAL_MEMBER: "$user_id",
        },
        doc! {
            "height": {"$last": "$images.height"},
            "width": {"$last": "$images.width"},
            "last_played": {"$last": "$images.last_played"},
            "last_id": {"$last": "$images.last_id"},
        },
    ));
    stages.extend(keyed_into(DAY_KEY, partials));
    stages
}
