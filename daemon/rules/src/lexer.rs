//! Context-driven lexer for the condition language.
//!
//! Falco's grammar is context sensitive: `runc:[0:PARENT]` is one bare value
//! after `in (`, while `[` opens a field argument right after a field name.
//! The parser therefore asks for the kind of token it expects next; every
//! token carries its byte offset, mapped to line:col only for errors.

use crate::ast::Op;

/// Byte offset → (line, col), both 1-based; columns count characters.
pub fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(src.len());
    let mut line = 1u32;
    let mut col = 1u32;
    for (i, c) in src.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            col = 1;
        } else {
            col = col.saturating_add(1);
        }
    }
    (line, col)
}

/// Text of the token starting at `offset`, for error messages.
pub fn token_at(src: &str, offset: usize) -> String {
    let Some(rest) = src.get(offset..) else {
        return String::new();
    };
    let rest = rest.trim_start();
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return String::new();
    };
    let end = if first == '"' || first == '\'' {
        // Up to and including the closing quote, if any.
        let mut esc = false;
        let mut end = rest.len();
        for (i, c) in chars {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == first {
                end = i + c.len_utf8();
                break;
            }
        }
        end
    } else if is_word_char(first) {
        rest.find(|c: char| !(is_word_char(c) || c == '.'))
            .unwrap_or(rest.len())
    } else if let Some(op) = ["==", "!=", "<=", ">="]
        .iter()
        .find(|o| rest.starts_with(**o))
    {
        op.len()
    } else {
        first.len_utf8()
    };
    let tok = &rest[..end];
    // Keep messages short: attacker-sized tokens are cut.
    if tok.chars().count() > 40 {
        let mut s: String = tok.chars().take(40).collect();
        s.push('…');
        s
    } else {
        tok.to_string()
    }
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters that end a bare value (Falco's `RGX_BARESTR`).
fn ends_bare(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\x08' | '\x0c' | '(' | ')' | ',' | '=' | '"' | '\''
    )
}

/// Characters that end a bare field argument (`RGX_FIELDARGBARESTR`).
pub(crate) fn ends_bare_arg(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\x08' | '\x0c' | '[' | ']' | '"' | '\''
    )
}

/// Why a lexing step failed; the parser adds position and token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub offset: usize,
    pub message: String,
}

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    pub fn src(&self) -> &'a str {
        self.src
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    pub fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub fn skip_ws(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x08', '\x0c']);
        self.pos += rest.len() - trimmed.len();
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.src.len()
    }

    /// Consumes `c` after optional whitespace.
    pub fn eat_char(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek_char() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `c` only if it is the very next character (no whitespace).
    pub fn eat_char_now(&mut self, c: char) -> bool {
        if self.peek_char() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Whether `kw` follows as a whole word (followed by whitespace, `(`,
    /// or the end), without consuming it.
    pub fn peek_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        if !rest.starts_with(kw) {
            return false;
        }
        match rest[kw.len()..].chars().next() {
            None => true,
            Some(c) => !(is_word_char(c) || c == '.'),
        }
    }

    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_keyword(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// A field name or identifier: `[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*`.
    /// Returns the start offset and text.
    pub fn word(&mut self) -> Option<(usize, &'a str)> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let mut chars = rest.char_indices().peekable();
        match chars.next() {
            Some((_, c)) if is_word_start(c) => {}
            _ => return None,
        }
        let mut end = rest.len();
        let mut prev_dot = false;
        while let Some((i, c)) = chars.next() {
            if is_word_char(c) {
                prev_dot = false;
                continue;
            }
            // A dot continues the name only when a name character follows.
            if c == '.' && !prev_dot && chars.peek().is_some_and(|&(_, n)| is_word_char(n)) {
                prev_dot = true;
                continue;
            }
            end = i;
            break;
        }
        self.pos = start + end;
        Some((start, &rest[..end]))
    }

    /// A comparison operator (`=`, `==`, `!=`, `<`, `<=`, `>`, `>=`) or an
    /// operator word. Does not consume anything when none follows.
    pub fn operator(&mut self) -> Option<(usize, Op)> {
        self.skip_ws();
        let start = self.pos;
        let rest = self.rest();
        let sym = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        for (text, op) in sym {
            if rest.starts_with(text) {
                self.pos += text.len();
                return Some((start, op));
            }
        }
        for (text, op) in Op::WORDS {
            if let Some(after) = rest.strip_prefix(text) {
                let next = after.chars().next();
                if next.is_none_or(|c| !(is_word_char(c) || c == '.')) {
                    self.pos += text.len();
                    return Some((start, op));
                }
            }
        }
        None
    }

    /// A quoted string starting at the current position (which must be a
    /// quote). Handles the usual backslash escapes.
    pub fn quoted(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let rest = self.rest();
        let mut chars = rest.char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('"' | '\''))) => q,
            _ => {
                return Err(LexError {
                    offset: start,
                    message: "expected a quoted string".into(),
                })
            }
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos = start + i + c.len_utf8();
                return Ok(out);
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, e)) => out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\x08',
                        'f' => '\x0c',
                        other => other,
                    }),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(LexError {
            offset: start,
            message: "unterminated string".into(),
        })
    }

    /// A value: quoted string, or a bare word (`proc.name=bash`,
    /// `runc:[0:PARENT]`, `/etc/`). Returns (offset, text, quoted).
    pub fn value(&mut self) -> Result<(usize, String, bool), LexError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek_char() {
            Some('"' | '\'') => Ok((start, self.quoted()?, true)),
            _ => {
                let rest = self.rest();
                let end = rest.find(ends_bare).unwrap_or(rest.len());
                if end == 0 {
                    return Err(LexError {
                        offset: start,
                        message: "expected a value".into(),
                    });
                }
                self.pos += end;
                Ok((start, rest[..end].to_string(), false))
            }
        }
    }

    /// The inside of `[...]` after a field name; the `[` is already consumed.
    pub fn field_arg(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let arg = match self.peek_char() {
            Some('"' | '\'') => self.quoted()?,
            _ => {
                let rest = self.rest();
                let end = rest.find(ends_bare_arg).unwrap_or(rest.len());
                self.pos += end;
                rest[..end].to_string()
            }
        };
        if arg.is_empty() {
            return Err(LexError {
                offset: start,
                message: "empty field argument".into(),
            });
        }
        if !self.eat_char_now(']') {
            return Err(LexError {
                offset: self.pos,
                message: "expected ']' after field argument".into(),
            });
        }
        Ok(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let s = "ab\ncé d";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        // 'd' is at byte 7 (é is two bytes) but column 4.
        assert_eq!(line_col(s, 7), (2, 4));
    }

    #[test]
    fn words_and_fields() {
        let mut l = Lexer::new("  proc.aname[2] evt.arg.flags x. y");
        assert_eq!(l.word(), Some((2, "proc.aname")));
        assert!(l.eat_char_now('['));
        assert_eq!(l.field_arg().as_deref(), Ok("2"));
        assert_eq!(l.word(), Some((16, "evt.arg.flags")));
        assert_eq!(l.word(), Some((30, "x")));
    }

    #[test]
    fn values() {
        let mut l = Lexer::new(r#"runc:[0:PARENT], "a \"b\"" 'c'"#);
        assert_eq!(l.value(), Ok((0, "runc:[0:PARENT]".to_string(), false)));
        assert!(l.eat_char(','));
        assert_eq!(l.value(), Ok((17, "a \"b\"".to_string(), true)));
        assert_eq!(l.value(), Ok((27, "c".to_string(), true)));
        let mut l = Lexer::new("'abc");
        assert_eq!(l.value().unwrap_err().message, "unterminated string");
    }

    #[test]
    fn operators() {
        let mut l = Lexer::new(">= in(x) contains2");
        assert_eq!(l.operator(), Some((0, Op::Ge)));
        assert_eq!(l.operator(), Some((3, Op::In)));
        assert!(l.eat_char('('));
        assert_eq!(l.operator(), None);
        let _ = l.value();
        assert!(l.eat_char(')'));
        assert_eq!(l.operator(), None);
    }

    #[test]
    fn token_text() {
        assert_eq!(token_at("a  'x y' b", 1), "'x y'");
        assert_eq!(token_at("proc.name!=x", 9), "!=");
        assert_eq!(token_at("abc", 3), "");
    }
}
