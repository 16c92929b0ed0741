//! Every query in crates/create-collections/README.md ("Queries") runs on the fixture group and gives
//! the answer the README states, which the fixture facts hold.

use crate::common;

use std::collections::BTreeMap;

use earshot_collections::build;
use earshot_core::layout::Target;
use earshot_testkit::fixtures::{fact, fact_count};
use mongodb::bson::{Bson, Document};

/// `(name, collection, pipeline)` of each `// query: name` block in the README. mongosh's
/// `ISODate("…")` becomes extended JSON `{"$date": "…"}`.
fn readme_queries() -> Vec<(String, String, Vec<Document>)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = Vec::new();
    for block in readme.split("// query: ").skip(1) {
        let (name, rest) = block.split_once('\n').unwrap();
        let body = &rest[..rest.find("```").expect("a query block ends with ```")];
        let call = body
            .trim()
            .strip_prefix("db.")
            .expect("a query starts with db.");
        let (collection, args) = call
            .split_once(".aggregate(")
            .expect("queries are aggregations");
        let json = args
            .trim()
            .strip_suffix(')')
            .expect("the call closes")
            .replace("ISODate(", "{\"$date\": ")
            .replace("Z\")", "Z\"}");
        let stages: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("query `{name}`: {e}\n{json}"));
        let pipeline = stages
            .as_array()
            .unwrap()
            .iter()
            .map(|stage| match Bson::try_from(stage.clone()).unwrap() {
                Bson::Document(d) => d,
                other => panic!("query `{name}`: a stage is not a document: {other}"),
            })
            .collect();
        out.push((name.trim().to_string(), collection.to_string(), pipeline));
    }
    out
}

/// `name [id] (n)` from a fact → (name, id, n).
fn track_fact(key: &str) -> (String, String, i32) {
    let value = fact(key);
    let (label, count) = value.rsplit_once(" (").unwrap();
    let (name, id) = label.rsplit_once(" [").unwrap();
    (
        name.to_string(),
        id.trim_end_matches(']').to_string(),
        count.trim_end_matches(')').parse().unwrap(),
    )
}

#[tokio::test]
async fn every_readme_query_gives_its_documented_answer() {
    let (db, _dir, _storage) = common::loaded_database("readme_queries").await;
    build(&db, Target::All, &common::group()).await.unwrap();
    let queries = readme_queries();
    let names: Vec<&str> = queries.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "top-listeners-of-a-track",
            "plays-per-member-in-a-week",
            "group-top-track",
            "each-members-top-track",
            "tracks-everyone-played",
            "members-by-plays"
        ]
    );
    for (name, collection, pipeline) in queries {
        let mut cursor = db
            .collection::<Document>(&collection)
            .aggregate(pipeline)
            .await
            .unwrap();
        let mut rows = Vec::new();
        while cursor.advance().await.unwrap() {
            rows.push(cursor.deserialize_current().unwrap());
        }
        let by_id: BTreeMap<String, &Document> = rows
            .iter()
            .map(|r| {
                (
                    r.get("_id")
                        .map(|b| b.to_string().trim_matches('"').to_string())
                        .unwrap_or_default(),
                    r,
                )
            })
            .collect();
        match name.as_str() {
            "top-listeners-of-a-track" => {
                // Fact: "Midnight Avenue [9kYb…]: ana.mx / emi (20)".
                assert!(fact("most_played_track.top_listener").ends_with(": ana.mx / emi (20)"));
                assert_eq!(rows[0].get_str("_id").unwrap(), "Ana");
                assert_eq!(rows[1].get_str("_id").unwrap(), "Emi 🎧");
                assert_eq!(
                    (
                        rows[0].get_i32("plays").unwrap(),
                        rows[1].get_i32("plays").unwrap()
                    ),
                    (20, 20)
                );
                assert!(rows[2].get_i32("plays").unwrap() < 20);
            }
            "plays-per-member-in-a-week" => {
                assert_eq!(rows.len(), 5);
                for (id, row) in &by_id {
                    assert_eq!(
                        row.get_i32("plays").unwrap() as usize,
                        fact_count(&format!("week_2024_10_28.{id}")),
                        "{id}"
                    );
                }
            }
            "group-top-track" => {
                let (track, id, plays) = track_fact("top_track.group");
                assert_eq!(rows[0].get_str("_id").unwrap(), id);
                assert_eq!(rows[0].get_str("track_name").unwrap(), track);
                assert_eq!(rows[0].get_i32("plays").unwrap(), plays);
            }
            "each-members-top-track" => {
                assert_eq!(rows.len(), 5);
                for (member, row) in &by_id {
                    let (track, id, plays) = track_fact(&format!("top_track.{member}"));
                    assert_eq!(
                        (
                            row.get_str("track").unwrap(),
                            row.get_str("track_id").unwrap(),
                            row.get_i32("plays").unwrap()
                        ),
                        (track.as_str(), id.as_str(), plays),
                        "{member}"
                    );
                }
            }
            "tracks-everyone-played" => {
                assert_eq!(
                    rows[0].get_i32("tracks").unwrap() as usize,
                    fact_count("shared.by_everyone")
                );
            }
            "members-by-plays" => {
                let order: Vec<&str> = rows.iter().map(|r| r.get_str("_id").unwrap()).collect();
                // The sixth friend, who scrobbles, has nothing in this pipeline: listed last, 0 plays.
                assert_eq!(
                    order,
                    ["dev.p", "ana.mx", "ben_k", "chloe-r", "emi", "fern"]
                );
                for row in &rows {
                    let id = row.get_str("_id").unwrap();
                    let expected = if id == "fern" {
                        0
                    } else {
                        fact_count(&format!("plays.{id}"))
                    };
                    assert_eq!(row.get_i32("plays").unwrap() as usize, expected, "{id}");
                }
            }
            other => panic!("no expected answer for README query `{other}`: add one"),
        }
    }
}
