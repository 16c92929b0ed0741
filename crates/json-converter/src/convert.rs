//! Pure conversion: one raw document stream (one or more API pages, as fetched) to JSON Lines.
//!
//! Pages are parsed one at a time into the typed models, so a stream of many pages needs the memory of
//! one page. A parse failure names the page, the line and column inside it, and the JSON path of the
//! field at fault (`items[3].track.duration_ms`).

use std::collections::HashSet;
use std::io::{Read, Write};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use earshot_core::GroupConfig;
use earshot_core::history::{Disposition, HistoryEntry};
use earshot_core::layout::RawKind;
use earshot_core::listens::{ListenType, parse_submission};
use earshot_core::records::{
    PlaySource, RecentlyPlayedRecord, SpokenPlayRecord, TopArtistRecord, TopTrackRecord,
};
use earshot_core::spotify::{Paging, RecentlyPlayedPage, TimeRange, TopArtistsPage, TopTracksPage};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Who and when a page is about: from the raw key's partitions, or from flags for stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeta {
    /// The member's Spotify id (`user=<id>`).
    pub user_id: String,
    /// The top-items time range (`time_range=<range>`); `None` for recently played.
    pub time_range: Option<TimeRange>,
    /// When the page was fetched (the file name), which dates a top-items snapshot.
    pub fetched_at: DateTime<Utc>,
}

/// Why a stream could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The bytes are not JSON, or a page does not have the shape of its kind.
    #[error(
        "`{source_name}`: page {page}, line {line}, column {column}{}: {message}",
        at_path(path)
    )]
    Parse {
        /// File (storage location) or `<stdin>`.
        source_name: String,
        /// 1-based page number in the stream.
        page: usize,
        /// Line inside the page (1-based; the file's line when the file holds one page).
        line: usize,
        /// Column inside that line.
        column: usize,
        /// JSON path of the field at fault, when known.
        path: String,
        /// serde's message (names the missing or mistyped field).
        message: String,
    },
    /// The key does not say whose page this is, or when it was fetched.
    #[error("`{source_name}`: {message}")]
    Meta {
        /// The raw key.
        source_name: String,
        /// What is missing.
        message: String,
    },
    /// Reading the input or writing the output failed.
    #[error("`{source_name}`: {source}")]
    Io {
        /// File or stream.
        source_name: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(", at `{path}`")
    }
}

/// Converts pages of one kind for one group.
#[derive(Debug, Clone)]
pub struct Converter {
    kind: RawKind,
    zone: Tz,
    group: GroupConfig,
}

impl Converter {
    /// A converter for `kind`, naming members and telling local time as `group` says.
    pub fn new(kind: RawKind, group: GroupConfig) -> Result<Converter, String> {
        let zone = group.zone()?;
        Ok(Converter { kind, zone, group })
    }

    /// The kind converted.
    pub fn kind(&self) -> RawKind {
        self.kind
    }

    /// The date a top-items snapshot belongs to: the fetch day in the group's zone.
    pub fn snapshot_date(&self, fetched_at: DateTime<Utc>) -> NaiveDate {
        fetched_at.with_timezone(&self.zone).date_naive()
    }

    /// Convert every page in `reader`, writing one JSON object a line to `sink`. Returns the number of
    /// records written. Stops at the first bad page; what was written before it stays written, so
    /// callers that must not leave partial output write to a buffer first.
    pub fn convert<R: Read, W: Write>(
        &self,
        reader: R,
        source_name: &str,
        meta: &PageMeta,
        sink: &mut W,
    ) -> Result<usize, ConvertError> {
        // A stream cannot be read twice: each page is split off as raw text, then parsed from it.
        let mut records = 0;
        let pages = serde_json::Deserializer::from_reader(reader).into_iter::<Box<RawValue>>();
        for (index, page) in pages.enumerate() {
            let page = page.map_err(|e| parse_error(source_name, index + 1, String::new(), &e))?;
            records += self.convert_page_text(page.get(), source_name, index + 1, meta, sink)?;
        }
        Ok(records)
    }

    /// [`Converter::convert`] of pages already in memory (a stored file): the same records and errors.
    /// Each page is parsed once, straight into models that borrow from `bytes`; only when a page
    /// fails is the file walked again page by page to say where (the slow path, with the JSON path).
    pub fn convert_slice<W: Write>(
        &self,
        bytes: &[u8],
        source_name: &str,
        meta: &PageMeta,
        sink: &mut W,
    ) -> Result<usize, ConvertError> {
        let written = match self.kind {
            RawKind::RecentlyPlayed => {
                self.write_pages::<RecentlyPlayedPage<'_>, W>(bytes, meta, source_name, sink)
            }
            RawKind::TopTracks => {
                self.write_pages::<TopTracksPage<'_>, W>(bytes, meta, source_name, sink)
            }
            RawKind::TopArtists => {
                self.write_pages::<TopArtistsPage<'_>, W>(bytes, meta, source_name, sink)
            }
            RawKind::StreamingHistory => {
                self.write_pages::<HistoryFile<'_>, W>(bytes, meta, source_name, sink)
            }
            RawKind::SpokenHistory => {
                self.write_pages::<SpokenFile<'_>, W>(bytes, meta, source_name, sink)
            }
            RawKind::Listens => {
                self.write_pages::<ListensFile<'_>, W>(bytes, meta, source_name, sink)
            }
        };
        match written {
            Ok(records) => Ok(records),
            Err(Failure::Convert(error)) => Err(error),
            Err(Failure::Parse) => {
                // Say where, as `convert` would: page, line and column inside it, JSON path.
                let mut discard = std::io::sink();
                match self.convert(bytes, source_name, meta, &mut discard) {
                    Err(error) => Err(error),
                    // Not expected (both paths read the same JSON); never pass a bad file as good.
                    Ok(_) => Err(ConvertError::Meta {
                        source_name: source_name.to_string(),
                        message: "the file does not parse as pages of this kind".to_string(),
                    }),
                }
            }
        }
    }

    /// Parse every page of `bytes` as `P` and write its records.
    fn write_pages<'b, P: Page<'b>, W: Write>(
        &self,
        bytes: &'b [u8],
        meta: &PageMeta,
        source_name: &str,
        sink: &mut W,
    ) -> Result<usize, Failure> {
        // The whole file checked as UTF-8 at once is much cheaper than each string on its own, which
        // is what parsing bytes does; a file that is not UTF-8 fails on the slow path, which says where.
        let text = std::str::from_utf8(bytes).map_err(|_| Failure::Parse)?;
        let mut records = 0;
        for page in serde_json::Deserializer::from_str(text).into_iter::<P>() {
            let page = page.map_err(|_| Failure::Parse)?;
            records += page
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                })
                .map_err(Failure::Convert)?;
        }
        Ok(records)
    }

    /// Parse one page's text (borrowing from it) and write its records.
    fn convert_page_text<W: Write>(
        &self,
        text: &str,
        source_name: &str,
        page_no: usize,
        meta: &PageMeta,
        sink: &mut W,
    ) -> Result<usize, ConvertError> {
        match self.kind {
            RawKind::RecentlyPlayed => typed::<RecentlyPlayedPage<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
            RawKind::TopTracks => typed::<TopTracksPage<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
            RawKind::TopArtists => typed::<TopArtistsPage<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
            RawKind::StreamingHistory => typed::<HistoryFile<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
            RawKind::SpokenHistory => typed::<SpokenFile<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
            RawKind::Listens => typed::<ListensFile<'_>>(text, source_name, page_no)?
                .write_records(Out {
                    converter: self,
                    meta,
                    source_name,
                    sink,
                }),
        }
    }

    fn top_meta(
        &self,
        meta: &PageMeta,
        source_name: &str,
    ) -> Result<(TimeRange, NaiveDate), ConvertError> {
        let range = meta.time_range.ok_or_else(|| ConvertError::Meta {
            source_name: source_name.to_string(),
            message:
                "top items need a time range (`time_range=<range>` in the key, or `--time-range`)"
                    .to_string(),
        })?;
        Ok((range, self.snapshot_date(meta.fetched_at)))
    }
}

/// Why [`Converter::write_pages`] stopped.
enum Failure {
    /// A page does not parse: the slow path finds where.
    Parse,
    /// Metadata or output failed.
    Convert(ConvertError),
}

/// Where a page's records go, and what they need besides the page.
struct Out<'c, W> {
    converter: &'c Converter,
    meta: &'c PageMeta,
    source_name: &'c str,
    sink: &'c mut W,
}

/// A page of one kind: it turns into records.
trait Page<'a>: Deserialize<'a> {
    /// Write this page's records; returns how many.
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError>;
}

impl<'a> Page<'a> for RecentlyPlayedPage<'a> {
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        let Out {
            converter, meta, ..
        } = out;
        let user_name = converter.group.display_name(&meta.user_id);
        let records = self.items.into_iter().map(|play| {
            RecentlyPlayedRecord::from_play(&meta.user_id, user_name, play, converter.zone)
        });
        write_all(out.sink, records, out.source_name)
    }
}

/// An imported streaming-history file: one JSON array of entries (a "page" of its own).
#[derive(Deserialize)]
#[serde(transparent)]
struct HistoryFile<'a>(#[serde(borrow)] Vec<HistoryEntry<'a>>);

impl<'a> Page<'a> for HistoryFile<'a> {
    /// The file's music plays (see [`earshot_core::history`]); entries set aside write nothing, and
    /// an entry the file repeats is written once.
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        write_history(
            &self.0,
            out,
            |entry| entry.disposition(false) == Disposition::Kept,
            RecentlyPlayedRecord::from_history,
            |record| record.id.as_str(),
        )
    }
}

/// A stored listens file: one `submit-listens` body, as a ListenBrainz client sent it to the listen API
/// or as `data-fetcher import --format` wrote it (`import-<source>-…`).
#[derive(Deserialize)]
#[serde(transparent)]
struct ListensFile<'a>(#[serde(borrow)] &'a RawValue);

impl<'a> Page<'a> for ListensFile<'a> {
    /// One play a listen (`source` as the file's name says: `listenbrainz` for a submission); a
    /// `playing_now` body writes nothing. The body is checked again by ListenBrainz's rules (but for
    /// the time skew, which the API checked on receipt), so a file written by hand is held to them too.
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        let Out {
            converter,
            meta,
            source_name,
            sink,
        } = out;
        let refused = |message: String| ConvertError::Meta {
            source_name: source_name.to_string(),
            message,
        };
        let source = match earshot_core::layout::listen_import_source(source_name) {
            None | Some("listenbrainz") => PlaySource::Listenbrainz,
            Some("maloja") => PlaySource::Maloja,
            Some("csv") => PlaySource::Csv,
            Some(other) => {
                return Err(refused(format!(
                    "an imported part of an unknown source `{other}` (listenbrainz, maloja or csv)"
                )));
            }
        };
        let submission = parse_submission(self.0.get().as_bytes(), i64::MAX / 2)
            .map_err(|e| refused(format!("not a submission of listens: {e}")))?;
        if submission.listen_type == ListenType::PlayingNow {
            return Ok(0);
        }
        let user_name = converter.group.display_name(&meta.user_id);
        let records = submission.listens.iter().filter_map(|listen| {
            RecentlyPlayedRecord::from_listen(
                &meta.user_id,
                user_name,
                listen,
                source,
                converter.zone,
            )
        });
        write_all(sink, records, source_name)
    }
}

/// The same imported file read for its spoken plays (podcast episodes, audiobook chapters).
#[derive(Deserialize)]
#[serde(transparent)]
struct SpokenFile<'a>(#[serde(borrow)] Vec<HistoryEntry<'a>>);

impl<'a> Page<'a> for SpokenFile<'a> {
    /// The file's spoken plays (see [`HistoryEntry::spoken`]); music and everything set aside write
    /// nothing, and an entry the file repeats is written once.
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        write_history(
            &self.0,
            out,
            |entry| entry.spoken(false).is_some(),
            SpokenPlayRecord::from_history,
            |record| record.id.as_str(),
        )
    }
}

/// The records `make` makes of the entries of an imported file that `keep` keeps, each once (an
/// export repeats entries); an entry with an unreadable `ts` fails the file, naming the entry.
fn write_history<'x, W: Write, R: serde::Serialize>(
    entries: &'x [HistoryEntry<'x>],
    out: Out<'x, W>,
    keep: impl Fn(&HistoryEntry<'x>) -> bool,
    make: impl Fn(&'x str, &'x str, &'x HistoryEntry<'x>, Tz) -> Option<R>,
    id: impl Fn(&R) -> &str,
) -> Result<usize, ConvertError> {
    let Out {
        converter,
        meta,
        source_name,
        sink,
    } = out;
    let user_name = converter.group.display_name(&meta.user_id);
    let mut seen = HashSet::new();
    let mut written = 0;
    for (index, entry) in entries.iter().enumerate() {
        if !keep(entry) {
            continue;
        }
        if let Err(error) = entry.ended_at() {
            return Err(ConvertError::Meta {
                source_name: source_name.to_string(),
                message: format!("entry {index}: `ts` `{}` is not a time: {error}", entry.ts),
            });
        }
        let Some(record) = make(&meta.user_id, user_name, entry, converter.zone) else {
            continue;
        };
        if seen.insert(id(&record).to_string()) {
            write_line(sink, &record, source_name)?;
            written += 1;
        }
    }
    Ok(written)
}

impl<'a> Page<'a> for TopTracksPage<'a> {
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        write_ranked(out, self, |user, name, range, date, rank, track| {
            TopTrackRecord::from_track(user, name, range, date, rank, track)
        })
    }
}

impl<'a> Page<'a> for TopArtistsPage<'a> {
    fn write_records<W: Write>(self, out: Out<'_, W>) -> Result<usize, ConvertError> {
        write_ranked(out, self, |user, name, range, date, rank, artist| {
            TopArtistRecord::from_artist(user, name, range, date, rank, artist)
        })
    }
}

/// Write a top-items page: each item with its rank, the page's time range and snapshot date.
fn write_ranked<'c, T, R: serde::Serialize, W: Write>(
    out: Out<'c, W>,
    page: Paging<T>,
    record: impl Fn(&'c str, &'c str, TimeRange, NaiveDate, u32, T) -> R,
) -> Result<usize, ConvertError> {
    let Out {
        converter,
        meta,
        source_name,
        sink,
    } = out;
    let user_name = converter.group.display_name(&meta.user_id);
    let (range, date) = converter.top_meta(meta, source_name)?;
    let records = (page.offset + 1..)
        .zip(page.items)
        .map(|(rank, item)| record(&meta.user_id, user_name, range, date, rank, item));
    write_all(sink, records, source_name)
}

/// Write records one a line; returns how many.
fn write_all<W: Write, T: serde::Serialize>(
    sink: &mut W,
    records: impl Iterator<Item = T>,
    source_name: &str,
) -> Result<usize, ConvertError> {
    let mut written = 0;
    for record in records {
        write_line(sink, &record, source_name)?;
        written += 1;
    }
    Ok(written)
}

fn typed<'a, T: Deserialize<'a>>(
    text: &'a str,
    source_name: &str,
    page_no: usize,
) -> Result<T, ConvertError> {
    // Tracking the JSON path costs on every field, so only a page that fails is parsed again with it.
    serde_json::from_str(text).or_else(|_| {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| parse_error(source_name, page_no, e.path().to_string(), e.inner()))
    })
}

fn parse_error(
    source_name: &str,
    page: usize,
    path: String,
    error: &serde_json::Error,
) -> ConvertError {
    ConvertError::Parse {
        source_name: source_name.to_string(),
        page,
        line: error.line(),
        column: error.column(),
        path,
        message: earshot_core::records::serde_message(error),
    }
}

fn write_line<W: Write, T: serde::Serialize>(
    sink: &mut W,
    record: &T,
    source_name: &str,
) -> Result<(), ConvertError> {
    serde_json::to_writer(&mut *sink, record)
        .map_err(std::io::Error::from)
        .and_then(|()| sink.write_all(b"\n"))
        .map_err(|source| ConvertError::Io {
            source_name: source_name.to_string(),
            source,
        })
}
