//! Reading the rows `analytics` stored (`analytics_<metric>`, as this crate's typed rows): shared by
//! the dashboard and the posted weekly recap. The runs themselves are [`crate::runs`].

use anyhow::{Context as _, Result};
use earshot_core::mongo::ANALYTICS_PREFIX;
use mongodb::Database;
use mongodb::bson::{Document, doc};

use crate::rows::MetricRow;

/// A query of one metric's rows: a filter, an order, a limit.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// Which rows (besides the run).
    pub filter: Document,
    /// Their order.
    pub sort: Document,
    /// At most this many (0: all).
    pub limit: i64,
}

impl Select {
    /// Every row, in the store's order.
    pub fn all() -> Select {
        Select::default()
    }

    /// The rows matching `filter`.
    pub fn matching(filter: Document) -> Select {
        Select {
            filter,
            ..Select::default()
        }
    }

    /// In `sort` order.
    pub fn sorted(self, sort: Document) -> Select {
        Select { sort, ..self }
    }

    /// At most `limit`.
    pub fn first(self, limit: i64) -> Select {
        Select { limit, ..self }
    }
}

/// Rows of one metric (`T`'s table) of a run, as `select` picks them.
pub async fn rows<T: MetricRow>(db: &Database, run: &str, select: Select) -> Result<Vec<T>> {
    let table = T::TABLE;
    let mut query = doc! {"run": run};
    query.extend(select.filter);
    let collection = db.collection::<T>(&format!("{ANALYTICS_PREFIX}{table}"));
    let mut find = collection
        .find(query)
        .sort(select.sort)
        .projection(doc! {"_id": 0, "run": 0});
    if select.limit > 0 {
        find = find.limit(select.limit);
    }
    let mut cursor = find
        .await
        .with_context(|| format!("reading `{ANALYTICS_PREFIX}{table}` of run `{run}`"))?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(
            cursor
                .deserialize_current()
                .with_context(|| format!("a row of `{ANALYTICS_PREFIX}{table}` of run `{run}`"))?,
        );
    }
    Ok(out)
}
