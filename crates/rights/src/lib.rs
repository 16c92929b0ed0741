//! `earshot-rights`: a member's data rights (GDPR Articles 15, 17 and 20), shared by the `members`
//! binary and the dashboard's "Your data":
//!
//! - [`export`]: everything about one member in open formats (JSON Lines, JSON, the stored files as
//!   they are), never a token or a key, and nothing about another member beyond the id of a friend a
//!   pairwise row pairs them with; or their plays as ListenBrainz listens ([`listenbrainz`]);
//! - [`erase`]: the member removed from every store, coordinated with the pipeline, safe to re-run;
//! - [`analytics_rows`]: which stored analytics rows name a member (from the metric model's roles).
//!
//! Where member data lives is named in earshot-core, and nowhere else: `layout::member_prefixes` and
//! `layout::member_keys` (storage), `mongo::MEMBER_ROW_COLLECTIONS`, `mongo::FETCHER_TOKENS`,
//! `mongo::TRACK_CATALOGUE`, `mongo::UPLOAD_LEDGER`, `mongo::DASHBOARD_SESSIONS`, the derived
//! collections and `analytics_*` (the columns earshot-metrics declares as naming a member), and the
//! Parquet snapshots and reports (`layout::EXPORTS`, `layout::REPORTS`).

pub mod analytics_rows;
pub mod erase;
pub mod listenbrainz;
pub mod member_export;
