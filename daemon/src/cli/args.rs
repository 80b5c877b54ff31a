//! Command-line syntax.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use saker_proto::v1;

use super::conn::{DEFAULT_PORT, DEFAULT_SOCKET};
use super::exit::EXIT_CODES_HELP;
use super::timefmt::{now_ns, parse_duration, parse_time};

#[derive(Parser, Debug)]
#[command(
    name = "saker",
    version,
    about = "Query a saker node: alerts, stats, incidents, the on-node assistant.",
    long_about = "Query saker nodes over gRPC: the event feed, counts, incidents, and the \
on-node assistant.\n\nBy default the local daemon is asked over its unix socket. --addr asks \
one node over TCP with mutual TLS; --nodes or --nodes-dns ask several nodes at once and merge \
their answers (a node that is down is reported, not fatal).\n\nFilters use the rules' \
condition language (Falco syntax), e.g. k8s.ns.name=risk-10-aws-bedrock-java and \
policy=\"Drift Detection\".",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Machine output: one JSON object per line (proto3 JSON mapping with the proto field
    /// names; 64-bit numbers are strings, bytes are base64). Every line carries the node
    /// it came from; a node that failed gives an {"node","error"} line.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Args, Debug)]
pub struct ConnArgs {
    /// Unix socket of the local daemon.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// One node over TCP: https://HOST:PORT (mTLS with --ca/--cert/--key), or
    /// unix:///PATH.
    #[arg(long, global = true, value_name = "URL")]
    pub addr: Option<String>,
    /// Several nodes at once, comma-separated: HOST, HOST:PORT, https://HOST:PORT or
    /// unix:///PATH.
    #[arg(long, global = true, value_name = "A,B,C", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Every address of a DNS name (e.g. a headless Service of the DaemonSet) is a node;
    /// NAME or NAME:PORT. Certificates are checked against NAME (or --tls-server-name).
    #[arg(long, global = true, value_name = "NAME")]
    pub nodes_dns: Option<String>,
    /// Port for node addresses without one.
    #[arg(long, global = true, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// PEM file of the CA that signed the nodes' certificates (needed for https).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    #[arg(long, global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM client private key (mutual TLS).
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name to expect in the nodes' certificates instead of the address's host.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Bearer token sent as `authorization: Bearer TOKEN` (default: $SAKER_TOKEN). Prefer
    /// --token-file: arguments are visible to other users of the host.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the bearer token (surrounding whitespace ignored).
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Connect timeout per node (e.g. 5s, 500ms).
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// A point in time: a duration ago, RFC 3339, or a date.
fn time_arg(s: &str) -> Result<i64, String> {
    parse_time(s, now_ns())
}

#[derive(Args, Debug, Clone, Default)]
pub struct Range {
    /// Only from this time on: a duration ago (10m, 2h, 7d), an RFC 3339 time
    /// (2026-11-26T10:00:00Z) or a date (2026-11-26).
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    pub since: Option<i64>,
    /// Only before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    pub until: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Alerts (and context events) that match a filter, oldest first.
    Events(EventsArgs),
    /// Alert counts grouped by policy, rule, severity, namespace, workload, node or
    /// technique.
    Stats(StatsArgs),
    /// Incidents (correlated alerts), oldest first.
    Incidents(IncidentsArgs),
    /// One incident: root cause, attack path, MITRE ATT&CK, affected workloads.
    Incident(IncidentArgs),
    /// Ask the node's assistant a question; the answer streams in.
    Ask(AskArgs),
    /// Explain one alert.
    Explain(ExplainArgs),
    /// The node's state: versions, sensor programs, drops, rules, model, store.
    Node,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter in the rules' condition language.
    #[arg(long, short = 'f', value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub range: Range,
    /// How many items to show (the most recent ones, unless --oldest).
    #[arg(long, short = 'n', default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Show the oldest matching items instead of the most recent ones.
    #[arg(long)]
    pub oldest: bool,
    /// Continue from this page cursor (printed after a page; one node only).
    #[arg(long, value_name = "CURSOR", conflicts_with = "follow")]
    pub cursor: Option<String>,
    /// Keep streaming new items as they arrive (with --since: stored ones first).
    #[arg(long, short = 'F')]
    pub follow: bool,
    /// Include stored context events, not only alerts.
    #[arg(long)]
    pub context: bool,
}

/// Dimensions of `stats --by`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Policy,
    Rule,
    Severity,
    Namespace,
    Workload,
    Node,
    Technique,
}

impl By {
    pub fn proto(self) -> v1::GroupBy {
        match self {
            By::Policy => v1::GroupBy::Policy,
            By::Rule => v1::GroupBy::Rule,
            By::Severity => v1::GroupBy::Severity,
            By::Namespace => v1::GroupBy::Namespace,
            By::Workload => v1::GroupBy::Workload,
            By::Node => v1::GroupBy::Node,
            By::Technique => v1::GroupBy::Technique,
        }
    }
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Group by these dimensions, comma-separated, in order.
    #[arg(long, value_delimiter = ',', default_value = "policy")]
    pub by: Vec<By>,
    /// Filter in the rules' condition language.
    #[arg(long, short = 'f', value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub range: Range,
    /// Largest groups to show.
    #[arg(long, short = 'n', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// Minimum severity for `incidents --min-severity`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sev {
    Debug,
    Informational,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Sev {
    pub fn proto(self) -> v1::Severity {
        match self {
            Sev::Debug => v1::Severity::Debug,
            Sev::Informational => v1::Severity::Informational,
            Sev::Notice => v1::Severity::Notice,
            Sev::Warning => v1::Severity::Warning,
            Sev::Error => v1::Severity::Error,
            Sev::Critical => v1::Severity::Critical,
            Sev::Alert => v1::Severity::Alert,
            Sev::Emergency => v1::Severity::Emergency,
        }
    }
}

#[derive(Args, Debug)]
pub struct IncidentsArgs {
    /// Filter over the incidents' alerts.
    #[arg(long, short = 'f', value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub range: Range,
    /// How many incidents to show (the most recent ones, unless --oldest).
    #[arg(long, short = 'n', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Show the oldest incidents instead of the most recent ones.
    #[arg(long)]
    pub oldest: bool,
    /// Only incidents at least this severe.
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<Sev>,
}

#[derive(Args, Debug)]
pub struct IncidentArgs {
    /// Incident id (inc-...). With several nodes, every node is asked.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question (several words are joined with spaces).
    #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
    pub question: Vec<String>,
    /// Continue this session (its id is printed after each answer).
    #[arg(long, short = 's', value_name = "SESSION")]
    pub session: Option<String>,
    /// Restrict the evidence to alerts matching this filter (kept for the session).
    #[arg(long, short = 'f', value_name = "FILTER")]
    pub filter: Option<String>,
    /// Answer language (BCP 47, e.g. en, de).
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    #[command(flatten)]
    pub range: Range,
    /// Only the facts: no model narrative.
    #[arg(long)]
    pub no_narrative: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Alert id.
    pub alert_id: String,
    /// Continue this session.
    #[arg(long, short = 's', value_name = "SESSION")]
    pub session: Option<String>,
    /// Answer language (BCP 47).
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
    /// Only the facts: no model narrative.
    #[arg(long)]
    pub no_narrative: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_typical_commands() {
        let c = Cli::try_parse_from([
            "saker",
            "events",
            "--filter",
            "k8s.ns.name=x",
            "--since",
            "10m",
            "-n",
            "20",
            "--json",
        ])
        .unwrap();
        assert!(c.json);
        match c.cmd {
            Cmd::Events(e) => {
                assert_eq!(e.filter.as_deref(), Some("k8s.ns.name=x"));
                assert_eq!(e.limit, 20);
                assert!(e.range.since.unwrap() > 0);
            }
            _ => panic!(),
        }
        let c = Cli::try_parse_from([
            "saker",
            "--nodes",
            "a,b:7000",
            "stats",
            "--by",
            "policy,severity",
        ])
        .unwrap();
        assert_eq!(c.conn.nodes, ["a", "b:7000"]);
        match c.cmd {
            Cmd::Stats(s) => assert_eq!(s.by, [By::Policy, By::Severity]),
            _ => panic!(),
        }
        let c =
            Cli::try_parse_from(["saker", "ask", "what", "happened?", "--session", "s1"]).unwrap();
        match c.cmd {
            Cmd::Ask(a) => {
                assert_eq!(a.question.join(" "), "what happened?");
                assert_eq!(a.session.as_deref(), Some("s1"));
            }
            _ => panic!(),
        }
        assert!(Cli::try_parse_from(["saker", "stats", "--by", "colour"]).is_err());
        assert!(Cli::try_parse_from(["saker", "events", "--since", "last tuesday"]).is_err());
        assert!(Cli::try_parse_from(["saker", "ask"]).is_err());
        assert!(Cli::try_parse_from(["saker", "events", "-n", "0"]).is_err());
    }
}
