//! The integration tests of `data-fetcher`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p data-fetcher --test it <file>::`.

mod auth;
mod cli;
mod common;
mod enrich;
mod fetch;
mod import_limits;
