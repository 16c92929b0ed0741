//! The integration tests of `create-collections`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p create-collections --test it <file>::`.

mod collections;
mod common;
mod queries;
