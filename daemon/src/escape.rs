//! The CLI's one terminal-escaping function.
//!
//! Everything the CLI prints for a person goes through [`escape_bytes`] (directly or via
//! [`escape`], [`escape_text`], [`raw`]): strings from watched workloads are attacker
//! controlled, and a raw ESC, carriage return or bidi override could rewrite the screen or
//! disguise what an operator reads. JSON output goes through [`json_safe`], which uses the
//! same character test.

use saker_proto::v1::RawString;

/// Whether newlines survive escaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// One line: `\n`, `\t` and `\` become `\n`, `\t` and `\\` (table cells, names, ids).
    One,
    /// Multi-line text (narrative, markdown): `\n` and `\t` are kept, backslashes too.
    Keep,
}

/// Characters that must not reach a terminal as they are: C0 and C1 controls and DEL
/// (`char::is_control`), bidirectional overrides and isolates, zero-width characters,
/// line/paragraph separators and interlinear annotation marks.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Renders bytes for a terminal: valid UTF-8 is kept except [`is_unsafe`] characters,
/// which become `\xNN` (ASCII controls, DEL) or `\u{NNNN}`; bytes that are not valid
/// UTF-8 become `\xNN`. With [`Lines::One`] backslashes are doubled, so the output is
/// unambiguous.
pub fn escape_bytes(bytes: &[u8], lines: Lines) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match (c, lines) {
                ('\n' | '\t', Lines::Keep) => out.push(c),
                ('\\', Lines::Keep) => out.push(c),
                ('\\', Lines::One) => out.push_str("\\\\"),
                ('\n', Lines::One) => out.push_str("\\n"),
                ('\t', Lines::One) => out.push_str("\\t"),
                ('\r', _) => out.push_str("\\r"),
                (c, _) if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                (c, _) if is_unsafe(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                (c, _) => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// One-line escape of a string.
pub fn escape(s: &str) -> String {
    escape_bytes(s.as_bytes(), Lines::One)
}

/// Multi-line escape of a string (keeps newlines and tabs).
pub fn escape_text(s: &str) -> String {
    escape_bytes(s.as_bytes(), Lines::Keep)
}

/// One-line escape of a workload string, from its exact bytes (invalid UTF-8 shows as
/// `\xNN`, not as U+FFFD). Unset renders as empty.
pub fn raw(r: Option<&RawString>) -> String {
    r.map(|r| {
        if r.raw.is_empty() && !r.lossy.is_empty() {
            // A server that only filled the text form.
            escape(&r.lossy)
        } else {
            escape_bytes(&r.raw, Lines::One)
        }
    })
    .unwrap_or_default()
}

/// Arguments as one escaped command line, arguments separated by single spaces.
pub fn args(a: &[RawString]) -> String {
    a.iter().map(|r| raw(Some(r))).collect::<Vec<_>>().join(" ")
}

/// Makes a serialized JSON text terminal-safe without changing its meaning: every
/// [`is_unsafe`] character becomes a `\uXXXX` escape. serde_json already escapes C0
/// controls; this covers DEL, C1 controls (U+009B acts as CSI on some terminals) and
/// bidi/zero-width characters, which can only occur inside JSON strings.
pub fn json_safe(json: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe(c) {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_and_controls_are_escaped() {
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("a\nb\tc\rd\u{7}"), "a\\nb\\tc\\rd\\x07");
        assert_eq!(escape("del\u{7f}"), "del\\x7f");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("csi\u{9b}2J"), "csi\\u{009b}2J");
    }

    #[test]
    fn bidi_and_zero_width_are_escaped() {
        assert_eq!(escape("ab\u{202e}cd"), "ab\\u{202e}cd");
        assert_eq!(
            escape("x\u{200b}y\u{2066}z\u{feff}"),
            "x\\u{200b}y\\u{2066}z\\u{feff}"
        );
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
    }

    #[test]
    fn printable_unicode_is_kept() {
        assert_eq!(escape("café → 日本 ✓"), "café → 日本 ✓");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn invalid_utf8_shows_its_bytes() {
        assert_eq!(escape_bytes(b"ok\xff\xfe!", Lines::One), "ok\\xff\\xfe!");
        // A truncated multi-byte sequence.
        assert_eq!(escape_bytes(b"\xe6\x97", Lines::One), "\\xe6\\x97");
        let r = RawString {
            raw: b"mi\xffner\x1b".to_vec(),
            lossy: "mi\u{fffd}ner\u{1b}".into(),
        };
        assert_eq!(raw(Some(&r)), "mi\\xffner\\x1b");
        assert_eq!(raw(None), "");
    }

    #[test]
    fn raw_falls_back_to_lossy_text() {
        let r = RawString {
            raw: vec![],
            lossy: "sh\u{1b}".into(),
        };
        assert_eq!(raw(Some(&r)), "sh\\x1b");
    }

    #[test]
    fn multi_line_keeps_newlines_only() {
        assert_eq!(escape_text("a\nb\tc\\d"), "a\nb\tc\\d");
        assert_eq!(
            escape_text("x\r\u{1b}]0;title\u{7}"),
            "x\\r\\x1b]0;title\\x07"
        );
    }

    #[test]
    fn args_join_with_spaces() {
        let a = vec![
            RawString {
                raw: b"sh".to_vec(),
                lossy: "sh".into(),
            },
            RawString {
                raw: b"-c".to_vec(),
                lossy: "-c".into(),
            },
            RawString {
                raw: b"echo\nhi".to_vec(),
                lossy: "echo\nhi".into(),
            },
        ];
        assert_eq!(args(&a), "sh -c echo\\nhi");
    }

    #[test]
    fn json_stays_valid_and_safe() {
        let v = serde_json::json!({"s": "a\u{1b}[2J\u{9b}\u{7f}\u{202e}b"});
        let text = json_safe(&serde_json::to_string(&v).unwrap());
        assert!(!text.chars().any(is_unsafe), "{text}");
        assert!(!text.contains('\u{1b}'));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
