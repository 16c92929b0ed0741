//! A matrix of values, coloured on the one palette.

use std::fmt::Write as _;

use crate::{Chart, colour, escape, number};

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
    /// The values the scale runs between (default: from the smallest, or 0, to the largest): several
    /// heatmaps side by side share one, so that a colour means the same in each.
    pub range: Option<(f64, f64)>,
}

/// Where a heatmap's grid starts (below the column labels).
const HEAT_TOP: f64 = 34.0;

/// The heatmap: labels centred on their rows and columns, each value inside its cell, a colour scale.
pub fn heatmap(map: &Heatmap<'_>) -> Chart {
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
    let (min, max) = if let Some(range) = map.range {
        range
    } else if values.is_empty() {
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
    let mut svg = String::new();
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
    Chart {
        id: map.id.to_string(),
        title: map.title.to_string(),
        desc,
        size: (width, height),
        body: svg,
        table: heat_table(map),
        empty: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            range: None,
        })
        .html();
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
