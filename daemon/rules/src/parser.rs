//! Recursive-descent parser for Falco conditions.
//!
//! ```text
//! Expr     ::= AndExpr ('or' AndExpr)*
//! AndExpr  ::= NotExpr ('and' NotExpr)*
//! NotExpr  ::= 'not' NotExpr | Check
//! Check    ::= '(' Expr ')' | Field [Op Operand] | MacroName
//! Field    ::= name ('[' arg ']')?
//! Operand  ::= Value | '(' [Value (',' Value)*] ')'
//! ```
//!
//! Nesting (parentheses and `not`) is bounded by [`MAX_DEPTH`] so hostile
//! input yields an error instead of exhausting the stack.

use crate::ast::{Check, Expr, Literal, Op, Operand};
use crate::error::SyntaxError;
use crate::lexer::{line_col, token_at, LexError, Lexer};

/// Maximum nesting of parentheses and `not` in one condition.
pub const MAX_DEPTH: usize = 256;

/// Parses a condition. Error positions are relative to `src`.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        lx: Lexer::new(src),
        depth: 0,
    };
    let e = p.parse_or()?;
    if !p.lx.at_end() {
        let at = p.lx.pos();
        return Err(p.err(at, "expected 'and', 'or' or the end of the condition"));
    }
    Ok(e)
}

struct Parser<'a> {
    lx: Lexer<'a>,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> SyntaxError {
        let src = self.lx.src();
        let (line, col) = line_col(src, offset);
        SyntaxError {
            file: None,
            line,
            col,
            token: token_at(src, offset),
            message: message.into(),
            offset,
        }
    }

    fn lex_err(&self, e: LexError) -> SyntaxError {
        self.err(e.offset, e.message)
    }

    fn enter(&mut self, at: usize) -> Result<(), SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(
                at,
                format!("condition nests deeper than the limit of {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.parse_and()?;
        if !self.lx.peek_keyword("or") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.lx.eat_keyword("or") {
            items.push(self.parse_and()?);
        }
        Ok(Expr::Or(items))
    }

    fn parse_and(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.parse_not()?;
        if !self.lx.peek_keyword("and") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.lx.eat_keyword("and") {
            items.push(self.parse_not()?);
        }
        Ok(Expr::And(items))
    }

    fn parse_not(&mut self) -> Result<Expr, SyntaxError> {
        // Iterative so `not not not ...` costs no stack; still bounded.
        let mut nots = 0usize;
        while self.lx.peek_keyword("not") {
            let at = self.lx.pos();
            self.lx.eat_keyword("not");
            self.enter(at)?;
            nots += 1;
        }
        let mut e = self.parse_check()?;
        for _ in 0..nots {
            e = Expr::Not(Box::new(e));
        }
        self.depth -= nots;
        Ok(e)
    }

    fn parse_check(&mut self) -> Result<Expr, SyntaxError> {
        self.lx.skip_ws();
        let start = self.lx.pos();
        if self.lx.eat_char('(') {
            self.enter(start)?;
            let e = self.parse_or()?;
            if !self.lx.eat_char(')') {
                let at = self.lx.pos();
                return Err(self.err(at, "expected ')'"));
            }
            self.depth -= 1;
            return Ok(e);
        }
        for kw in ["and", "or"] {
            if self.lx.peek_keyword(kw) {
                return Err(self.err(
                    start,
                    format!("unexpected '{kw}': expected a field, a macro or '('"),
                ));
            }
        }
        let Some((offset, name)) = self.lx.word() else {
            let msg = if self.lx.at_end() {
                "unexpected end of condition: expected a field, a macro or '('"
            } else {
                "expected a field, a macro or '('"
            };
            return Err(self.err(start, msg));
        };
        let name = name.to_string();
        let mut arg = None;
        if self.lx.eat_char_now('[') {
            arg = Some(self.lx.field_arg().map_err(|e| self.lex_err(e))?);
        }
        let op = self.lx.operator();
        let Some((_, op)) = op else {
            // Names with a dot are fields (bare booleans); others are macros.
            if name.contains('.') || arg.is_some() {
                return Ok(Expr::Check(Box::new(Check {
                    field: name,
                    arg,
                    offset,
                    op: None,
                    value: Operand::None,
                })));
            }
            return Ok(Expr::Macro { name, offset });
        };
        let value = self.operand(op)?;
        Ok(Expr::Check(Box::new(Check {
            field: name,
            arg,
            offset,
            op: Some(op),
            value,
        })))
    }

    fn operand(&mut self, op: Op) -> Result<Operand, SyntaxError> {
        if op == Op::Exists {
            return Ok(Operand::None);
        }
        if !op.takes_list() {
            self.lx.skip_ws();
            if self.lx.at_end() {
                let at = self.lx.pos();
                return Err(self.err(at, format!("expected a value after '{}'", op.as_str())));
            }
            let (offset, text, quoted) = self.lx.value().map_err(|e| self.lex_err(e))?;
            return Ok(Operand::One(Literal {
                text,
                quoted,
                offset,
            }));
        }
        if !self.lx.eat_char('(') {
            let at = self.lx.pos();
            return Err(self.err(at, format!("expected '(' after '{}'", op.as_str())));
        }
        let mut items = Vec::new();
        if self.lx.eat_char(')') {
            return Ok(Operand::List(items));
        }
        loop {
            let (offset, text, quoted) = self.lx.value().map_err(|e| self.lex_err(e))?;
            items.push(Literal {
                text,
                quoted,
                offset,
            });
            if self.lx.eat_char(',') {
                continue;
            }
            if self.lx.eat_char(')') {
                return Ok(Operand::List(items));
            }
            let at = self.lx.pos();
            return Err(self.err(at, "expected ',' or ')' in value list"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> SyntaxError {
        parse(src).expect_err(src)
    }

    #[test]
    fn precedence_and_round_trip() {
        let e = parse("a or b and not c").unwrap();
        assert_eq!(e.to_string(), "(a or (b and not c))");
        let e = parse("proc.name=bash and evt.type in (open, openat) or not (x)").unwrap();
        assert_eq!(
            e.to_string(),
            "((proc.name = bash and evt.type in (open, openat)) or not x)"
        );
        // The printed form parses back to the same tree (modulo offsets).
        let again = parse(&e.to_string()).unwrap();
        assert_eq!(again.to_string(), e.to_string());
    }

    #[test]
    fn checks() {
        let e = parse(r#"proc.aname[2] startswith "sh -c" and fd.name pmatch (/etc, '/root')"#)
            .unwrap();
        let Expr::And(v) = e else { panic!() };
        let Expr::Check(c) = &v[0] else { panic!() };
        assert_eq!(c.field, "proc.aname");
        assert_eq!(c.arg.as_deref(), Some("2"));
        assert_eq!(c.op, Some(Op::StartsWith));
        assert_eq!(
            c.value,
            Operand::One(Literal {
                text: "sh -c".into(),
                quoted: true,
                offset: 25
            })
        );
        let Expr::Check(c) = &v[1] else { panic!() };
        let Operand::List(items) = &c.value else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert!(!items[0].quoted && items[1].quoted);
    }

    #[test]
    fn bare_values_and_exists() {
        let e = parse("proc.pname in (runc:[0:PARENT], exe) or not proc.pname exists or proc.is_exe_upper_layer").unwrap();
        assert_eq!(
            e.to_string(),
            "(proc.pname in (runc:[0:PARENT], exe) or not proc.pname exists or proc.is_exe_upper_layer)"
        );
        let e = parse("fd.num=-1 and evt.res startswith E and x.y!=''").unwrap();
        assert_eq!(
            e.to_string(),
            "(fd.num = -1 and evt.res startswith E and x.y != \"\")"
        );
    }

    #[test]
    fn dotless_field_with_operator() {
        // saker's alert fields (`rule`, `tags`) have no dot.
        let e = parse("rule = 'A b' and tags intersects (x)").unwrap();
        assert_eq!(e.to_string(), "(rule = \"A b\" and tags intersects (x))");
    }

    #[test]
    fn error_positions() {
        let e = err("proc.name = bash and\n  (evt.type = open");
        assert_eq!((e.line, e.col), (2, 19));
        assert_eq!(e.message, "expected ')'");
        assert_eq!(e.token, "");
        assert_eq!(e.to_string(), "2:19: expected ')' (at end of input)");

        let e = err("proc.name = bash bogus");
        assert_eq!((e.line, e.col, e.token.as_str()), (1, 18, "bogus"));

        let e = err("proc.name in open, openat");
        assert_eq!((e.line, e.col, e.token.as_str()), (1, 14, "open"));
        assert_eq!(e.message, "expected '(' after 'in'");

        let e = err("a and\n\n   or b");
        assert_eq!((e.line, e.col, e.token.as_str()), (3, 4, "or"));

        let e = err("proc.name = 'abc");
        assert_eq!((e.line, e.col, e.token.as_str()), (1, 13, "'abc"));
        assert_eq!(e.message, "unterminated string");

        let e = err("evt.type in (open,, x)");
        assert_eq!((e.line, e.col, e.token.as_str()), (1, 19, ","));

        let e = err("proc.name =");
        assert_eq!(e.message, "expected a value after '='");

        let e = err("proc.aname[] = x");
        assert_eq!((e.line, e.col), (1, 12));
        assert_eq!(
            err("").message,
            "unexpected end of condition: expected a field, a macro or '('"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "(".repeat(10_000) + "a" + &")".repeat(10_000);
        let e = err(&deep);
        assert_eq!(
            e.message,
            "condition nests deeper than the limit of 256 levels"
        );
        assert_eq!((e.line, e.col), (1, 257));

        let nots = "not ".repeat(10_000) + "a";
        assert!(err(&nots).message.contains("256"));

        // Within the limit it parses.
        let ok = "(".repeat(200) + "a" + &")".repeat(200);
        assert!(parse(&ok).is_ok());

        // Long flat chains are not nesting.
        let flat = vec!["a"; 50_000].join(" and ");
        let Expr::And(v) = parse(&flat).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 50_000);
    }
}
