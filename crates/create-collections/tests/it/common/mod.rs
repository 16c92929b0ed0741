//! The fixture group loaded the way the pipeline loads it (the shared helper in `earshot-tests`).

use earshot_core::{GroupConfig, Storage};
use mongodb::Database;

pub(crate) fn group() -> GroupConfig {
    earshot_tests::fixture_group_config()
}

/// A fresh database holding the fixture group's raw collections, and the storage they came from.
/// (The helper also builds the derived collections; the tests build them again, which must change
/// nothing, and clear them where they need a fresh start.)
pub(crate) async fn loaded_database(test: &str) -> (Database, tempfile::TempDir, Storage) {
    earshot_tests::pipeline_database(test).await
}
