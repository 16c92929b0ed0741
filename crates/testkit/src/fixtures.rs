//! The fixture group: a deterministic, seeded generator of a friend group's listening in Spotify's
//! exact response shapes, and the loader of the committed set under `fixtures/`.
//!
//! The committed set (`GeneratorConfig::fixture_group`) is 5 members over 3 weeks around the
//! 2024-11-03 fall-back, plus a weekend around the 2024-03-10 spring-forward. It has shared tracks and
//! artists, a heavy listener who plays more than 50 tracks inside one clock hour, names with
//! `(feat. …)`, `[Remastered 2011]`, `{Live}`, unicode and emoji, an HTML-hostile name, a local file,
//! null contexts, images with null sizes, multi-artist tracks, and tracks with and without the fields
//! Spotify removed in 2026. The same generator scales to synthetic sets for benchmarks.
//!
//! Shapes are built as `serde_json::Value`s, independently of `earshot-core`'s models, so that tests
//! of the models and the converter check them against data they did not produce.
//!
//! Split by role: `catalogue` (artists and tracks), `listening` (the generator), `committed_set`
//! (writing and loading `fixtures/`), `pages` (raw API pages), `history` (streaming-history
//! exports) and `facts` (fixtures/README.md's table).

mod catalogue;
mod committed_set;
mod facts;
mod history;
mod listening;
mod pages;

use catalogue::*;
use committed_set::*;
pub use facts::*;
pub use history::*;
pub use listening::*;
pub use pages::*;
