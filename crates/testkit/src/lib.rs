//! `earshot-testkit`: dev-only helpers for Earshot's tests, demo and benchmarks. Never a dependency
//! of a shipped binary.
//!
//! - [`fixtures`]: the seeded fixture generator and the committed fixture group.
//! - [`scrobbler`]: the group's sixth friend, who is not on Spotify and scrobbles her listens.
//! - [`spotify`]: a mock Spotify Web API and accounts service on loopback.
//! - [`mongo`]: the MongoDB-wire dev server (`earshot-devdb`, a separate process) or `EARSHOT_TEST_MONGODB_URI`.
//! - [`gcs`]: fake-gcs-server on a free loopback port.

pub mod fixtures;
pub mod gcs_emulator;
pub mod mongo_server;
pub mod rng;
pub mod scrobbler;
pub mod spark_cluster;
pub mod spotify;
