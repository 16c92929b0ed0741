//! The report's charts, drawn with the dashboard's chart model (earshot-charts: one scale, one
//! palette), a panel per member on one sheet, as SVG and as the same SVG rasterised to PNG: top artists
//! per member (bars), listening clocks (heatmaps on one shared scale), the taste-match matrix
//! (heatmap), plays per day per member (timelines on one shared time axis).

use anyhow::Result;
use chrono::NaiveDate;
use earshot_charts::{Bar, Heatmap, bars, heatmap, sheet, timeline_spanning};
use earshot_metrics::report::{MemberReport, Report};

/// Chart size in pixels.
pub const SIZE: (u32, u32) = earshot_charts::SHEET_SIZE;

/// The weekdays of a listening clock's rows, Monday first.
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One chart: its file stem and how it draws.
pub struct Chart {
    /// File name without extension.
    pub name: &'static str,
    draw: fn(&Report) -> String,
}

/// Every chart of a report.
pub fn charts() -> Vec<Chart> {
    vec![
        Chart {
            name: "top_artists",
            draw: top_artists,
        },
        Chart {
            name: "listening_clock",
            draw: listening_clock,
        },
        Chart {
            name: "taste_match",
            draw: taste_match,
        },
        Chart {
            name: "plays_per_day",
            draw: plays_per_day,
        },
    ]
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self, report: &Report) -> Result<String> {
        Ok((self.draw)(report))
    }

    /// The chart as PNG bytes: its SVG, rasterised with the bundled font.
    pub fn png(&self, report: &Report) -> Result<Vec<u8>> {
        earshot_charts::png(&(self.draw)(report))
    }
}

/// Each member's panel: their name and their chart.
fn per_member(
    report: &Report,
    chart: impl Fn(usize, &MemberReport) -> earshot_charts::Chart,
) -> Vec<(String, earshot_charts::Chart)> {
    report
        .members
        .iter()
        .enumerate()
        .map(|(i, member)| (member.name.clone(), chart(i, member)))
        .collect()
}

fn top_artists(report: &Report) -> String {
    let panels = per_member(report, |i, member| {
        let top: Vec<Bar> = member
            .top_artists_by_plays
            .iter()
            .take(5)
            .map(|a| Bar {
                label: a.name.clone(),
                href: None,
                value: a.plays as f64,
            })
            .collect();
        bars(&format!("artists-{i}"), "Top artists", "plays", &top, true)
    });
    sheet("top-artists", "Top artists per member (plays)", &panels)
}

fn listening_clock(report: &Report) -> String {
    let matrix = |member: &MemberReport| -> Vec<Vec<Option<f64>>> {
        member
            .listening_clock
            .plays
            .iter()
            .map(|hours| hours.iter().map(|v| Some(*v as f64)).collect())
            .collect()
    };
    // One scale for every member, so that a colour means the same count in each panel.
    let max = report
        .members
        .iter()
        .flat_map(|m| m.listening_clock.plays.iter().flatten().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let panels = per_member(report, |i, member| {
        heatmap(&Heatmap {
            id: &format!("clock-{i}"),
            title: "Listening clock",
            unit: "plays",
            rows: DAYS.iter().map(|d| d.to_string()).collect(),
            columns: hours.clone(),
            cells: matrix(member),
            decimals: 0,
            cell: (26.0, 18.0),
            label_width: 44.0,
            range: Some((0.0, max)),
        })
    });
    sheet(
        "listening-clock",
        "Listening clock: plays by weekday and hour (group time zone)",
        &panels,
    )
}

fn taste_match(report: &Report) -> String {
    let ids: Vec<&str> = report.members.iter().map(|m| m.id.as_str()).collect();
    let names: Vec<String> = report.members.iter().map(|m| m.name.clone()).collect();
    let n = ids.len();
    let mut cells: Vec<Vec<Option<f64>>> = vec![vec![None; n]; n];
    for pair in &report.taste_match {
        let a = ids.iter().position(|i| pair.member_a == *i);
        let b = ids.iter().position(|i| pair.member_b == *i);
        if let (Some(a), Some(b)) = (a, b) {
            cells[a][b] = Some(pair.taste_match);
            cells[b][a] = Some(pair.taste_match);
        }
    }
    let matrix = heatmap(&Heatmap {
        id: "taste",
        title: "Taste match",
        unit: "taste match, 0-100",
        rows: names.clone(),
        columns: names,
        cells,
        decimals: 0,
        cell: (90.0, 44.0),
        label_width: 140.0,
        range: Some((0.0, 100.0)),
    });
    sheet(
        "taste-match",
        "Taste match (cosine of artist plays, 0-100)",
        &[(String::new(), matrix)],
    )
}

fn plays_per_day(report: &Report) -> String {
    let rows: Vec<(&str, NaiveDate, f64)> = report
        .plays_per_day
        .iter()
        .filter_map(|r| {
            Some((
                r.user_id.as_str(),
                NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok()?,
                r.plays as f64,
            ))
        })
        .collect();
    // One time axis for every member: the group's first day to its last.
    let span = rows
        .iter()
        .map(|r| r.1)
        .min()
        .zip(rows.iter().map(|r| r.1).max());
    let panels = per_member(report, |i, member| {
        let mut days: Vec<(NaiveDate, f64)> = rows
            .iter()
            .filter(|r| r.0 == member.id)
            .map(|r| (r.1, r.2))
            .collect();
        days.sort_by_key(|d| d.0);
        timeline_spanning(&format!("days-{i}"), "Plays per day", "plays", &days, span)
    });
    sheet(
        "plays-per-day",
        "Plays per day per member (group time zone)",
        &panels,
    )
}
