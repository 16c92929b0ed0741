//! `earshot-spotify`: Spotify for every Earshot binary.
//!
//! - [`api`]: HTTP to Spotify's accounts service and Web API under its rate-limit and fault rules;
//! - [`tokens`]: members' tokens, encrypted at rest, in the storage or MongoDB;
//! - [`connect`]: connecting a member (Authorization Code with PKCE): the authorize URL, the checks
//!   on the callback, the code exchange, the group's member list and the 5-users-per-app rule, and
//!   storing the grant. `data-fetcher auth` (a terminal, a loopback listener) and the dashboard's
//!   "Sign in with Spotify" (its own callback) both connect through it, so a grant is stored the same
//!   way whichever way a friend signs in.

pub mod api;
pub mod connect;
pub mod tokens;
