//! `members`: a member's data rights (GDPR Articles 15, 17 and 20).
//!
//! - `members list`: the group's members, and what Earshot holds about each one.
//! - `members export --member <id> --output <file.zip|->`: everything about one member in open formats
//!   (JSON Lines, JSON, the stored files as they are), never a token or a key, and nothing about
//!   another member beyond the id of a friend a pairwise row pairs them with; with
//!   `--format listenbrainz`, their plays as ListenBrainz listens ([`listenbrainz`]).
//! - `members erase --member <id>`: removes the member from every store, safe to re-run.
//!
//! The work is [`earshot_rights`] (export, erase) and [`earshot_state::roster`] (list), which the
//! dashboard's "Your data" uses too; this crate is the command line.

use earshot_rights::{erase, member_export};
use earshot_state::roster;
use earshot_state::{Stores, listen_tokens};

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::config::DEFAULT_CONFIG_FILE;

/// See, take away and erase what Earshot holds about a member.
///
/// `EARSHOT_NOW` (an RFC 3339 time; the demo and tests) sets the time `list` judges authorisations at,
/// as it does for `data-fetcher`.
#[derive(Debug, Parser)]
#[command(name = "members", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The group's members (as the config names them, and anyone Earshot still holds data about) and,
    /// for each, their plays, first and last play, imports and authorisation state.
    List {
        /// One JSON object per member on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write everything Earshot holds about one member to a zip (a README inside describes each file).
    Export {
        /// The member's Spotify id.
        #[arg(long)]
        member: String,
        /// The file to write (`-` for stdout). Written whole or not at all.
        #[arg(long)]
        output: PathBuf,
        /// `zip`: everything Earshot holds about them. `listenbrainz`: their plays, fetched and
        /// imported, as ListenBrainz listens (JSON Lines), to import there.
        #[arg(long, value_enum, default_value_t = ExportFormat::Zip)]
        format: ExportFormat,
    },
    /// Remove one member from every store. Refused while the group config still lists them.
    Erase {
        /// The member's Spotify id.
        #[arg(long)]
        member: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Erase even though no group config file is found (normally refused: nothing could check
        /// that the member is no longer listed, and the next fetch might bring them back).
        #[arg(long)]
        without_config: bool,
    },
    /// Make a member a listen token, for the ListenBrainz clients that submit their listens to
    /// Earshot (Navidrome, Jellyfin's ListenBrainz plugin, a phone scrobbler). Printed once on
    /// stdout; only its SHA-256 is kept. A new token replaces the old one at once.
    Token {
        /// The member's id in the group config.
        #[arg(long)]
        member: String,
        /// Remove the member's token instead: their clients' submissions are refused from now on.
        #[arg(long)]
        revoke: bool,
    },
}

/// What `members export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Everything Earshot holds about the member, as a zip of open formats.
    Zip,
    /// The member's plays as ListenBrainz listens, one JSON object per line.
    Listenbrainz,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let config_path = cli
        .store
        .files
        .group_config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let scoped = cli.store.scoped()?;
    let storage = scoped.storage().await?;
    let db = scoped.database().await?;
    let stores = Stores {
        storage,
        db,
        group: scoped.group,
    };
    match &cli.command {
        Command::List { json } => {
            // The fetcher's clock: `EARSHOT_NOW` moves both (the demo lives in 2024).
            let now = earshot_state::clock::from_env()?.now();
            let rows = roster::list(&stores, now).await?;
            if *json {
                for row in &rows {
                    writeln!(std::io::stdout(), "{}", serde_json::to_string(row)?)?;
                }
            } else {
                write!(std::io::stdout(), "{}", roster::table(&rows))?;
            }
        }
        Command::Export {
            member,
            output,
            format,
        } => {
            let summary = match format {
                ExportFormat::Zip => member_export::export_to(&stores, member, output)
                    .await?
                    .summary(member, output),
                ExportFormat::Listenbrainz => {
                    member_export::export_listens_to(&stores, member, output)
                        .await?
                        .summary(member, output)
                }
            };
            eprintln!("{summary}");
        }
        Command::Erase {
            member,
            yes,
            without_config,
        } => {
            erase::refuse_without_config(&config_path, config_path.is_file(), *without_config)?;
            erase::refuse_if_listed(&stores, member, &config_path).await?;
            if !yes && !erase::confirm(member)? {
                eprintln!("Nothing erased.");
                return Ok(Outcome::Failure);
            }
            let report = erase::erase(&stores, member).await?;
            write!(std::io::stdout(), "{}", report.summary(member))?;
        }
        Command::Token { member, revoke } => {
            if *revoke {
                let had = listen_tokens::revoke(&stores.storage, member).await?;
                eprintln!(
                    "{}",
                    if had {
                        format!("Revoked `{member}`'s listen token.")
                    } else {
                        format!("`{member}` had no listen token.")
                    }
                );
                return Ok(Outcome::Success);
            }
            if stores.group.member(member).is_none() {
                anyhow::bail!(
                    "`--member {member}`: the group config does not list them (a listen token is for a member of the group)"
                );
            }
            if earshot_core::erasure::has_left(&stores.storage, member).await? {
                anyhow::bail!("`--member {member}`: they left the group");
            }
            let now = earshot_state::clock::from_env()?.now();
            let token = listen_tokens::create(&stores.storage, member, now).await?;
            writeln!(std::io::stdout(), "{token}")?;
            eprintln!(
                "A listen token for `{member}`, shown once: set it as the ListenBrainz token of their \
                 player or scrobbler, with Earshot's dashboard address as the ListenBrainz URL. A new \
                 token replaces this one."
            );
        }
    }
    Ok(Outcome::Success)
}
