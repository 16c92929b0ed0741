//! report.json (earshot-metrics' [`Report`]) and the printed summary, assembled from the metric
//! tables read as typed rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use earshot_metrics::report::{
    CHART_LENGTH, ClockMatrix, DeepCuts, Favourite, MemberReport, Meta, ObscureCounts, Report,
    SharedSongs, TOP_N, WeeklyRecap, WhoListenedMost,
};
use earshot_metrics::rows::{
    AlsRecommendation, ArtistTopListener, ClockCell, MemberAlbum, MemberArtist, MemberSummary,
    MemberTrack, MetricRow, Obscure, PlaysPerDay, RecommendationScore, SharedFavourite,
    SharedTracks, TasteMatch, TopListOverlap, TrackListeners,
};
use polars::prelude::*;

use crate::tables::rows;

/// The typed rows of a metric's table (an absent table has none); a row that does not read as its
/// type names the metric (its SQL and the model disagree).
pub fn typed<T: MetricRow>(tables: &BTreeMap<String, DataFrame>) -> Result<Vec<T>> {
    let Some(frame) = tables.get(T::TABLE) else {
        return Ok(Vec::new());
    };
    rows(frame)
        .into_iter()
        .map(|row| serde_json::from_value(serde_json::Value::Object(row)))
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "a row of `{}` does not match earshot-metrics' model",
                T::TABLE
            )
        })
}

/// The member's rows of `rows` (by `member_of`), ordered by `order` (largest first, then `key`),
/// the first [`TOP_N`].
fn top_by<T: Clone>(
    rows: &[T],
    member: &str,
    member_of: fn(&T) -> &str,
    order: fn(&T) -> f64,
    key: fn(&T) -> &str,
) -> Vec<T> {
    let mut mine: Vec<T> = rows
        .iter()
        .filter(|r| member_of(r) == member)
        .cloned()
        .collect();
    mine.sort_by(|a, b| {
        order(b)
            .total_cmp(&order(a))
            .then_with(|| key(a).cmp(key(b)))
    });
    mine.truncate(TOP_N);
    mine
}

/// The metric tables a report reads, typed.
struct Tables {
    summary: Vec<MemberSummary>,
    tracks: Vec<MemberTrack>,
    artists: Vec<MemberArtist>,
    albums: Vec<MemberAlbum>,
    clock: Vec<ClockCell>,
    listeners: Vec<TrackListeners>,
    obscure: Vec<Obscure>,
    recommendations: Vec<RecommendationScore>,
    als: Vec<AlsRecommendation>,
}

impl Tables {
    fn read(metrics: &BTreeMap<String, DataFrame>) -> Result<Tables> {
        Ok(Tables {
            summary: typed(metrics)?,
            tracks: typed(metrics)?,
            artists: typed(metrics)?,
            albums: typed(metrics)?,
            clock: typed(metrics)?,
            listeners: typed(metrics)?,
            obscure: typed(metrics)?,
            recommendations: typed(metrics)?,
            als: typed(metrics)?,
        })
    }
}

/// The report: per member, who listened to what the most, sharing, taste, charts, recommendations.
pub fn build(
    metrics: &BTreeMap<String, DataFrame>,
    names: &BTreeMap<String, String>,
    weekly: &BTreeMap<String, DataFrame>,
    meta: Meta,
) -> Result<Report> {
    let tables = Tables::read(metrics)?;
    Ok(Report {
        meta,
        members: names.keys().map(|id| member(&tables, names, id)).collect(),
        who_listened_most: WhoListenedMost {
            tracks: earshot_metrics::report::chart_with_leaders(
                &tables.listeners,
                &typed(metrics)?,
            ),
            artists: typed::<ArtistTopListener>(metrics)?,
        },
        shared_songs: shared_songs(&typed(metrics)?, &typed(metrics)?),
        taste_match: typed::<TasteMatch>(metrics)?,
        group_chart: tables
            .listeners
            .iter()
            .take(CHART_LENGTH)
            .cloned()
            .collect(),
        top_list_overlap: typed::<TopListOverlap>(metrics)?,
        weekly_recap: weekly_recap(&typed(weekly)?, &typed(weekly)?, names),
        plays_per_day: typed::<PlaysPerDay>(metrics)?,
    })
}

fn display_name(names: &BTreeMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// One member's part: with plays in the period, or listed by the group without any.
fn member(tables: &Tables, names: &BTreeMap<String, String>, id: &str) -> MemberReport {
    let summary = tables.summary.iter().find(|r| r.user_id == id);
    let deep_cuts: Vec<String> = tables
        .listeners
        .iter()
        .filter(|t| t.listeners == 1 && t.only_listener == id)
        .map(|t| t.name.clone())
        .collect();
    let obscure = tables.obscure.iter().find(|o| o.user_id == id);
    let track: fn(&MemberTrack) -> &str = |t| &t.user_id;
    let artist: fn(&MemberArtist) -> &str = |a| &a.user_id;
    let album: fn(&MemberAlbum) -> &str = |a| &a.user_id;
    MemberReport {
        id: id.to_string(),
        name: display_name(names, id),
        plays: summary.map_or(0, |s| s.plays),
        minutes: summary.map_or(0.0, |s| s.minutes),
        unique_tracks: summary.map_or(0, |s| s.unique_tracks),
        unique_artists: summary.and_then(|s| s.unique_artists).unwrap_or(0),
        top_tracks_by_plays: top_by(
            &tables.tracks,
            id,
            track,
            |t| t.plays as f64,
            |t| &t.track_key,
        ),
        top_tracks_by_minutes: top_by(&tables.tracks, id, track, |t| t.minutes, |t| &t.track_key),
        top_artists_by_plays: top_by(
            &tables.artists,
            id,
            artist,
            |a| a.plays as f64,
            |a| &a.artist_id,
        ),
        top_artists_by_minutes: top_by(
            &tables.artists,
            id,
            artist,
            |a| a.minutes,
            |a| &a.artist_id,
        ),
        top_albums_by_plays: top_by(
            &tables.albums,
            id,
            album,
            |a| a.plays as f64,
            |a| &a.album_id,
        ),
        top_albums_by_minutes: top_by(&tables.albums, id, album, |a| a.minutes, |a| &a.album_id),
        listening_clock: ClockMatrix {
            rows: "weekday 1 (Monday) to 7".into(),
            columns: "hour 0 to 23".into(),
            plays: clock_matrix(&tables.clock, id),
        },
        deep_cuts: DeepCuts {
            count: deep_cuts.len(),
            examples: deep_cuts.into_iter().take(TOP_N).collect(),
        },
        obscure: obscure.map_or_else(ObscureCounts::default, |o| ObscureCounts {
            obscure_plays: Some(o.obscure_plays),
            unknown_popularity_plays: Some(o.unknown_popularity_plays),
            known_popularity_plays: Some(o.known_popularity_plays),
        }),
        recommendations: mine(&tables.recommendations, id, |r| &r.user_id),
        recommendations_als: mine(&tables.als, id, |r| &r.user_id),
    }
}

/// The member's first [`TOP_N`] rows, in the table's order.
fn mine<T: Clone>(rows: &[T], id: &str, member_of: fn(&T) -> &str) -> Vec<T> {
    rows.iter()
        .filter(|r| member_of(r) == id)
        .take(TOP_N)
        .cloned()
        .collect()
}

/// A member's plays by weekday (rows, Monday first) and hour (columns).
fn clock_matrix(clock: &[ClockCell], member: &str) -> Vec<Vec<i64>> {
    let mut matrix = vec![vec![0i64; 24]; 7];
    for c in clock.iter().filter(|c| c.user_id == member) {
        if (1..=7).contains(&c.weekday) && (0..24).contains(&c.hour) {
            matrix[c.weekday as usize - 1][c.hour as usize] = c.plays;
        }
    }
    matrix
}

/// Per pair: shared tracks, Jaccard, and the shared favourite.
fn shared_songs(pairs: &[SharedTracks], favourites: &[SharedFavourite]) -> Vec<SharedSongs> {
    pairs
        .iter()
        .map(|p| {
            let favourite = favourites
                .iter()
                .find(|f| f.member_a == p.member_a && f.member_b == p.member_b);
            SharedSongs {
                member_a: p.member_a.clone(),
                member_b: p.member_b.clone(),
                shared: p.shared,
                jaccard: p.jaccard,
                favourite: favourite.map(|f| Favourite {
                    track_key: f.track_key.clone(),
                    plays_a: f.plays_a,
                    plays_b: f.plays_b,
                }),
            }
        })
        .collect()
}

/// Per member, the recap week's unique tracks and artists and top track.
fn weekly_recap(
    summary: &[MemberSummary],
    tracks: &[MemberTrack],
    names: &BTreeMap<String, String>,
) -> Vec<WeeklyRecap> {
    summary
        .iter()
        .map(|row| WeeklyRecap {
            id: row.user_id.clone(),
            name: display_name(names, &row.user_id),
            unique_tracks: row.unique_tracks,
            unique_artists: row.unique_artists,
            top_track: top_by(
                tracks,
                &row.user_id,
                |t| &t.user_id,
                |t| t.plays as f64,
                |t| &t.track_key,
            )
            .into_iter()
            .next(),
        })
        .collect()
}

/// A page for people, from the report.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nWho listened the most");
    for m in &report.members {
        let _ = writeln!(
            out,
            "  {:<10} {:>5} plays {:>7.0} min {:>4} tracks {:>3} artists; favourite: {}",
            m.name,
            m.plays,
            m.minutes,
            m.unique_tracks,
            m.unique_artists,
            m.top_tracks_by_plays
                .first()
                .map_or("-", |t| t.name.as_str())
        );
    }
    chart_section(&mut out, report);
    let _ = writeln!(out, "\nWho shares the most songs");
    for p in report.shared_songs.iter().take(3) {
        let _ = writeln!(
            out,
            "  {} & {}: {} tracks (Jaccard {:.2})",
            report.name_of(&p.member_a),
            report.name_of(&p.member_b),
            p.shared,
            p.jaccard
        );
    }
    let _ = writeln!(out, "\nTaste match");
    for p in report.taste_match.iter().take(3) {
        let _ = writeln!(
            out,
            "  {} & {}: {:.0}/100",
            report.name_of(&p.member_a),
            report.name_of(&p.member_b),
            p.taste_match
        );
    }
    let _ = writeln!(out, "\nRecommended next");
    for m in &report.members {
        let recs: Vec<&str> = m
            .recommendations
            .iter()
            .take(3)
            .map(|r| r.name.as_str())
            .collect();
        let _ = writeln!(out, "  {:<10} {}", m.name, recs.join(" / "));
    }
    out
}

/// The group chart's first five tracks and who played each most.
fn chart_section(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "\nGroup chart (most friends, then most plays) and who played each most"
    );
    for (i, t) in report.who_listened_most.tracks.iter().take(5).enumerate() {
        let leaders: Vec<String> = t
            .listened_most
            .iter()
            .map(|l| format!("{} ({})", report.name_of(&l.member), l.plays))
            .collect();
        let _ = writeln!(
            out,
            "  {}. {} — {} friends, {} plays; most: {}",
            i + 1,
            t.name,
            t.listeners,
            t.plays,
            leaders.join(", ")
        );
    }
}
