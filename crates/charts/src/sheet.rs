//! Several charts on one page: analytics' report charts (a panel per member), as one SVG of
//! [`SHEET_SIZE`] that [`crate::png`] rasterises.

use std::fmt::Write as _;

use crate::{Chart, escape};

/// A sheet's size in pixels.
pub const SHEET_SIZE: (u32, u32) = (1200, 800);

/// Room for the sheet's title.
const TITLE_HEIGHT: f64 = 50.0;
/// Room for a panel's caption.
const CAPTION_HEIGHT: f64 = 24.0;

/// `panels` (each a caption and a chart) under `title`, one column of up to three, else two columns,
/// each panel scaled to its cell. A panel without a drawing shows its note.
pub fn sheet(id: &str, title: &str, panels: &[(String, Chart)]) -> String {
    let (width, height) = (f64::from(SHEET_SIZE.0), f64::from(SHEET_SIZE.1));
    let columns = if panels.len() <= 3 { 1 } else { 2 };
    let rows = panels.len().div_ceil(columns).max(1);
    let (cell_w, cell_h) = (
        width / columns as f64,
        (height - TITLE_HEIGHT) / rows as f64,
    );
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" role=\"img\" aria-labelledby=\"{id}-t\" font-family=\"system-ui, sans-serif\" \
         font-size=\"12\"><title id=\"{id}-t\">{title}</title>\
         <rect width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>\
         <text x=\"{:.1}\" y=\"34\" text-anchor=\"middle\" font-size=\"26\">{title}</text>",
        width / 2.0,
        id = escape(id),
        title = escape(title),
    );
    for (i, (caption, chart)) in panels.iter().enumerate() {
        let (x, y) = (
            cell_w * (i % columns) as f64,
            TITLE_HEIGHT + cell_h * (i / columns) as f64,
        );
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"16\">{}</text>",
            x + cell_w / 2.0,
            y + 16.0,
            escape(caption)
        );
        let (px, py, pw, ph) = (
            x + 8.0,
            y + CAPTION_HEIGHT,
            cell_w - 16.0,
            cell_h - CAPTION_HEIGHT - 4.0,
        );
        match &chart.empty {
            Some(note) => {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    px + pw / 2.0,
                    py + ph / 2.0,
                    escape(note)
                );
            }
            None => {
                let (w, h) = chart.size;
                let _ = write!(
                    svg,
                    "<svg x=\"{px:.1}\" y=\"{py:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" viewBox=\"0 0 {w} {h}\" \
                     preserveAspectRatio=\"xMidYMid meet\" role=\"img\" aria-labelledby=\"{id}-t\">\
                     <title id=\"{id}-t\">{title}</title>{body}</svg>",
                    id = escape(&chart.id),
                    title = escape(&chart.title),
                    body = chart.body,
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bar, bars};

    #[test]
    fn panels_fill_the_sheet_in_one_or_two_columns() {
        let panel = |n: usize| {
            (
                format!("Member {n}"),
                bars(
                    &format!("p{n}"),
                    "Top artists",
                    "plays",
                    &[Bar {
                        label: "Band".into(),
                        href: None,
                        value: 3.0,
                    }],
                    true,
                ),
            )
        };
        let three: Vec<_> = (0..3).map(panel).collect();
        let svg = sheet("s", "Top <artists>", &three);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Top &lt;artists&gt;"), "the title is text");
        assert_eq!(svg.matches("<svg x=").count(), 3);
        // One column: every panel starts at the left margin.
        assert_eq!(svg.matches("<svg x=\"8.0\"").count(), 3);
        let five: Vec<_> = (0..5).map(panel).collect();
        let svg = sheet("s", "Top artists", &five);
        assert_eq!(
            svg.matches("<svg x=\"608.0\"").count(),
            2,
            "a second column"
        );
        for n in 0..5 {
            assert!(svg.contains(&format!("Member {n}")));
        }
    }
}
