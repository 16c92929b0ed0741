//! The login throttle: attempts are counted when they start, not when they fail.
//!
//! A sign-in attempt takes its slot before the password is looked at, under one lock, so a burst of N
//! concurrent attempts from one client gets at most [`LoginLimits::per_client`] password checks however
//! they interleave. Only an attempt with a valid CSRF pair gets here: a post without one (a cross-site
//! page posting the form, a script without the form's cookie) is refused before it, and counts nowhere.
//! These limits hold at once:
//!
//! - **per client** (an IPv4 address, an IPv6 client by its /64, since one IPv6 host owns a whole /64):
//!   at most `per_client` attempts in `client_window`, then `429` until the oldest leaves the window;
//! - **a client's share of the budget**: at most `wrong_per_client` wrong passwords an hour from one
//!   client (by default a tenth of the budget: 10 of 100), so that no single address can spend the
//!   group's budget and lock every friend out; an IPv6 /48 (one site's allocation) has twice that
//!   share and twice the per-minute attempts in all its /64s together, so a flood of fresh /64s from one
//!   /48 is one client as well;
//! - **the group password's budget**: at most `wrong_per_hour` wrong passwords an hour across every
//!   client. It protects the one password against guessing spread over many addresses; while it is spent
//!   nobody can sign in (`429`), but friends already signed in keep their sessions (a session is a signed
//!   cookie, checked without this throttle). An attempt in flight counts against the budget until it is
//!   known to be right, so a burst across many addresses cannot overshoot it;
//! - **concurrent checks**: at most `concurrent_checks` Argon2 checks run at once (each holds 19 MiB for a
//!   tenth of a second); an attempt beyond that gets `503` with `Retry-After`.
//!
//! Memory is bounded: a client is remembered only while it has attempts or wrong passwords in their
//! windows, and at most [`MAX_TRACKED_CLIENTS`] at once. A full table refuses only new clients that
//! hold no session (`503` until entries age out); a client already counted, or one signed in, is
//! never refused for it. The budget keeps at most `wrong_per_hour` instants.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most clients the throttle remembers at once.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The limits of the login form (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Attempts allowed per client within `client_window`.
    pub per_client: usize,
    /// The window of the per-client limit.
    pub client_window: Duration,
    /// Wrong passwords allowed across every client within `budget_window`.
    pub wrong_per_hour: usize,
    /// Wrong passwords allowed from one client within `budget_window` (its share of the budget).
    pub wrong_per_client: usize,
    /// The window of the budget (an hour).
    pub budget_window: Duration,
    /// Argon2 checks allowed to run at once.
    pub concurrent_checks: usize,
}

impl Default for LoginLimits {
    fn default() -> LoginLimits {
        LoginLimits {
            per_client: 5,
            client_window: Duration::from_secs(60),
            wrong_per_hour: DEFAULT_WRONG_PER_HOUR,
            wrong_per_client: client_share(DEFAULT_WRONG_PER_HOUR),
            budget_window: Duration::from_secs(3600),
            concurrent_checks: 2,
        }
    }
}

impl LoginLimits {
    /// The default limits with a budget of `wrong_per_hour`, each client's share a tenth of it.
    pub fn with_budget(wrong_per_hour: usize) -> LoginLimits {
        LoginLimits {
            wrong_per_hour,
            wrong_per_client: client_share(wrong_per_hour),
            ..LoginLimits::default()
        }
    }
}

/// One client's share of a budget: a tenth, at least one.
pub fn client_share(budget: usize) -> usize {
    (budget / 10).max(1)
}

/// How many times a client's limits an IPv6 /48 gets, all its /64s together.
pub const SITE_FACTOR: usize = 2;

/// The default budget of wrong passwords an hour, across every client.
pub const DEFAULT_WRONG_PER_HOUR: usize = 100;

/// Who an attempt is counted against: an IPv4 address, or an IPv6 address's /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client address (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> ClientKey {
        match crate::exposure::canonical(ip) {
            IpAddr::V6(v6) => ClientKey(IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into())),
            v4 => ClientKey(v4),
        }
    }
}

impl ClientKey {
    /// The /48 an IPv6 client lies in (`None` for IPv4).
    fn site(self) -> Option<ClientKey> {
        match self.0 {
            IpAddr::V6(v6) => Some(ClientKey(IpAddr::V6(
                (u128::from(v6) & !((1u128 << 80) - 1)).into(),
            ))),
            IpAddr::V4(_) => None,
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Why an attempt was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This client made too many attempts lately: retry after this many seconds.
    Client(u64),
    /// The group password's budget of wrong passwords is spent: retry after this many seconds.
    Budget(u64),
    /// Too many checks at once, or too many clients remembered: retry in a second.
    Busy,
}

/// What one client (or one IPv6 /48) did lately.
#[derive(Debug, Default)]
struct Recent {
    /// Attempts within the client window.
    attempts: VecDeque<Instant>,
    /// Wrong passwords within the budget window.
    wrong: VecDeque<Instant>,
    /// Attempts not settled yet.
    in_flight: usize,
}

impl Recent {
    fn forget(&mut self, limits: &LoginLimits, now: Instant) {
        while self
            .attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.client_window)
        {
            self.attempts.pop_front();
        }
        while self
            .wrong
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.budget_window)
        {
            self.wrong.pop_front();
        }
    }

    fn idle(&self) -> bool {
        self.attempts.is_empty() && self.wrong.is_empty() && self.in_flight == 0
    }

    /// Why this client may not try now (`factor` times a client's limits), or `None`.
    fn refusal(&self, limits: &LoginLimits, factor: usize, now: Instant) -> Option<Refusal> {
        if self.attempts.len() >= limits.per_client * factor {
            let oldest = *self.attempts.front().expect("not empty");
            return Some(Refusal::Client(seconds_until(
                oldest,
                limits.client_window,
                now,
            )));
        }
        if self.wrong.len() + self.in_flight >= limits.wrong_per_client * factor {
            let wait = self
                .wrong
                .front()
                .map_or(limits.client_window.as_secs(), |oldest| {
                    seconds_until(*oldest, limits.budget_window, now)
                });
            return Some(Refusal::Client(wait));
        }
        None
    }
}

#[derive(Debug, Default)]
struct Counts {
    clients: HashMap<ClientKey, Recent>,
    sites: HashMap<ClientKey, Recent>,
    wrong: VecDeque<Instant>,
    in_flight: usize,
    budget_spent_logged: bool,
}

/// The throttle itself: shared by every request.
#[derive(Debug)]
pub struct Throttle {
    limits: LoginLimits,
    counts: Mutex<Counts>,
    checks: Arc<Semaphore>,
}

/// An attempt let through: it holds a check slot and counts against the budget until it is settled.
#[derive(Debug)]
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    client: ClientKey,
    /// The right to run one Argon2 check; move it into the check.
    pub permit: Option<OwnedSemaphorePermit>,
    settled: bool,
}

fn seconds_until(from: Instant, window: Duration, now: Instant) -> u64 {
    window
        .saturating_sub(now.duration_since(from))
        .as_secs()
        .max(1)
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: LoginLimits) -> Throttle {
        Throttle {
            limits,
            counts: Mutex::new(Counts::default()),
            checks: Arc::new(Semaphore::new(limits.concurrent_checks.max(1))),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take a slot for an attempt by `client` at `now`, or say why not. The slot is taken whatever
    /// happens next (a busy server, a spent token): it is the attempt that counts.
    pub fn begin(&self, client: ClientKey, now: Instant) -> Result<Attempt<'_>, Refusal> {
        self.begin_for(client, now, false)
    }

    /// [`Throttle::begin`] for a client that may hold a session (`signed_in`): a full client table
    /// does not refuse it.
    pub fn begin_for(
        &self,
        client: ClientKey,
        now: Instant,
        signed_in: bool,
    ) -> Result<Attempt<'_>, Refusal> {
        let limits = self.limits;
        let mut counts = self.lock();
        while counts
            .wrong
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.budget_window)
        {
            counts.wrong.pop_front();
        }
        if counts.wrong.len() < limits.wrong_per_hour {
            counts.budget_spent_logged = false;
        }
        if counts.wrong.len() + counts.in_flight >= limits.wrong_per_hour {
            if !counts.budget_spent_logged {
                counts.budget_spent_logged = true;
                tracing::warn!(
                    budget = limits.wrong_per_hour,
                    "The budget of wrong dashboard passwords is spent: nobody can sign in until it \
                     refills (signed-in friends keep their sessions). Someone may be guessing the \
                     group password."
                );
            }
            let wait = counts.wrong.front().map_or(1, |oldest| {
                seconds_until(*oldest, limits.budget_window, now)
            });
            return Err(Refusal::Budget(wait));
        }
        counts.clients.retain(|_, recent| {
            recent.forget(&limits, now);
            !recent.idle()
        });
        counts.sites.retain(|_, recent| {
            recent.forget(&limits, now);
            !recent.idle()
        });
        if let Some(refusal) = counts
            .clients
            .get(&client)
            .and_then(|recent| recent.refusal(&limits, 1, now))
        {
            return Err(refusal);
        }
        let site = client.site();
        if let Some(refusal) = site
            .and_then(|site| counts.sites.get(&site))
            .and_then(|recent| recent.refusal(&limits, SITE_FACTOR, now))
        {
            return Err(refusal);
        }
        if !counts.clients.contains_key(&client)
            && counts.clients.len() >= MAX_TRACKED_CLIENTS
            && !signed_in
        {
            return Err(Refusal::Busy);
        }
        let recent = counts.clients.entry(client).or_default();
        recent.attempts.push_back(now);
        if let Some(site) = site {
            counts
                .sites
                .entry(site)
                .or_default()
                .attempts
                .push_back(now);
        }
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            return Err(Refusal::Busy);
        };
        counts.in_flight += 1;
        let counts = &mut *counts;
        for recent in [
            counts.clients.get_mut(&client),
            site.and_then(|site| counts.sites.get_mut(&site)),
        ]
        .into_iter()
        .flatten()
        {
            recent.in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            client,
            permit: Some(permit),
            settled: false,
        })
    }

    /// Wrong passwords within the budget's window (for tests and logs).
    pub fn wrong_lately(&self) -> usize {
        self.lock().wrong.len()
    }

    /// Clients remembered (for tests: the memory bound).
    pub fn clients_tracked(&self) -> usize {
        self.lock().clients.len()
    }
}

impl Attempt<'_> {
    fn settle(&mut self, wrong_at: Option<Instant>) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut counts = self.throttle.lock();
        counts.in_flight = counts.in_flight.saturating_sub(1);
        if let Some(at) = wrong_at {
            counts.wrong.push_back(at);
        }
        let site = self.client.site();
        let counts = &mut *counts;
        for recent in [
            counts.clients.get_mut(&self.client),
            site.and_then(|site| counts.sites.get_mut(&site)),
        ]
        .into_iter()
        .flatten()
        {
            recent.in_flight = recent.in_flight.saturating_sub(1);
            if let Some(at) = wrong_at {
                recent.wrong.push_back(at);
            }
        }
    }

    /// The password was wrong: it counts against the budget.
    pub fn wrong(mut self, now: Instant) {
        self.settle(Some(now));
    }

    /// The password was right, or never checked: the budget gets its reservation back.
    pub fn release(mut self) {
        self.settle(None);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.settle(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            per_client: 3,
            client_window: Duration::from_secs(60),
            wrong_per_hour: 5,
            wrong_per_client: 5,
            budget_window: Duration::from_secs(3600),
            concurrent_checks: 10,
        }
    }

    #[test]
    fn one_client_spends_only_its_share_and_a_48_counts_as_one_site() {
        let throttle = Throttle::new(LoginLimits {
            per_client: 5,
            wrong_per_hour: 20,
            wrong_per_client: 2,
            ..limits()
        });
        let now = Instant::now();
        for _ in 0..2 {
            throttle.begin(key("192.0.2.1"), now).unwrap().wrong(now);
        }
        assert_eq!(
            throttle.begin(key("192.0.2.1"), now).unwrap_err(),
            Refusal::Client(3600),
            "its share of the hour is spent"
        );
        assert!(
            throttle.begin(key("192.0.2.2"), now).is_ok(),
            "another client is not"
        );
        // Fresh /64s of one /48: the site's share (twice a client's) stops them all.
        let mut refused = 0;
        for i in 0..10 {
            match throttle.begin(key(&format!("2001:db8:5:{i:x}::1")), now) {
                Ok(attempt) => attempt.wrong(now),
                Err(Refusal::Client(_)) => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 10 - 2 * SITE_FACTOR);
        assert!(
            throttle.begin(key("2001:db8:6::1"), now).is_ok(),
            "another /48"
        );
        assert_eq!(client_share(100), 10);
        assert_eq!(client_share(4), 1);
    }

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap())
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn attempts_count_when_they_start() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| throttle.begin(key("192.0.2.1"), now).unwrap())
            .collect();
        assert_eq!(
            throttle.begin(key("192.0.2.1"), now).unwrap_err(),
            Refusal::Client(60),
            "three attempts in flight fill the client's window before any failed"
        );
        drop(held);
        assert!(throttle.begin(key("192.0.2.2"), now).is_ok());
        assert!(
            throttle
                .begin(key("192.0.2.1"), now + Duration::from_secs(60))
                .is_ok(),
            "the window passes"
        );
    }

    #[test]
    fn the_budget_holds_across_clients_and_counts_attempts_in_flight() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        let in_flight: Vec<_> = (0..5)
            .map(|i| {
                throttle
                    .begin(key(&format!("198.51.100.{i}")), now)
                    .unwrap()
            })
            .collect();
        assert!(matches!(
            throttle.begin(key("203.0.113.9"), now),
            Err(Refusal::Budget(_))
        ));
        for attempt in in_flight {
            attempt.wrong(now);
        }
        assert_eq!(throttle.wrong_lately(), 5);
        assert_eq!(
            throttle
                .begin(key("2001:db8::1"), now + Duration::from_secs(1800))
                .unwrap_err(),
            Refusal::Budget(1800)
        );
        assert!(
            throttle
                .begin(key("2001:db8::1"), now + Duration::from_secs(3600))
                .is_ok(),
            "the hour passes"
        );
        // A right password gives its reservation back.
        let throttle = Throttle::new(limits());
        for i in 0..10 {
            throttle
                .begin(key(&format!("198.51.100.{i}")), now)
                .unwrap()
                .release();
        }
        assert_eq!(throttle.wrong_lately(), 0);
    }

    #[test]
    fn checks_beyond_the_cap_are_busy_and_clients_are_forgotten() {
        let throttle = Throttle::new(LoginLimits {
            concurrent_checks: 1,
            ..limits()
        });
        let now = Instant::now();
        let first = throttle.begin(key("192.0.2.1"), now).unwrap();
        assert_eq!(
            throttle.begin(key("192.0.2.2"), now).unwrap_err(),
            Refusal::Busy
        );
        first.release();
        assert!(throttle.begin(key("192.0.2.3"), now).is_ok());
        assert_eq!(throttle.clients_tracked(), 3);
        throttle
            .begin(key("192.0.2.4"), now + Duration::from_secs(61))
            .unwrap()
            .release();
        assert_eq!(throttle.clients_tracked(), 1, "old clients are dropped");
    }
}
