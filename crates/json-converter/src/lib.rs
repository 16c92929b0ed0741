//! `json-converter`: raw Spotify API pages → flat JSON Lines records.
//!
//! One raw file maps to one converted file under `converted/` with the same key
//! (`raw/<kind>/…/<fetched_at>.json` → `converted/<kind>/…/<fetched_at>.jsonl`), written atomically; a
//! file already converted is skipped, so a re-run finds its work done. `-` reads pages from stdin or
//! writes records to stdout, for shell pipelines. A bad file is reported (file, page, line, column,
//! field) and leaves no output; the other files are still converted, and the exit code says partial.

pub mod convert;

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use earshot_core::Storage;
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StorageArgs};
use earshot_core::erasure::ErasureGuard;
use earshot_core::layout::{self, partition_value};
use earshot_core::spotify::TimeRange;
use earshot_core::step_runs::{self, batch};
use futures::StreamExt as _;
use tracing::{error, info};

pub use convert::{ConvertError, Converter, PageMeta};
use earshot_core::layout::RawKind;

/// Convert raw Spotify API pages into flat JSON Lines records.
///
/// Reads `raw/<kind>/…` under `--storage` and writes `converted/<kind>/…` beside it, one file per raw
/// file; files already converted are skipped. Durations become `m:ss`, times get a local-time string in
/// the group's zone (America/Los_Angeles unless the group config says otherwise), markets are dropped.
#[derive(Debug, Parser)]
#[command(name = "json-converter", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What the pages hold.
    #[arg(value_enum)]
    pub kind: RawKind,
    #[command(flatten)]
    pub files: StorageArgs,
    /// A raw key (`….json`) or key prefix in the storage, or `-` for pages on stdin.
    /// Default: `raw/<kind>/`.
    #[arg(long)]
    pub input: Option<String>,
    /// `-` writes the records to stdout instead of `converted/…` in the storage.
    #[arg(long)]
    pub output: Option<String>,
    /// With `--input -`: the member whose pages these are.
    #[arg(long)]
    pub user: Option<String>,
    /// With `--input -` and top items: the time range of the pages.
    #[arg(long)]
    pub time_range: Option<TimeRange>,
    /// With `--input -`: when the pages were fetched (RFC 3339; default now). Dates top-items snapshots.
    #[arg(long)]
    pub fetched_at: Option<DateTime<Utc>>,
    /// Convert again even when the converted file exists.
    #[arg(long)]
    pub force: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Files converted now.
    pub converted: usize,
    /// Files skipped because their converted file exists.
    pub skipped: usize,
    /// Records written.
    pub records: usize,
    /// Files that failed, with the reason.
    pub failed: Vec<(String, String)>,
}

impl Summary {
    /// Success, partial or failure.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_counts(self.converted + self.skipped, self.failed.len())
    }
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    step_runs::note_batch_setting(batch::BYTES_PER_BATCH, BATCH_BYTES as u64);
    step_runs::note_batch_setting(batch::FILES_PER_BATCH, BATCH_FILES as u64);
    let (group, storage_url) = cli.files.scoped()?;
    let converter = Converter::new(cli.kind, group).map_err(anyhow::Error::msg)?;
    let to_stdout = match cli.output.as_deref() {
        None => false,
        Some("-") => true,
        Some(other) => bail!(
            "`--output {other}`: only `-` (stdout) is supported; converted files go to `--storage`"
        ),
    };
    if cli.input.as_deref() == Some("-") {
        let user = cli
            .user
            .clone()
            .context("`--input -` needs `--user <spotify id>`: stdin carries no key")?;
        let meta = PageMeta {
            user_id: user,
            time_range: cli.time_range,
            fetched_at: cli.fetched_at.unwrap_or_else(Utc::now),
        };
        if !to_stdout {
            bail!("`--input -` writes to stdout only: add `--output -`");
        }
        let stdout = std::io::stdout();
        let mut sink = BufWriter::new(stdout.lock());
        let records = converter.convert(std::io::stdin().lock(), "<stdin>", &meta, &mut sink)?;
        sink.flush()?;
        info!(records, "Converted pages from stdin.");
        return Ok(Outcome::Success);
    }
    let storage = Storage::open(&storage_url).await?;
    let input = cli
        .input
        .clone()
        .unwrap_or_else(|| layout::raw_prefix(cli.kind));
    let summary = convert_storage(&storage, &converter, &input, to_stdout, cli.force).await?;
    info!(
        converted = summary.converted,
        skipped = summary.skipped,
        failed = summary.failed.len(),
        records = summary.records,
        "Converted raw pages."
    );
    Ok(summary.outcome())
}

/// The page metadata a raw key carries: `user=<id>`, `time_range=<range>`, and the fetch time as the
/// file name (`20240301T181500.123Z.json`). An imported streaming-history file is named after the
/// export's file instead; its entries carry their own times, so it has no fetch time (the epoch).
pub fn meta_from_key(kind: RawKind, key: &str) -> Result<PageMeta, ConvertError> {
    let meta_error = |message: String| ConvertError::Meta {
        source_name: key.to_string(),
        message,
    };
    let user_id = partition_value(key, "user")
        .ok_or_else(|| meta_error("the key has no `user=<id>` folder".into()))?;
    let time_range = match partition_value(key, "time_range") {
        Some(text) => Some(text.parse::<TimeRange>().map_err(meta_error)?),
        None => None,
    };
    let stem = layout::file_stem(key);
    let fetched_at = match kind {
        // Imported files and listens carry their own times.
        RawKind::StreamingHistory | RawKind::SpokenHistory | RawKind::Listens => {
            DateTime::UNIX_EPOCH
        }
        _ => layout::parse_fetched_at_stamp(stem).ok_or_else(|| {
            meta_error(format!(
                "the file name `{stem}` is not a fetch time like `20240301T181500.000Z`"
            ))
        })?,
    };
    Ok(PageMeta {
        user_id: user_id.to_string(),
        time_range,
        fetched_at,
    })
}

/// Convert one stored raw file: its records and their JSON Lines.
async fn convert_one(
    storage: &Storage,
    converter: Arc<Converter>,
    key: &str,
) -> Result<(usize, Vec<u8>)> {
    let meta = meta_from_key(converter.kind(), key)?;
    let bytes = storage.read_all(key).await?;
    let location = storage.location(key);
    let converted = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(bytes.len() / 2);
        converter
            .convert_slice(&bytes, &location, &meta, &mut out)
            .map(|records| (records, out))
    })
    .await??;
    Ok(converted)
}

/// Converted files are written in batches of this many bytes (or [`BATCH_FILES`] files), each batch
/// with one durability barrier.
const BATCH_BYTES: usize = 16 << 20;
/// See [`BATCH_BYTES`].
const BATCH_FILES: usize = 1024;

/// The raw keys under `input` (a key or a prefix) of the converter's kind.
async fn raw_keys(storage: &Storage, converter: &Converter, input: &str) -> Result<Vec<String>> {
    let folder = layout::raw_prefix(converter.kind());
    if input.ends_with(layout::RAW_SUFFIX) {
        if !layout::is_raw_page(input, converter.kind()) {
            bail!(
                "`{input}` is not a {:?} page: its key must start with `{folder}`",
                converter.kind()
            );
        }
        return Ok(vec![input.to_string()]);
    }
    Ok(storage
        .list(input)
        .await?
        .into_iter()
        .filter(|k| layout::is_raw_page(k, converter.kind()))
        .collect())
}

/// Convert every raw file of the converter's kind under `input` (a key or a prefix).
///
/// What is converted already is learnt from one listing of `converted/<kind>/`, not one check per
/// file. Files are independent: several are read and converted at once (on the blocking pool, so every
/// core works); outputs are written in batches, each file complete or absent. Results come back in
/// key order, so stdout output is the same as one file after another.
pub async fn convert_storage(
    storage: &Storage,
    converter: &Converter,
    input: &str,
    to_stdout: bool,
    force: bool,
) -> Result<Summary> {
    let mut summary = Summary::default();
    // Converted files are a member's own: none is written back for a member being erased.
    let guard = if to_stdout {
        None
    } else {
        Some(ErasureGuard::begin(storage, "json-converter").await?)
    };
    let mut keys = raw_keys(storage, converter, input).await?;
    if !to_stdout && !force {
        let done: HashSet<String> = storage
            .list(&layout::converted_prefix(converter.kind()))
            .await?
            .into_iter()
            .collect();
        let before = keys.len();
        keys.retain(|key| {
            layout::converted_key(converter.kind(), key)
                .is_none_or(|target| !done.contains(&target))
        });
        summary.skipped = before - keys.len();
    }
    let converter = Arc::new(converter.clone());
    let in_flight = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut results = futures::stream::iter(keys)
        .map(|key| {
            let converter = Arc::clone(&converter);
            async move {
                let result = convert_one(storage, converter, &key).await;
                (key, result)
            }
        })
        .buffered(in_flight);
    let mut batch = Batch::default();
    let stdout = std::io::stdout();
    while let Some((key, result)) = results.next().await {
        match result {
            Ok((records, out)) => {
                summary.converted += 1;
                summary.records += records;
                if to_stdout {
                    stdout.lock().write_all(&out)?;
                } else {
                    let target = layout::converted_key(converter.kind(), &key)
                        .expect("a raw key of the kind, ending in .json");
                    batch.push(target, key, out);
                    if batch.bytes >= BATCH_BYTES || batch.files.len() >= BATCH_FILES {
                        batch.write_behind(storage, guard.as_ref()).await?;
                    }
                }
            }
            Err(err) => {
                error!(file = %storage.location(&key), error = %format!("{err:#}"), "Could not convert a raw page; no output written for it.");
                summary.failed.push((key, format!("{err:#}")));
            }
        }
    }
    batch.write_behind(storage, guard.as_ref()).await?;
    batch.finish(storage, guard.as_ref()).await?;
    Ok(summary)
}

/// Converted files waiting to be written together, and the batch being written: a batch is written
/// while the next one is converted.
#[derive(Default)]
struct Batch {
    /// (converted key, raw key, bytes).
    files: Vec<(String, String, bytes::Bytes)>,
    bytes: usize,
    writing: Option<tokio::task::JoinHandle<Result<(), earshot_core::storage::StorageError>>>,
    /// The (converted, raw) keys of the batch being written.
    written: Vec<(String, String)>,
}

/// Whether the member whose file `target` is (converted from `raw`) is being erased, or was erased
/// since the run began (its raw file is gone).
async fn erased(guard: &ErasureGuard, target: &str, raw: &str) -> Result<bool> {
    let Some(member) = layout::member_of_key(target) else {
        return Ok(false);
    };
    Ok(guard.member_erased(member, raw).await?)
}

impl Batch {
    fn push(&mut self, key: String, raw: String, data: Vec<u8>) {
        self.bytes += data.len();
        self.files.push((key, raw, data.into()));
    }

    /// Wait for the batch being written, then start writing what is queued (one durability barrier),
    /// less the files of members being erased or erased since the run began.
    async fn write_behind(
        &mut self,
        storage: &Storage,
        guard: Option<&ErasureGuard>,
    ) -> Result<()> {
        self.finish(storage, guard).await?;
        let mut files = std::mem::take(&mut self.files);
        self.bytes = 0;
        if let Some(guard) = guard
            && guard.check(false).await.is_err()
        {
            let mut kept = Vec::with_capacity(files.len());
            for (target, raw, data) in files {
                if erased(guard, &target, &raw).await? {
                    tracing::info!(
                        "A converted file of a member erased during this run was dropped."
                    );
                } else {
                    kept.push((target, raw, data));
                }
            }
            files = kept;
        }
        if !files.is_empty() {
            self.written = files
                .iter()
                .map(|(target, raw, _)| (target.clone(), raw.clone()))
                .collect();
            let storage = storage.clone();
            let files: Vec<(String, bytes::Bytes)> = files
                .into_iter()
                .map(|(target, _, data)| (target, data))
                .collect();
            self.writing = Some(tokio::spawn(
                async move { storage.write_batch(files).await },
            ));
        }
        Ok(())
    }

    /// Wait for the batch being written; withdraw the files of a member whose erase began meanwhile.
    async fn finish(&mut self, storage: &Storage, guard: Option<&ErasureGuard>) -> Result<()> {
        if let Some(writing) = self.writing.take() {
            writing.await.context("writing converted files")??;
        }
        let written = std::mem::take(&mut self.written);
        if let Some(guard) = guard
            && guard.check(true).await.is_err()
        {
            for (target, raw) in written {
                if erased(guard, &target, &raw).await? {
                    storage.delete(&target).await?;
                }
            }
        }
        Ok(())
    }
}
