//! The recap as each destination takes it, within each one's documented limits:
//!
//! - Discord webhook: one embed (title ≤ 256, description ≤ 4096, a field ≤ 1024, 6000 in all), and
//!   `allowed_mentions` empty, so that a display name such as `@everyone` pings nobody
//!   (<https://discord.com/developers/docs/resources/webhook#execute-webhook>);
//! - Slack incoming webhook: a header block (plain text ≤ 150), a section (mrkdwn ≤ 3000) and a
//!   context line, with `text` as the notification's fallback
//!   (<https://api.slack.com/reference/block-kit/blocks>); `&`, `<` and `>` escaped in every mrkdwn
//!   field, the fallback `text` included (Slack reads it as mrkdwn: `<!channel>` would ping);
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

/// A short message for the group's destinations besides the weekly recap (a reconnect reminder, a
/// stall alarm): one text, posted once per destination under its ledger key.
pub trait Notice {
    /// The message in `markup`, names escaped as the weekly recap's are.
    fn text(&self, markup: &dyn Markup) -> String;
    /// ntfy's title.
    fn title(&self) -> &'static str;
    /// ntfy's tags (emoji short codes).
    fn tags(&self) -> &'static [&'static str];
    /// A link the message is about (ntfy's click).
    fn click(&self) -> Option<&str>;
    /// What a generic webhook gets.
    fn json(&self) -> Value;
    /// The posts ledger's period key of this message.
    fn ledger_key(&self) -> &str;
    /// The ledger key a destination must already have been posted for this one to go there (a
    /// "cleared" alarm follows its "opened"): `None`, no condition.
    fn follows(&self) -> Option<&str> {
        None
    }
}

/// A [`Notice`] as `kind` takes it: one short message (a generic webhook gets the notice's own JSON).
pub fn notice_payload(kind: DestinationKind, notice: &dyn Notice, topic: Option<&str>) -> Value {
    match kind {
        DestinationKind::Discord => json!({
            "username": "Earshot",
            "allowed_mentions": {"parse": []},
            // Discord's message content holds at most 2000 characters.
            "content": clip(&notice.text(&DiscordMarkdown), 2000),
        }),
        DestinationKind::Slack => json!({"text": clip(&notice.text(&SlackMrkdwn), 3000)}),
        DestinationKind::Ntfy => {
            let mut body = json!({
                "topic": topic.unwrap_or_default(),
                "title": notice.title(),
                "message": clip(&notice.text(&NtfyMarkdown), 3000),
                "markdown": true,
                "tags": notice.tags(),
            });
            if let Some(url) = notice.click() {
                body["click"] = json!(url);
            }
            body
        }
        DestinationKind::Webhook => notice.json(),
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
        // The notification's fallback is mrkdwn too: a name reaches it escaped, never as markup.
        "text": mrkdwn.escape(&clip(&render(recap, &Plain), 3000)),
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

    /// Every name of a recap hostile: each is a mention, markup and a link in every chat's syntax.
    fn hostile_recap() -> WeeklyRecap {
        use crate::message::{Closest, Discovery, Listener, MemberWeek, Named, Podcast, Song};
        let evil =
            |what: &str| format!("<!channel> @everyone **{what}** [x](https://evil.example) <b>&");
        WeeklyRecap {
            schema: crate::message::SCHEMA,
            group: evil("group"),
            period: "2024-W44".into(),
            first_day: "2024-10-28".into(),
            last_day: "2024-11-03".into(),
            time_zone: "America/Los_Angeles".into(),
            listened_most: Some(Listener {
                member: "ana".into(),
                name: evil("member"),
                minutes: 10,
                plays: 3,
            }),
            song_of_the_week: Some(Song {
                track_key: "t".into(),
                name: evil("track"),
                listeners: 2,
                plays: 4,
            }),
            closest_taste: Some(Closest {
                a: Named {
                    member: "ana".into(),
                    name: evil("a"),
                },
                b: Named {
                    member: "ben".into(),
                    name: evil("b"),
                },
                taste_match: 50.0,
            }),
            podcast_of_the_week: Some(Podcast {
                show_name: evil("show"),
                listeners: 1,
                minutes: 30,
            }),
            members: vec![MemberWeek {
                member: "ana".into(),
                name: evil("member"),
                minutes: 10,
                plays: 3,
                top_track: Some(evil("top")),
                discovery: Some(Discovery {
                    artist_id: "a".into(),
                    name: evil("artist"),
                    plays: 2,
                }),
            }],
            dashboard_url: Some("https://earshot.example.org/recap".into()),
            text: String::new(),
        }
    }

    /// Every string of a JSON value, with its path.
    fn strings(value: &Value, path: String, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(s) => out.push((path, s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    strings(item, format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    strings(v, format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn a_hostile_name_is_literal_text_in_every_field_of_every_format() {
        let recap = hostile_recap();
        // Slack: every field it reads as mrkdwn (the fallback `text`, sections, context) holds no `<`
        // but the dashboard link's own, so `<!channel>` pings nobody and no link is forged.
        let slack = payload(DestinationKind::Slack, &recap, None);
        let mut fields = Vec::new();
        strings(&slack, String::new(), &mut fields);
        let mrkdwn: Vec<_> = fields
            .iter()
            .filter(|(path, _)| {
                path == ".text"
                    || path.ends_with(".text.text")
                    || (path.contains(".elements[") && path.ends_with(".text"))
            })
            .filter(|(path, _)| !path.starts_with(".blocks[0]"))
            .collect();
        assert!(mrkdwn.len() >= 3, "{fields:?}");
        for (path, text) in &mrkdwn {
            let without_link =
                text.replace("<https://earshot.example.org/recap|The whole recap>", "");
            assert!(
                !without_link.contains('<') && !without_link.contains('>'),
                "Slack {path}: {text}"
            );
            if !path.contains(".elements[") {
                assert!(text.contains("&lt;!channel&gt;"), "Slack {path}: {text}");
            }
        }
        assert!(slack["text"].as_str().unwrap().contains("&amp;"), "{slack}");
        // Discord: markdown escaped in the description and fields, and no mention parsed anywhere.
        let discord = payload(DestinationKind::Discord, &recap, None);
        assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
        let embed = &discord["embeds"][0];
        for text in [&embed["description"], &embed["fields"][0]["value"]] {
            let text = text.as_str().unwrap();
            assert!(
                !text.contains("**member**") && !text.contains("[x](https"),
                "Discord: {text}"
            );
            assert!(text.contains("\\[x\\]\\(https"), "Discord: {text}");
        }
        // ntfy: its markdown message escapes `<`, `*`, `[`.
        let ntfy = payload(DestinationKind::Ntfy, &recap, Some("crew"));
        let message = ntfy["message"].as_str().unwrap();
        assert!(
            !message.contains("<b>") && !message.contains("[x](https"),
            "ntfy: {message}"
        );
        assert!(message.contains("\\<b\\>"), "ntfy: {message}");
        // The generic webhook carries the names as JSON strings, as they are.
        let hook = payload(DestinationKind::Webhook, &recap, None);
        assert_eq!(hook["group"], recap.group);
    }
}
