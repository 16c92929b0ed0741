//! The aggregation pipelines of the derived collections built from rows directly (ArtistTrackLink and
//! the top-tracks and top-artists collections), one per collection. Each runs on the server and ends in
//! `$merge` on `_id` (replace when matched, insert otherwise): re-running with the same raw data
//! replaces every document by an identical one, which changes nothing; new plays change exactly the
//! documents they touch. Sets (`listeners`, `tracks`) are sorted so that their order is stable too.
//! The caller puts a `$match` on the build's key in front, to rebuild only what new rows touch.
//!
//! Written for MongoDB proper (5.2 or later, for `$sortArray`); the dev server runs them unchanged.

use earshot_core::mongo;
use mongodb::bson::{Bson, Document, doc};

/// A derived collection, the raw collection it is built from, and its pipeline.
#[derive(Debug, Clone)]
pub struct Build {
    /// Collection written.
    pub into: &'static str,
    /// Collection aggregated.
    pub from: &'static str,
    /// The stages, ending in `$merge`.
    pub pipeline: Vec<Document>,
    /// The field of `from` that names what a row touches: a build rebuilds the documents of the key
    /// values new rows carry (every row of those values is aggregated again), e.g. `track_id` for
    /// Tracks, `_id` for ArtistTrackLink (whose new rows are just added).
    pub key: &'static str,
    /// Whether the pipeline groups rows (so a full build runs in batches of key values, which bounds
    /// the server's memory) or only reshapes them row by row (and runs over all rows at once).
    pub groups: bool,
    /// For a list key (`artist_ids`): the field each unwound row groups by (`artist_id`). A row names
    /// several artists, so the rows of the wanted artists also carry others; only the wanted ones are
    /// grouped, or an artist would be rebuilt from the few rows it shares with another.
    pub group_key: Option<&'static str>,
    /// For a build that groups: the field of a derived document that holds the key value it was
    /// grouped from (`_id`, or `album_id` for images). A batch first removes the documents of its key
    /// values, so that a value whose rows are all gone (an erase) leaves no document behind.
    pub owned_by: Option<&'static str>,
}

pub(crate) fn merge(into: &str) -> Document {
    doc! {"$merge": {"into": into, "on": "_id", "whenMatched": "replace", "whenNotMatched": "insert"}}
}

/// A set from `$addToSet` (whose order MongoDB leaves unspecified) in ascending order, so that a
/// re-run writes an identical document. `$sortArray` needs MongoDB 5.2 or later.
pub(crate) fn sorted_set(field: &str) -> Bson {
    Bson::Document(doc! {"$sortArray": {"input": format!("${field}"), "sortBy": 1}})
}

/// One document per album image URL, from rows that carry `album_id` and `images`, latest by `sort`.
fn images_by_url(sort: &str, into: &str) -> Vec<Document> {
    vec![
        doc! {"$match": {"album_id": {"$type": "string"}}},
        doc! {"$unwind": "$images"},
        doc! {"$sort": {sort: 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$images.url",
            "album_id": {"$last": "$album_id"},
            "height": {"$last": "$images.height"},
            "width": {"$last": "$images.width"},
        }},
        merge(into),
    ]
}

/// One row per (play, artist) with the artist's position: `$unwind` with the index keeps each id with
/// its own name and URL (the original built Artists from a cross product of the two lists).
pub(crate) fn unwind_artists() -> Vec<Document> {
    vec![
        doc! {"$unwind": {"path": "$artist_ids", "includeArrayIndex": "artist_position"}},
        doc! {"$match": {"artist_ids": {"$type": "string"}}},
        doc! {"$set": {
            "artist_id": "$artist_ids",
            "artist_name": {"$arrayElemAt": ["$artist_names", "$artist_position"]},
            "artist_url": {"$arrayElemAt": ["$artist_urls", "$artist_position"]},
        }},
    ]
}

/// ArtistTrackLink, from `rawdata_recentlyplayed` (the collections that sum over plays are folded from
/// per-day partials: [`crate::daily`]).
pub fn recently_played() -> Vec<Build> {
    vec![Build {
        into: mongo::ARTIST_TRACK_LINK,
        from: mongo::RAW_RECENTLY_PLAYED,
        pipeline: artist_track_links(),
        key: "_id",
        groups: false,
        group_key: None,
        owned_by: None,
    }]
}

/// One document per (play, artist), `_id` by core's formula. A play from beyond Spotify credits its
/// artists by name only: its links have a null `artist_id`, and `artist_key` (the name normalised) in
/// the `_id` instead; the metric views meet them with the Spotify artist of the same key.
fn artist_track_links() -> Vec<Document> {
    let external: Vec<&str> = earshot_core::records::PlaySource::ALL
        .iter()
        .filter(|s| s.is_external())
        .map(|s| s.as_str())
        .collect();
    let links = vec![
        doc! {"$unwind": {"path": "$artist_ids", "includeArrayIndex": "artist_position"}},
        doc! {"$set": {"artist_key": {"$arrayElemAt": ["$artist_keys", "$artist_position"]}}},
        doc! {"$match": {"$or": [
            {"artist_ids": {"$type": "string"}},
            {"source": {"$in": external}, "artist_key": {"$type": "string", "$ne": ""}},
        ]}},
        doc! {"$set": {
            "artist_id": "$artist_ids",
            "artist_name": {"$arrayElemAt": ["$artist_names", "$artist_position"]},
        }},
        doc! {"$project": {
            "_id": {"$concat": [
                "$_id",
                mongo::ID_SEPARATOR,
                {"$ifNull": ["$artist_ids", {"$concat": [NAME_KEY_PREFIX, "$artist_key"]}]},
            ]},
            "play_id": "$_id",
            "user_id": 1,
            "track_id": 1,
            "artist_id": 1,
            "artist_name": 1,
            "artist_key": 1,
            "played_at": 1,
            // The play's length, so per-artist minutes need no join back to the plays.
            "duration_ms": 1,
        }},
        merge(mongo::ARTIST_TRACK_LINK),
    ];
    links
}

/// The prefix of an artist known by name only (earshot-core's `recording::NAME_PREFIX`).
const NAME_KEY_PREFIX: &str = earshot_core::recording::NAME_PREFIX;

/// t50_Tracks, t50_Artists and t50_Images, from `rawdata_toptracks`.
pub fn top_tracks() -> Vec<Build> {
    let from = mongo::RAW_TOP_TRACKS;
    let rows = vec![
        doc! {"$project": {
            "user_id": 1, "user_name": 1, "time_range": 1, "date_data_fetched": 1, "rank": 1,
            "track_id": 1, "track_name": 1, "clean_track_name": 1, "artist_song_name": 1,
            "artist_ids": 1, "artist_names": 1, "album_id": 1, "album_name": 1,
            "duration_ms": 1, "duration": 1, "popularity": 1, "explicit": 1, "track_url": 1,
        }},
        merge(mongo::T50_TRACKS),
    ];
    let mut artists = vec![doc! {"$sort": {"date_data_fetched": 1, "_id": 1}}];
    artists.extend(unwind_artists());
    artists.extend([
        doc! {"$group": {
            "_id": "$artist_id",
            "artist_name": {"$last": "$artist_name"},
            "artist_url": {"$last": "$artist_url"},
            "appearances": {"$sum": 1},
            "best_rank": {"$min": "$rank"},
            "members": {"$addToSet": "$user_id"},
        }},
        doc! {"$set": {"members": sorted_set("members")}},
        merge(mongo::T50_ARTISTS),
    ]);
    let images = images_by_url("date_data_fetched", mongo::T50_IMAGES);
    vec![
        Build {
            into: mongo::T50_TRACKS,
            from,
            pipeline: rows,
            key: "_id",
            groups: false,
            group_key: None,
            owned_by: None,
        },
        Build {
            into: mongo::T50_ARTISTS,
            from,
            pipeline: artists,
            key: "artist_ids",
            groups: true,
            group_key: Some("artist_id"),
            owned_by: Some("_id"),
        },
        Build {
            into: mongo::T50_IMAGES,
            from,
            pipeline: images,
            key: "album_id",
            groups: true,
            group_key: None,
            owned_by: Some("album_id"),
        },
    ]
}

/// t50_TopArtists (one document per artist in anyone's top artists), from `rawdata_topartists`.
pub fn top_artists() -> Vec<Build> {
    let pipeline = vec![
        doc! {"$sort": {"date_data_fetched": 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$artist_id",
            "artist_name": {"$last": "$artist_name"},
            "artist_url": {"$last": "$artist_url"},
            "genres": {"$last": "$genres"},
            "images": {"$last": "$images"},
            "popularity": {"$max": "$popularity"},
            "best_rank": {"$min": "$rank"},
            "members": {"$addToSet": "$user_id"},
        }},
        doc! {"$set": {"members": sorted_set("members")}},
        merge(mongo::T50_TOP_ARTISTS),
    ];
    vec![Build {
        into: mongo::T50_TOP_ARTISTS,
        from: mongo::RAW_TOP_ARTISTS,
        pipeline,
        key: "artist_id",
        groups: true,
        group_key: None,
        owned_by: Some("_id"),
    }]
}
