//! The language of a question, and the two-language labels of answers.
//!
//! Sections are rendered in the question's language; data values (names, paths, ids)
//! are never translated.

use serde::{Deserialize, Serialize};

/// Answer languages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    /// BCP 47 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// Parses a BCP 47 tag (`ja`, `ja-JP`, `en-US`); other languages get `None` (the
    /// caller falls back to English, as the API promises).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ja" => Some(Lang::Ja),
            _ => None,
        }
    }

    /// Japanese when the text contains kana or kanji, English otherwise.
    pub fn detect(text: &str) -> Lang {
        if text.chars().any(is_japanese) {
            Lang::Ja
        } else {
            Lang::En
        }
    }
}

/// Hiragana, katakana (incl. half-width), CJK ideographs and Japanese punctuation.
pub(crate) fn is_japanese(c: char) -> bool {
    matches!(c as u32,
        0x3000..=0x303F | 0x3040..=0x309F | 0x30A0..=0x30FF | 0x31F0..=0x31FF
        | 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xFF01..=0xFF9F)
}

/// Picks the label for `lang`: call sites keep both spellings side by side, so a label
/// cannot exist in one language only.
pub(crate) fn tr(lang: Lang, en: &'static str, ja: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ja => ja,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_japanese() {
        assert_eq!(Lang::detect("根本原因は？"), Lang::Ja);
        assert_eq!(Lang::detect("このクラスタのイベントを要約して"), Lang::Ja);
        assert_eq!(Lang::detect("What was the root cause?"), Lang::En);
        assert_eq!(Lang::detect("k8s.ns.name = risk-10"), Lang::En);
    }

    #[test]
    fn tags() {
        assert_eq!(Lang::from_tag("ja-JP"), Some(Lang::Ja));
        assert_eq!(Lang::from_tag("EN"), Some(Lang::En));
        assert_eq!(Lang::from_tag("de"), None);
        assert_eq!(Lang::from_tag(""), None);
    }
}
