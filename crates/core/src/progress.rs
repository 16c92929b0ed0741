//! Progress of long work, visible where it runs: a bar on a terminal (indicatif), and on anything else
//! (an Airflow task log, Cloud Logging) a JSON progress line through tracing at most every 10 seconds,
//! so a long task's log shows where it is.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a log line reports progress when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress of one piece of work: `done` out of `total` units (files, documents, plays…).
#[derive(Debug)]
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    bar: Option<indicatif::ProgressBar>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Start reporting `what` (e.g. "Uploading converted files") over `total` `unit`s.
    pub fn new(what: impl Into<String>, unit: &'static str, total: u64) -> Progress {
        let what = what.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} {prefix} ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.clone());
            bar.set_prefix(unit);
            bar
        });
        let now = Instant::now();
        Progress {
            what,
            unit,
            total,
            bar,
            state: Mutex::new(State {
                done: 0,
                started: now,
                last_line: now,
            }),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.done += n;
        if self.bar.is_none() && state.last_line.elapsed() >= LOG_EVERY {
            state.last_line = Instant::now();
            self.line(&state);
        }
    }

    /// Work goes on with nothing to count: redraw the bar, or log a line when 10 s passed since the last.
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.tick();
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.last_line.elapsed() >= LOG_EVERY {
            state.last_line = Instant::now();
            self.line(&state);
        }
    }

    /// Await `work`, ticking every second meanwhile: long opaque work (a query, a Spark job) still
    /// shows that it is going on.
    pub async fn tick_while<F: std::future::Future>(&self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                output = &mut work => return output,
                _ = ticker.tick() => self.tick(),
            }
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).done
    }

    /// The work is over: clear the bar, or log the last line when lines were logged.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            return;
        }
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.started.elapsed() >= LOG_EVERY {
            self.line(&state);
        }
    }

    fn line(&self, state: &State) {
        tracing::info!(
            target: "earshot::progress",
            work = %self.what,
            unit = self.unit,
            done = state.done,
            total = self.total,
            elapsed_s = state.started.elapsed().as_secs(),
            "Progress."
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
