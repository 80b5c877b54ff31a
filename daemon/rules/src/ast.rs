//! Syntax tree of a condition, before fields, macros and lists are resolved.
//!
//! Offsets are byte offsets into the parsed condition text.

use std::fmt;

/// Comparison and set operators of the Falco condition dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Op {
    /// Operators written as words (`contains`, `in`, ...), with their text.
    pub(crate) const WORDS: [(&'static str, Op); 13] = [
        ("contains", Op::Contains),
        ("icontains", Op::IContains),
        ("bcontains", Op::BContains),
        ("startswith", Op::StartsWith),
        ("bstartswith", Op::BStartsWith),
        ("endswith", Op::EndsWith),
        ("glob", Op::Glob),
        ("iglob", Op::IGlob),
        ("regex", Op::Regex),
        ("in", Op::In),
        ("intersects", Op::Intersects),
        ("pmatch", Op::PMatch),
        ("exists", Op::Exists),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }

    /// Operators whose operand is a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// A value written in a condition: a quoted string or a bare word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub text: String,
    /// Quoted values are never taken as list names.
    pub quoted: bool,
    pub offset: usize,
}

/// Right-hand side of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    None,
    One(Literal),
    List(Vec<Literal>),
}

/// `field[arg] op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Field name as written (e.g. `evt.arg.flags`, `proc.aname`).
    pub field: String,
    /// Bracketed argument (`proc.aname[2]` → `2`).
    pub arg: Option<String>,
    pub offset: usize,
    /// `None` for a bare boolean field (`proc.is_exe_upper_layer`).
    pub op: Option<Op>,
    pub value: Operand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Check(Box<Check>),
    /// A bare identifier: a macro reference.
    Macro {
        name: String,
        offset: usize,
    },
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_literal(f: &mut fmt::Formatter<'_>, l: &Literal) -> fmt::Result {
    // Unquoted words stay unquoted so list references keep their meaning.
    if l.quoted || l.text.is_empty() {
        write_quoted(f, &l.text)
    } else {
        f.write_str(&l.text)
    }
}

/// Prints the canonical Falco text of the expression (fully parenthesised
/// groups), which parses back to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(v) | Expr::Or(v) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
            Expr::Not(e) => write!(f, "not {e}"),
            Expr::Macro { name, .. } => f.write_str(name),
            Expr::Check(c) => {
                f.write_str(&c.field)?;
                if let Some(a) = &c.arg {
                    // An argument that was quoted may hold characters that end a bare one.
                    if a.contains(crate::lexer::ends_bare_arg) {
                        f.write_str("[")?;
                        write_quoted(f, a)?;
                        f.write_str("]")?;
                    } else {
                        write!(f, "[{a}]")?;
                    }
                }
                if let Some(op) = c.op {
                    write!(f, " {}", op.as_str())?;
                }
                match &c.value {
                    Operand::None => Ok(()),
                    Operand::One(l) => {
                        f.write_str(" ")?;
                        write_literal(f, l)
                    }
                    Operand::List(items) => {
                        f.write_str(" (")?;
                        for (i, l) in items.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            write_literal(f, l)?;
                        }
                        f.write_str(")")
                    }
                }
            }
        }
    }
}
