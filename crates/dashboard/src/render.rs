//! Templates and the error page: every `templates/*.html` is loaded by name through minijinja's
//! loader (build.rs lists the folder), every page extends `base.html`, and a context is a typed
//! `Serialize` struct. In debug builds (the tests) undefined is strict, so a key a template reads and
//! its context lacks fails the page instead of rendering as nothing.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::urls;

/// Every template, by file name (generated from the `templates/` folder).
const TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_loader(|name| {
        Ok(TEMPLATES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.to_string()))
    });
    if cfg!(debug_assertions) {
        env.set_undefined_behavior(UndefinedBehavior::Strict);
    }
    env
});

/// Render a template with its context.
pub fn render<C: Serialize>(name: &str, context: &C) -> Result<Html<String>, PageError> {
    ENVIRONMENT
        .get_template(name)
        .and_then(|t| t.render(context))
        .map(Html)
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}").into())
}

/// What every page's frame (`base.html`) shows: the title, the navigation, the period selector, the
/// run.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    /// The page's title.
    pub title: String,
    /// No navigation (the login and error pages: nothing of the group before signing in).
    pub bare: bool,
    /// The group page, keeping the period.
    pub group_href: String,
    /// The recap.
    pub recap_href: String,
    /// The status page.
    pub status_href: String,
    /// Signing out.
    pub logout_href: String,
    /// The stylesheet.
    pub stylesheet_href: String,
    /// The icon.
    pub favicon_href: String,
    /// Each member's page.
    pub nav: Vec<Link>,
    /// The periods to choose from (none: no selector).
    pub periods: Option<Vec<PeriodChoice>>,
    /// The analytics run shown.
    pub run: Option<String>,
    /// Whether a session is open (a sign-out button).
    pub signed_in: bool,
    /// The CSRF token of the session's forms (sign-out, "Erase me", "Hide me").
    pub form_token: Option<String>,
}

tokio::task_local! {
    /// The request's session's form token, set by the sign-in gate.
    static FORM_TOKEN: String;
}

/// Run `work` (a request) with every page's forms carrying `token`.
pub async fn with_form_token<F: std::future::Future>(token: String, work: F) -> F::Output {
    FORM_TOKEN.scope(token, work).await
}

/// A name and where it leads (none: a name without a page).
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// What to show.
    pub name: String,
    /// The page.
    pub href: Option<String>,
}

/// A period of the selector.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodChoice {
    /// `2024-W44`.
    pub value: String,
    /// `Week 44 of 2024`.
    pub label: String,
    /// The period shown.
    pub selected: bool,
}

impl Frame {
    /// A frame with the pages' links but no member's (an error page).
    pub fn plain(title: impl Into<String>) -> Frame {
        Frame {
            title: title.into(),
            bare: false,
            group_href: urls::group(None),
            recap_href: urls::href(urls::RECAP),
            status_href: urls::href(urls::STATUS),
            logout_href: urls::href(urls::LOGOUT),
            stylesheet_href: urls::href(urls::STYLESHEET),
            favicon_href: urls::href(urls::FAVICON_SVG),
            nav: Vec::new(),
            periods: None,
            run: None,
            signed_in: false,
            form_token: FORM_TOKEN.try_with(Clone::clone).ok(),
        }
    }

    /// A frame with no navigation at all (the login form: nothing of the group before signing in).
    pub fn bare(title: impl Into<String>) -> Frame {
        Frame {
            bare: true,
            ..Frame::plain(title)
        }
    }
}

/// A page that could not be shown: its status and what to tell the person.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
}

impl PageError {
    /// A page with this status, title and message.
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> PageError {
        PageError {
            status,
            title: title.to_string(),
            message: message.into(),
        }
    }

    /// 404: a path that names nothing the group has.
    pub fn not_found(title: &str, message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, title, message)
    }
}

impl From<anyhow::Error> for PageError {
    fn from(err: anyhow::Error) -> PageError {
        tracing::error!(error = %format!("{err:#}"), "A page failed.");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The dashboard could not read the group's data. The log says why.",
        )
    }
}

/// The error page's context.
#[derive(Serialize)]
struct ErrorPage<'a> {
    #[serde(flatten)]
    frame: Frame,
    message: &'a str,
    status: u16,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let context = ErrorPage {
            frame: Frame::plain(&self.title),
            message: &self.message,
            status: self.status.as_u16(),
        };
        let body = render("error.html", &context)
            .unwrap_or_else(|_| Html(format!("<p>{}</p>", earshot_charts::escape(&self.message))));
        (self.status, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page extends the frame; `head.html`, the included parts and the macros are not pages.
    #[test]
    fn every_page_template_extends_base() {
        let parts = ["base.html", "head.html", "listeners.html", "spoken.html"];
        for (name, source) in TEMPLATES {
            if !parts.contains(name) {
                assert!(source.starts_with("{% extends \"base.html\" %}"), "{name}");
            }
        }
        assert!(TEMPLATES.len() >= 12, "the loader lists the folder");
    }

    /// A context without a key its template reads fails in tests instead of rendering nothing.
    #[test]
    fn undefined_is_strict_in_tests() {
        #[derive(Serialize)]
        struct Partial {
            title: String,
        }
        assert!(render("error.html", &Partial { title: "x".into() }).is_err());
    }
}
