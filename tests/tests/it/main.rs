//! The integration tests of `earshot-tests`, one test binary: each file is a module of it, so that the
//! dependencies are linked once for all of them (`scripts/test.sh` runs the binaries side by side).
//! Run one file's tests with `cargo test -p earshot-tests --test it <file>::`.

mod architecture;
mod cli_chain;
mod fixture_facts;
mod history_import;
mod listens_import;
mod real_servers;
mod reference;
mod upgrade;
