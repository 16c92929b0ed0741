//! A play's local time, computed once, by the converter.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The record field of a play's local day ([`LocalTime::local_day`]).
pub const LOCAL_DAY: &str = "local_day";
/// The record field of a play's local hour ([`LocalTime::local_hour`]).
pub const LOCAL_HOUR: &str = "local_hour";
/// The record field of a play's local ISO weekday ([`LocalTime::local_weekday`]).
pub const LOCAL_WEEKDAY: &str = "local_weekday";
/// The record field of a play's local day as a number ([`LocalTime::local_day_number`]).
pub const LOCAL_DAY_NUMBER: &str = "local_day_number";

/// A play's time in the group's zone, computed once, by the converter, with chrono-tz. The ledger, the
/// builds, the export, polars and Spark read these fields: nothing downstream parses a time string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTime {
    /// `YYYY-MM-DD HH:MM:SS TZ`, e.g. `2024-03-01 10:15:00 PST`: for people to read.
    pub played_at_local: String,
    /// The local day, `YYYY-MM-DD` ([`LOCAL_DAY`]).
    pub local_day: String,
    /// The local hour, 0–23 ([`LOCAL_HOUR`]).
    pub local_hour: u8,
    /// The local ISO weekday, 1 (Monday) to 7 (Sunday) ([`LOCAL_WEEKDAY`]).
    pub local_weekday: u8,
    /// The local day counted from 1970-01-01 ([`LOCAL_DAY_NUMBER`]): consecutive days differ by one,
    /// so that a streak of days is arithmetic, not date parsing.
    pub local_day_number: i64,
}

/// 1970-01-01 counted from the first day of the common era.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl LocalTime {
    /// A UTC instant in `zone`.
    pub fn of(at: DateTime<Utc>, zone: Tz) -> LocalTime {
        use chrono::{Datelike as _, Timelike as _};
        let local = at.with_timezone(&zone);
        LocalTime {
            played_at_local: local.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
            local_day: local.format("%Y-%m-%d").to_string(),
            local_hour: local.hour() as u8,
            local_weekday: local.weekday().number_from_monday() as u8,
            local_day_number: i64::from(local.date_naive().num_days_from_ce())
                - i64::from(EPOCH_DAYS_FROM_CE),
        }
    }
}
