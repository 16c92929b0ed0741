//! Time, injectable: the fetcher asks a [`Clock`] for "now" and to wait, so tests can run a week of
//! hourly fetches in seconds and assert the waits Spotify asked for.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use earshot_core::env;

/// Now, and waiting.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Wait for `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system clock and real sleeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The system clock shifted so that it read a given time when the program started: the demo runs the
/// fetcher under the mock Spotify's 2024 clock, so raw pages, cursors and authorisation dates are
/// dated in the story's time. Waits still really wait.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset: chrono::Duration,
}

impl ShiftedClock {
    /// A clock that reads `now` at this instant.
    pub fn starting_at(now: DateTime<Utc>) -> ShiftedClock {
        ShiftedClock {
            offset: now - Utc::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The system clock, or a [`ShiftedClock`] starting at [`env::EARSHOT_NOW`] when that is set.
pub fn from_env() -> Result<Arc<dyn Clock>> {
    match std::env::var(env::EARSHOT_NOW) {
        Ok(text) => {
            let now = DateTime::parse_from_rfc3339(&text).with_context(|| {
                format!("`{}={text}` is not an RFC 3339 time", env::EARSHOT_NOW)
            })?;
            Ok(Arc::new(ShiftedClock::starting_at(now.with_timezone(&Utc))))
        }
        Err(_) => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_reads_its_start_time_and_runs_on() {
        let start = DateTime::parse_from_rfc3339("2024-03-09T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ShiftedClock::starting_at(start);
        let read = clock.now();
        assert!(
            read >= start && read - start < chrono::Duration::seconds(5),
            "{read}"
        );
    }
}
