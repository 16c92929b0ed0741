//! The report's charts, as PNG and SVG, drawn with plotters and a bundled font (DejaVu Sans, in
//! `assets/`), so rendering never depends on the machine's fonts: top artists per member (bars),
//! listening clocks (heatmaps), the taste-match matrix (heatmap), plays per day per member (lines).

use std::sync::Once;

use anyhow::{Result, anyhow};
use earshot_metrics::report::{MemberReport, Report};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

const FONT: &str = "earshot-sans";
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1200, 800);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// One chart: its file stem and how it draws.
pub struct Chart {
    /// File name without extension.
    pub name: &'static str,
    draw: fn(&Report, &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
    draw_png: fn(&Report, &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
}

macro_rules! chart {
    ($name:literal, $f:ident) => {
        Chart {
            name: $name,
            draw: |r, a| $f(r, a),
            draw_png: |r, a| $f(r, a),
        }
    };
}

/// Every chart of a report.
pub fn charts() -> Vec<Chart> {
    vec![
        chart!("top_artists", top_artists),
        chart!("listening_clock", listening_clock),
        chart!("taste_match", taste_match),
        chart!("plays_per_day", plays_per_day),
    ]
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self, report: &Report) -> Result<String> {
        register_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            (self.draw)(report, &root)?;
            root.present().map_err(err)?;
        }
        Ok(out)
    }

    /// The chart as PNG bytes. Characters the bundled font has no glyph for (emoji) are left out of the
    /// text, instead of drawn as boxes; the SVG keeps them (the viewer's fonts draw them).
    pub fn png(&self, report: &Report) -> Result<Vec<u8>> {
        register_font();
        let report: &Report = &serde_json::from_value(bitmap_text(&serde_json::to_value(report)?))?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("chart.png");
        {
            let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            (self.draw_png)(report, &root)?;
            root.present().map_err(err)?;
        }
        Ok(std::fs::read(&path)?)
    }
}

/// The report with every string stripped of the characters DejaVu Sans cannot draw.
fn bitmap_text(report: &Value) -> Value {
    use ab_glyph::Font as _;
    let font = ab_glyph::FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses");
    fn walk(value: &Value, font: &ab_glyph::FontRef<'_>) -> Value {
        match value {
            Value::String(text) => {
                let kept: String = text
                    .chars()
                    .filter(|c| c.is_whitespace() || font.glyph_id(*c).0 != 0)
                    .collect();
                Value::String(kept.trim().to_string())
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, font)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, font)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(report, &font)
}

/// The sequential colour of a share `t` (0 to 1) of a heatmap's range: light to dark blue.
fn heat(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(239.0, 8.0), mix(246.0, 48.0), mix(255.0, 107.0))
}

/// A colour scale: a vertical bar from `min` (bottom) to `max` (top), labelled at both ends and the
/// middle, with the unit under it.
fn colour_scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    min: f64,
    max: f64,
    unit: &str,
) -> Result<()> {
    let (x, top, height, steps) = (20, 80, 400, 100);
    for i in 0..steps {
        let t = f64::from(i) / f64::from(steps - 1);
        let y = top + height - (i + 1) * height / steps;
        area.draw(&Rectangle::new(
            [(x, y), (x + 24, y + height / steps + 1)],
            heat(t).filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new([(x, top), (x + 24, top + height)], BLACK))
        .map_err(err)?;
    for (t, value) in [(0.0, min), (0.5, (min + max) / 2.0), (1.0, max)] {
        let y = top + height - (t * f64::from(height)) as i32;
        area.draw(&Text::new(
            format!("{value:.0}"),
            (x + 30, y - 7),
            (FONT, 15).into_font(),
        ))
        .map_err(err)?;
    }
    area.draw(&Text::new(
        unit.to_string(),
        (x, top + height + 12),
        (FONT, 15).into_font(),
    ))
    .map_err(err)?;
    Ok(())
}

fn members(report: &Report) -> Vec<&MemberReport> {
    report.members.iter().collect()
}

fn name(member: &MemberReport) -> String {
    member.name.clone()
}

fn title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>> {
    area.titled(text, (FONT, 30).into_font()).map_err(err)
}

fn top_artists<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = title(area, "Top artists per member (plays)")?;
    let people = members(report);
    if people.is_empty() {
        return Ok(());
    }
    let panels = area.split_evenly((people.len(), 1));
    for (member, panel) in people.iter().zip(panels.iter()) {
        let artists: Vec<(String, f64)> = member
            .top_artists_by_plays
            .iter()
            .take(5)
            .map(|a| (a.name.clone(), a.plays as f64))
            .collect();
        // Counts on an integer axis: ticked 0, 10, 20, never 10.0.
        let max = artists.iter().map(|a| a.1 as i64).max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(panel)
            .margin(4)
            .caption(name(member), (FONT, 18))
            .x_label_area_size(22)
            .y_label_area_size(180)
            .build_cartesian_2d(0..max + max / 10 + 1, 0..artists.len().max(1))
            .map_err(err)?;
        let labels: Vec<String> = artists.iter().map(|a| a.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("plays")
            .y_labels(artists.len().max(1))
            .y_label_formatter(&|i| {
                labels
                    .len()
                    .checked_sub(i + 1)
                    .and_then(|j| labels.get(j))
                    .cloned()
                    .unwrap_or_default()
            })
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(artists.iter().enumerate().map(|(i, a)| {
                // The top artist at the top.
                let row = artists.len() - 1 - i;
                Rectangle::new(
                    [(0, row), (a.1 as i64, row + 1)],
                    Palette99::pick(i).filled(),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

fn listening_clock<DB: DrawingBackend>(
    report: &Report,
    area: &DrawingArea<DB, Shift>,
) -> Result<()> {
    let area = title(
        area,
        "Listening clock: plays by weekday and hour (group time zone)",
    )?;
    let people = members(report);
    if people.is_empty() {
        return Ok(());
    }
    let (area, scale) = area.split_horizontally(SIZE.0 as i32 - 130);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let matrices: Vec<Vec<Vec<f64>>> = people
        .iter()
        .map(|member| {
            member
                .listening_clock
                .plays
                .iter()
                .map(|row| row.iter().map(|v| *v as f64).collect())
                .collect()
        })
        .collect();
    // One scale for every member, so that a colour means the same count in each panel.
    let max = matrices
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(1.0, f64::max);
    colour_scale(&scale, 0.0, max, "plays")?;
    let panels = area.split_evenly((people.len(), 1));
    for ((member, matrix), panel) in people.iter().zip(&matrices).zip(panels.iter()) {
        let mut chart = ChartBuilder::on(panel)
            .margin(4)
            .caption(name(member), (FONT, 16))
            .x_label_area_size(20)
            .y_label_area_size(40)
            .build_cartesian_2d((0..23).into_segmented(), (0..6).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("hour")
            .x_labels(24)
            .y_labels(7)
            .x_label_formatter(&|v| segment(v).map(|h| h.to_string()).unwrap_or_default())
            // Monday at the top.
            .y_label_formatter(&|v| {
                segment(v)
                    .and_then(|d| usize::try_from(6 - d).ok())
                    .and_then(|d| DAYS.get(d))
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            })
            .label_style((FONT, 11))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(matrix.iter().enumerate().flat_map(|(day, hours)| {
                let row = 6 - day as i32;
                hours.iter().enumerate().map(move |(hour, plays)| {
                    let hour = hour as i32;
                    Rectangle::new(
                        [
                            (SegmentValue::Exact(hour), SegmentValue::Exact(row)),
                            (SegmentValue::Exact(hour + 1), SegmentValue::Exact(row + 1)),
                        ],
                        heat(plays / max).filled(),
                    )
                })
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// The index a segmented axis label stands for.
fn segment(value: &SegmentValue<i32>) -> Option<i32> {
    match value {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => Some(*i),
        SegmentValue::Last => None,
    }
}

fn taste_match<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = title(area, "Taste match (cosine of artist plays, 0-100)")?;
    let (area, scale) = area.split_horizontally(SIZE.0 as i32 - 130);
    let people = members(report);
    let ids: Vec<String> = people.iter().map(|m| m.id.clone()).collect();
    let labels: Vec<String> = people.iter().map(|m| name(m)).collect();
    let n = ids.len().max(1);
    let mut value: Vec<Vec<Option<f64>>> = vec![vec![None; n]; n];
    for pair in &report.taste_match {
        let a = ids.iter().position(|i| pair.member_a == *i);
        let b = ids.iter().position(|i| pair.member_b == *i);
        if let (Some(a), Some(b)) = (a, b) {
            let v = pair.taste_match;
            value[a][b] = Some(v);
            value[b][a] = Some(v);
        }
    }
    colour_scale(&scale, 0.0, 100.0, "taste match")?;
    let n = n as i32;
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(120)
        // A segmented range holds one segment per value and its upper end: 0..n-1 is n cells.
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(err)?;
    // Labels at the centre of their cells (segmented axes); the first member at the top.
    let label = |i: Option<i32>| {
        i.and_then(|i| usize::try_from(i).ok())
            .and_then(|i| labels.get(i))
            .cloned()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n as usize)
        .y_labels(n as usize)
        .x_label_formatter(&|v| label(segment(v)))
        .y_label_formatter(&|v| label(segment(v).map(|i| n - 1 - i)))
        .label_style((FONT, 15))
        .draw()
        .map_err(err)?;
    let centred =
        (FONT, 20)
            .into_font()
            .into_text_style(&area)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ));
    for a in 0..n {
        for b in 0..n {
            let row = n - 1 - b;
            let v = value[a as usize][b as usize];
            let colour = v.map_or(RGBColor(244, 244, 244), |v| heat(v / 100.0));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(a), SegmentValue::Exact(row)),
                        (SegmentValue::Exact(a + 1), SegmentValue::Exact(row + 1)),
                    ],
                    colour.filled(),
                )))
                .map_err(err)?;
            if let Some(v) = v {
                let ink = if v > 55.0 { &WHITE } else { &BLACK };
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{v:.0}"),
                        (SegmentValue::CenterOf(a), SegmentValue::CenterOf(row)),
                        centred.color(ink),
                    )))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// Points split into runs of consecutive days: a line through each, so that a day without plays
/// breaks it (a gap is a gap).
fn consecutive(points: Vec<(i64, i64)>) -> Vec<Vec<(i64, i64)>> {
    let mut runs: Vec<Vec<(i64, i64)>> = Vec::new();
    for point in points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|p| point.0 - p.0 == 1) => run.push(point),
            _ => runs.push(vec![point]),
        }
    }
    runs
}

fn plays_per_day<DB: DrawingBackend>(report: &Report, area: &DrawingArea<DB, Shift>) -> Result<()> {
    use chrono::NaiveDate;
    let area = title(area, "Plays per day per member (group time zone)")?;
    let rows: Vec<(&str, NaiveDate, i64)> = report
        .plays_per_day
        .iter()
        .filter_map(|r| {
            Some((
                r.user_id.as_str(),
                NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").ok()?,
                r.plays,
            ))
        })
        .collect();
    let first = rows.iter().map(|r| r.1).min();
    let last = rows.iter().map(|r| r.1).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    // A time axis: days counted from the first, so that months without plays take their room.
    let day = |d: NaiveDate| (d - first).num_days();
    let span = day(last) + 1;
    let max = rows.iter().map(|r| r.2).max().unwrap_or(1);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(50)
        .build_cartesian_2d(0..span, 0..max + max / 10 + 1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("plays")
        .x_labels(10)
        .x_label_formatter(&|i| {
            (first + chrono::Duration::days(*i))
                .format("%Y-%m-%d")
                .to_string()
        })
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (index, member) in members(report).iter().enumerate() {
        let id = member.id.as_str();
        let mut points: Vec<(i64, i64)> = rows
            .iter()
            .filter(|r| r.0 == id)
            .map(|r| (day(r.1), r.2))
            .collect();
        points.sort();
        let color = Palette99::pick(index).to_rgba();
        let mut labelled = false;
        for run in consecutive(points) {
            let series = chart
                .draw_series(LineSeries::new(run, color.stroke_width(2)).point_size(2))
                .map_err(err)?;
            if !labelled {
                series.label(name(member)).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
                labelled = true;
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(err)?;
    Ok(())
}
