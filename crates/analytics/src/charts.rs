//! The report's charts, as PNG and SVG, drawn with plotters and a bundled font (DejaVu Sans, in
//! `assets/`), so rendering never depends on the machine's fonts: top artists per member (bars),
//! listening clocks (heatmaps), the taste-match matrix (heatmap), plays per day per member (lines).

use std::sync::Once;

use anyhow::{Result, anyhow};
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
    draw: fn(&Value, &DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
    draw_png: fn(&Value, &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
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
    pub fn svg(&self, report: &Value) -> Result<String> {
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

    /// The chart as PNG bytes.
    pub fn png(&self, report: &Value) -> Result<Vec<u8>> {
        register_font();
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

fn members(report: &Value) -> Vec<&Value> {
    report["members"]
        .as_array()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

fn name(member: &Value) -> String {
    member["name"].as_str().unwrap_or("?").to_string()
}

fn title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>> {
    area.titled(text, (FONT, 30).into_font()).map_err(err)
}

fn top_artists<DB: DrawingBackend>(report: &Value, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = title(area, "Top artists per member (plays)")?;
    let people = members(report);
    if people.is_empty() {
        return Ok(());
    }
    let panels = area.split_evenly((people.len(), 1));
    for (member, panel) in people.iter().zip(panels.iter()) {
        let artists: Vec<(String, f64)> = member["top_artists_by_plays"]
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
            .map(|a| {
                (
                    a["name"].as_str().unwrap_or("?").to_string(),
                    a["plays"].as_f64().unwrap_or(0.0),
                )
            })
            .collect();
        let max = artists.iter().map(|a| a.1).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .margin(4)
            .caption(name(member), (FONT, 18))
            .x_label_area_size(22)
            .y_label_area_size(180)
            .build_cartesian_2d(0.0..max * 1.1, 0..artists.len().max(1))
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
                Rectangle::new([(0.0, row), (a.1, row + 1)], Palette99::pick(i).filled())
            }))
            .map_err(err)?;
    }
    Ok(())
}

fn listening_clock<DB: DrawingBackend>(
    report: &Value,
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
    let panels = area.split_evenly((people.len(), 1));
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    for (member, panel) in people.iter().zip(panels.iter()) {
        let matrix: Vec<Vec<f64>> = member["listening_clock"]["plays"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                row.as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_f64().unwrap_or(0.0))
                    .collect()
            })
            .collect();
        let max = matrix.iter().flatten().copied().fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .margin(4)
            .caption(name(member), (FONT, 16))
            .x_label_area_size(20)
            .y_label_area_size(40)
            .build_cartesian_2d(0..24, 0..7)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("hour")
            .y_label_formatter(&|d| {
                DAYS.get(*d as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            })
            .label_style((FONT, 11))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(matrix.iter().enumerate().flat_map(|(day, hours)| {
                hours.iter().enumerate().map(move |(hour, plays)| {
                    let heat = (plays / max * 255.0) as u8;
                    Rectangle::new(
                        [(hour as i32, day as i32), (hour as i32 + 1, day as i32 + 1)],
                        RGBColor(255, 255 - heat, 255 - heat / 2).filled(),
                    )
                })
            }))
            .map_err(err)?;
    }
    Ok(())
}

fn taste_match<DB: DrawingBackend>(report: &Value, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = title(area, "Taste match (cosine of artist plays, 0-100)")?;
    let people = members(report);
    let ids: Vec<String> = people
        .iter()
        .map(|m| m["id"].as_str().unwrap_or("").to_string())
        .collect();
    let labels: Vec<String> = people.iter().map(|m| name(m)).collect();
    let n = ids.len().max(1);
    let mut value = vec![vec![100.0; n]; n];
    for pair in report["taste_match"].as_array().into_iter().flatten() {
        let a = ids.iter().position(|i| pair["member_a"] == i.as_str());
        let b = ids.iter().position(|i| pair["member_b"] == i.as_str());
        if let (Some(a), Some(b)) = (a, b) {
            let v = pair["taste_match"].as_f64().unwrap_or(0.0);
            value[a][b] = v;
            value[b][a] = v;
        }
    }
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(120)
        .build_cartesian_2d(0..n as i32, 0..n as i32)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|i| labels.get(*i as usize).cloned().unwrap_or_default())
        .y_label_formatter(&|i| labels.get(*i as usize).cloned().unwrap_or_default())
        .label_style((FONT, 15))
        .draw()
        .map_err(err)?;
    for a in 0..n {
        for b in 0..n {
            let v = value[a][b];
            let heat = (v.clamp(0.0, 100.0) / 100.0 * 200.0) as u8;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a as i32, b as i32), (a as i32 + 1, b as i32 + 1)],
                    RGBColor(255 - heat, 255 - heat / 3, 255).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{v:.0}"),
                    (a as i32, b as i32 + 1),
                    (FONT, 20).into_font(),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn plays_per_day<DB: DrawingBackend>(report: &Value, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = title(area, "Plays per day per member")?;
    let rows: Vec<&Value> = report["plays_per_day"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let mut days: Vec<String> = rows
        .iter()
        .filter_map(|r| r["day"].as_str().map(str::to_string))
        .collect();
    days.sort();
    days.dedup();
    let max = rows
        .iter()
        .filter_map(|r| r["plays"].as_f64())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(50)
        .build_cartesian_2d(0..days.len().max(1), 0.0..max * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("day")
        .y_desc("plays")
        .x_labels(8)
        .x_label_formatter(&|i| days.get(*i).cloned().unwrap_or_default())
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (index, member) in members(report).iter().enumerate() {
        let id = member["id"].as_str().unwrap_or("");
        let points: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| r["user_id"] == id)
            .filter_map(|r| {
                Some((
                    days.iter().position(|d| r["day"] == d.as_str())?,
                    r["plays"].as_f64()?,
                ))
            })
            .collect();
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name(member))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
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
