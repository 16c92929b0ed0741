//! Each scheduled step's recent runs, kept in the state store ([`layout::step_runs_key`]): when each
//! began, how long it took and how it ended, newest first, at most [`KEPT_RUNS`]. A binary run by the
//! DAG (which sets [`env::EARSHOT_STEP`] to the task's id) records its run as it ends ([`StepClock`]);
//! the dashboard's metrics read them ([`list`]). A run by hand records nothing.
//!
//! A run that talked to Spotify also records the 429s it was answered and the time it waited on
//! Spotify (a 429's `Retry-After` and the backoff after a 5xx or a transport failure): the Spotify
//! client reports them here as they happen ([`note_rate_limited`], [`note_spotify_wait`]), and each
//! step keeps their totals over all its runs, which the metrics serve as counters.
//!
//! A run also states the batch settings that bound its memory (documents per round trip, rows and keys
//! per aggregation, …): the code that batches notes each as it applies it ([`note_batch_setting`],
//! names in [`batch`]), and the record keeps them beside the run's peak memory.
//!
//! Recording never fails a step: a record that cannot be written is logged and the step's own exit
//! code stands. Two runs of one step at once (the DAGs run one at a time) would keep the later write.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cli::{Outcome, StorageArgs};
use crate::storage::{Storage, StorageError};
use crate::{env, layout, scope};

/// The runs kept per step: enough for "failed N times in a row" and a trend.
pub const KEPT_RUNS: usize = 20;
/// The longest step name (it becomes a storage key).
pub const MAX_STEP_LEN: usize = 64;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Exit 0.
    Success,
    /// Exit 3: some members or files failed, the rest is done.
    Partial,
    /// Exit 1: an error, or nothing useful done.
    Failure,
}

impl RunOutcome {
    /// The outcome of a binary's `run`.
    pub fn of<E>(result: &Result<Outcome, E>) -> RunOutcome {
        match result {
            Ok(Outcome::Success) => RunOutcome::Success,
            Ok(Outcome::Partial) => RunOutcome::Partial,
            Ok(Outcome::Failure) | Err(_) => RunOutcome::Failure,
        }
    }
}

/// One run of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Spotify's 429 answers during the run.
    #[serde(default)]
    pub rate_limited: u64,
    /// Milliseconds the run waited on Spotify (`Retry-After`, and backoff before a retry).
    #[serde(default)]
    pub spotify_wait_ms: u64,
    /// The process's peak resident memory, in bytes (Linux's `VmHWM`; `None` where it cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// The batch settings the run applied, by name ([`batch`]): empty for a step that does not batch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub batch_settings: BTreeMap<String, u64>,
}

/// The names of the batch settings a run states ([`StepRun::batch_settings`]), and the metrics'
/// `setting` label.
pub mod batch {
    /// `data-upload`: documents sent to MongoDB in one round trip (`--batch-size`).
    pub const DOCUMENTS_PER_ROUND_TRIP: &str = "documents_per_round_trip";
    /// `create-collections`: plays one partial aggregation reads, about.
    pub const ROWS_PER_AGGREGATION: &str = "rows_per_aggregation";
    /// `create-collections`: key values one aggregation matches at most.
    pub const KEYS_PER_AGGREGATION: &str = "keys_per_aggregation";
    /// `create-collections`: partials one fold reads at most.
    pub const PARTIALS_PER_AGGREGATION: &str = "partials_per_aggregation";
    /// `create-collections`: local days one partial aggregation reads at most.
    pub const DAYS_PER_AGGREGATION: &str = "days_per_aggregation";
    /// `gcs-export`: rows held before a Parquet row group is written.
    pub const ROWS_PER_ROW_GROUP: &str = "rows_per_row_group";
    /// `gcs-export`: rows one Parquet file holds at most (`--part-rows`).
    pub const ROWS_PER_FILE: &str = "rows_per_file";
    /// `gcs-export`: documents the server returns per cursor batch.
    pub const DOCUMENTS_PER_CURSOR_BATCH: &str = "documents_per_cursor_batch";
    /// `json-converter`: raw bytes converted in one batch, at most.
    pub const BYTES_PER_BATCH: &str = "bytes_per_batch";
    /// `json-converter`: raw files converted in one batch, at most.
    pub const FILES_PER_BATCH: &str = "files_per_batch";
}

/// A step's sums over every run it recorded (not only the kept ones): what the metrics serve as
/// counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTotals {
    /// Spotify's 429 answers.
    pub rate_limited: u64,
    /// Milliseconds waited on Spotify.
    pub spotify_wait_ms: u64,
}

/// A step's recent runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRuns {
    /// The step (the DAG's task id).
    pub step: String,
    /// Newest first, at most [`KEPT_RUNS`].
    pub runs: Vec<StepRun>,
    /// Sums over every run recorded.
    #[serde(default)]
    pub totals: StepTotals,
}

impl StepRuns {
    /// Runs that ended in failure since the last that did not (0 when the newest did not fail).
    pub fn failures_in_a_row(&self) -> usize {
        self.runs
            .iter()
            .take_while(|run| run.outcome == RunOutcome::Failure)
            .count()
    }
}

/// Why a step's runs could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StepRunsError {
    /// Reading or writing storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A step name that cannot be a storage key.
    #[error(
        "`{0}` is not a step name: 1-{MAX_STEP_LEN} of a-z, 0-9, `_` and `-` (the DAG's task id)"
    )]
    BadName(String),
    /// A record that is not one.
    #[error("`{location}` is not a step's runs: {message}")]
    Corrupt {
        /// Where it is.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether `step` may name a step: 1-[`MAX_STEP_LEN`] of `a-z`, `0-9`, `_`, `-`.
pub fn valid_name(step: &str) -> bool {
    !step.is_empty()
        && step.len() <= MAX_STEP_LEN
        && step
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The runs of `step`, if it has run.
pub async fn read(storage: &Storage, step: &str) -> Result<Option<StepRuns>, StepRunsError> {
    if !valid_name(step) {
        return Err(StepRunsError::BadName(step.to_string()));
    }
    let key = layout::step_runs_key(step);
    if !storage.exists(&key).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&key).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StepRunsError::Corrupt {
            location: storage.location(&key),
            message: e.to_string(),
        })
}

/// Add `run` to the runs of `step` (newest first, the oldest beyond [`KEPT_RUNS`] dropped).
pub async fn record(storage: &Storage, step: &str, run: StepRun) -> Result<(), StepRunsError> {
    let mut runs = read(storage, step).await?.unwrap_or_else(|| StepRuns {
        step: step.to_string(),
        runs: Vec::new(),
        totals: StepTotals::default(),
    });
    runs.totals.rate_limited = runs.totals.rate_limited.saturating_add(run.rate_limited);
    runs.totals.spotify_wait_ms = runs
        .totals
        .spotify_wait_ms
        .saturating_add(run.spotify_wait_ms);
    runs.runs.insert(0, run);
    runs.runs.truncate(KEPT_RUNS);
    let bytes = serde_json::to_vec_pretty(&runs).expect("step runs serialise");
    storage
        .write(&layout::step_runs_key(step), bytes.into())
        .await?;
    Ok(())
}

/// Every step's runs, by step name.
pub async fn list(storage: &Storage) -> Result<Vec<StepRuns>, StepRunsError> {
    let mut out = Vec::new();
    for key in storage.list(&layout::step_runs_prefix()).await? {
        let Some(step) = key
            .strip_prefix(&layout::step_runs_prefix())
            .and_then(|rest| rest.strip_suffix(".json"))
        else {
            continue;
        };
        if !valid_name(step) {
            continue;
        }
        if let Some(runs) = read(storage, step).await? {
            out.push(runs);
        }
    }
    out.sort_by(|a, b| a.step.cmp(&b.step));
    Ok(out)
}

/// Spotify's 429 answers this process was given.
static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);
/// Milliseconds this process waited on Spotify.
static SPOTIFY_WAIT_MS: AtomicU64 = AtomicU64::new(0);

/// Spotify answered 429 (whether or not the run then waited): counted in this run's record.
pub fn note_rate_limited() {
    RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
}

/// The run waited `wait` on Spotify (a `Retry-After`, or backoff before a retry): counted in this
/// run's record.
pub fn note_spotify_wait(wait: Duration) {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    SPOTIFY_WAIT_MS.fetch_add(ms, Ordering::Relaxed);
}

/// The batch settings this process applied ([`note_batch_setting`]).
static BATCH_SETTINGS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// The run applies the batch setting `name` ([`batch`]) with `value`: stated in this run's record.
pub fn note_batch_setting(name: &str, value: u64) {
    if let Ok(mut settings) = BATCH_SETTINGS.lock() {
        settings.insert(name.to_string(), value);
    }
}

/// The batch settings this process noted so far.
pub fn batch_settings() -> BTreeMap<String, u64> {
    BATCH_SETTINGS
        .lock()
        .map(|settings| settings.clone())
        .unwrap_or_default()
}

/// This process's peak resident memory so far, in bytes: `VmHWM` of `/proc/self/status` (Linux, where
/// the DAGs run); `None` where there is no such file.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// A scheduled binary's `main` after its flags are parsed: run `work`, record the run when
/// [`env::EARSHOT_STEP`] names the step ([`StepClock`]), and map the outcome to the exit code.
pub async fn exit_code_of(
    program: &str,
    files: &StorageArgs,
    work: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> std::process::ExitCode {
    let clock = StepClock::start(files);
    let result = work.await;
    clock.finish(&result).await;
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => crate::cli::report_error(program, &err),
    }
}

/// A binary's run, timed from its start: [`StepClock::finish`] records it when
/// [`env::EARSHOT_STEP`] names the step.
#[derive(Debug)]
pub struct StepClock {
    step: Option<String>,
    files: StorageArgs,
    started_at: DateTime<Utc>,
    started: Instant,
}

impl StepClock {
    /// Start timing a run of the binary whose storage flags are `files`.
    pub fn start(files: &StorageArgs) -> StepClock {
        StepClock {
            step: std::env::var(env::EARSHOT_STEP)
                .ok()
                .filter(|s| !s.is_empty()),
            files: files.clone(),
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    /// Record the run's outcome in the group's storage (when the DAG named the step). A failure to
    /// record is logged, never returned: the step's own result stands.
    pub async fn finish<E>(self, result: &Result<Outcome, E>) {
        let Some(step) = self.step else {
            return;
        };
        let run = StepRun {
            started_at: self.started_at,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: RunOutcome::of(result),
            rate_limited: RATE_LIMITED.load(Ordering::Relaxed),
            spotify_wait_ms: SPOTIFY_WAIT_MS.load(Ordering::Relaxed),
            peak_memory_bytes: peak_memory_bytes(),
            batch_settings: batch_settings(),
        };
        let recorded = async {
            let group = self.files.group()?;
            let url = scope::storage_of(&group, &self.files.storage)?;
            let storage = Storage::open(&url).await?;
            record(&storage, &step, run).await?;
            anyhow::Ok(())
        };
        if let Err(err) = recorded.await {
            tracing::warn!(step = %step, error = %format!("{err:#}"), "Could not record this step's run.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(minute: u32, outcome: RunOutcome) -> StepRun {
        StepRun {
            started_at: format!("2026-12-07T10:{minute:02}:00Z").parse().unwrap(),
            duration_ms: 1500,
            outcome,
            rate_limited: 0,
            spotify_wait_ms: 0,
            peak_memory_bytes: None,
            batch_settings: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn the_batch_settings_noted_are_recorded() {
        note_batch_setting(batch::KEYS_PER_AGGREGATION, 2_000);
        note_batch_setting(batch::KEYS_PER_AGGREGATION, 3_000);
        note_batch_setting(batch::ROWS_PER_AGGREGATION, 100_000);
        let noted = batch_settings();
        assert_eq!(noted[batch::KEYS_PER_AGGREGATION], 3_000);
        assert_eq!(noted[batch::ROWS_PER_AGGREGATION], 100_000);
        // They travel with the run's record and read back.
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let mut stated = run(0, RunOutcome::Success);
        stated.batch_settings = noted.clone();
        record(&storage, "build", stated).await.unwrap();
        let runs = read(&storage, "build").await.unwrap().unwrap();
        assert_eq!(runs.runs[0].batch_settings, noted);
    }

    #[test]
    fn the_peak_memory_is_read_from_the_process() {
        let peak = peak_memory_bytes().expect("Linux has /proc/self/status");
        // A test process holds more than a megabyte and less than its machine.
        assert!(peak > 1 << 20 && peak < 1 << 40, "{peak}");
        let held = vec![1u8; 64 << 20];
        assert!(peak_memory_bytes().unwrap() >= 64 << 20, "{}", held.len());
    }

    #[tokio::test]
    async fn runs_are_kept_newest_first_and_failures_counted_in_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        assert_eq!(read(&storage, "export").await.unwrap(), None);
        record(&storage, "export", run(0, RunOutcome::Success))
            .await
            .unwrap();
        for minute in 1..=3 {
            record(&storage, "export", run(minute, RunOutcome::Failure))
                .await
                .unwrap();
        }
        let runs = read(&storage, "export").await.unwrap().unwrap();
        assert_eq!(runs.runs.len(), 4);
        assert_eq!(runs.runs[0], run(3, RunOutcome::Failure));
        assert_eq!(runs.failures_in_a_row(), 3);
        record(&storage, "export", run(4, RunOutcome::Partial))
            .await
            .unwrap();
        let runs = read(&storage, "export").await.unwrap().unwrap();
        assert_eq!(runs.failures_in_a_row(), 0, "a partial run ends the streak");
        for minute in 5..40 {
            record(&storage, "export", run(minute, RunOutcome::Success))
                .await
                .unwrap();
        }
        let runs = read(&storage, "export").await.unwrap().unwrap();
        assert_eq!(runs.runs.len(), KEPT_RUNS);
        assert_eq!(
            runs.runs[0].started_at,
            run(39, RunOutcome::Success).started_at
        );
        record(&storage, "fetch_top", run(0, RunOutcome::Success))
            .await
            .unwrap();
        let steps: Vec<String> = list(&storage)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, ["export", "fetch_top"]);
    }

    #[tokio::test]
    async fn spotify_waits_are_summed_over_every_run_even_those_no_longer_kept() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        // A record written before runs carried Spotify's waits still reads, with none.
        storage
            .write(
                &layout::step_runs_key("fetch"),
                r#"{"step":"fetch","runs":[{"started_at":"2026-12-07T09:00:00Z","duration_ms":5,"outcome":"success"}]}"#.into(),
            )
            .await
            .unwrap();
        let old = read(&storage, "fetch").await.unwrap().unwrap();
        assert_eq!(
            (old.runs[0].rate_limited, old.totals),
            (0, StepTotals::default())
        );
        assert!(old.runs[0].batch_settings.is_empty());
        for minute in 0..(KEPT_RUNS as u32 + 5) {
            let mut waited = run(minute, RunOutcome::Success);
            waited.rate_limited = 2;
            waited.spotify_wait_ms = 1500;
            record(&storage, "fetch", waited).await.unwrap();
        }
        let runs = read(&storage, "fetch").await.unwrap().unwrap();
        assert_eq!(runs.runs.len(), KEPT_RUNS);
        let recorded = KEPT_RUNS as u64 + 5;
        assert_eq!(
            runs.totals,
            StepTotals {
                rate_limited: 2 * recorded,
                spotify_wait_ms: 1500 * recorded
            }
        );
    }

    #[tokio::test]
    async fn a_hostile_step_name_never_becomes_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        for name in [
            "",
            "../members/emi",
            "Export",
            "a b",
            &"x".repeat(MAX_STEP_LEN + 1),
        ] {
            let err = record(&storage, name, run(0, RunOutcome::Success))
                .await
                .unwrap_err();
            assert!(matches!(err, StepRunsError::BadName(_)), "{name}: {err}");
        }
        assert!(list(&storage).await.unwrap().is_empty());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    #[tokio::test]
    async fn a_corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        storage
            .write(&layout::step_runs_key("export"), "not json".into())
            .await
            .unwrap();
        let err = read(&storage, "export").await.unwrap_err().to_string();
        assert!(err.contains("state/steps/export.json"), "{err}");
    }
}
