//! Each member's newest stored play: what the operator's metrics show as its age and what the stall
//! alarm judges. Each answer is one read of an index (`user_played_at`, or `source_user_played_at` by
//! source), never a count or a scan, so it stays cheap at a million plays.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use earshot_core::mongo::RAW_RECENTLY_PLAYED;
use earshot_core::records::PlaySource;
use mongodb::Database;
use mongodb::bson::{Document, doc};

/// When `member`'s newest stored play (from any source) was played.
pub async fn newest(db: &Database, member: &str) -> Result<Option<DateTime<Utc>>> {
    newest_matching(db, doc! {"user_id": member})
        .await
        .with_context(|| format!("reading `{member}`'s newest play"))
}

/// When `member`'s newest stored play from each source was played, for the sources they have plays
/// from.
pub async fn by_source(db: &Database, member: &str) -> Result<Vec<(PlaySource, DateTime<Utc>)>> {
    let mut out = Vec::new();
    for source in PlaySource::ALL {
        let newest = newest_matching(db, doc! {"source": source.as_str(), "user_id": member})
            .await
            .with_context(|| format!("reading the newest {} play", source.as_str()))?;
        if let Some(at) = newest {
            out.push((source, at));
        }
    }
    Ok(out)
}

async fn newest_matching(db: &Database, filter: Document) -> Result<Option<DateTime<Utc>>> {
    let newest = db
        .collection::<Document>(RAW_RECENTLY_PLAYED)
        .find_one(filter)
        .sort(doc! {"played_at": -1})
        .projection(doc! {"played_at": 1, "_id": 0})
        .await?;
    Ok(newest
        .and_then(|d| d.get_datetime("played_at").ok().copied())
        .and_then(|at| DateTime::<Utc>::from_timestamp_millis(at.timestamp_millis())))
}
