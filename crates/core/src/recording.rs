//! One recording across services and releases: the recording key.
//!
//! One song has several Spotify track ids (a single, the album, a compilation, each market's copy), and
//! a friend who scrobbles from another player names it by its artist and title alone. The metrics meet
//! on the recording key instead of the track id, chosen in this order:
//!
//! 1. `isrc:<ISRC>`: the International Standard Recording Code when known (Spotify's
//!    `external_ids.isrc`, a listen's `isrc`), upper-cased, without the hyphens or spaces it is often
//!    printed with. Two Spotify ids of one ISRC are one recording.
//! 2. `mbid:<uuid>`: else the MusicBrainz recording id, lower-cased.
//! 3. `name:<artist> — <title>`: else the names, normalised by [`normalise_artist`] and
//!    [`normalise_title`].
//!
//! An ISRC or MBID that does not have its format is ignored (the next rule applies), so a malformed
//! id from a hostile client never names a recording.
//!
//! The name rule is the only one that can merge two recordings, so it keeps what tells recordings
//! apart and drops what only tells releases apart:
//!
//! | kept (another recording) | dropped (the same recording) |
//! |---|---|
//! | `(Live)`, `- Live at …`, `(Acoustic)`, `(Remix)`, `- X Remix`, `(Instrumental)`, `(Demo)` | case, accents (`é` is `e`), punctuation and spacing |
//! | the title's words and their order | `- Remastered`, `- Remastered 2011`, `- 2011 Remaster`, `(Remastered 2009)` |
//! | the primary artist | featuring credits: `(feat. X)`, `[ft. X]`, `featuring X`, `(with X)`, and in the artist `A feat. B` |
//! | | `- Single Version`, `- Album Version`, `- Radio Edit`, `- Mono`, `- Stereo`, `(Explicit)`, `(Clean)` |
//! | | the artists after the first: `A, B`, `A & B`, `A / B`, `A; B` |
//!
//! `&` in a title reads as `and`. A live recording is another performance, so it stays apart; a remaster
//! is the same performance. Keeping only the first artist lets a scrobbler's `A & B` meet Spotify's
//! first artist `A`; two different recordings then merge only when their first artists and whole titles
//! are equal.

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// The recording key prefix of each rule.
pub const ISRC_PREFIX: &str = "isrc:";
/// See [`ISRC_PREFIX`].
pub const MBID_PREFIX: &str = "mbid:";
/// See [`ISRC_PREFIX`].
pub const NAME_PREFIX: &str = "name:";

/// Between the artist and the title in a `name:` key.
const NAME_SEPARATOR: &str = " — ";

/// The recording key of a play: its ISRC, else its MusicBrainz recording id, else its normalised names.
/// `None` when it has none of them (no valid id, and an empty artist or title).
pub fn recording_key(
    isrc: Option<&str>,
    mbid: Option<&str>,
    artist: &str,
    title: &str,
) -> Option<String> {
    if let Some(isrc) = isrc.and_then(valid_isrc) {
        return Some(format!("{ISRC_PREFIX}{isrc}"));
    }
    if let Some(mbid) = mbid.and_then(valid_mbid) {
        return Some(format!("{MBID_PREFIX}{mbid}"));
    }
    name_key(artist, title)
}

/// The `name:` key alone (what [`recording_key`] falls back to).
pub fn name_key(artist: &str, title: &str) -> Option<String> {
    let artist = normalise_artist(artist);
    let title = normalise_title(title);
    if artist.is_empty() || title.is_empty() {
        return None;
    }
    Some(format!("{NAME_PREFIX}{artist}{NAME_SEPARATOR}{title}"))
}

/// An ISRC in its canonical form (`CCXXXYYNNNNN`: a country, a registrant, a year, a designation), or
/// `None` when `raw` is not one. Hyphens and spaces are dropped and letters upper-cased first.
pub fn valid_isrc(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = code.as_bytes();
    let ok = bytes.len() == 12
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..5].iter().all(u8::is_ascii_alphanumeric)
        && bytes[5..].iter().all(u8::is_ascii_digit);
    ok.then_some(code)
}

/// A MusicBrainz id (a UUID, `8-4-4-4-12` hex digits) lower-cased, or `None` when `raw` is not one.
pub fn valid_mbid(raw: &str) -> Option<String> {
    let id = raw.trim().to_ascii_lowercase();
    let groups: Vec<&str> = id.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(id)
}

/// Words that open a featuring credit.
const FEATURING: [&str; 5] = ["feat", "feat.", "ft", "ft.", "featuring"];

/// What separates the primary artist from the others in one credited name.
const ARTIST_SEPARATORS: [&str; 5] = [",", "&", "/", ";", " x "];

/// The primary artist, normalised: the credit cut before a featuring credit or a second artist, then
/// [`fold`]ed.
pub fn normalise_artist(artist: &str) -> String {
    let lower = artist.to_lowercase();
    let mut cut = lower.len();
    for separator in ARTIST_SEPARATORS {
        if let Some(at) = lower.find(separator) {
            cut = cut.min(at);
        }
    }
    if let Some(at) = featuring_at(&lower) {
        cut = cut.min(at);
    }
    fold(&lower[..cut])
}

/// The title, normalised: featuring credits and release-only versions removed, `&` read as `and`, then
/// [`fold`]ed.
pub fn normalise_title(title: &str) -> String {
    let mut text = title.to_lowercase();
    // Bracketed parts: dropped when they are a featuring credit or a release-only version.
    text = drop_bracketed(&text);
    // ` - Remastered 2011`, ` - Radio Edit`: the suffix after the last ` - `, when release-only.
    while let Some(at) = text.rfind(" - ") {
        if release_only(&text[at + 3..]) {
            text.truncate(at);
        } else {
            break;
        }
    }
    // An unbracketed featuring credit runs to the end.
    if let Some(at) = featuring_at(&text) {
        text.truncate(at);
    }
    fold(&text.replace('&', " and "))
}

/// Where a featuring credit starts in `text` (lower-cased): a featuring word standing alone.
fn featuring_at(text: &str) -> Option<usize> {
    let mut offset = 0;
    for word in text.split(' ') {
        if offset > 0 && FEATURING.contains(&word) {
            return Some(offset - 1);
        }
        offset += word.len() + 1;
    }
    None
}

/// `text` without its `(…)` and `[…]` parts that are featuring credits or release-only versions.
fn drop_bracketed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['(', '[']) {
        let close_char = if rest[open..].starts_with('(') {
            ')'
        } else {
            ']'
        };
        let Some(len) = rest[open + 1..].find(close_char) else {
            break;
        };
        let inside = &rest[open + 1..open + 1 + len];
        let first = inside.split(' ').next().unwrap_or("");
        let drop = FEATURING.contains(&first) || first == "with" || release_only(inside);
        out.push_str(&rest[..open]);
        if !drop {
            out.push_str(&rest[open..open + len + 2]);
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Whether a version label (lower-cased) names a release of the same recording, not another recording.
fn release_only(label: &str) -> bool {
    let words: Vec<&str> = label
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .filter(|w| !(w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    matches!(
        words.as_slice(),
        ["remaster"]
            | ["remastered"]
            | ["remastered", "version"]
            | ["digital", "remaster"]
            | ["digitally", "remastered"]
            | ["single", "version"]
            | ["album", "version"]
            | ["radio", "edit"]
            | ["mono"]
            | ["stereo"]
            | ["mono", "version"]
            | ["stereo", "version"]
            | ["explicit"]
            | ["clean"]
    )
}

/// Accents off (compatibility decomposition, combining marks dropped), curly quotes and apostrophes
/// removed with every other character that is not a letter or a digit, spaces collapsed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' || c == '.' || c == '/' {
            space = true;
        }
        // Apostrophes, quotes and other punctuation vanish without a space: `don't` is `dont`.
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_isrc_wins_over_the_mbid_and_the_names() {
        let key = recording_key(
            Some("us-rc1-76-07839"),
            Some("5B11F4CE-A62D-471E-81FC-A69A8278C7DA"),
            "Queen",
            "Bohemian Rhapsody",
        );
        assert_eq!(key.as_deref(), Some("isrc:USRC17607839"));
        let key = recording_key(
            None,
            Some("5B11F4CE-A62D-471E-81FC-A69A8278C7DA"),
            "Queen",
            "Bohemian Rhapsody",
        );
        assert_eq!(
            key.as_deref(),
            Some("mbid:5b11f4ce-a62d-471e-81fc-a69a8278c7da")
        );
        let key = recording_key(None, None, "Queen", "Bohemian Rhapsody");
        assert_eq!(key.as_deref(), Some("name:queen — bohemian rhapsody"));
    }

    #[test]
    fn a_malformed_id_falls_through_to_the_next_rule() {
        for bad in [
            "",
            "USRC1760783",
            "USRC176078390",
            "1SRC17607839",
            "USRC17A07839",
            "US RC17 6078 3X",
        ] {
            assert_eq!(valid_isrc(bad), None, "{bad:?}");
        }
        for bad in [
            "",
            "5b11f4ce",
            "5b11f4ce-a62d-471e-81fc-a69a8278c7dz",
            "5b11f4cea62d471e81fca69a8278c7da",
        ] {
            assert_eq!(valid_mbid(bad), None, "{bad:?}");
        }
        assert_eq!(
            recording_key(
                Some("nonsense"),
                Some("nonsense"),
                "Queen",
                "Bohemian Rhapsody"
            )
            .as_deref(),
            Some("name:queen — bohemian rhapsody")
        );
        assert_eq!(recording_key(Some("bad"), None, "", "Title"), None);
        assert_eq!(recording_key(None, None, "Artist", "  "), None);
    }

    /// The normalisation, one row per rule: what two services or releases send, and the key they meet on.
    #[test]
    fn the_normalisation_table() {
        let table: &[(&str, &str, &str)] = &[
            // case, spacing, punctuation
            (
                "QUEEN",
                "Don't Stop Me Now",
                "name:queen — dont stop me now",
            ),
            (
                "Queen",
                "Don’t  Stop   Me Now!",
                "name:queen — dont stop me now",
            ),
            // accents
            ("Beyoncé", "Déjà Vu", "name:beyonce — deja vu"),
            ("Sigur Rós", "Hoppípolla", "name:sigur ros — hoppipolla"),
            // featuring credits, in the title and in the artist
            (
                "Calvin Harris",
                "This Is What You Came For (feat. Rihanna)",
                "name:calvin harris — this is what you came for",
            ),
            (
                "Calvin Harris feat. Rihanna",
                "This Is What You Came For",
                "name:calvin harris — this is what you came for",
            ),
            (
                "Calvin Harris",
                "This Is What You Came For [ft. Rihanna]",
                "name:calvin harris — this is what you came for",
            ),
            (
                "Calvin Harris",
                "This Is What You Came For featuring Rihanna",
                "name:calvin harris — this is what you came for",
            ),
            (
                "Post Malone",
                "Sunflower (with Swae Lee)",
                "name:post malone — sunflower",
            ),
            // the artists after the first
            ("Simon & Garfunkel", "The Boxer", "name:simon — the boxer"),
            (
                "Daft Punk, Pharrell Williams",
                "Get Lucky",
                "name:daft punk — get lucky",
            ),
            // remasters and release-only versions are the same recording
            (
                "The Beatles",
                "Let It Be - Remastered 2009",
                "name:the beatles — let it be",
            ),
            (
                "The Beatles",
                "Let It Be - 2009 Remaster",
                "name:the beatles — let it be",
            ),
            (
                "The Beatles",
                "Let It Be (Remastered)",
                "name:the beatles — let it be",
            ),
            (
                "The Beatles",
                "Let It Be - Remastered",
                "name:the beatles — let it be",
            ),
            (
                "Oasis",
                "Wonderwall - Radio Edit",
                "name:oasis — wonderwall",
            ),
            (
                "Oasis",
                "Wonderwall - Single Version",
                "name:oasis — wonderwall",
            ),
            (
                "Eminem",
                "Lose Yourself (Explicit)",
                "name:eminem — lose yourself",
            ),
            // live, acoustic and remixes are other recordings: kept
            ("Nirvana", "Lithium (Live)", "name:nirvana — lithium live"),
            (
                "Nirvana",
                "Lithium - Live at Reading",
                "name:nirvana — lithium live at reading",
            ),
            (
                "Eric Clapton",
                "Layla (Acoustic)",
                "name:eric clapton — layla acoustic",
            ),
            (
                "Lady Gaga",
                "Poker Face - Remix",
                "name:lady gaga — poker face remix",
            ),
            // `&` in a title reads as `and`
            ("Lizzo", "Truth & Hurts", "name:lizzo — truth and hurts"),
            ("Lizzo", "Truth and Hurts", "name:lizzo — truth and hurts"),
        ];
        for (artist, title, key) in table {
            assert_eq!(
                name_key(artist, title).as_deref(),
                Some(*key),
                "{artist:?} / {title:?}"
            );
        }
    }

    #[test]
    fn two_releases_and_a_scrobble_of_one_song_meet_and_a_live_one_does_not() {
        let album = name_key("The Beatles", "Let It Be - Remastered 2009");
        let single = name_key("The Beatles", "Let It Be");
        let scrobble = name_key("the beatles", "Let it be (2009 Remaster)");
        let live = name_key("The Beatles", "Let It Be (Live)");
        assert_eq!(album, single);
        assert_eq!(single, scrobble);
        assert_ne!(single, live);
    }
}
