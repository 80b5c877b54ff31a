//! Error types shared by the parser, the compiler and the rules loader.

use std::fmt;

/// A position in a source file or condition string (1-based line and column;
/// columns count characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// File name, when the text came from a file.
    pub file: Option<String>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file, self.line, self.col),
            None => write!(f, "{}:{}", self.line, self.col),
        }
    }
}

/// A syntax error in a condition: `file:line:col: message (near token 'x')`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SyntaxError {
    pub file: Option<String>,
    pub line: u32,
    pub col: u32,
    /// The text of the offending token (empty at end of input).
    pub token: String,
    pub message: String,
    /// Byte offset inside the condition text that was parsed.
    pub offset: usize,
}

impl SyntaxError {
    pub fn location(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if self.token.is_empty() {
            write!(f, " (at end of input)")
        } else {
            write!(f, " (near token '{}')", self.token)
        }
    }
}

/// Errors raised while resolving a parsed condition against the field
/// registry, macros and lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("unknown field {name} ({pos})")]
    UnknownField { name: String, pos: Location },
    #[error("undefined macro {name} ({pos})")]
    UndefinedMacro { name: String, pos: Location },
    #[error("macro {name} references itself ({pos})")]
    MacroCycle { name: String, pos: Location },
    #[error("in macro {name}: {error}")]
    MacroSyntax { name: String, error: SyntaxError },
    #[error("field {field}: invalid value '{value}', expected {expected} ({pos})")]
    BadValue {
        field: String,
        value: String,
        expected: &'static str,
        pos: Location,
    },
    #[error("operator '{op}' is not supported for field {field} of type {ty} ({pos})")]
    UnsupportedOperator {
        op: String,
        field: String,
        ty: &'static str,
        pos: Location,
    },
    #[error("field {field}: {message} ({pos})")]
    BadArgument {
        field: String,
        message: String,
        pos: Location,
    },
    #[error("field {field} is not boolean: an operator is required ({pos})")]
    NeedsOperator { field: String, pos: Location },
    #[error("condition nests deeper than {limit} levels after macro expansion ({pos})")]
    TooDeep { limit: usize, pos: Location },
    #[error("condition grows beyond {limit} {what} after macro and list expansion ({pos})")]
    TooLarge {
        limit: usize,
        what: &'static str,
        pos: Location,
    },
}

/// A condition given as a standalone filter (API, store query, assistant)
/// failed to parse or to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// A rules file could not be used at all; the caller keeps its previous
/// rule set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
    #[error("{pos}: YAML error: {message}")]
    Yaml { pos: Location, message: String },
    #[error("{pos}: {message}")]
    Schema { pos: Location, message: String },
}
