//! Every URL of the dashboard, in one place: the router's patterns and the links the pages build.
//!
//! The patterns are a group's paths. A dashboard of one group serves them at the root; a dashboard of
//! several serves each group's under `/g/<id>` ([`group_base`]), and every link a page builds starts
//! with the base of the group the request is for ([`base`], set per request by [`within`]).

use std::future::Future;

use earshot_core::period::Period;

/// Where the groups of a several-groups dashboard live: `/g/<id>/…`.
pub const GROUPS_ROOT: &str = "/g";

tokio::task_local! {
    /// The path the request's group is served under: empty for a one-group dashboard.
    static BASE: String;
}

/// The path group `id`'s pages are served under in a several-groups dashboard (`/g/<id>`).
pub fn group_base(id: &str) -> String {
    format!("{GROUPS_ROOT}/{}", segment(id))
}

/// Run `work` (a request) with every link built for the group served under `base`.
pub async fn within<F: Future>(base: String, work: F) -> F::Output {
    BASE.scope(base, work).await
}

/// The base of the request's group: empty for a one-group dashboard (and outside a request).
pub fn base() -> String {
    BASE.try_with(Clone::clone).unwrap_or_default()
}

/// A path of the request's group (`path` is one of the patterns, or a path below one).
pub fn href(path: &str) -> String {
    format!("{}{path}", base())
}

/// The group page.
pub const GROUP: &str = "/";
/// A member's page.
pub const MEMBER: &str = "/member/{id}";
/// Two members' page.
pub const PAIR: &str = "/pair/{a}/{b}";
/// A track's page.
pub const TRACK: &str = "/track/{key}";
/// An artist's page.
pub const ARTIST: &str = "/artist/{id}";
/// The recap of a period (core's, since the posted weekly recap links to it).
pub const RECAP: &str = earshot_core::period::RECAP_PATH;
/// The members' status.
pub const STATUS: &str = "/status";
/// The login form.
pub const LOGIN: &str = "/login";
/// Signing out.
pub const LOGOUT: &str = "/logout";
/// "Sign in with Spotify": a friend connects (or reconnects) and gets a session of their own.
pub const CONNECT: &str = "/connect";
/// Where Spotify sends the friend back (the redirect URI registered with the app, under the
/// public URL and the group's path).
pub const CONNECT_CALLBACK: &str = "/connect/callback";
/// "Your data": the signed-in friend's own page (never another's: it has no id in its path).
pub const YOUR_DATA: &str = "/me";
/// Their export, as `members export` writes it.
pub const YOUR_EXPORT: &str = "/me/export.zip";
/// Their plays as ListenBrainz listens (JSON Lines).
pub const YOUR_LISTENS: &str = "/me/listens.jsonl";
/// "Hide me from comparisons" (a form's post).
pub const YOUR_COMPARISONS: &str = "/me/comparisons";
/// "Erase me" (a form's post).
pub const ERASE_ME: &str = "/me/erase";
/// Make (or revoke) the signed-in friend's listen token.
pub const YOUR_LISTEN_TOKEN: &str = "/me/listen-token";
/// The stylesheet.
pub const STYLESHEET: &str = "/static/style.css";
/// The icon, as browsers ask for it.
pub const FAVICON_ICO: &str = "/favicon.ico";
/// The icon.
pub const FAVICON_SVG: &str = "/favicon.svg";

/// The listen API's submissions (ListenBrainz's path; a member's listen token, not a session).
pub const SUBMIT_LISTENS: &str = "/1/submit-listens";
/// The listen API's token check (ListenBrainz's path).
pub const VALIDATE_TOKEN: &str = "/1/validate-token";

/// The health check (`200` when the process and MongoDB answer, `503` when MongoDB does not), for a
/// load balancer or an uptime probe: open without a session, and says nothing of the group.
pub const HEALTHZ: &str = "/healthz";
/// The Prometheus metrics, on the metrics address only (`--metrics-bind`), never on the pages' one.
pub const METRICS: &str = "/metrics";

/// The paths open without a session: the login form and what it loads, the listen API (which has
/// its own tokens), and the health check.
pub const OPEN: &[&str] = &[
    LOGIN,
    HEALTHZ,
    SUBMIT_LISTENS,
    VALIDATE_TOKEN,
    CONNECT,
    CONNECT_CALLBACK,
    STYLESHEET,
    FAVICON_ICO,
    FAVICON_SVG,
];

/// A path segment, percent-encoded (track keys of local files hold spaces and slashes).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `?period=…` for links that keep a period (empty for all time).
pub fn period_query(period: Option<Period>) -> String {
    period.map_or_else(String::new, |p| format!("?period={p}"))
}

/// The group page of a period: `/`, or the group's base itself (`/g/<id>`) in a dashboard of several.
pub fn group(period: Option<Period>) -> String {
    let base = base();
    let page = if base.is_empty() { GROUP } else { &base };
    format!("{page}{}", period_query(period))
}

/// A member's page.
pub fn member(id: &str, period: Option<Period>) -> String {
    format!("{}/member/{}{}", base(), segment(id), period_query(period))
}

/// Two members' page (`a` < `b`).
pub fn pair(a: &str, b: &str, period: Option<Period>) -> String {
    format!(
        "{}/pair/{}/{}{}",
        base(),
        segment(a),
        segment(b),
        period_query(period)
    )
}

/// A track's page.
pub fn track(key: &str, period: Option<Period>) -> String {
    format!("{}/track/{}{}", base(), segment(key), period_query(period))
}

/// An artist's page.
pub fn artist(id: &str, period: Option<Period>) -> String {
    format!("{}/artist/{}{}", base(), segment(id), period_query(period))
}

/// The recap of a period.
pub fn recap(period: Period) -> String {
    href(&earshot_core::period::recap_path(period))
}

/// The login form, leading back to `next` (a path of this site).
pub fn login(next: &str) -> String {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("{}{LOGIN}?next={next}", base())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each builder makes a path its route pattern matches.
    #[test]
    fn links_follow_the_route_patterns() {
        let week: Period = "2024-W44".parse().unwrap();
        for (pattern, link) in [
            (MEMBER, member("ana", None)),
            (PAIR, pair("ana", "ben", None)),
            (TRACK, track("local:a b/c", None)),
            (ARTIST, artist("4Z8W4fKeB5YxbusRsdQVPb", None)),
        ] {
            let fixed = pattern.split('{').next().unwrap();
            assert!(link.starts_with(fixed), "{link} under {pattern}");
            let segments = pattern.split('/').count();
            assert_eq!(
                link.split('/').count(),
                segments,
                "{link} has {pattern}'s segments"
            );
        }
        assert_eq!(
            track("local:a b/c", Some(week)),
            "/track/local%3Aa%20b%2Fc?period=2024-W44"
        );
        assert_eq!(recap(week), "/recap?period=2024-W44");
        assert_eq!(group(None), "/");
        assert_eq!(
            login("/member/a?period=2024"),
            "/login?next=%2Fmember%2Fa%3Fperiod%3D2024"
        );
    }

    /// Within a group of several, every link starts with the group's base.
    #[tokio::test]
    async fn links_within_a_group_start_with_its_base() {
        let week: Period = "2024-W44".parse().unwrap();
        let links = within(group_base("north"), async {
            [
                group(None),
                member("ana", None),
                pair("a", "b", None),
                track("t", None),
                artist("x", None),
                recap(week),
                login("/g/north/status"),
                href(STATUS),
            ]
        })
        .await;
        for link in &links[1..] {
            assert!(link.starts_with("/g/north/"), "{link}");
        }
        assert_eq!(links[0], "/g/north");
        assert_eq!(links[6], "/g/north/login?next=%2Fg%2Fnorth%2Fstatus");
        assert_eq!(base(), "", "outside a request: the root");
        assert_eq!(group_base("a b"), "/g/a%20b");
    }
}
