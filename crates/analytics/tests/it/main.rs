//! The integration tests of `analytics`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p analytics --test it <file>::`.

mod charts;
mod listens;
mod metrics;
mod parity;

/// The scheduled run every file starts from: the whole of `storage`'s newest snapshot, every member,
/// under the fixture group's config.
async fn analyse_fixture_group(storage: &earshot_core::Storage) -> analytics::RunOutput {
    analytics::analyse(
        storage,
        None,
        &analytics::snapshot::Filters::default(),
        &earshot_tests::fixture_group_config(),
        None,
    )
    .await
    .unwrap()
}
