//! Byte strings from the kernel and the watched workloads (process names, arguments,
//! paths). They are attacker controlled and not necessarily UTF-8: kept as bytes,
//! compared as bytes, and escaped on output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Owned bytes that are usually, but not always, UTF-8.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BString(pub Vec<u8>);

impl BString {
    pub fn new(b: impl Into<Vec<u8>>) -> Self {
        BString(b.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text, if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Text with invalid sequences replaced by U+FFFD (for display and matching).
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// A one-line, terminal-safe rendering: control characters (including ESC, so ANSI
    /// sequences cannot act), backslashes and invalid bytes become escapes.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }
}

/// Escapes bytes for a single-line, terminal-safe display: `\n`, `\t`, `\\`, `\xNN` for
/// other control bytes and for bytes that are not valid UTF-8.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

impl fmt::Debug for BString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.escaped())
    }
}

impl fmt::Display for BString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

impl From<&str> for BString {
    fn from(s: &str) -> Self {
        BString(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for BString {
    fn from(s: &[u8]) -> Self {
        BString(s.to_vec())
    }
}

/// Human-readable formats (JSON): valid UTF-8 is a plain string (JSON escaping takes care
/// of control characters); anything else is `{"hex": …, "lossy": …}` so no byte is lost and
/// no ambiguity arises. Binary formats (bincode captures): the raw bytes.
impl Serialize for BString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match self.to_str() {
                Some(text) => s.serialize_str(text),
                None => {
                    use serde::ser::SerializeMap;
                    let mut m = s.serialize_map(Some(2))?;
                    let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                    m.serialize_entry("hex", &hex)?;
                    m.serialize_entry("lossy", &self.to_str_lossy())?;
                    m.end()
                }
            }
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for BString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Repr {
                Text(String),
                Hex { hex: String },
            }
            match Repr::deserialize(d)? {
                Repr::Text(t) => Ok(BString(t.into_bytes())),
                Repr::Hex { hex } => decode_hex(&hex)
                    .map(BString)
                    .ok_or_else(|| serde::de::Error::custom("invalid hex byte string")),
            }
        } else {
            let v: serde_bytes_compat::ByteBuf = Deserialize::deserialize(d)?;
            Ok(BString(v.0))
        }
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Minimal byte-buffer visitor (accepts bytes or a sequence of u8) so binary formats
/// round-trip without an extra dependency.
mod serde_bytes_compat {
    use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
    use std::fmt;

    pub struct ByteBuf(pub Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(ByteBuf(out))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_ansi_and_invalid_utf8() {
        let b = BString(b"a\x1b[31mred\n\\\xff\xfe".to_vec());
        assert_eq!(b.escaped(), "a\\x1b[31mred\\n\\\\\\xff\\xfe");
    }

    #[test]
    fn json_keeps_every_byte() {
        let b = BString(b"x\xffy".to_vec());
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(j, "{\"hex\":\"78ff79\",\"lossy\":\"x\u{fffd}y\"}");
        let back: BString = serde_json::from_str(&j).unwrap();
        assert_eq!(back, b);
        let t = BString::from("ok \"quoted\"");
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""ok \"quoted\"""#);
    }

    #[test]
    fn bincode_round_trip() {
        let b = BString(b"\x00\xff<|im_start|>".to_vec());
        let cfg = bincode::config::standard();
        let enc = bincode::serde::encode_to_vec(&b, cfg).unwrap();
        let (dec, _): (BString, usize) = bincode::serde::decode_from_slice(&enc, cfg).unwrap();
        assert_eq!(dec, b);
    }
}
