//! The batched, unordered, idempotent upsert.
//!
//! Upserts use the `update` command with many replacement statements and `ordered: false`: one round
//! trip per batch, supported by every MongoDB version (unlike the 8.0-only client `bulkWrite`), and a
//! replacement by `_id` with identical content modifies nothing, so a re-run reports zero changes.

use anyhow::{Context as _, Result, bail};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

/// Counts of one collection's load.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Records sent.
    pub read: u64,
    /// New documents.
    pub inserted: u64,
    /// Existing documents whose content changed.
    pub modified: u64,
    /// Existing documents already identical.
    pub unchanged: u64,
}

/// Upsert documents (each with its `_id`) in unordered batches.
pub struct Upserter {
    db: Database,
    collection: String,
    batch: Vec<Document>,
    batch_size: usize,
    /// What has been written so far.
    pub counts: Counts,
}

impl Upserter {
    /// An upserter into `collection`, sending `batch_size` documents a round trip.
    pub fn new(db: Database, collection: &str, batch_size: usize) -> Upserter {
        Upserter {
            db,
            collection: collection.to_string(),
            batch: Vec::with_capacity(batch_size),
            batch_size: batch_size.max(1),
            counts: Counts::default(),
        }
    }

    /// Queue a document; sends the batch when full. Returns whether a batch was sent (and
    /// acknowledged): every document queued before this one is then stored.
    pub async fn push(&mut self, document: Document) -> Result<bool> {
        self.batch.push(document);
        if self.batch.len() >= self.batch_size {
            self.flush().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Send what is queued.
    pub async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let sent = batch.len() as u64;
        let updates: Vec<Document> = batch
            .into_iter()
            .map(|d| {
                let id = d.get("_id").cloned().unwrap_or(Bson::Null);
                doc! {"q": {"_id": id}, "u": d, "upsert": true}
            })
            .collect();
        let reply = run_updates(&self.db, &self.collection, updates)
            .await
            .with_context(|| format!("upserting {sent} documents into `{}`", self.collection))?;
        let n = number(&reply, "n");
        let modified = number(&reply, "nModified");
        let inserted = reply.get_array("upserted").map_or(0, |u| u.len() as u64);
        self.counts.read += sent;
        self.counts.inserted += inserted;
        self.counts.modified += modified;
        self.counts.unchanged += n.saturating_sub(inserted).saturating_sub(modified);
        Ok(())
    }
}

/// Run update statements (`{q, u, upsert}`) in one unordered `update` command; any write error fails it.
pub async fn run_updates(
    db: &Database,
    collection: &str,
    updates: Vec<Document>,
) -> Result<Document> {
    let reply = db
        .run_command(doc! {"update": collection, "updates": updates, "ordered": false})
        .await?;
    if let Ok(errors) = reply.get_array("writeErrors")
        && !errors.is_empty()
    {
        bail!(
            "{} write errors in `{collection}`, first: {}",
            errors.len(),
            errors[0]
        );
    }
    Ok(reply)
}

fn number(reply: &Document, field: &str) -> u64 {
    reply
        .get(field)
        .and_then(earshot_core::mongo::bson_u64)
        .unwrap_or(0)
}
