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
/// The key under which an entry lists the local days its plays fall on (`keys.day`, `counts.day`):
/// each play's `local_day` (`YYYY-MM-DD`, the group's time zone, written by the converter). The days
/// name the per-day partials of the derived collections that the entry's plays touch.
pub const DAY: &str = "day";
/// The record field a play's local day is read from.
pub const DAY_SOURCE: &str = crate::records::LOCAL_DAY;

/// `value` if it is a local day (`YYYY-MM-DD`).
pub fn day_of(value: &str) -> Option<&str> {
    let day = value.get(..10).filter(|_| value.len() == 10)?;
    let b = day.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)).then_some(day)
}

/// The record fields an entry is made from: what a loader keeps of each record until its entry is
/// written ([`LEDGER_KEY_FIELDS`] and [`DAY_SOURCE`]).
pub fn source_fields() -> impl Iterator<Item = &'static str> {
    LEDGER_KEY_FIELDS.iter().copied().chain([DAY_SOURCE])
}

/// A projection of [`source_fields`].
pub fn source_projection() -> Document {
    source_fields()
        .map(|f| (f.to_string(), Bson::Int32(1)))
        .collect()
}

/// `keys.<field>`: the values of `field` an entry's records name.
pub fn keys_of(field: &str) -> String {
    format!("keys.{field}")
}

/// The entries of `member`: those whose records name them (`keys.user_id`), and those of their files
/// that held no record (a streaming-history file without a podcast), whose ids (the converted keys,
/// under `converted/<kind>/user=<member>/`) name them all the same.
pub fn member_entries(member: &str) -> Document {
    let mut any = vec![Bson::Document(doc! {keys_of("user_id"): member})];
    for prefix in crate::layout::member_prefixes(member)
        .into_iter()
        .filter(|p| p.starts_with(crate::layout::CONVERTED))
    {
        // Every id under `…/user=<member>/`: from the prefix up to the next one ('0' follows '/').
        let end = format!("{}0", prefix.trim_end_matches('/'));
        any.push(Bson::Document(doc! {"_id": {"$gte": &prefix, "$lt": end}}));
    }
    doc! {"$or": any}
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
    /// Per key field ([`LEDGER_KEY_FIELDS`], and [`DAY`]), the values its records name, sorted.
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
        for field in LEDGER_KEY_FIELDS.iter().chain(&[DAY]) {
            let mut values: BTreeMap<&str, i64> = BTreeMap::new();
            for document in documents {
                let value = if *field == DAY {
                    document.get_str(DAY_SOURCE).ok().and_then(day_of)
                } else {
                    None
                };
                match (value, document.get(*field)) {
                    (Some(day), _) => *values.entry(day).or_default() += 1,
                    (None, Some(Bson::String(value))) => *values.entry(value).or_default() += 1,
                    (None, Some(Bson::Array(items))) => {
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

    /// How many records name the `i`th value of `field`.
    pub fn count(&self, field: &str, i: usize) -> u64 {
        self.counts
            .get(field)
            .and_then(|c| c.get(i))
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
    fn a_day_is_a_local_date() {
        assert_eq!(day_of("2024-03-10"), Some("2024-03-10"));
        for bad in [
            "",
            "2024-03-10 01:59:59 PST",
            "2024-03-1",
            "20240310 01:59",
            "2024/03/10 x",
            "2024-0a-10 x",
            "é2024-03-10",
        ] {
            assert_eq!(day_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_entry_counts_the_records_naming_each_key() {
        let documents = vec![
            doc! {"_id": "a|1", "track_id": "t1", "artist_ids": ["x", "y"], "local_day": "2024-03-01"},
            doc! {"_id": "a|2", "track_id": "t2", "artist_ids": ["x", "x"], "local_day": "2024-03-02"},
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
        // The local days its plays fall on, counted; a record without a local time names none.
        assert_eq!(entry.keys(DAY), ["2024-03-01", "2024-03-02"]);
        assert_eq!(entry.counts[DAY], [1, 1]);
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
    fn a_projection_reads_as_an_entry() {
        let entry: LedgerEntry = bson::from_document(
            doc! {"_id": "f", "records": 7_i64, "keys": {"track_id": ["t"]}, "counts": {"track_id": [3_i64]}},
        )
        .unwrap();
        assert_eq!(entry.count("track_id", 0), 3);
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
