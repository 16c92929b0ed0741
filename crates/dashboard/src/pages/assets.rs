//! The stylesheet, the icon, and the 404 page of any other path.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::render::PageError;

/// The stylesheet.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

/// The icon.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/favicon.svg"),
    )
        .into_response()
}

/// Any other path.
pub async fn not_found() -> PageError {
    PageError::not_found("Not found", "There is no such page.")
}
