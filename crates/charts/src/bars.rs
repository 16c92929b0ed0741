//! Horizontal bars.

use std::fmt::Write as _;

use crate::{BAR_COLOUR, Chart, escape, number, ticks};

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
pub fn bars(id: &str, title: &str, unit: &str, items: &[Bar], integer: bool) -> Chart {
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
    let mut svg = String::new();
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
             <rect x=\"{label_width}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BAR_COLOUR}\"/>\
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
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        desc,
        size: (width, height),
        body: svg,
        table,
        empty: None,
    }
}
