//! The integration tests of `dashboard`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p dashboard --test it <file>::`.

mod browser;
mod common;
mod erase;
mod groups;
mod hostile;
mod http;
mod listen_api;
mod telemetry;
