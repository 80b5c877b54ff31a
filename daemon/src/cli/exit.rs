//! Exit codes and how call failures map to them.

use std::fmt;
use std::process::ExitCode;

use tonic::Code;

use super::escape::escape;

/// The CLI's exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: bad usage (arguments, options, local files).
    Usage = 1,
    /// 2: no node could be reached.
    Connection = 2,
    /// 3: the server answered with an error (INVALID_ARGUMENT, ...); message printed.
    Server = 3,
    /// 4: the id asked for does not exist.
    NotFound = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Text for `--help`.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 ok, 1 usage error, 2 connection failure \
(every node unreachable), 3 server error (message printed), 4 not found.";

/// Why a call to one node failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The node could not be reached (connect failed or timed out).
    Connect(String),
    /// The node answered with a gRPC status.
    Status { code: Code, message: String },
}

impl CallError {
    /// From a status returned by a call. A connection that broke during the call (tonic
    /// reports UNKNOWN "transport error", e.g. when a TLS server refused the client
    /// certificate) counts as a connection failure.
    pub fn from_status(s: &tonic::Status) -> CallError {
        if s.code() == Code::Unknown && s.message().starts_with("transport error") {
            let mut m = s.message().to_string();
            let mut src = std::error::Error::source(s);
            while let Some(c) = src {
                let t = c.to_string();
                if !m.contains(&t) {
                    m.push_str(": ");
                    m.push_str(&t);
                }
                src = c.source();
            }
            return CallError::Connect(format!(
                "{m} (the connection broke during the call; with mTLS, check that the server accepts the client certificate)"
            ));
        }
        CallError::Status {
            code: s.code(),
            message: s.message().to_string(),
        }
    }

    /// The exit code this failure gives on its own.
    pub fn exit(&self) -> Exit {
        match self {
            CallError::Connect(_) => Exit::Connection,
            CallError::Status { code, .. } => match code {
                // UNAVAILABLE is also what tonic reports when the connection breaks.
                Code::Unavailable => Exit::Connection,
                Code::NotFound => Exit::NotFound,
                _ => Exit::Server,
            },
        }
    }

    /// Short machine name: `connect`, or the gRPC code in SCREAMING_CASE.
    pub fn code_name(&self) -> String {
        match self {
            CallError::Connect(_) => "CONNECT".into(),
            CallError::Status { code, .. } => code_name(*code).into(),
        }
    }

    /// The message, unescaped.
    pub fn message(&self) -> &str {
        match self {
            CallError::Connect(m) => m,
            CallError::Status { message, .. } => message,
        }
    }

    /// As JSON, for `--json` error lines.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": match self.exit() {
                Exit::Connection => "connection",
                Exit::NotFound => "not_found",
                _ => "server",
            },
            "code": self.code_name(),
            "message": self.message(),
        })
    }
}

/// Escaped for a terminal.
impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(m) => write!(f, "cannot connect: {}", escape(m)),
            CallError::Status { code, message } => {
                write!(f, "{}: {}", code_name(*code), escape(message))
            }
        }
    }
}

/// gRPC code names as in the specification (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The exit code of a command that asked several nodes.
///
/// Any node that answered successfully makes the command succeed (failed nodes are
/// reported, not fatal). Otherwise a server error wins over "not found" (the request
/// itself was wrong somewhere), which wins over connection failures: exit 2 only when
/// every node was unreachable. No node at all is a usage error.
pub fn combine<'a>(results: impl IntoIterator<Item = Option<&'a CallError>>) -> Exit {
    let mut worst: Option<Exit> = None;
    for r in results {
        let e = match r {
            None => return Exit::Ok,
            Some(e) => e.exit(),
        };
        let rank = |x: Exit| match x {
            Exit::Server => 3,
            Exit::NotFound => 2,
            Exit::Connection => 1,
            Exit::Ok | Exit::Usage => 0,
        };
        if worst.is_none_or(|w| rank(e) > rank(w)) {
            worst = Some(e);
        }
    }
    worst.unwrap_or(Exit::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(code: Code) -> CallError {
        CallError::Status {
            code,
            message: "m".into(),
        }
    }

    #[test]
    fn single_error_codes() {
        assert_eq!(
            CallError::Connect("refused".into()).exit(),
            Exit::Connection
        );
        assert_eq!(st(Code::Unavailable).exit(), Exit::Connection);
        assert_eq!(st(Code::NotFound).exit(), Exit::NotFound);
        for c in [
            Code::InvalidArgument,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::Unimplemented,
        ] {
            assert_eq!(st(c).exit(), Exit::Server, "{c:?}");
        }
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Usage as u8, 1);
        assert_eq!(Exit::Connection as u8, 2);
        assert_eq!(Exit::Server as u8, 3);
        assert_eq!(Exit::NotFound as u8, 4);
    }

    #[test]
    fn fan_out_exit_codes() {
        let down = CallError::Connect("x".into());
        let bad = st(Code::InvalidArgument);
        let nf = st(Code::NotFound);
        // One node answered: success, whatever the others did.
        assert_eq!(combine([Some(&down), None, Some(&bad)]), Exit::Ok);
        // Every node down.
        assert_eq!(combine([Some(&down), Some(&down)]), Exit::Connection);
        // Not found where reachable.
        assert_eq!(combine([Some(&down), Some(&nf)]), Exit::NotFound);
        // A server error beats not found and down nodes.
        assert_eq!(combine([Some(&nf), Some(&bad), Some(&down)]), Exit::Server);
        assert_eq!(combine([]), Exit::Usage);
    }

    #[test]
    fn broken_transport_is_a_connection_failure() {
        let e = CallError::from_status(&tonic::Status::unknown("transport error"));
        assert_eq!(e.exit(), Exit::Connection);
        let e = CallError::from_status(&tonic::Status::unknown("something else"));
        assert_eq!(e.exit(), Exit::Server);
    }

    #[test]
    fn display_is_escaped() {
        let e = CallError::Status {
            code: Code::InvalidArgument,
            message: "1:5: bad \u{1b}[2J (near token 'x')".into(),
        };
        assert_eq!(
            e.to_string(),
            "INVALID_ARGUMENT: 1:5: bad \\x1b[2J (near token 'x')"
        );
        assert_eq!(e.to_json()["kind"], "server");
    }
}
