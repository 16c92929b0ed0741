//! A member's rows in the `analytics_*` collections, found by the columns earshot-metrics' model
//! declares as naming a member (never by a column's name): their own rows and their pairs' rows, and
//! for an erase the group rows that mention them too.

use anyhow::{Context as _, Result};
use earshot_core::mongo;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

/// The filter on an `analytics_*` collection for the member's rows, and with `mentions` the group rows
/// that name them too.
pub fn names_member(member: &str, mentions: bool) -> Document {
    let mut fields = earshot_metrics::member_columns();
    if mentions {
        fields.extend(earshot_metrics::mention_columns());
    }
    let any: Vec<Bson> = fields
        .into_iter()
        .map(|field| Bson::Document(doc! {field: member}))
        .collect();
    doc! {"$or": any}
}

/// Every `analytics_*` result collection of the database.
pub async fn analytics_collections(db: &Database) -> Result<Vec<String>> {
    let mut names: Vec<String> = db
        .list_collection_names()
        .await
        .context("listing the collections")?
        .into_iter()
        .filter(|name| name.starts_with(mongo::ANALYTICS_PREFIX) && name != mongo::ANALYTICS_RUNS)
        .collect();
    names.sort();
    Ok(names)
}

/// A row of `metric` as the member's export holds it: a pairwise row without the other side's values
/// (the model's `Role::Of` columns), the friend named by id only; any other row as it is.
pub fn own_side(metric: &str, mut row: Document, member: &str) -> Document {
    let Some(table) = earshot_metrics::table(metric) else {
        // A table this release does not know (written by a newer one): only the columns that say
        // whose row it is, and the run, are certain not to describe someone else.
        let keep: Vec<&str> = earshot_metrics::member_columns();
        return row
            .into_iter()
            .filter(|(k, _)| k == "_id" || k == "run" || keep.contains(&k.as_str()))
            .collect();
    };
    let Some(side) = table.side_of(member, |column| row.get_str(column).ok()) else {
        return row;
    };
    for column in table.hidden_from(side) {
        row.remove(column);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pairwise_row_keeps_the_members_side_and_names_the_friend_only() {
        let row = doc! {"_id": "r|shared_favourite|ana|ben|t", "run": "r", "member_a": "ana", "member_b": "ben",
        "track_key": "t", "plays_a": 3, "plays_b": 9, "plays": 12};
        let ana = own_side("shared_favourite", row.clone(), "ana");
        assert_eq!(ana.get_i32("plays_a").unwrap(), 3);
        assert!(!ana.contains_key("plays_b"));
        assert_eq!(ana.get_str("member_b").unwrap(), "ben");
        let ben = own_side("shared_favourite", row.clone(), "ben");
        assert!(!ben.contains_key("plays_a"));
        assert_eq!(ben.get_i32("plays_b").unwrap(), 9);
        let unknown = own_side("from_a_newer_release", row, "ana");
        assert!(!unknown.contains_key("plays_a") && !unknown.contains_key("track_key"));
        assert_eq!(unknown.get_str("member_a").unwrap(), "ana");
    }

    #[test]
    fn the_filters_name_every_member_column_and_mentions_only_for_an_erase() {
        let export = names_member("ana", false).to_string();
        let erase = names_member("ana", true).to_string();
        for field in ["user_id", "member_a", "member_b"] {
            assert!(export.contains(field) && erase.contains(field), "{field}");
        }
        assert!(!export.contains("only_listener") && erase.contains("only_listener"));
        assert!(erase.contains("closest_a") && erase.contains("closest_b"));
    }
}
