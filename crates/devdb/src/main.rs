//! `earshot-devdb`: start a MongoDB-wire server (secantus-mdb) on loopback and print its URI.
//!
//! The first line on stdout is the connection string (`mongodb://127.0.0.1:<port>/?directConnection=true`);
//! callers read it and connect with the official driver. The server stops on SIGINT/SIGTERM, and with
//! `--exit-on-stdin-close` also when its parent closes stdin (or dies), so a crashed test run never
//! leaves a server behind.
//!
//! `earshot-devdb --help` lists the flags.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;

/// One allocator for Rust and WiredTiger alike (Cargo.toml says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Start a MongoDB-wire server (secantus-mdb) on loopback and print its URI on stdout's first line.
///
/// Without `--dbpath` the store is temporary and removed at exit; with it, data persists across runs.
/// The server stops on SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "earshot-devdb")]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Keep the data in this folder (created when missing).
    #[arg(long)]
    dbpath: Option<String>,
    /// Also stop when the parent closes stdin (or dies).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(err) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("earshot-devdb: cannot install signal handler: {err}");
            return ExitCode::FAILURE;
        }
    }
    // Loopback only: this server has no authentication and must never listen on a network.
    let mut builder = secantus_mdb::Server::builder().host("127.0.0.1").port(args.port);
    if let Some(dir) = &args.dbpath {
        if let Err(err) = std::fs::create_dir_all(dir) {
            eprintln!("earshot-devdb: cannot create `{dir}`: {err}");
            return ExitCode::FAILURE;
        }
        builder = builder.storage_path(dir);
    }
    let mut server = match builder.start() {
        Ok(server) => server,
        Err(err) => {
            eprintln!("earshot-devdb: cannot start the server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", server.uri());
    let _ = stdout.flush();
    eprintln!("earshot-devdb: secantus-mdb {} listening at {}", secantus_mdb::VERSION, server.uri());

    if args.exit_on_stdin_close {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    eprintln!("earshot-devdb: stopped");
    ExitCode::SUCCESS
}
