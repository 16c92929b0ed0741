//! `recap`: the group's weekly recap, posted to its chat.
//!
//! After `analytics --period <week>` has stored the week's run, `recap` reads it ([`message`]), shapes
//! one message per destination the group config lists ([`formats`]: Discord, Slack, ntfy, a JSON
//! webhook) and posts it ([`post`]). The posts ledger (`recap_posts`, one entry per week and
//! destination, written once the destination accepted) makes a re-run or a retried task post
//! nothing twice, and lets the next run post what failed.
//!
//! `recap --reminders` (the daily DAG) posts the reconnect reminders instead ([`reminders`]): a week
//! before a friend's Spotify authorisation ends, and once it has ended, with the same ledger and
//! secrecy rules. `recap --alarms` (the daily DAG) posts the stall alarm ([`alarms`]): once when a
//! connected member's plays or a scheduled step stop, once when they are back.

pub mod alarms;
pub mod formats;
pub mod message;
pub mod post;
pub mod reminders;

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use clap::Parser;
use earshot_core::cli::{EXIT_CODES_HELP, Outcome, StoreArgs};
use earshot_core::period::Period;
use earshot_core::{DestinationConfig, GroupConfig, mongo};
use mongodb::Database;
use mongodb::bson::{self, Document, doc};
use tracing::{error, info};

use crate::formats::Notice;
use crate::message::WeeklyRecap;
use crate::post::{Policy, Secret};

/// Post the group's weekly recap to each destination its config lists, once per week.
///
/// Reads the week's run that `analytics --period <week>` stored. A destination that accepted the
/// week's message is recorded in `recap_posts` and never posted to again for that week; one that
/// failed is posted to by the next run. Destination URLs are secrets: the config names the
/// environment variable or file holding each.
#[derive(Debug, Parser)]
#[command(name = "recap", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The ISO week (`2024-W44`). Default: the last whole week in the group's time zone.
    #[arg(long)]
    pub period: Option<Period>,
    /// Print the message and what would be posted where; post nothing, read no URL.
    #[arg(long)]
    pub dry_run: bool,
    /// The most seconds a run waits in all for destinations' Retry-After (longer: the next run posts).
    #[arg(long, default_value_t = 600)]
    pub max_wait: u64,
    /// Seconds within which a destination's 5xx answers, timeouts and refused connections are retried.
    #[arg(long, default_value_t = 60)]
    pub retry_budget: u64,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
    /// Post the reconnect reminders that are due (a week before a friend's Spotify authorisation
    /// ends, and once it has ended) instead of the weekly recap. Reads the members' fetch state.
    #[arg(long, conflicts_with = "period")]
    pub reminders: bool,
    /// Post the stall alarm's messages instead of the weekly recap: once when a connected member has
    /// had no new play for `alarms.stalled_after_hours` (48) or a scheduled step has failed
    /// `alarms.failed_runs` (3) runs in a row, and once when it is over. Reads the members' newest
    /// plays and the steps' runs.
    #[arg(long, conflicts_with_all = ["period", "reminders"])]
    pub alarms: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Run the command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let group = cli.store.group()?;
    let zone = group.zone().map_err(anyhow::Error::msg)?;
    let week = match cli.period {
        Some(week @ Period::Week(..)) => week,
        Some(other) => {
            anyhow::bail!("`--period {other}`: the recap is weekly, give an ISO week (2024-W44)")
        }
        None => Period::last_whole_week(Utc::now(), zone),
    };
    let scoped = cli.store.scoped_for(group)?;
    let db = scoped.database().await?;
    let storage = scoped.storage().await?;
    let group = scoped.group;
    let policy = Policy {
        timeout: Duration::from_secs(cli.timeout),
        max_wait: Duration::from_secs(cli.max_wait),
        retry_budget: Duration::from_secs(cli.retry_budget),
    };
    if cli.alarms {
        let now = earshot_state::clock::from_env()?.now();
        let (done, failed) =
            alarms::run(&db, &storage, &group, zone, now, &policy, cli.dry_run).await?;
        return Ok(Outcome::from_counts(done, failed));
    }
    if cli.reminders {
        let now = earshot_state::clock::from_env()?.now();
        let states = earshot_state::fetch_state::list(&storage).await?;
        let left = earshot_core::erasure::departures(&storage).await?;
        let due = reminders::due(&states, &group, &left, zone, now);
        if due.is_empty() {
            info!("No reconnect reminder is due.");
        }
        let notices: Vec<&dyn Notice> = due.iter().map(|r| r as &dyn Notice).collect();
        let (done, failed) = post_notices(&db, &group, &notices, &policy, cli.dry_run).await?;
        return Ok(Outcome::from_counts(done, failed));
    }
    // Whoever hides from comparisons now is in no pair the recap posts, whatever the run stored.
    let hidden = earshot_core::consent::hidden(&storage).await?;
    let recap = message::load(&db, &group, week, &hidden).await?;
    if cli.dry_run {
        dry_run(&db, &group, &recap).await?;
        return Ok(Outcome::Success);
    }
    post_all(&db, &group, &recap, &policy).await
}

/// Print the message, then each destination's state for the week.
async fn dry_run(db: &Database, group: &GroupConfig, recap: &WeeklyRecap) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", recap.text)?;
    writeln!(out)?;
    if group.destinations.is_empty() {
        writeln!(out, "(dry run: the group config lists no destinations)")?;
    }
    for destination in &group.destinations {
        let state = match posted(db, &recap.period, destination).await? {
            Some(at) => format!("posted at {at}: would post nothing"),
            None => "would post".to_string(),
        };
        writeln!(
            out,
            "(dry run) {} ({}): {state}",
            destination.name,
            destination.kind.as_str()
        )?;
    }
    Ok(())
}

/// Post each notice to every destination not yet given it (and, for a notice that follows another,
/// given that one): with `dry_run`, say what would go. Returns how many (notice, destination) pairs
/// are done (posted now or before) and how many failed (the next run tries them again).
pub async fn post_notices(
    db: &Database,
    group: &GroupConfig,
    notices: &[&dyn Notice],
    policy: &Policy,
    dry_run: bool,
) -> Result<(usize, usize)> {
    if notices.is_empty() {
        return Ok((0, 0));
    }
    if group.destinations.is_empty() {
        info!(
            notices = notices.len(),
            "The group config lists no destinations: nothing to post."
        );
        return Ok((0, 0));
    }
    let http = post::client(policy)?;
    let (mut done, mut failed) = (0, 0);
    for notice in notices {
        let key = notice.ledger_key();
        for destination in &group.destinations {
            let name = destination.name.as_str();
            if let Some(at) = posted(db, key, destination).await? {
                info!(destination = name, notice = key, posted_at = %at, "Already posted.");
                done += 1;
                continue;
            }
            if let Some(first) = notice.follows()
                && posted(db, first, destination).await?.is_none()
            {
                info!(
                    destination = name,
                    notice = key,
                    "Not posted: this destination never had what it follows."
                );
                done += 1;
                continue;
            }
            if dry_run {
                writeln!(
                    std::io::stdout().lock(),
                    "(dry run) {name} ({}): would post: {}",
                    destination.kind.as_str(),
                    notice.text(&message::Plain)
                )?;
                continue;
            }
            let sent = async {
                let secret = Secret::read(destination)?;
                let (url, topic) = post::target(destination.kind, &secret)
                    .with_context(|| format!("destination `{name}`"))?;
                let body = formats::notice_payload(destination.kind, *notice, topic.as_deref());
                post::deliver(&http, name, &secret, &url, &body, policy).await
            };
            match sent.await {
                Ok(attempts) => {
                    record(db, key, destination, attempts).await?;
                    info!(destination = name, notice = key, "Posted.");
                    done += 1;
                }
                Err(err) => {
                    error!(destination = name, notice = key, error = %format!("{err:#}"), "Not posted: the next run tries again.");
                    failed += 1;
                }
            }
        }
    }
    Ok((done, failed))
}

/// Post to every destination not yet posted to this week.
async fn post_all(
    db: &Database,
    group: &GroupConfig,
    recap: &WeeklyRecap,
    policy: &Policy,
) -> Result<Outcome> {
    if group.destinations.is_empty() {
        info!("The group config lists no destinations: nothing to post.");
        return Ok(Outcome::Success);
    }
    let http = post::client(policy)?;
    let (mut done, mut failed) = (0, 0);
    for destination in &group.destinations {
        let name = destination.name.as_str();
        if let Some(at) = posted(db, &recap.period, destination).await? {
            info!(destination = name, period = %recap.period, posted_at = %at, "Already posted this week.");
            done += 1;
            continue;
        }
        match post_one(&http, destination, recap, policy).await {
            Ok(attempts) => {
                record(db, &recap.period, destination, attempts).await?;
                done += 1;
            }
            Err(err) => {
                error!(destination = name, error = %format!("{err:#}"), "Not posted: the next run tries again.");
                failed += 1;
            }
        }
    }
    info!(period = %recap.period, posted = done, failed, "Recap posted.");
    Ok(Outcome::from_counts(done, failed))
}

async fn post_one(
    http: &reqwest::Client,
    destination: &DestinationConfig,
    recap: &WeeklyRecap,
    policy: &Policy,
) -> Result<u32> {
    let secret = Secret::read(destination)?;
    let (url, topic) = post::target(destination.kind, &secret)
        .with_context(|| format!("destination `{}`", destination.name))?;
    let body = formats::payload(destination.kind, recap, topic.as_deref());
    post::deliver(http, &destination.name, &secret, &url, &body, policy).await
}

/// When the week was posted to `destination`, if it was.
async fn posted(
    db: &Database,
    period: &str,
    destination: &DestinationConfig,
) -> Result<Option<String>> {
    let key = mongo::recap_post_key(period, &destination.name);
    let found = db
        .collection::<Document>(mongo::RECAP_POSTS)
        .find_one(doc! {"_id": &key})
        .await
        .with_context(|| format!("reading `{}`", mongo::RECAP_POSTS))?;
    Ok(found.map(|d| {
        d.get_datetime("posted_at")
            .map(|t| t.try_to_rfc3339_string().unwrap_or_default())
            .unwrap_or_default()
    }))
}

/// Record that `destination` accepted the week's message.
async fn record(
    db: &Database,
    period: &str,
    destination: &DestinationConfig,
    attempts: u32,
) -> Result<()> {
    let key = mongo::recap_post_key(period, &destination.name);
    db.collection::<Document>(mongo::RECAP_POSTS)
        .replace_one(
            doc! {"_id": &key},
            doc! {
                "_id": &key,
                "period": period,
                "destination": &destination.name,
                "kind": destination.kind.as_str(),
                "posted_at": bson::DateTime::now(),
                "attempts": attempts,
            },
        )
        .upsert(true)
        .await
        .with_context(|| format!("recording the post in `{}`", mongo::RECAP_POSTS))?;
    Ok(())
}
