//! The Spark engine: submit `spark/earshot_job.py` (the same `sql/` files, run by Spark SQL) with a
//! configurable submit command, so the same job runs in local mode, on YARN, or on Dataproc
//! (`gcloud dataproc jobs submit pyspark … --`), then read its Parquet results back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use earshot_core::progress::Progress;
use earshot_core::storage::StorageUrl;
use earshot_core::{Storage, layout};
use polars::prelude::*;

use crate::snapshot::Filters;

/// How to reach Spark.
#[derive(Debug, Clone)]
pub struct SparkOptions {
    /// The submit command, split on spaces: `spark-submit --master local[2]`, or
    /// `gcloud dataproc jobs submit pyspark --cluster=earshot --region=europe-west1` (the job file and
    /// `--` are added for gcloud).
    pub submit: String,
    /// The job file (`crates/analytics/spark/earshot_job.py`).
    pub job: PathBuf,
    /// The SQL folder (`crates/metrics/sql`), readable by the driver (a gs:// URL on Dataproc).
    pub sql: String,
}

impl SparkOptions {
    /// The job and SQL shipped beside this crate's sources (development and the demo).
    pub fn from_sources(submit: &str) -> SparkOptions {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        SparkOptions {
            submit: submit.to_string(),
            job: root.join("spark/earshot_job.py"),
            sql: root.join("../metrics/sql").display().to_string(),
        }
    }
}

/// Run the job over `snapshot` and return every table it wrote, by name.
pub async fn run(
    storage: &Storage,
    snapshot: &str,
    filters: &Filters,
    run_id: &str,
    options: &SparkOptions,
) -> Result<BTreeMap<String, DataFrame>> {
    let (exports, out, local_out) = match storage.url() {
        StorageUrl::Local(root) => {
            let out = tempfile::Builder::new()
                .prefix("earshot-spark-")
                .tempdir()?;
            let exports = std::fs::canonicalize(root)
                .unwrap_or_else(|_| root.clone())
                .join(layout::EXPORTS);
            (
                exports.display().to_string(),
                out.path().display().to_string(),
                Some(out),
            )
        }
        StorageUrl::Gcs { .. } => (
            storage.location(layout::EXPORTS),
            storage.location(&layout::spark_output_prefix(run_id)),
            None,
        ),
    };
    let mut command = submit_command(options, snapshot, filters, &exports, &out)?;
    let program = command.get_program().to_string_lossy().to_string();
    tracing::info!(command = %options.submit, "Submitting the Spark job.");
    let progress = Progress::new("Running the Spark job", "jobs", 1);
    let output = progress
        .tick_while(tokio::task::spawn_blocking(move || command.output()))
        .await?
        .with_context(|| format!("running `{program}`"))?;
    progress.inc(1);
    progress.finish();
    if !output.status.success() {
        bail!("{}", failure_report(&output.status, &output.stderr));
    }
    let tables = match &local_out {
        Some(dir) => read_tables(dir.path()).await?,
        None => {
            let staged = storage
                .stage_local(&layout::spark_output_prefix(run_id))
                .await?;
            read_tables(staged.path()).await?
        }
    };
    Ok(tables)
}

/// What a failed job says: its exit status, the Python traceback if there is one, the last lines of its
/// output, and the file that keeps the whole of it (Spark's real cause is often far above the tail,
/// under pages of executor logs).
fn failure_report(status: &std::process::ExitStatus, stderr: &[u8]) -> String {
    const TAIL: usize = 20;
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let mut report = format!("the Spark job failed ({status})");
    let kept = tempfile::Builder::new()
        .prefix("earshot-spark-stderr-")
        .suffix(".log")
        .tempfile()
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, stderr)?;
            file.keep().map_err(|e| e.error)
        });
    match kept {
        Ok((_, path)) => report.push_str(&format!("; its whole output is in {}", path.display())),
        Err(error) => report.push_str(&format!("; its output could not be kept: {error}")),
    }
    let tail_from = lines.len().saturating_sub(TAIL);
    if let Some(start) = lines[..tail_from]
        .iter()
        .rposition(|line| line.starts_with("Traceback (most recent call last)"))
    {
        let end = (start + 1..tail_from)
            .find(|&i| !lines[i].starts_with(' '))
            .map_or(tail_from, |i| i + 1);
        report.push_str(":\n");
        report.push_str(&lines[start..end].join("\n"));
        report.push_str("\n…");
    } else {
        report.push(':');
    }
    report.push('\n');
    report.push_str(&lines[tail_from..].join("\n"));
    report
}

/// The submit command: `--spark-submit`'s words, the job, and the job's arguments (after `--` for
/// gcloud).
fn submit_command(
    options: &SparkOptions,
    snapshot: &str,
    filters: &Filters,
    exports: &str,
    out: &str,
) -> Result<Command> {
    let mut words = options.submit.split_whitespace();
    let program = words.next().context("`--spark-submit` is empty")?;
    let mut command = Command::new(program);
    command.args(words);
    command.arg(&options.job);
    if program.ends_with("gcloud") {
        command.arg("--");
    }
    command.args([
        "--exports",
        exports,
        "--snapshot",
        snapshot,
        "--sql",
        &options.sql,
        "--out",
        out,
    ]);
    if let Some(from) = filters.from {
        command.args(["--from-ms", &from.timestamp_millis().to_string()]);
    }
    if let Some(to) = filters.to {
        command.args(["--to-ms", &to.timestamp_millis().to_string()]);
    }
    if !filters.members.is_empty() {
        command.args(["--members", &filters.members.join(",")]);
    }
    if !filters.hidden.is_empty() {
        command.args(["--hidden-members", &filters.hidden.join(",")]);
    }
    Ok(command)
}

/// Every `<name>/part-*.parquet` folder under `dir` as a DataFrame.
async fn read_tables(dir: &Path) -> Result<BTreeMap<String, DataFrame>> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, DataFrame>> {
        let mut tables = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let folder = entry?.path();
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !folder.is_dir() || name.starts_with('_') {
                continue;
            }
            let frame = crate::snapshot::read_parquet_folder(&folder)?;
            if let Some(frame) = frame {
                tables.insert(name, frame);
            }
        }
        Ok(tables)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn a_failure_names_the_traceback_the_tail_and_the_file_that_keeps_it_all() {
        let mut stderr = String::from(
            "Traceback (most recent call last):\n  File \"job.py\", line 3\nValueError: no plays\n",
        );
        for i in 0..100 {
            stderr.push_str(&format!("INFO executor line {i}\n"));
        }
        let report = failure_report(
            &std::process::ExitStatus::from_raw(50 << 8),
            stderr.as_bytes(),
        );
        assert!(report.contains("exit status: 50"), "{report}");
        assert!(report.contains("ValueError: no plays"), "{report}");
        assert!(report.contains("INFO executor line 99"), "{report}");
        assert!(!report.contains("INFO executor line 50\n"), "{report}");
        let path = report
            .split("its whole output is in ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .expect("the report names the file");
        let kept = std::fs::read_to_string(path).unwrap();
        assert_eq!(kept, stderr);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_failure_without_a_traceback_shows_the_tail() {
        let report = failure_report(&std::process::ExitStatus::from_raw(1 << 8), b"one\ntwo\n");
        assert!(report.ends_with(":\none\ntwo"), "{report}");
    }
}
