//! Why a request to Spotify failed.

/// Why a request failed. Every variant names the member and the endpoint; none holds a token.
#[derive(Debug, thiserror::Error)]
pub enum SpotifyError {
    /// Spotify asked for a wait longer than what is left of the run's budget.
    #[error(
        "member `{member}`: {endpoint}: rate limited, Retry-After {retry_after} s exceeds the {left} s left of `--max-wait`"
    )]
    RateLimited {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// Seconds Spotify asked for.
        retry_after: u64,
        /// Seconds left of the budget.
        left: u64,
        /// Whether the body said `QUOTA_EXCEEDED`.
        quota: bool,
    },
    /// The refresh token was refused (`invalid_grant`): the member must run `data-fetcher auth` again.
    #[error(
        "member `{member}` needs to reconnect (`data-fetcher auth`): Spotify refused the refresh token ({reason})"
    )]
    NeedsReauth {
        /// Member.
        member: String,
        /// Spotify's description.
        reason: String,
    },
    /// A non-retryable status, or a retryable one after the last try.
    #[error("member `{member}`: {endpoint}: HTTP {status}{}: {message}", if *.attempts > 1 { format!(" after {} attempts", .attempts) } else { String::new() })]
    Status {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Spotify's message.
        message: String,
        /// Tries made.
        attempts: u32,
    },
    /// Timeouts or connection errors through the last try.
    #[error("member `{member}`: {endpoint}: {detail} (after {attempts} attempts)")]
    Transport {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// What went wrong.
        detail: String,
        /// Tries made.
        attempts: u32,
    },
    /// The body is not the JSON the endpoint returns (truncated, or a wrong shape).
    #[error("member `{member}`: {endpoint}: invalid response body: {detail}")]
    Body {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// serde's message with line and column.
        detail: String,
    },
    /// A waiting budget had run out before this request.
    #[error("member `{member}`: {endpoint}: the run's waiting budget (`--max-wait`) is spent")]
    BudgetSpent {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
    },
}

impl SpotifyError {
    /// Whether the whole run should stop (rate limits are per app, so the others would wait too).
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            SpotifyError::RateLimited { .. } | SpotifyError::BudgetSpent { .. }
        )
    }
}
