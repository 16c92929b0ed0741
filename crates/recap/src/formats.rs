//! The recap as each destination takes it, within each one's documented limits:
//!
//! - Discord webhook: one embed (title ≤ 256, description ≤ 4096, a field ≤ 1024, 6000 in all), and
//!   `allowed_mentions` empty, so that a display name such as `@everyone` pings nobody
//!   (<https://discord.com/developers/docs/resources/webhook#execute-webhook>);
//! - Slack incoming webhook: a header block (plain text ≤ 150), a section (mrkdwn ≤ 3000) and a
//!   context line, with `text` as the notification's fallback
//!   (<https://api.slack.com/reference/block-kit/blocks>); `&`, `<` and `>` escaped;
//! - ntfy: JSON publishing to the server's root, with the topic, a title, a markdown message, tags
//!   and a click link (<https://docs.ntfy.sh/publish/#publish-as-json>);
//! - a generic webhook: [`WeeklyRecap`]'s own JSON.

use earshot_core::DestinationKind;
use serde_json::{Value, json};

use crate::message::{Markup, Plain, WeeklyRecap, render};

/// Discord's and Spotify's green, for the embed's edge.
const EMBED_COLOUR: u32 = 0x1D_B9_54;

/// `text` cut to at most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Discord's markdown: a backslash before each character it reads as formatting.
struct DiscordMarkdown;

impl Markup for DiscordMarkdown {
    fn escape(&self, text: &str) -> String {
        backslashed(text, "\\*_~`|>#[]()-")
    }
    fn strong(&self, label: &str) -> String {
        format!("**{label}**")
    }
    fn link(&self, label: &str, url: &str) -> String {
        format!("[{label}]({url})")
    }
}

/// ntfy's markdown (CommonMark): the same escapes.
struct NtfyMarkdown;

impl Markup for NtfyMarkdown {
    fn escape(&self, text: &str) -> String {
        backslashed(text, "\\*_~`|>#[]()-!<")
    }
    fn strong(&self, label: &str) -> String {
        format!("**{label}**")
    }
    fn link(&self, label: &str, url: &str) -> String {
        format!("[{label}]({url})")
    }
}

/// Slack's mrkdwn: `&`, `<` and `>` are its only escapes.
struct SlackMrkdwn;

impl Markup for SlackMrkdwn {
    fn escape(&self, text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    fn strong(&self, label: &str) -> String {
        format!("*{label}*")
    }
    fn link(&self, label: &str, url: &str) -> String {
        format!("<{}|{label}>", self.escape(url))
    }
}

fn backslashed(text: &str, special: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The body posted to a destination of `kind`; for ntfy, `topic` is the topic its URL names.
pub fn payload(kind: DestinationKind, recap: &WeeklyRecap, topic: Option<&str>) -> Value {
    match kind {
        DestinationKind::Discord => discord(recap),
        DestinationKind::Slack => slack(recap),
        DestinationKind::Ntfy => ntfy(recap, topic.unwrap_or_default()),
        DestinationKind::Webhook => serde_json::to_value(recap).expect("a recap serialises"),
    }
}

fn discord(recap: &WeeklyRecap) -> Value {
    let md = DiscordMarkdown;
    let mut lines = vec![md.escape(&recap.dates())];
    // The highlights in the description; the discoveries in their own field.
    lines.extend(recap.highlights(&md));
    let discoveries = recap.discoveries(&md);
    let mut embed = json!({
        "title": clip(&recap.title(), 256),
        "description": clip(&lines.join("\n"), 3000),
        "color": EMBED_COLOUR,
        "footer": {"text": "Earshot"},
    });
    if !discoveries.is_empty() {
        embed["fields"] = json!([{
            "name": "Discoveries",
            "value": clip(&discoveries.join("\n"), 1024),
            "inline": false,
        }]);
    }
    if let Some(url) = &recap.dashboard_url {
        embed["url"] = json!(url);
    }
    json!({
        "username": "Earshot",
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    })
}

fn slack(recap: &WeeklyRecap) -> Value {
    let mrkdwn = SlackMrkdwn;
    let mut context = mrkdwn.escape(&recap.dates());
    if let Some(url) = &recap.dashboard_url {
        context.push_str(" · ");
        context.push_str(&mrkdwn.link("The whole recap", url));
    }
    json!({
        "text": clip(&render(recap, &Plain), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&recap.title(), 150), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(&recap.lines(&mrkdwn).join("\n"), 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&context, 3000)}]},
        ],
    })
}

fn ntfy(recap: &WeeklyRecap, topic: &str) -> Value {
    let md = NtfyMarkdown;
    let mut lines = vec![md.escape(&recap.dates())];
    lines.extend(recap.lines(&md));
    let mut body = json!({
        "topic": topic,
        "title": clip(&recap.title(), 250),
        // ntfy keeps messages up to 4096 bytes as text.
        "message": clip(&lines.join("\n"), 3000),
        "markdown": true,
        "tags": ["headphones"],
    });
    if let Some(url) = &recap.dashboard_url {
        body["click"] = json!(url);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_each_format() {
        assert_eq!(
            DiscordMarkdown.escape("**DJ_x** [a](b)"),
            "\\*\\*DJ\\_x\\*\\* \\[a\\]\\(b\\)"
        );
        assert_eq!(
            SlackMrkdwn.escape("<!channel> & co"),
            "&lt;!channel&gt; &amp; co"
        );
        assert_eq!(NtfyMarkdown.escape("<b>#1</b>"), "\\<b\\>\\#1\\</b\\>");
    }

    #[test]
    fn long_text_is_clipped_to_the_limit() {
        assert_eq!(clip("abc", 3), "abc");
        let long = "é".repeat(300);
        let clipped = clip(&long, 256);
        assert_eq!(clipped.chars().count(), 256);
        assert!(clipped.ends_with('…'));
    }
}
