//! The login throttle: attempts are counted when they start, not when they fail.
//!
//! A sign-in attempt takes its slot before the password is looked at, under one lock, so a burst of N
//! concurrent attempts from one client gets at most [`LoginLimits::per_client`] password checks however
//! they interleave. Three limits hold at once:
//!
//! - **per client** (an IPv4 address, an IPv6 client by its /64, since one IPv6 host owns a whole /64):
//!   at most `per_client` attempts in `client_window`, then `429` until the oldest leaves the window;
//! - **the group password's budget**: at most `wrong_per_hour` wrong passwords an hour across every
//!   client. It protects the one password against guessing spread over many addresses; while it is spent
//!   nobody can sign in (`429`), but friends already signed in keep their sessions (a session is a signed
//!   cookie, checked without this throttle). An attempt in flight counts against the budget until it is
//!   known to be right, so a burst across many addresses cannot overshoot it;
//! - **concurrent checks**: at most `concurrent_checks` Argon2 checks run at once (each holds 19 MiB for a
//!   tenth of a second); an attempt beyond that gets `503` with `Retry-After`.
//!
//! Memory is bounded: a client is remembered only while it has attempts in the window, and at most
//! [`MAX_TRACKED_CLIENTS`] at once (beyond that, new clients get `503` until entries age out). The budget
//! keeps at most `wrong_per_hour` instants.

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
            budget_window: Duration::from_secs(3600),
            concurrent_checks: 2,
        }
    }
}

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

#[derive(Debug, Default)]
struct Counts {
    clients: HashMap<ClientKey, VecDeque<Instant>>,
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
    /// happens next (a wrong CSRF token, a busy server): it is the attempt that counts.
    pub fn begin(&self, client: ClientKey, now: Instant) -> Result<Attempt<'_>, Refusal> {
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
        counts.clients.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < limits.client_window)
        });
        if !counts.clients.contains_key(&client) && counts.clients.len() >= MAX_TRACKED_CLIENTS {
            return Err(Refusal::Busy);
        }
        let times = counts.clients.entry(client).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.client_window)
        {
            times.pop_front();
        }
        if times.len() >= limits.per_client {
            let oldest = *times.front().expect("not empty");
            return Err(Refusal::Client(seconds_until(
                oldest,
                limits.client_window,
                now,
            )));
        }
        times.push_back(now);
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            return Err(Refusal::Busy);
        };
        counts.in_flight += 1;
        Ok(Attempt {
            throttle: self,
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
            budget_window: Duration::from_secs(3600),
            concurrent_checks: 10,
        }
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
