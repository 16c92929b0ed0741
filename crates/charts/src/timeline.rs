//! A value per day on a time axis.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use crate::{BAR_COLOUR, Chart, escape, number, ticks};

/// A value per day on a time axis from the first day to the last: each day at its place, so a stretch
/// without plays shows as the gap it is. Months are ticked.
pub fn timeline(id: &str, title: &str, unit: &str, days: &[(NaiveDate, f64)]) -> Chart {
    timeline_spanning(id, title, unit, days, None)
}

/// [`timeline`] from `span`'s first day to its last (when given), so that timelines side by side share
/// one axis.
pub fn timeline_spanning(
    id: &str,
    title: &str,
    unit: &str,
    days: &[(NaiveDate, f64)],
    span: Option<(NaiveDate, NaiveDate)>,
) -> Chart {
    let (left, plot_width, top, plot_height) = (50.0, 640.0, 10.0, 160.0);
    let width = left + plot_width + 20.0;
    let height = top + plot_height + 50.0;
    let found = (
        days.iter().map(|d| d.0).min(),
        days.iter().map(|d| d.0).max(),
    );
    let (Some(first), Some(last)) = span.map_or(found, |(a, b)| (Some(a), Some(b))) else {
        return Chart {
            id: id.to_string(),
            title: title.to_string(),
            desc: "no plays".to_string(),
            size: (width, height),
            body: String::new(),
            table: String::new(),
            empty: Some("No plays in this period.".to_string()),
        };
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
    let mut svg = String::new();
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
            "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{BAR_COLOUR}\"><title>{day}: {}</title></rect>",
            x(*day),
            y(*value),
            (day_width * 0.9).max(0.8),
            top + plot_height - y(*value),
            number(*value, 0)
        );
    }
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        desc,
        size: (width, height),
        body: svg,
        table: day_table(unit, days),
        empty: None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        )
        .html();
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
        )
        .html();
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
}
