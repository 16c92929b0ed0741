//! `gcs-export`: MongoDB collections → Parquet snapshots in storage (a local folder or GCS).
//!
//! Each collection streams from a cursor (sorted by `_id`) in batches into row groups of part files,
//! `exports/<collection>/snapshot=<run id>/part-NNNNN.parquet`, with the stable schema of
//! `earshot_core::export` (times as UTC timestamps, arrays as lists, nested images as JSON text). Memory
//! holds one batch and one part. The `_SUCCESS` marker is written last: a snapshot is complete or
//! absent to readers. Re-running a snapshot id first withdraws its marker, rewrites the parts (the same
//! bytes for the same data), removes parts it no longer has, and writes the marker again.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::Parser;
use earshot_core::Storage;
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::erasure::ErasureGuard;
use earshot_core::export::{self, ColumnKind, Schema, SnapshotSummary};
use earshot_core::layout;
use earshot_core::progress::Progress;
use earshot_core::step_runs::{self, batch};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use polars::prelude::*;
use tracing::info;

/// Export MongoDB collections as Parquet snapshots.
///
/// Writes `exports/<collection>/snapshot=<run id>/part-*.parquet` under `--storage`, then `_SUCCESS`.
/// Prints one JSON line per collection: rows and parts written.
#[derive(Debug, Parser)]
#[command(name = "gcs-export", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Collections to export: `all`, or names separated by commas.
    #[arg(long, default_value = "all")]
    pub collections: String,
    /// The snapshot's run id (sortable by time). Default: now, e.g. `20241111T090000Z`.
    #[arg(long)]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Rows per row group (one batch in memory).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_rows: u32,
    /// Rows per part file.
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub part_rows: u32,
}

/// What exporting one collection did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// Collection.
    pub collection: String,
    /// Snapshot id.
    pub snapshot: String,
    /// Rows written.
    pub rows: u64,
    /// Part files written.
    pub parts: usize,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let collections: Vec<String> = if cli.collections == "all" {
        export::COLLECTIONS.iter().map(|c| c.to_string()).collect()
    } else {
        cli.collections
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    for collection in &collections {
        if export::schema(collection).is_none() {
            bail!(
                "`--collections`: `{collection}` is not exported (known: {})",
                export::COLLECTIONS.join(", ")
            );
        }
    }
    let snapshot = cli
        .snapshot
        .clone()
        .unwrap_or_else(|| layout::run_id(chrono::Utc::now()));
    if snapshot.is_empty() || snapshot.contains(['/', '=']) {
        bail!("`--snapshot {snapshot}`: a run id may not be empty or contain `/` or `=`");
    }
    let scoped = cli.store.scoped()?;
    let db = scoped.database().await?;
    let storage = scoped.storage().await?;
    let sizes = Sizes {
        batch_rows: cli.batch_rows as usize,
        part_rows: cli.part_rows as usize,
    };
    step_runs::note_batch_setting(batch::ROWS_PER_ROW_GROUP, u64::from(cli.batch_rows));
    step_runs::note_batch_setting(batch::ROWS_PER_FILE, u64::from(cli.part_rows));
    step_runs::note_batch_setting(
        batch::DOCUMENTS_PER_CURSOR_BATCH,
        u64::from(cursor_batch(&sizes)),
    );
    let guard = ErasureGuard::begin(&storage, "gcs-export").await?;
    // Read once for every marker of the run: a `distinct` over each member collection per exported
    // collection was most of a small export's time.
    let members = members_with_rows(&db).await?;
    let mut stdout = std::io::stdout().lock();
    for (done, collection) in collections.iter().enumerate() {
        let exported =
            export_collection(&db, &storage, collection, &snapshot, sizes, &members).await?;
        // An erase that started during the export: this snapshot goes, the member with it.
        if let Err(err) = guard.check(true).await {
            for withdrawn in &collections[..=done] {
                storage
                    .delete_prefix(&layout::export_prefix(withdrawn, &snapshot))
                    .await?;
            }
            return Err(err.into());
        }
        serde_json::to_writer(&mut stdout, &exported)?;
        writeln!(stdout)?;
    }
    Ok(Outcome::Success)
}

/// Batch and part sizes, in rows.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Rows per row group.
    pub batch_rows: usize,
    /// Rows per part file.
    pub part_rows: usize,
}

/// The polars type of a column kind.
pub fn dtype(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Str | ColumnKind::Json => DataType::String,
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Float => DataType::Float64,
        ColumnKind::Bool => DataType::Boolean,
        ColumnKind::Time => DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
        ColumnKind::StrList => DataType::List(Box::new(DataType::String)),
    }
}

/// One column's values for a batch.
enum Buffer {
    Str(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    List(Vec<Option<Series>>),
}

struct Batch<'a> {
    collection: &'a str,
    /// Every column, as stored.
    schema: &'a Schema,
    columns: Vec<Buffer>,
    rows: usize,
}

impl<'a> Batch<'a> {
    fn new(collection: &'a str, schema: &'a Schema) -> Batch<'a> {
        let columns = schema
            .iter()
            .map(|(_, kind)| match kind {
                ColumnKind::Str | ColumnKind::Json => Buffer::Str(Vec::new()),
                ColumnKind::Int | ColumnKind::Time => Buffer::Int(Vec::new()),
                ColumnKind::Float => Buffer::Float(Vec::new()),
                ColumnKind::Bool => Buffer::Bool(Vec::new()),
                ColumnKind::StrList => Buffer::List(Vec::new()),
            })
            .collect();
        Batch {
            collection,
            schema,
            columns,
            rows: 0,
        }
    }

    /// Add a document's values; a value of the wrong type is an error naming collection, `_id`, field.
    fn push(&mut self, document: &Document) -> Result<()> {
        let id = document
            .get("_id")
            .map_or_else(|| "?".to_string(), |b| b.to_string());
        for ((name, kind), buffer) in self.schema.iter().zip(&mut self.columns) {
            let value = match document.get(*name) {
                Some(value) => value,
                // A field the schema names must be present (null when unknown): a missing one means
                // the builds and the schema disagree, or the store predates the field
                // (`scripts/upgrade.sh` brings it to the current shape), which must not pass as nulls.
                None => bail!(
                    "`{}` document {id}: field `{name}` is missing (the export schema in earshot-core lists it)",
                    self.collection
                ),
            };
            let value = Some(value).filter(|v| !matches!(v, Bson::Null | Bson::Undefined));
            let wrong = || {
                anyhow::anyhow!(
                    "`{}` document {id}: field `{name}` is not {kind:?}: {:?}",
                    self.collection,
                    value
                )
            };
            match (buffer, kind) {
                (Buffer::Str(values), ColumnKind::Json) => {
                    values.push(value.map(|v| v.clone().into_relaxed_extjson().to_string()))
                }
                (Buffer::Str(values), _) => values.push(match value {
                    None => None,
                    Some(Bson::String(s)) => Some(s.clone()),
                    Some(_) => return Err(wrong()),
                }),
                (Buffer::Int(values), ColumnKind::Time) => values.push(match value {
                    None => None,
                    Some(Bson::DateTime(t)) => Some(t.timestamp_millis()),
                    Some(_) => return Err(wrong()),
                }),
                (Buffer::Int(values), _) => values.push(match value {
                    None => None,
                    Some(Bson::Int32(n)) => Some(i64::from(*n)),
                    Some(Bson::Int64(n)) => Some(*n),
                    Some(Bson::Double(n)) if n.fract() == 0.0 => Some(*n as i64),
                    Some(_) => return Err(wrong()),
                }),
                (Buffer::Float(values), _) => values.push(match value {
                    None => None,
                    Some(Bson::Double(n)) => Some(*n),
                    Some(Bson::Int32(n)) => Some(f64::from(*n)),
                    Some(Bson::Int64(n)) => Some(*n as f64),
                    Some(_) => return Err(wrong()),
                }),
                (Buffer::Bool(values), _) => values.push(match value {
                    None => None,
                    Some(Bson::Boolean(b)) => Some(*b),
                    Some(_) => return Err(wrong()),
                }),
                (Buffer::List(values), _) => values.push(match value {
                    None => None,
                    Some(Bson::Array(items)) => {
                        let strings: Vec<Option<String>> = items
                            .iter()
                            .map(|item| match item {
                                Bson::String(s) => Ok(Some(s.clone())),
                                Bson::Null => Ok(None),
                                _ => Err(wrong()),
                            })
                            .collect::<Result<_>>()?;
                        Some(Series::new(PlSmallStr::EMPTY, strings))
                    }
                    Some(_) => return Err(wrong()),
                }),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch as a DataFrame with the schema's exact types; the buffers are emptied.
    fn take(&mut self) -> Result<DataFrame> {
        let mut columns = Vec::with_capacity(self.schema.len());
        for ((name, kind), buffer) in self.schema.iter().zip(&mut self.columns) {
            let name = PlSmallStr::from(*name);
            let series = match buffer {
                Buffer::Str(values) => Series::new(name, std::mem::take(values)),
                Buffer::Int(values) => Series::new(name, std::mem::take(values)),
                Buffer::Float(values) => Series::new(name, std::mem::take(values)),
                Buffer::Bool(values) => Series::new(name, std::mem::take(values)),
                Buffer::List(values) => {
                    let mut list: ListChunked = std::mem::take(values).into_iter().collect();
                    list.rename(name);
                    list.into_series()
                }
            };
            columns.push(series.cast(&dtype(*kind))?.into_column());
        }
        let rows = std::mem::take(&mut self.rows);
        Ok(DataFrame::new(rows, columns)?)
    }
}

/// An open part file: a batched Parquet writer over a local temp file.
struct Part {
    file: tempfile::NamedTempFile,
    writer: polars::io::parquet::write::BatchedWriter<std::fs::File>,
    rows: usize,
}

impl Part {
    fn open(polars_schema: &polars::prelude::Schema) -> Result<Part> {
        let file = tempfile::NamedTempFile::new().context("creating a temp file for a part")?;
        let writer = ParquetWriter::new(file.reopen()?)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(polars_schema)?;
        Ok(Part {
            file,
            writer,
            rows: 0,
        })
    }

    /// Close the file and return its bytes.
    fn finish(self) -> Result<Bytes> {
        self.writer.finish()?;
        Ok(Bytes::from(std::fs::read(self.file.path())?))
    }
}

/// Remove the parts an earlier run of this snapshot wrote beyond `written`, then write the marker that
/// makes the snapshot complete, with a summary of what it holds and whom.
async fn complete_snapshot(
    storage: &Storage,
    collection: &str,
    snapshot: &str,
    schema: &Schema,
    written: &[String],
    rows: u64,
    members: &[String],
) -> Result<()> {
    let prefix = layout::export_prefix(collection, snapshot);
    let marker = export::marker_key(collection, snapshot);
    for key in storage.list(&prefix).await? {
        if !written.contains(&key) && key != marker {
            storage.delete(&key).await?;
        }
    }
    let summary = SnapshotSummary {
        collection: collection.to_string(),
        snapshot: snapshot.to_string(),
        rows,
        parts: written.len(),
        schema: schema
            .iter()
            .map(|(name, kind)| format!("{name}:{kind:?}"))
            .collect(),
        members: members.to_vec(),
    };
    storage
        .write(&marker, Bytes::from(serde_json::to_vec_pretty(&summary)?))
        .await?;
    Ok(())
}

/// Every member with rows in the database (their own rows, or a `members` document), sorted: what a
/// snapshot's markers list.
pub async fn members_with_rows(db: &Database) -> Result<Vec<String>> {
    let mut members = std::collections::BTreeSet::new();
    let sources = earshot_core::mongo::MEMBER_ROW_COLLECTIONS
        .iter()
        .map(|c| (*c, "user_id"))
        .chain([(earshot_core::mongo::MEMBERS, "_id")]);
    for (collection, field) in sources {
        let values = earshot_core::mongo::distinct(db, collection, field, doc! {})
            .await
            .with_context(|| format!("reading the members of `{collection}`"))?;
        members.extend(values.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    Ok(members.into_iter().collect())
}

/// Export one collection into one snapshot; its marker lists `members` ([`members_with_rows`]).
pub async fn export_collection(
    db: &Database,
    storage: &Storage,
    collection: &str,
    snapshot: &str,
    sizes: Sizes,
    members: &[String],
) -> Result<Exported> {
    let schema =
        export::schema(collection).with_context(|| format!("`{collection}` is not exported"))?;
    let prefix = layout::export_prefix(collection, snapshot);
    let marker = export::marker_key(collection, snapshot);
    // Withdraw a previous marker first: while the parts are rewritten the snapshot is incomplete.
    storage.delete(&marker).await?;

    let polars_schema: polars::prelude::Schema = schema
        .iter()
        .map(|(name, kind)| Field::new(PlSmallStr::from(*name), dtype(*kind)))
        .collect();
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(cursor_batch(&sizes))
        .await
        .with_context(|| format!("reading `{collection}`"))?;
    let total = db
        .collection::<Document>(collection)
        .estimated_document_count()
        .await
        .unwrap_or(0);
    let progress = Progress::new(format!("Exporting `{collection}`"), "rows", total);
    let mut batch = Batch::new(collection, &schema);
    let mut part = Part::open(&polars_schema)?;
    let (mut parts, mut rows) = (0usize, 0u64);
    let mut written = Vec::new();
    loop {
        let more = cursor
            .advance()
            .await
            .with_context(|| format!("reading `{collection}`"))?;
        if more {
            batch.push(&cursor.deserialize_current()?)?;
            rows += 1;
        }
        let part_full = part.rows + batch.rows >= sizes.part_rows;
        if batch.rows > 0 && (!more || batch.rows >= sizes.batch_rows || part_full) {
            let df = batch.take()?;
            progress.inc(df.height() as u64);
            part.rows += df.height();
            part.writer.write_batch(&df)?;
        }
        if !more || part.rows >= sizes.part_rows {
            // An empty collection still gets one (empty) part, so readers see its schema.
            if part.rows > 0 || parts == 0 {
                let key = format!("{prefix}{}", export::part_name(parts));
                storage
                    .write(
                        &key,
                        std::mem::replace(&mut part, Part::open(&polars_schema)?).finish()?,
                    )
                    .await?;
                written.push(key);
                parts += 1;
            }
            if !more {
                break;
            }
        }
    }
    complete_snapshot(
        storage, collection, snapshot, &schema, &written, rows, members,
    )
    .await?;
    progress.finish();
    info!(collection, snapshot, rows, parts, "Exported a snapshot.");
    Ok(Exported {
        collection: collection.to_string(),
        snapshot: snapshot.to_string(),
        rows,
        parts,
    })
}

/// Documents the server returns per cursor batch: a row group's worth, at most 10,000.
fn cursor_batch(sizes: &Sizes) -> u32 {
    sizes.batch_rows.min(10_000) as u32
}
