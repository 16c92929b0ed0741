//! Two documents that more than one crate writes or reads, as types: the upload-ledger entry
//! ([`LedgerEntry`], in [`crate::mongo::UPLOAD_LEDGER`]; written by data-upload and by enrich, read by
//! create-collections and the erase) and the track-catalogue entry ([`CatalogueEntry`], in
//! [`crate::mongo::TRACK_CATALOGUE`]; written by enrich, read by enrich and the import's progress).

use std::collections::BTreeMap;

use mongodb::bson::{self, Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::mongo::{CATALOGUE_OK, CATALOGUE_UNAVAILABLE, LEDGER_KEY_FIELDS};

/// The field of a ledger entry's collection.
pub const COLLECTION: &str = "collection";
/// The field of when an entry was loaded (the server's time).
pub const LOADED_AT: &str = "loaded_at";
/// The field of how many records an entry's file held.
pub const RECORDS: &str = "records";

/// `keys.<field>`: the values of `field` an entry's records name.
pub fn keys_of(field: &str) -> String {
    format!("keys.{field}")
}

/// `counts.<field>`: how many records name each of `keys.<field>`.
pub fn counts_of(field: &str) -> String {
    format!("counts.{field}")
}

/// One loaded file. Every field is optional on reading, so that a projection reads as an entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerEntry {
    /// The file's storage key (or a stdin or enrichment key).
    #[serde(rename = "_id")]
    pub file: String,
    /// The collection its records went to.
    pub collection: String,
    /// How many records it held.
    pub records: Option<i64>,
    /// Per key field ([`LEDGER_KEY_FIELDS`]), the values its records name, sorted.
    pub keys: BTreeMap<String, Vec<String>>,
    /// Per key field but `_id`, how many records name each value (aligned with `keys`).
    pub counts: BTreeMap<String, Vec<i64>>,
    /// When it was loaded (the server's time; set by the server on writing).
    #[serde(skip_serializing)]
    pub loaded_at: Option<DateTime>,
}

impl LedgerEntry {
    /// The entry of the file `file`, loaded into `collection`, from the documents it holds.
    pub fn new(file: &str, collection: &str, documents: &[Document]) -> LedgerEntry {
        let mut keys = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for field in LEDGER_KEY_FIELDS {
            let mut values: BTreeMap<&str, i64> = BTreeMap::new();
            for document in documents {
                match document.get(*field) {
                    Some(Bson::String(value)) => *values.entry(value).or_default() += 1,
                    Some(Bson::Array(items)) => {
                        // A value listed twice in one record (an artist twice on a track) is one row.
                        let mut seen: Vec<&str> = items.iter().filter_map(Bson::as_str).collect();
                        seen.sort_unstable();
                        seen.dedup();
                        for value in seen {
                            *values.entry(value).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
            if !values.is_empty() {
                keys.insert(
                    field.to_string(),
                    values.keys().map(|v| v.to_string()).collect(),
                );
                // Every `_id` names one record: its counts say nothing.
                if *field != "_id" {
                    counts.insert(field.to_string(), values.values().copied().collect());
                }
            }
        }
        LedgerEntry {
            file: file.to_string(),
            collection: collection.to_string(),
            records: Some(documents.len() as i64),
            keys,
            counts,
            loaded_at: None,
        }
    }

    /// The values of `field` this entry names.
    pub fn keys(&self, field: &str) -> &[String] {
        self.keys.get(field).map_or(&[], Vec::as_slice)
    }

    /// How many records name the `i`th value of `field` (the whole file's records for an entry
    /// written before the ledger kept counts: an upper bound).
    pub fn count(&self, field: &str, i: usize) -> u64 {
        self.counts
            .get(field)
            .and_then(|c| c.get(i))
            .or(self.records.as_ref())
            .map_or(1, |n| u64::try_from(*n).unwrap_or(1))
    }

    /// The upsert that records this entry, its time set by the server.
    pub fn upsert(&self) -> Document {
        let mut set = bson::to_document(self).expect("a ledger entry serialises");
        set.remove("_id");
        doc! {
            "q": {"_id": &self.file},
            "u": {"$set": set, "$currentDate": {LOADED_AT: true}},
            "upsert": true,
        }
    }
}

/// Whether Spotify returned a catalogue entry's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogueStatus {
    /// It did: the entry holds the track's fields.
    #[serde(rename = "ok")]
    Ok,
    /// It answered 404.
    #[serde(rename = "unavailable")]
    Unavailable,
}

impl CatalogueStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogueStatus::Ok => CATALOGUE_OK,
            CatalogueStatus::Unavailable => CATALOGUE_UNAVAILABLE,
        }
    }
}

/// A track-catalogue entry's own fields; an `ok` entry holds the track's fields besides (as a converted
/// record has them: [`crate::records::TrackFields`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// The Spotify track id.
    #[serde(rename = "_id")]
    pub track_id: String,
    /// What Spotify answered.
    pub status: CatalogueStatus,
    /// When it was asked.
    pub fetched_at: DateTime,
}

impl CatalogueEntry {
    /// The entry's document, with the track's fields (a document of [`crate::records::TrackFields`])
    /// for an `ok` entry.
    pub fn document(&self, track: Option<Document>) -> Document {
        let mut document = track.unwrap_or_default();
        document.extend(bson::to_document(self).expect("a catalogue entry serialises"));
        document
    }

    /// A stored entry's document split into the entry and the track's fields (none when it is not an
    /// entry).
    pub fn split(mut document: Document) -> Option<(CatalogueEntry, Document)> {
        let entry: CatalogueEntry = bson::from_document(document.clone()).ok()?;
        for field in ["_id", "status", "fetched_at"] {
            document.remove(field);
        }
        Some((entry, document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_counts_the_records_naming_each_key() {
        let documents = vec![
            doc! {"_id": "a|1", "track_id": "t1", "artist_ids": ["x", "y"]},
            doc! {"_id": "a|2", "track_id": "t2", "artist_ids": ["x", "x"]},
            doc! {"_id": "a|3", "track_id": "t1", "artist_ids": [Bson::Null]},
            doc! {"_id": "a|4", "track_id": Bson::Null},
        ];
        let entry = LedgerEntry::new("converted/x.jsonl", "rawdata_recentlyplayed", &documents);
        assert_eq!(entry.records, Some(4));
        assert_eq!(entry.keys("track_id"), ["t1", "t2"]);
        assert_eq!(entry.count("track_id", 0), 2);
        assert_eq!(entry.count("track_id", 1), 1);
        // An artist listed twice on one record is one row of that artist.
        assert_eq!(entry.keys("artist_ids"), ["x", "y"]);
        assert_eq!(entry.counts["artist_ids"], [2, 1]);
        assert_eq!(entry.keys("_id").len(), 4);
        assert!(!entry.counts.contains_key("_id"));
        assert!(entry.keys("album_id").is_empty());
        // What the upsert writes reads back as the same entry.
        let set = entry
            .upsert()
            .get_document("u")
            .unwrap()
            .get_document("$set")
            .unwrap()
            .clone();
        let mut stored = set.clone();
        stored.insert("_id", "converted/x.jsonl");
        assert_eq!(bson::from_document::<LedgerEntry>(stored).unwrap(), entry);
        assert_eq!(set.get_str(COLLECTION).unwrap(), "rawdata_recentlyplayed");
    }

    #[test]
    fn a_projection_reads_as_an_entry_and_old_entries_count_their_records() {
        let old = doc! {"_id": "f", "records": 7_i64, "keys": {"track_id": ["t"]}};
        let entry: LedgerEntry = bson::from_document(old).unwrap();
        assert_eq!(entry.count("track_id", 0), 7);
        let projected: LedgerEntry =
            bson::from_document(doc! {"keys": {"user_id": ["ana"]}}).unwrap();
        assert_eq!(projected.keys("user_id"), ["ana"]);
    }

    #[test]
    fn a_catalogue_entry_splits_back_into_itself_and_the_tracks_fields() {
        let entry = CatalogueEntry {
            track_id: "4uLU6hMCjMI75M1A2tKUQC".into(),
            status: CatalogueStatus::Ok,
            fetched_at: DateTime::from_millis(0),
        };
        let document = entry.document(Some(doc! {"track_name": "Song", "duration_ms": 1000_i64}));
        assert_eq!(document.get_str("status").unwrap(), CATALOGUE_OK);
        let (back, fields) = CatalogueEntry::split(document).unwrap();
        assert_eq!(back, entry);
        assert_eq!(fields, doc! {"track_name": "Song", "duration_ms": 1000_i64});
        assert!(CatalogueEntry::split(doc! {"_id": "x"}).is_none());
    }
}
