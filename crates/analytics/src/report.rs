//! report.json and the printed summary, assembled from the metric tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use polars::prelude::*;
use serde_json::{Map, Value, json};

use crate::tables::rows;

/// How many items each "top" list keeps.
pub const TOP_N: usize = 10;

fn text<'a>(row: &'a Map<String, Value>, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

fn number(row: &Map<String, Value>, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn top_by(
    rows: &[Map<String, Value>],
    member: &str,
    key: &str,
    order: &str,
) -> Vec<Map<String, Value>> {
    let mut mine: Vec<Map<String, Value>> = rows
        .iter()
        .filter(|r| text(r, "user_id") == member)
        .cloned()
        .collect();
    mine.sort_by(|a, b| {
        number(b, order)
            .total_cmp(&number(a, order))
            .then_with(|| text(a, key).cmp(text(b, key)))
    });
    mine.truncate(TOP_N);
    mine
}

/// Rows of every metric, by name (an absent metric has none).
struct Tables<'a>(&'a BTreeMap<String, DataFrame>);

impl Tables<'_> {
    fn get(&self, name: &str) -> Vec<Map<String, Value>> {
        self.0.get(name).map(rows).unwrap_or_default()
    }
}

/// The report: per member, who listened to what the most, sharing, taste, charts, recommendations.
pub fn build(
    metrics: &BTreeMap<String, DataFrame>,
    names: &BTreeMap<String, String>,
    weekly: &BTreeMap<String, DataFrame>,
    meta: Value,
) -> Value {
    let tables = Tables(metrics);
    let listeners = tables.get("track_listeners");
    json!({
        "meta": meta,
        "members": members(&tables, names),
        "who_listened_most": {"tracks": chart_with_leaders(&tables, &listeners), "artists": tables.get("top_listener_by_artist")},
        "shared_songs": shared_songs(&tables),
        "taste_match": tables.get("taste_match"),
        "group_chart": listeners.iter().take(20).collect::<Vec<_>>(),
        "top_list_overlap": tables.get("top_list_overlap"),
        "weekly_recap": weekly_recap(&Tables(weekly), names),
        "plays_per_day": tables.get("plays_per_day"),
    })
}

fn display_name(names: &BTreeMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// Every member: those with plays, and those the group lists who have none in this period.
fn members(tables: &Tables<'_>, names: &BTreeMap<String, String>) -> Vec<Value> {
    let summary = tables.get("member_summary");
    let tracks = tables.get("member_tracks");
    let artists = tables.get("member_artists");
    let albums = tables.get("member_albums");
    let clock = tables.get("listening_clock");
    let listeners = tables.get("track_listeners");
    let obscure = tables.get("obscure");
    let recommendations = tables.get("recommendation_scores");
    let als = tables.get(crate::engine::RECOMMENDATIONS_ALS);
    let mine = |rows: &[Map<String, Value>], id: &str| -> Vec<Map<String, Value>> {
        rows.iter()
            .filter(|r| text(r, "user_id") == id)
            .take(TOP_N)
            .cloned()
            .collect()
    };
    let empty = Map::new();
    names
        .keys()
        .map(|id| {
            let id = id.as_str();
            let row = summary.iter().find(|r| text(r, "user_id") == id).unwrap_or(&empty);
            let deep_cuts: Vec<&str> = listeners
                .iter()
                .filter(|t| number(t, "listeners") as i64 == 1 && text(t, "only_listener") == id)
                .map(|t| text(t, "name"))
                .collect();
            let obscurity = obscure.iter().find(|o| text(o, "user_id") == id).cloned().unwrap_or_default();
            json!({
                "id": id,
                "name": display_name(names, id),
                "plays": row.get("plays").cloned().unwrap_or(json!(0)),
                "minutes": row.get("minutes").cloned().unwrap_or(json!(0.0)),
                "unique_tracks": row.get("unique_tracks").cloned().unwrap_or(json!(0)),
                "unique_artists": row.get("unique_artists").cloned().unwrap_or(json!(0)),
                "top_tracks_by_plays": top_by(&tracks, id, "track_key", "plays"),
                "top_tracks_by_minutes": top_by(&tracks, id, "track_key", "minutes"),
                "top_artists_by_plays": top_by(&artists, id, "artist_id", "plays"),
                "top_artists_by_minutes": top_by(&artists, id, "artist_id", "minutes"),
                "top_albums_by_plays": top_by(&albums, id, "album_id", "plays"),
                "top_albums_by_minutes": top_by(&albums, id, "album_id", "minutes"),
                "listening_clock": {"rows": "weekday 1 (Monday) to 7", "columns": "hour 0 to 23", "plays": clock_matrix(&clock, id)},
                "deep_cuts": {"count": deep_cuts.len(), "examples": deep_cuts.iter().take(TOP_N).collect::<Vec<_>>()},
                "obscure": {
                    "obscure_plays": obscurity.get("obscure_plays"),
                    "unknown_popularity_plays": obscurity.get("unknown_popularity_plays"),
                    "known_popularity_plays": obscurity.get("known_popularity_plays"),
                },
                "recommendations": mine(&recommendations, id),
                "recommendations_als": mine(&als, id),
            })
        })
        .collect()
}

/// A member's plays by weekday (rows, Monday first) and hour (columns).
fn clock_matrix(clock: &[Map<String, Value>], member: &str) -> Vec<Vec<i64>> {
    let mut matrix = vec![vec![0i64; 24]; 7];
    for c in clock.iter().filter(|c| text(c, "user_id") == member) {
        let (day, hour) = (number(c, "weekday") as usize, number(c, "hour") as usize);
        if (1..=7).contains(&day) && hour < 24 {
            matrix[day - 1][hour] = number(c, "plays") as i64;
        }
    }
    matrix
}

/// The group chart's first 20 tracks, each with who played it most (ties listed).
fn chart_with_leaders(tables: &Tables<'_>, listeners: &[Map<String, Value>]) -> Vec<Value> {
    let leaders = tables.get("top_listener_by_track");
    listeners
        .iter()
        .take(20)
        .map(|t| {
            let key = text(t, "track_key");
            let top: Vec<Value> = leaders.iter().filter(|l| text(l, "track_key") == key).map(|l| json!({"member": text(l, "user_id"), "plays": l.get("plays")})).collect();
            json!({"track_key": key, "name": text(t, "name"), "listeners": t.get("listeners"), "plays": t.get("plays"), "listened_most": top})
        })
        .collect()
}

/// Per pair: shared tracks, Jaccard, and the shared favourite.
fn shared_songs(tables: &Tables<'_>) -> Vec<Value> {
    let favourite = tables.get("shared_favourite");
    tables
        .get("shared_tracks")
        .iter()
        .map(|p| {
            let (a, b) = (text(p, "member_a"), text(p, "member_b"));
            let fav = favourite.iter().find(|f| text(f, "member_a") == a && text(f, "member_b") == b);
            json!({"member_a": a, "member_b": b, "shared": p.get("shared"), "jaccard": p.get("jaccard"),
                   "favourite": fav.map(|f| json!({"track_key": text(f, "track_key"), "plays_a": f.get("plays_a"), "plays_b": f.get("plays_b")}))})
        })
        .collect()
}

/// Per member, the recap week's unique tracks and artists and top track.
fn weekly_recap(weekly: &Tables<'_>, names: &BTreeMap<String, String>) -> Vec<Value> {
    let week_tracks = weekly.get("member_tracks");
    weekly
        .get("member_summary")
        .iter()
        .map(|row| {
            let id = text(row, "user_id");
            let top = top_by(&week_tracks, id, "track_key", "plays").into_iter().next();
            json!({"id": id, "name": display_name(names, id), "unique_tracks": row.get("unique_tracks"), "unique_artists": row.get("unique_artists"), "top_track": top})
        })
        .collect()
}

/// The report's items under `key` (an array), or none.
fn items<'a>(report: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    report[key].as_array().into_iter().flatten()
}

/// A page for people, from the report.
pub fn summary(report: &Value) -> String {
    let name_of = |id: &Value| {
        let id = id.as_str().unwrap_or("");
        items(report, "members")
            .find(|m| m["id"] == id)
            .and_then(|m| m["name"].as_str())
            .unwrap_or(id)
            .to_string()
    };
    let mut out = String::new();
    let _ = writeln!(out, "\nWho listened the most");
    for m in items(report, "members") {
        let _ = writeln!(
            out,
            "  {:<10} {:>5} plays {:>7.0} min {:>4} tracks {:>3} artists; favourite: {}",
            m["name"].as_str().unwrap_or(""),
            m["plays"],
            m["minutes"].as_f64().unwrap_or(0.0),
            m["unique_tracks"],
            m["unique_artists"],
            m["top_tracks_by_plays"][0]["name"].as_str().unwrap_or("-")
        );
    }
    chart_section(&mut out, report, &name_of);
    let _ = writeln!(out, "\nWho shares the most songs");
    for p in items(report, "shared_songs").take(3) {
        let _ = writeln!(
            out,
            "  {} & {}: {} tracks (Jaccard {:.2})",
            name_of(&p["member_a"]),
            name_of(&p["member_b"]),
            p["shared"],
            p["jaccard"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(out, "\nTaste match");
    for p in items(report, "taste_match").take(3) {
        let _ = writeln!(
            out,
            "  {} & {}: {:.0}/100",
            name_of(&p["member_a"]),
            name_of(&p["member_b"]),
            p["taste_match"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(out, "\nRecommended next");
    for m in items(report, "members") {
        let recs: Vec<&str> = items(m, "recommendations")
            .take(3)
            .filter_map(|r| r["name"].as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {:<10} {}",
            m["name"].as_str().unwrap_or(""),
            recs.join(" / ")
        );
    }
    out
}

/// The group chart's first five tracks and who played each most.
fn chart_section(out: &mut String, report: &Value, name_of: &dyn Fn(&Value) -> String) {
    let _ = writeln!(
        out,
        "\nGroup chart (most friends, then most plays) and who played each most"
    );
    for (i, t) in report["who_listened_most"]["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .take(5)
        .enumerate()
    {
        let leaders: Vec<String> = items(t, "listened_most")
            .map(|l| format!("{} ({})", name_of(&l["member"]), l["plays"]))
            .collect();
        let _ = writeln!(
            out,
            "  {}. {} — {} friends, {} plays; most: {}",
            i + 1,
            t["name"].as_str().unwrap_or(""),
            t["listeners"],
            t["plays"],
            leaders.join(", ")
        );
    }
}
