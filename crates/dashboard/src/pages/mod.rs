//! One module per page: each holds its handler, its typed context and its reads (through
//! [`crate::data`]), and renders its template. Links come from [`crate::urls`].

pub mod artist;
pub mod assets;
pub mod connect;
pub mod group;
pub mod listen_api;
mod listeners;
pub mod login;
pub mod me;
pub mod member;
pub mod pair;
pub mod recap;
mod spoken;
pub mod status;
pub mod track;

use earshot_metrics::rows::ClockCell;

use earshot_charts::Heatmap;

/// A weekday × hour listening clock as a heatmap.
fn clock_chart<'a>(id: &str, title: &str, rows: impl Iterator<Item = &'a ClockCell>) -> String {
    let mut cells = vec![vec![None; 24]; 7];
    for row in rows {
        if (1..=7).contains(&row.weekday) && (0..24).contains(&row.hour) {
            let cell: &mut Option<f64> = &mut cells[row.weekday as usize - 1][row.hour as usize];
            *cell = Some(cell.unwrap_or(0.0) + row.plays as f64);
        }
    }
    earshot_charts::heatmap(&Heatmap {
        id,
        title,
        unit: "plays",
        rows: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            .map(String::from)
            .to_vec(),
        columns: (0..24).map(|h| format!("{h}")).collect(),
        cells,
        decimals: 0,
        cell: (24.0, 22.0),
        label_width: 40.0,
        range: None,
    })
    .html()
}
