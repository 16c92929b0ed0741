//! One metric alone on polars' streaming engine, for profiling: which of its operators run in
//! streaming and which fall back to the in-memory engine, and where its time goes.
//!
//! ```sh
//! POLARS_VISUALIZE_PHYSICAL_PLAN=plan.dot POLARS_LOG_METRICS=1 \
//!   cargo run --release --workspace --example streaming_plan -- <storage> <snapshot> <metric>
//! ```
//!
//! `plan.dot` is the physical plan (Graphviz; fallback nodes are `in-memory-map` and
//! `in-memory-join`, memory-heavy ones are coloured); `POLARS_LOG_METRICS=1` prints each node's time.
//! The example prints the metric's rows and its wall time. `<metric>` may instead be the path of a
//! `.sql` file over the same views (`plays`, ...), to try a variant of a query. Build it with
//! `--workspace --example streaming_plan`: `-p analytics` resolves polars' features differently and
//! compiles polars again.

use std::time::Instant;

use analytics::engine;
use analytics::snapshot::{self, Filters};
use anyhow::{Context as _, Result, bail};
use earshot_core::storage::Storage;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [storage, id, metric] = args.as_slice() else {
        bail!("usage: streaming_plan <storage folder> <snapshot> <metric>");
    };
    let storage = Storage::local(storage);
    let (inputs, _staged, _) = snapshot::load(&storage, Some(id), &Filters::default()).await?;
    let owned;
    let sql = if metric.ends_with(".sql") {
        owned = std::fs::read_to_string(metric).with_context(|| format!("reading {metric}"))?;
        owned.as_str()
    } else {
        earshot_metrics::metric(metric)
            .with_context(|| format!("no metric `{metric}`"))?
            .sql
    };
    // The views as the analytics computes them: once, before the metric.
    let started = Instant::now();
    let tables = engine::Tables::computed(&inputs)?;
    eprintln!("views: {:?}", started.elapsed());
    let started = Instant::now();
    let frames = engine::collect_together(vec![tables.query(sql)?])?;
    let rows = frames.first().map_or(0, |f| f.height());
    eprintln!("{metric}: {rows} rows in {:?}", started.elapsed());
    Ok(())
}
