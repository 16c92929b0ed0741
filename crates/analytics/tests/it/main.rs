//! The integration tests of `analytics`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p analytics --test it <file>::`.

mod charts;
mod listens;
mod metrics;
mod parity;
