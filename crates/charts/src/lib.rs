//! One chart model for every chart Earshot draws: the dashboard's pages and analytics' report charts
//! are made of the same three kinds, with one scale and one palette, as SVG:
//!
//! - [`bars`]: horizontal bars, one per label, with integer ticks for counts;
//! - [`timeline`]: a value per day on a real time axis: days without plays are gaps, not skipped;
//! - [`heatmap`]: a matrix with labels centred on their rows and columns, values inside the cells, and a
//!   colour scale.
//!
//! A [`Chart`] is one of them: the dashboard shows it inline, in a `<figure>` with a title, units and a
//! text alternative (the chart's numbers as a table; [`Chart::html`]), and the browser draws it (so any
//! name shows, emoji included). A [`sheet`] lays several out on one page, as analytics' report charts
//! do (a panel per member); [`png`] rasterises that same SVG with the bundled font (DejaVu Sans, in
//! `assets/`), so a PNG looks as its SVG does, on any machine.
//!
//! Only presentation attributes are used (no `style`), so the dashboard's Content-Security-Policy needs
//! no `unsafe-inline`.

mod bars;
mod heatmap;
mod png;
mod sheet;
mod timeline;

pub use bars::{Bar, bars};
pub use heatmap::{Heatmap, heatmap};
pub use png::png;
pub use sheet::{SHEET_SIZE, sheet};
pub use timeline::{MAX_TIME_TICKS, timeline, timeline_spanning};

/// The colour of a bar, and of a day's column.
pub const BAR_COLOUR: &str = "#3b6fb6";

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
/// `integer` (counts are never ticked `2.5`). The one scale of every chart.
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

/// A colour on the sequential scale, `t` from 0 (light) to 1 (dark): the one palette of every
/// heatmap.
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

/// One chart: its SVG drawing and what it says in words.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Its id (unique in a page; ids inside the drawing start with it).
    pub id: String,
    /// Its title.
    pub title: String,
    /// What it shows, in words (the SVG's `<desc>`, and the text alternative's summary).
    pub desc: String,
    /// Its size in pixels.
    pub size: (f64, f64),
    /// The drawing: the SVG elements inside the `<svg>`.
    pub body: String,
    /// Its numbers as an HTML table.
    pub table: String,
    /// What shows instead of a drawing when there is nothing to draw ("No plays in this period.").
    pub empty: Option<String>,
}

impl Chart {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        let (width, height) = self.size;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
             height=\"{height}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" font-family=\"system-ui, sans-serif\" \
             font-size=\"12\"><title id=\"{id}-t\">{title}</title><desc id=\"{id}-d\">{desc}</desc>",
            id = escape(&self.id),
            title = escape(&self.title),
            desc = escape(&self.desc),
        );
        svg.push_str(&self.body);
        svg.push_str("</svg>");
        svg
    }

    /// The chart in a page: a `<figure>` with its title, the SVG, and its numbers behind a
    /// `<details>` (for screen readers and without SVG).
    pub fn html(&self) -> String {
        let (svg, alt) = match &self.empty {
            Some(note) => (format!("<p>{}</p>", escape(note)), "no plays".to_string()),
            None => (self.svg(), self.desc.clone()),
        };
        format!(
            "<figure class=\"chart\" id=\"{id}\">\n<figcaption>{title}</figcaption>\n{svg}\n\
             <details><summary>The numbers ({alt})</summary>\n{table}</details>\n</figure>",
            id = escape(&self.id),
            title = escape(&self.title),
            alt = escape(&alt),
            table = self.table,
        )
    }
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
    fn the_palette_runs_from_light_to_dark() {
        assert_eq!(colour(0.0), "#eff6ff");
        assert_eq!(colour(1.0), "#08306b");
        assert_eq!(colour(2.0), colour(1.0), "clamped");
    }
}
