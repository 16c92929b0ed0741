//! Pure conversion: one raw document stream (one or more API pages, as fetched) to JSON Lines.
//!
//! Pages are parsed one at a time into the typed models, so a stream of many pages needs the memory of
//! one page. A parse failure names the page, the line and column inside it, and the JSON path of the
//! field at fault (`items[3].track.duration_ms`).

use std::borrow::Borrow;
use std::io::{Read, Write};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use earshot_core::GroupConfig;
use earshot_core::layout::RawKind;
use earshot_core::records::{RecentlyPlayedRecord, TopArtistRecord, TopTrackRecord};
use earshot_core::spotify::{RecentlyPlayedPage, TimeRange, TopArtistsPage, TopTracksPage};
use serde::de::DeserializeOwned;
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
        let pages = serde_json::Deserializer::from_reader(reader).into_iter::<Box<RawValue>>();
        self.convert_pages(pages, source_name, meta, sink)
    }

    /// [`Converter::convert`] of pages already in memory (a stored file): the same records, parsed
    /// from the slice directly (serde_json reads a slice much faster than an `io::Read`).
    pub fn convert_slice<W: Write>(
        &self,
        bytes: &[u8],
        source_name: &str,
        meta: &PageMeta,
        sink: &mut W,
    ) -> Result<usize, ConvertError> {
        let pages = serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>();
        self.convert_pages(pages, source_name, meta, sink)
    }

    fn convert_pages<P: Borrow<RawValue>, W: Write>(
        &self,
        pages: impl Iterator<Item = serde_json::Result<P>>,
        source_name: &str,
        meta: &PageMeta,
        sink: &mut W,
    ) -> Result<usize, ConvertError> {
        let io = |source| ConvertError::Io {
            source_name: source_name.to_string(),
            source,
        };
        let mut records = 0;
        for (index, page) in pages.enumerate() {
            let page_no = index + 1;
            let page = page.map_err(|e| parse_error(source_name, page_no, String::new(), &e))?;
            let page: &RawValue = page.borrow();
            let user_name = self.group.display_name(&meta.user_id);
            match self.kind {
                RawKind::RecentlyPlayed => {
                    let page: RecentlyPlayedPage = typed(&page, source_name, page_no)?;
                    for play in &page.items {
                        let record = RecentlyPlayedRecord::from_play(
                            &meta.user_id,
                            user_name,
                            play,
                            self.zone,
                        );
                        write_line(sink, &record).map_err(io)?;
                    }
                    records += page.items.len();
                }
                RawKind::TopTracks => {
                    let page: TopTracksPage = typed(&page, source_name, page_no)?;
                    let (range, date) = self.top_meta(meta, source_name)?;
                    for (i, track) in page.items.iter().enumerate() {
                        let rank = page.offset + i as u32 + 1;
                        let record = TopTrackRecord::from_track(
                            &meta.user_id,
                            user_name,
                            range,
                            date,
                            rank,
                            track,
                        );
                        write_line(sink, &record).map_err(io)?;
                    }
                    records += page.items.len();
                }
                RawKind::TopArtists => {
                    let page: TopArtistsPage = typed(&page, source_name, page_no)?;
                    let (range, date) = self.top_meta(meta, source_name)?;
                    for (i, artist) in page.items.iter().enumerate() {
                        let rank = page.offset + i as u32 + 1;
                        let record = TopArtistRecord::from_artist(
                            &meta.user_id,
                            user_name,
                            range,
                            date,
                            rank,
                            artist,
                        );
                        write_line(sink, &record).map_err(io)?;
                    }
                    records += page.items.len();
                }
            }
        }
        Ok(records)
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

fn typed<T: DeserializeOwned>(
    page: &RawValue,
    source_name: &str,
    page_no: usize,
) -> Result<T, ConvertError> {
    // Tracking the JSON path costs on every field, so only a page that fails is parsed again with it.
    serde_json::from_str(page.get()).or_else(|_| {
        let mut de = serde_json::Deserializer::from_str(page.get());
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

fn write_line<W: Write, T: serde::Serialize>(sink: &mut W, record: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *sink, record)?;
    sink.write_all(b"\n")
}
