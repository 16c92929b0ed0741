//! A named period of the group's calendar: a year (`2024`), a month (`2024-10`) or an ISO week
//! (`2024-W44`), in the group's time zone. `analytics --period` computes a run for one, and the
//! dashboard's recap page shows it; both read the bounds from here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

/// A year, a month or an ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    /// A calendar year.
    Year(i32),
    /// A calendar month (1 to 12).
    Month(i32, u32),
    /// An ISO week (1 to 53) of an ISO year.
    Week(i32, u32),
}

/// Why a period's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a period: expected a year (2024), a month (2024-10) or an ISO week (2024-W44)"
)]
pub struct BadPeriod(pub String);

impl FromStr for Period {
    type Err = BadPeriod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPeriod(text.to_string());
        let year = |y: &str| -> Result<i32, BadPeriod> {
            if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            y.parse().map_err(|_| bad())
        };
        let number = |n: &str| -> Result<u32, BadPeriod> {
            if n.len() != 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            n.parse().map_err(|_| bad())
        };
        let period = match text.split_once('-') {
            None => Period::Year(year(text)?),
            Some((y, rest)) => match rest.strip_prefix('W') {
                Some(week) => Period::Week(year(y)?, number(week)?),
                None => Period::Month(year(y)?, number(rest)?),
            },
        };
        // Out-of-range months and weeks (13, W54, W53 of a 52-week year) have no first day.
        period.first_day().ok_or_else(bad)?;
        Ok(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Week(y, w) => write!(f, "{y:04}-W{w:02}"),
        }
    }
}

/// The dashboard's recap page (its route). Other binaries link to it: the posted weekly recap.
pub const RECAP_PATH: &str = "/recap";

/// The dashboard path of a period's recap (`/recap?period=2024-W44`).
pub fn recap_path(period: Period) -> String {
    format!("{RECAP_PATH}?period={period}")
}

/// The instant a local day begins in `zone` (the earlier one when midnight repeats); `None` when
/// midnight does not exist there that day.
pub fn local_midnight(day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    day.and_hms_opt(0, 0, 0)?
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl Period {
    /// The first local day of the period; `None` when it does not exist.
    pub fn first_day(&self) -> Option<NaiveDate> {
        match *self {
            Period::Year(y) => NaiveDate::from_ymd_opt(y, 1, 1),
            Period::Month(y, m) => NaiveDate::from_ymd_opt(y, m, 1),
            Period::Week(y, w) => NaiveDate::from_isoywd_opt(y, w, Weekday::Mon),
        }
    }

    /// The first local day after the period.
    pub fn end_day(&self) -> Option<NaiveDate> {
        let first = self.first_day()?;
        match *self {
            Period::Year(y) => NaiveDate::from_ymd_opt(y + 1, 1, 1),
            Period::Month(y, 12) => NaiveDate::from_ymd_opt(y + 1, 1, 1),
            Period::Month(y, m) => NaiveDate::from_ymd_opt(y, m + 1, 1),
            Period::Week(..) => first.checked_add_signed(Duration::days(7)),
        }
    }

    /// The period's bounds as instants: [start, end), local midnights in `zone`.
    pub fn bounds(&self, zone: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((
            local_midnight(self.first_day()?, zone)?,
            local_midnight(self.end_day()?, zone)?,
        ))
    }

    /// The last whole ISO week (Monday to Sunday) before the one `now` falls in, in `zone`: the week a
    /// weekly recap posted at `now` is about.
    pub fn last_whole_week(now: DateTime<Utc>, zone: Tz) -> Period {
        let last_week = now.with_timezone(&zone).date_naive() - Duration::days(7);
        let week = last_week.iso_week();
        Period::Week(week.year(), week.week())
    }

    /// Words for a person: "2024", "October 2024", "week 44 of 2024".
    pub fn label(&self) -> String {
        match *self {
            Period::Year(y) => y.to_string(),
            Period::Month(..) => self
                .first_day()
                .map_or_else(|| self.to_string(), |d| d.format("%B %Y").to_string()),
            Period::Week(y, w) => format!("week {w} of {y}"),
        }
    }

    /// The periods around this one a person steps to: (previous, next).
    pub fn neighbours(&self) -> (Period, Period) {
        match *self {
            Period::Year(y) => (Period::Year(y - 1), Period::Year(y + 1)),
            Period::Month(y, 1) => (Period::Month(y - 1, 12), Period::Month(y, 2)),
            Period::Month(y, 12) => (Period::Month(y, 11), Period::Month(y + 1, 1)),
            Period::Month(y, m) => (Period::Month(y, m - 1), Period::Month(y, m + 1)),
            Period::Week(..) => {
                let first = self.first_day().unwrap_or_default();
                let week = |d: NaiveDate| Period::Week(d.iso_week().year(), d.iso_week().week());
                (
                    week(first - Duration::days(7)),
                    week(first + Duration::days(7)),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_print_and_bound_in_the_group_zone() {
        let zone = chrono_tz::America::Los_Angeles;
        for (text, start, end) in [
            ("2024", "2024-01-01T08:00:00Z", "2025-01-01T08:00:00Z"),
            ("2024-10", "2024-10-01T07:00:00Z", "2024-11-01T07:00:00Z"),
            ("2024-12", "2024-12-01T08:00:00Z", "2025-01-01T08:00:00Z"),
            ("2024-W44", "2024-10-28T07:00:00Z", "2024-11-04T08:00:00Z"),
            ("2020-W53", "2020-12-28T08:00:00Z", "2021-01-04T08:00:00Z"),
        ] {
            let period: Period = text.parse().unwrap();
            assert_eq!(period.to_string(), text);
            let (from, to) = period.bounds(zone).unwrap();
            assert_eq!(from.to_rfc3339(), start.replace('Z', "+00:00"), "{text}");
            assert_eq!(to.to_rfc3339(), end.replace('Z', "+00:00"), "{text}");
        }
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-00",
            "2024-1",
            "2024-W54",
            "2024-W53",
            "2024-W00",
            "x2024",
            "2024-10-01",
            "２０２４",
        ] {
            let err = bad.parse::<Period>().unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(Period::Month(2024, 10).label(), "October 2024");
        assert_eq!(
            Period::Month(2024, 1).neighbours(),
            (Period::Month(2023, 12), Period::Month(2024, 2))
        );
        assert_eq!(
            Period::Week(2025, 1).neighbours(),
            (Period::Week(2024, 52), Period::Week(2025, 2))
        );
    }

    #[test]
    fn the_last_whole_week_is_the_one_before_now_in_the_zone() {
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let la = chrono_tz::America::Los_Angeles;
        // Monday 2024-11-04 12:00 UTC is Monday 04:00 in Los Angeles: the week before is W44.
        assert_eq!(
            Period::last_whole_week(at("2024-11-04T12:00:00Z"), la).to_string(),
            "2024-W44"
        );
        // Monday 02:00 UTC is still Sunday in Los Angeles: W44 is not over there, W43 is the last whole one.
        assert_eq!(
            Period::last_whole_week(at("2024-11-04T02:00:00Z"), la).to_string(),
            "2024-W43"
        );
        assert_eq!(
            Period::last_whole_week(at("2024-11-04T02:00:00Z"), chrono_tz::UTC).to_string(),
            "2024-W44"
        );
        // Across an ISO year: Monday 2025-01-06's last whole week is 2025-W01 (30 Dec to 5 Jan).
        assert_eq!(
            Period::last_whole_week(at("2025-01-06T12:00:00Z"), la).to_string(),
            "2025-W01"
        );
    }
}
