//! `earshot-demo-summary`: the demo's closing page, read from the collections the pipeline built:
//! who listened most, each member's favourite track, the group chart with who played each track most,
//! and which friends share the most songs. (The `analytics` binary will compute these properly, on
//! polars and Spark; this dev-only page stands in for it in the demo until then, and is not shipped.)
//!
//! Usage: `earshot-demo-summary --mongodb-uri URI --database DB`

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use mongodb::Database;
use mongodb::bson::{Document, doc};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(page) => {
            let _ = std::io::stdout().write_all(page.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("earshot-demo-summary: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn all(db: &Database, collection: &str, pipeline: Vec<Document>) -> Result<Vec<Document>> {
    let mut cursor = db
        .collection::<Document>(collection)
        .aggregate(pipeline)
        .await?;
    let mut rows = Vec::new();
    while cursor.advance().await? {
        rows.push(cursor.deserialize_current()?);
    }
    Ok(rows)
}

async fn run() -> Result<String> {
    let mut args = std::env::args().skip(1);
    let (mut uri, mut database) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mongodb-uri" => uri = args.next(),
            "--database" => database = args.next(),
            other => {
                anyhow::bail!("unknown argument `{other}` (usage: --mongodb-uri URI --database DB)")
            }
        }
    }
    let db = earshot_core::mongo::connect(
        &uri.context("--mongodb-uri")?,
        &database.context("--database")?,
    )
    .await?;
    let mut page = String::new();

    let members = all(
        &db,
        "members",
        vec![doc! {"$sort": {"plays": -1, "_id": 1}}],
    )
    .await?;
    let names: BTreeMap<String, String> = members
        .iter()
        .map(|m| {
            (
                m.get_str("_id").unwrap_or("").to_string(),
                m.get_str("user_name").unwrap_or("").to_string(),
            )
        })
        .collect();
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    writeln!(page, "\nWho listened the most")?;
    for m in &members {
        let minutes = m
            .get_i64("listened_ms")
            .map(|ms| ms / 60_000)
            .or_else(|_| m.get_i32("listened_ms").map(|ms| i64::from(ms) / 60_000))
            .unwrap_or(0);
        writeln!(
            page,
            "  {:<10} {:>5} plays  {:>5} min  {:>4} different tracks",
            name(m.get_str("_id")?),
            m.get_i32("plays")?,
            minutes,
            m.get_i32("unique_tracks")?
        )?;
    }

    writeln!(page, "\nEach friend's most played track")?;
    let favourites = all(
        &db,
        "rawdata_recentlyplayed",
        vec![
            doc! {"$group": {"_id": {"user": "$user_id", "track": {"$ifNull": ["$track_id", "$track_name"]}}, "name": {"$first": "$artist_song_name"}, "plays": {"$sum": 1}}},
            doc! {"$sort": {"plays": -1, "_id.track": 1}},
            doc! {"$group": {"_id": "$_id.user", "track": {"$first": "$name"}, "plays": {"$first": "$plays"}}},
            doc! {"$sort": {"_id": 1}},
        ],
    )
    .await?;
    for f in &favourites {
        writeln!(
            page,
            "  {:<10} {} ({} plays)",
            name(f.get_str("_id")?),
            f.get_str("track")?,
            f.get_i32("plays")?
        )?;
    }

    writeln!(
        page,
        "\nGroup chart: tracks most friends played, then most plays; and who played each most"
    )?;
    let chart = all(
        &db,
        "Tracks",
        vec![
            doc! {"$set": {"listener_count": {"$size": "$listeners"}}},
            doc! {"$sort": {"listener_count": -1, "plays": -1, "_id": 1}},
            doc! {"$limit": 5},
        ],
    )
    .await?;
    for (rank, track) in chart.iter().enumerate() {
        let id = track.get_str("_id")?;
        let top = all(
            &db,
            "rawdata_recentlyplayed",
            vec![
                doc! {"$match": {"track_id": id}},
                doc! {"$group": {"_id": "$user_id", "plays": {"$sum": 1}}},
                doc! {"$sort": {"plays": -1, "_id": 1}},
            ],
        )
        .await?;
        let best = top
            .first()
            .and_then(|r| r.get_i32("plays").ok())
            .unwrap_or(0);
        let leaders: Vec<String> = top
            .iter()
            .filter(|r| r.get_i32("plays").ok() == Some(best))
            .map(|r| name(r.get_str("_id").unwrap_or("")))
            .collect();
        writeln!(
            page,
            "  {}. {} — {} friends, {} plays; most: {} ({})",
            rank + 1,
            track.get_str("artist_song_name")?,
            track.get_i32("listener_count")?,
            track.get_i32("plays")?,
            leaders.join(" & "),
            best
        )?;
    }

    writeln!(
        page,
        "\nWho shares the most songs (distinct tracks both played, Jaccard index)"
    )?;
    let tracks = all(&db, "Tracks", vec![doc! {"$project": {"listeners": 1}}]).await?;
    let mut heard: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for track in &tracks {
        for listener in track.get_array("listeners")? {
            heard
                .entry(listener.as_str().unwrap_or("").to_string())
                .or_default()
                .insert(track.get_str("_id")?.to_string());
        }
    }
    let ids: Vec<&String> = heard.keys().collect();
    let mut pairs = Vec::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let shared = heard[*a].intersection(&heard[*b]).count();
            let union = heard[*a].union(&heard[*b]).count();
            pairs.push((
                shared,
                shared as f64 / union.max(1) as f64,
                name(a),
                name(b),
            ));
        }
    }
    pairs.sort_by(|x, y| y.0.cmp(&x.0).then(x.2.cmp(&y.2)).then(x.3.cmp(&y.3)));
    for (shared, jaccard, a, b) in pairs.iter().take(5) {
        writeln!(
            page,
            "  {a} & {b}: {shared} tracks in common (Jaccard {jaccard:.2})"
        )?;
    }
    Ok(page)
}
