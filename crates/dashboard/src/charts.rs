//! Charts as inline SVG, drawn by the browser (so any name shows, emoji included), each in a `<figure>`
//! with a title, units and a text alternative (the chart's numbers as a table).
//!
//! - [`bars`]: horizontal bars, one per label, with integer ticks for counts;
//! - [`timeline`]: a value per day on a real time axis: days without plays are gaps, not skipped;
//! - [`heatmap`]: a matrix with labels centred on their rows and columns, values inside the cells, and a
//!   colour scale.
//!
//! Only presentation attributes are used (no `style`), so the Content-Security-Policy needs no
//! `unsafe-inline`.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

/// Escape text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number for people: integers without decimals, others with `decimals`.
pub fn number(value: f64, decimals: usize) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.decimals$}")
    }
}

/// Tick values from 0 to at least `max`: 1, 2 or 5 times a power of ten apart, whole numbers when
/// `integer` (counts are never ticked `2.5`).
pub fn ticks(max: f64, integer: bool) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power);
    if integer {
        step = step.max(1.0).round();
    }
    let mut out = vec![0.0];
    while *out.last().expect("not empty") < max {
        let next = out.len() as f64 * step;
        out.push(next);
    }
    out
}

/// A colour on the sequential scale, `t` from 0 (light) to 1 (dark).
pub fn colour(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let (a, b) = ((239.0, 246.0, 255.0), (8.0, 48.0, 107.0));
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

fn figure(id: &str, title: &str, alt: &str, svg: &str, table: &str) -> String {
    format!(
        "<figure class=\"chart\" id=\"{id}\">\n<figcaption>{title}</figcaption>\n{svg}\n\
         <details><summary>The numbers ({alt})</summary>\n{table}</details>\n</figure>",
        id = escape(id),
        title = escape(title),
        alt = escape(alt),
    )
}

fn svg_open(id: &str, width: f64, height: f64, title: &str, desc: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" font-family=\"system-ui, sans-serif\" \
         font-size=\"12\"><title id=\"{id}-t\">{title}</title><desc id=\"{id}-d\">{desc}</desc>",
        id = escape(id),
        title = escape(title),
        desc = escape(desc),
    )
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The label (a name).
    pub label: String,
    /// Where the label links, if anywhere.
    pub href: Option<String>,
    /// The value.
    pub value: f64,
}

/// Horizontal bars: `unit` names the values ("plays", "minutes"); counts are ticked in whole numbers.
pub fn bars(id: &str, title: &str, unit: &str, items: &[Bar], integer: bool) -> String {
    let label_width = 190.0;
    let plot_width = 380.0;
    let row = 22.0;
    let top = 10.0;
    let height = top + row * items.len().max(1) as f64 + 40.0;
    let width = label_width + plot_width + 70.0;
    let max = items.iter().map(|b| b.value).fold(0.0, f64::max);
    let ticks = ticks(max, integer);
    let scale_max = *ticks.last().expect("ticks");
    let x = |v: f64| label_width + plot_width * v / scale_max;
    let desc = format!("{title}, in {unit}: {} bars", items.len());
    let mut svg = svg_open(id, width, height, title, &desc);
    let axis_y = top + row * items.len().max(1) as f64;
    for t in &ticks {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{axis_y}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(*t),
            axis_y + 16.0,
            number(*t, 1)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        label_width + plot_width / 2.0,
        axis_y + 34.0,
        escape(unit)
    );
    for (i, bar) in items.iter().enumerate() {
        let y = top + row * i as f64;
        let label = escape(&bar.label);
        let label = match &bar.href {
            Some(href) => format!("<a href=\"{}\">{label}</a>", escape(href)),
            None => label,
        };
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"central\">{label}</text>\
             <rect x=\"{label_width}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3b6fb6\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"central\">{}</text>",
            label_width - 6.0,
            y + row / 2.0,
            y + 3.0,
            (x(bar.value) - label_width).max(0.0),
            row - 6.0,
            x(bar.value) + 4.0,
            y + row / 2.0,
            number(bar.value, 1)
        );
    }
    svg.push_str("</svg>");
    let mut table = format!("<table><tr><th>Name</th><th>{}</th></tr>", escape(unit));
    for bar in items {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&bar.label),
            number(bar.value, 1)
        );
    }
    table.push_str("</table>");
    figure(id, title, &desc, &svg, &table)
}

/// A value per day on a time axis from the first day to the last: each day at its place, so a stretch
/// without plays shows as the gap it is. Months are ticked.
pub fn timeline(id: &str, title: &str, unit: &str, days: &[(NaiveDate, f64)]) -> String {
    let (left, plot_width, top, plot_height) = (50.0, 640.0, 10.0, 160.0);
    let width = left + plot_width + 20.0;
    let height = top + plot_height + 50.0;
    let (Some(first), Some(last)) = (
        days.iter().map(|d| d.0).min(),
        days.iter().map(|d| d.0).max(),
    ) else {
        return figure(id, title, "no plays", "<p>No plays in this period.</p>", "");
    };
    let span = ((last - first).num_days() + 1) as f64;
    let day_width = plot_width / span;
    let x = |d: NaiveDate| left + plot_width * (d - first).num_days() as f64 / span;
    let max = days.iter().map(|d| d.1).fold(0.0, f64::max);
    let ticks = ticks(max, true);
    let scale_max = *ticks.last().expect("ticks");
    let y = |v: f64| top + plot_height * (1.0 - v / scale_max);
    let empty = span as usize - days.iter().filter(|d| d.1 > 0.0).count();
    let desc = format!(
        "{title}: {} days from {first} to {last}, {empty} of them without plays",
        span as usize
    );
    let mut svg = svg_open(id, width, height, title, &desc);
    for t in &ticks {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{2}\" y=\"{0:.1}\" text-anchor=\"end\" dominant-baseline=\"central\">{3}</text>",
            y(*t),
            left + plot_width,
            left - 6.0,
            number(*t, 0)
        );
    }
    month_ticks(&mut svg, (first, last), &x, top + plot_height);
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#888\"/>\
         <text x=\"{2}\" y=\"{3}\" text-anchor=\"middle\">day (group time zone)</text>\
         <text x=\"12\" y=\"{4}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {4})\">{5}</text>",
        top + plot_height,
        left + plot_width,
        left + plot_width / 2.0,
        top + plot_height + 38.0,
        top + plot_height / 2.0,
        escape(unit)
    );
    for (day, value) in days {
        let _ = write!(
            svg,
            "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"#3b6fb6\"><title>{day}: {}</title></rect>",
            x(*day),
            y(*value),
            (day_width * 0.9).max(0.8),
            top + plot_height - y(*value),
            number(*value, 0)
        );
    }
    svg.push_str("</svg>");
    figure(id, title, &desc, &svg, &day_table(unit, days))
}

/// The most ticks a time axis gets, whatever its span.
pub const MAX_TIME_TICKS: u32 = 24;

/// Months between ticks for a span of `months`: 1, 2, 3, 6, or a whole number of years, so that at
/// most [`MAX_TIME_TICKS`] fit (a span of millennia gets a tick every few centuries, not 36,000).
fn month_step(months: u32) -> u32 {
    let needed = months.div_ceil(MAX_TIME_TICKS).max(1);
    match needed {
        1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 6,
        n => n.div_ceil(12) * 12,
    }
}

/// A tick at the first of every month (or every few months or years, [`month_step`]) from `first`
/// to `last` (and at the first day), labelled where there is room, on the axis at `axis_y`.
fn month_ticks(
    svg: &mut String,
    (first, last): (NaiveDate, NaiveDate),
    x: &dyn Fn(NaiveDate) -> f64,
    axis_y: f64,
) {
    let months = u32::try_from(
        (last.year() - first.year()) * 12 + last.month() as i32 - first.month() as i32 + 1,
    )
    .unwrap_or(1);
    let step = month_step(months);
    let mut month = NaiveDate::from_ymd_opt(first.year(), first.month(), 1).expect("a month");
    let mut labelled_at = f64::NEG_INFINITY;
    while month <= last {
        let at = if month < first { first } else { month };
        let px = x(at);
        let _ = write!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{0}\" x2=\"{px:.1}\" y2=\"{1}\" stroke=\"#888\"/>",
            axis_y,
            axis_y + 5.0
        );
        if px - labelled_at > 56.0 {
            let _ = write!(
                svg,
                "<text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                axis_y + 18.0,
                at.format("%b %Y")
            );
            labelled_at = px;
        }
        let Some(next) = month.checked_add_months(chrono::Months::new(step)) else {
            break;
        };
        month = next;
    }
}

/// The timeline's data as a table (for screen readers and without SVG).
fn day_table(unit: &str, days: &[(NaiveDate, f64)]) -> String {
    let mut table = format!("<table><tr><th>Day</th><th>{}</th></tr>", escape(unit));
    for (day, value) in days {
        let _ = write!(
            table,
            "<tr><td>{day}</td><td>{}</td></tr>",
            number(*value, 0)
        );
    }
    table.push_str("</table>");
    table
}

/// One cell of a heatmap: its colour and value (`(value, position on the scale)`), or grey without one.
fn heat_cell(
    svg: &mut String,
    map: &Heatmap<'_>,
    (c, r, cy): (usize, usize, f64),
    value: Option<(f64, f64)>,
) {
    let (cw, ch) = map.cell;
    let small = if cw < 30.0 { "9" } else { "12" };
    let (x, y) = (map.label_width + cw * c as f64, HEAT_TOP + ch * r as f64);
    match value {
        Some((v, t)) => {
            let text_colour = if t > 0.55 { "#fff" } else { "#111" };
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\" stroke=\"#fff\"/>\
                 <text x=\"{:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\" \
                 font-size=\"{small}\" fill=\"{text_colour}\">{}</text>",
                colour(t),
                x + cw / 2.0,
                number(v, map.decimals)
            );
        }
        None => {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"#f4f4f4\" stroke=\"#fff\"/>"
            );
        }
    }
}

/// The colour scale at `(sx, sy)`: a gradient from the smallest to the largest value, ticked at both
/// ends and the middle.
fn colour_scale(svg: &mut String, map: &Heatmap<'_>, (sx, sy): (f64, f64), (min, max): (f64, f64)) {
    let sh = 120.0;
    let _ = write!(
        svg,
        "<defs><linearGradient id=\"{id}-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\
         <stop offset=\"0\" stop-color=\"{}\"/><stop offset=\"0.5\" stop-color=\"{}\"/><stop offset=\"1\" stop-color=\"{}\"/>\
         </linearGradient></defs><rect x=\"{sx}\" y=\"{sy}\" width=\"14\" height=\"{sh}\" fill=\"url(#{id}-scale)\" stroke=\"#888\"/>",
        colour(0.0),
        colour(0.5),
        colour(1.0),
        id = escape(map.id)
    );
    for (frac, value) in [(0.0, min), (0.5, (min + max) / 2.0), (1.0, max)] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"central\" font-size=\"10\">{}</text>",
            sx + 18.0,
            sy + sh * (1.0 - frac),
            number(value, map.decimals)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{sx}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
        sy + sh + 16.0,
        escape(map.unit)
    );
}

/// A heatmap's data as a table.
fn heat_table(map: &Heatmap<'_>) -> String {
    let mut table = String::from("<table><tr><th></th>");
    for label in &map.columns {
        let _ = write!(table, "<th>{}</th>", escape(label));
    }
    table.push_str("</tr>");
    for (r, label) in map.rows.iter().enumerate() {
        let _ = write!(table, "<tr><th>{}</th>", escape(label));
        for value in &map.cells[r] {
            let _ = write!(
                table,
                "<td>{}</td>",
                value.map_or_else(|| "–".to_string(), |v| number(v, map.decimals))
            );
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    table
}

/// A heatmap.
#[derive(Debug, Clone)]
pub struct Heatmap<'a> {
    /// Chart id (unique in the page).
    pub id: &'a str,
    /// Title.
    pub title: &'a str,
    /// What a value is ("taste match, 0–100", "plays").
    pub unit: &'a str,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// Values by row, then column (`None`: no value).
    pub cells: Vec<Vec<Option<f64>>>,
    /// Decimals shown in the cells.
    pub decimals: usize,
    /// Cell width and height in pixels.
    pub cell: (f64, f64),
    /// Width of the row labels.
    pub label_width: f64,
}

/// Where a heatmap's grid starts (below the column labels).
const HEAT_TOP: f64 = 34.0;

/// The heatmap: labels centred on their rows and columns, each value inside its cell, a colour scale.
pub fn heatmap(map: &Heatmap<'_>) -> String {
    let (cw, ch) = map.cell;
    let top = HEAT_TOP;
    let left = map.label_width;
    let grid_w = cw * map.columns.len() as f64;
    let grid_h = ch * map.rows.len() as f64;
    let width = left + grid_w + 90.0;
    let height = (top + grid_h + 10.0).max(top + 150.0);
    let values: Vec<f64> = map.cells.iter().flatten().flatten().copied().collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (min, max) = if values.is_empty() {
        (0.0, 1.0)
    } else if max > min {
        (min.min(0.0), max)
    } else {
        (min.min(0.0), min.max(0.0) + 1.0)
    };
    let t = |v: f64| (v - min) / (max - min);
    let desc = format!(
        "{}: {} rows by {} columns, {} from {} to {}",
        map.title,
        map.rows.len(),
        map.columns.len(),
        map.unit,
        number(min, map.decimals),
        number(max, map.decimals)
    );
    let mut svg = svg_open(map.id, width, height, map.title, &desc);
    let small = if cw < 30.0 { "9" } else { "12" };
    for (c, label) in map.columns.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{small}\">{}</text>",
            left + cw * (c as f64 + 0.5),
            top - 8.0,
            escape(label)
        );
    }
    for (r, label) in map.rows.iter().enumerate() {
        let cy = top + ch * (r as f64 + 0.5);
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" dominant-baseline=\"central\">{}</text>",
            left - 6.0,
            escape(label)
        );
        for (c, value) in map.cells[r].iter().enumerate() {
            heat_cell(&mut svg, map, (c, r, cy), value.map(|v| (v, t(v))));
        }
    }
    colour_scale(&mut svg, map, (left + grid_w + 24.0, top), (min, max));
    svg.push_str("</svg>");
    let table = heat_table(map);
    figure(map.id, map.title, &desc, &svg, &table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_ticked_in_whole_numbers() {
        assert_eq!(ticks(3.0, true), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(ticks(10.0, true), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(89.0, true), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert!(ticks(1.0, true).iter().all(|t| t.fract() == 0.0));
        // Fractional ticks: six steps of 0.1, each within rounding of its value, labelled as written.
        let fractional = ticks(0.5, false);
        let want = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5];
        assert_eq!(fractional.len(), want.len(), "{fractional:?}");
        for (got, want) in fractional.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{fractional:?}");
        }
        assert_eq!(number(fractional[3], 1), "0.3");
        assert_eq!(number(10.0, 1), "10");
        assert_eq!(number(2.5, 1), "2.5");
    }

    #[test]
    fn a_timeline_over_millennia_stays_bounded() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let svg = timeline(
            "t",
            "Plays per day",
            "plays",
            &[
                (day(1, 1, 1), 1.0),
                (day(2024, 5, 1), 3.0),
                (day(2999, 12, 31), 1.0),
            ],
        );
        let ticks = svg.matches("stroke=\"#888\"/>").count();
        assert!(ticks <= MAX_TIME_TICKS as usize + 2, "{ticks} ticks");
        assert_eq!(month_step(7), 1);
        assert_eq!(month_step(30), 2);
        assert_eq!(month_step(100), 6);
        assert_eq!(month_step(36_000), 1_500);
    }

    #[test]
    fn a_timeline_places_days_in_time_and_shows_gaps() {
        let day = |m, d| NaiveDate::from_ymd_opt(2024, m, d).unwrap();
        let svg = timeline(
            "ppd",
            "Plays per day",
            "plays",
            &[(day(3, 9), 5.0), (day(3, 10), 3.0), (day(10, 21), 40.0)],
        );
        // Every month of the seven between March and October is ticked: the axis is a time axis.
        for month in ["Mar 2024", "May 2024", "Jul 2024", "Sep 2024", "Oct 2024"] {
            assert!(svg.contains(month), "{month}");
        }
        assert!(
            svg.contains("of them without plays"),
            "the gap is described"
        );
        assert!(svg.contains("<table>"), "a text alternative");
    }

    #[test]
    fn heatmap_values_sit_in_their_cells_with_a_scale_and_names_are_escaped() {
        let svg = heatmap(&Heatmap {
            id: "tm",
            title: "Taste match",
            unit: "taste match, 0-100",
            rows: vec!["<b>Ana</b>".into(), "Ben 🎧".into()],
            columns: vec!["<b>Ana</b>".into(), "Ben 🎧".into()],
            cells: vec![vec![None, Some(64.6)], vec![Some(64.6), None]],
            decimals: 1,
            cell: (60.0, 30.0),
            label_width: 100.0,
        });
        assert!(!svg.contains("<b>"), "labels are text");
        assert!(svg.contains("&lt;b&gt;Ana&lt;/b&gt;"));
        assert!(svg.contains("Ben 🎧"));
        assert!(svg.contains("linearGradient"), "a colour scale");
        // The value is centred in its cell: row 0, column 1 → x = 100 + 60 * 1.5, y = 34 + 30 * 0.5.
        assert!(
            svg.contains("x=\"190.0\" y=\"49.0\" text-anchor=\"middle\""),
            "{svg}"
        );
        assert!(
            !svg.contains("style="),
            "no inline style (the CSP allows none)"
        );
    }
}
