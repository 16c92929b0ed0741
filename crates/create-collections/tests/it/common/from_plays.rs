//! The definition the builds are held to: every derived collection as one aggregation over all of its
//! rows computes it. For the collections folded from per-day partials, these are the pipelines that
//! built them from plays before the partials existed (issue #23 keeps their documents byte for byte);
//! for the others, each build's own pipeline run over every row at once.

use std::collections::BTreeMap;

use earshot_core::layout::Target;
use earshot_core::mongo;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

fn sorted_set(field: &str) -> Bson {
    Bson::Document(doc! {"$sortArray": {"input": format!("${field}"), "sortBy": 1}})
}

fn unwind_artists() -> Vec<Document> {
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

fn tracks() -> Vec<Document> {
    vec![
        doc! {"$match": {"track_key": {"$type": "string"}, "is_local": {"$ne": true}}},
        doc! {"$sort": {"played_at": 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$track_key",
            "track_name": {"$last": "$track_name"},
            "clean_track_name": {"$last": "$clean_track_name"},
            "artist_song_name": {"$last": "$artist_song_name"},
            "artist_ids": {"$last": "$artist_ids"},
            "artist_names": {"$last": "$artist_names"},
            "album_id": {"$last": "$album_id"},
            "album_name": {"$last": "$album_name"},
            "duration_ms": {"$last": "$duration_ms"},
            "duration": {"$last": "$duration"},
            "explicit": {"$last": "$explicit"},
            "track_url": {"$last": "$track_url"},
            "isrc": {"$last": "$isrc"},
            "recording_key": {"$last": "$recording_key"},
            "popularity": {"$max": "$popularity"},
            "plays": {"$sum": 1},
            "listeners": {"$addToSet": "$user_id"},
            "first_played": {"$min": "$played_at"},
            "last_played": {"$max": "$played_at"},
        }},
        doc! {"$set": {"listeners": sorted_set("listeners")}},
    ]
}

fn albums() -> Vec<Document> {
    vec![
        doc! {"$match": {"album_id": {"$type": "string"}}},
        doc! {"$sort": {"played_at": 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$album_id",
            "album_name": {"$last": "$album_name"},
            "album_type": {"$last": "$album_type"},
            "release_date": {"$last": "$release_date"},
            "total_tracks": {"$last": "$total_tracks"},
            "images": {"$last": "$images"},
            "plays": {"$sum": 1},
            "tracks": {"$addToSet": "$track_id"},
        }},
        doc! {"$set": {"tracks": sorted_set("tracks")}},
    ]
}

fn artists() -> Vec<Document> {
    let mut artists = vec![doc! {"$sort": {"played_at": 1, "_id": 1}}];
    artists.extend(unwind_artists());
    artists.extend([
        doc! {"$group": {
            "_id": "$artist_id",
            "artist_name": {"$last": "$artist_name"},
            "artist_url": {"$last": "$artist_url"},
            "plays": {"$sum": 1},
            "tracks": {"$addToSet": "$track_id"},
            "listeners": {"$addToSet": "$user_id"},
            "first_played": {"$min": "$played_at"},
            "last_played": {"$max": "$played_at"},
        }},
        doc! {"$set": {"tracks": sorted_set("tracks"), "listeners": sorted_set("listeners")}},
    ]);
    artists
}

fn images() -> Vec<Document> {
    vec![
        doc! {"$match": {"album_id": {"$type": "string"}}},
        doc! {"$unwind": "$images"},
        doc! {"$sort": {"played_at": 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$images.url",
            "album_id": {"$last": "$album_id"},
            "height": {"$last": "$images.height"},
            "width": {"$last": "$images.width"},
        }},
    ]
}

fn members() -> Vec<Document> {
    vec![
        doc! {"$sort": {"played_at": 1, "_id": 1}},
        doc! {"$group": {
            "_id": "$user_id",
            "user_name": {"$last": "$user_name"},
            "first_play": {"$min": "$played_at"},
            "last_play": {"$max": "$played_at"},
            "plays": {"$sum": 1},
            "listened_ms": {"$sum": "$duration_ms"},
            "tracks": {"$addToSet": {"$ifNull": ["$track_id", "$track_name"]}},
        }},
        doc! {"$set": {"unique_tracks": {"$size": "$tracks"}}},
        doc! {"$unset": "tracks"},
    ]
}

/// Every derived collection as the one aggregation from its rows gives it, as canonical text
/// (documents sorted by `_id`, relaxed extended JSON), without writing anything. `members` lacks the
/// members without plays, which the builds add.
pub(crate) async fn reference(db: &Database) -> BTreeMap<String, Vec<String>> {
    let mut all: Vec<(&str, &str, Vec<Document>)> = vec![
        (mongo::TRACKS, mongo::RAW_RECENTLY_PLAYED, tracks()),
        (mongo::ALBUMS, mongo::RAW_RECENTLY_PLAYED, albums()),
        (mongo::ARTISTS, mongo::RAW_RECENTLY_PLAYED, artists()),
        (mongo::IMAGES, mongo::RAW_RECENTLY_PLAYED, images()),
        (mongo::MEMBERS, mongo::RAW_RECENTLY_PLAYED, members()),
    ];
    for build in earshot_collections::builds(Target::All) {
        let mut pipeline = build.pipeline.clone();
        assert!(pipeline.pop().unwrap().contains_key("$merge"));
        all.push((build.into, build.from, pipeline));
    }
    let mut out = BTreeMap::new();
    for (into, from, mut pipeline) in all {
        pipeline.push(doc! {"$sort": {"_id": 1}});
        let mut cursor = db
            .collection::<Document>(from)
            .aggregate(pipeline)
            .allow_disk_use(true)
            .await
            .unwrap();
        let mut documents = Vec::new();
        while cursor.advance().await.unwrap() {
            let document = cursor.deserialize_current().unwrap();
            documents.push(Bson::Document(document).into_relaxed_extjson().to_string());
        }
        out.insert(into.to_string(), documents);
    }
    out
}
