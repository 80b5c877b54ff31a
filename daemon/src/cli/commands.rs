//! One function per subcommand: build the request, ask the node(s), render. Connection
//! handling lives in `conn`/`fanout`, text in `render`/`answer`.

use std::io::Write;
use std::sync::Arc;

use saker_proto::v1::{
    self, feed_item::Item, subscribe_events_response::Msg, AskRequest, ExplainRequest, FeedItem,
    GetIncidentRequest, GetInfoRequest, GetStatsRequest, ListIncidentsRequest, QueryEventsRequest,
    SubscribeEventsRequest,
};
use serde_json::{json, Value};

use super::answer::AnswerPrinter;
use super::args::{Cli, Cmd, EventsArgs, IncidentsArgs, StatsArgs};
use super::conn::{self, ConnOpts, Node, Target};
use super::escape::{escape, json_safe};
use super::exit::{combine, CallError, Exit};
use super::fanout::{self, NodeResult};
use super::render;

/// What every command needs: the nodes and how to reach them.
struct Ctx {
    nodes: Vec<Node>,
    opts: Arc<ConnOpts>,
    json: bool,
}

impl Ctx {
    fn multi(&self) -> bool {
        self.nodes.len() > 1
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Exit {
    let ctx = match setup(&cli).await {
        Ok(c) => c,
        Err((exit, m)) => {
            eprintln!("saker: {}", escape(&m));
            return exit;
        }
    };
    match cli.cmd {
        Cmd::Events(a) if a.follow => follow(&ctx, a).await,
        Cmd::Events(a) => events(&ctx, a).await,
        Cmd::Stats(a) => stats(&ctx, a).await,
        Cmd::Incidents(a) => incidents(&ctx, a).await,
        Cmd::Incident(a) => incident(&ctx, a.id).await,
        Cmd::Ask(a) => {
            let req = AskRequest {
                session_id: a.session.unwrap_or_default(),
                question: a.question.join(" "),
                context_filter: a.filter.unwrap_or_default(),
                language: a.lang.unwrap_or_default(),
                since_ns: a.range.since.unwrap_or(0),
                until_ns: a.range.until.unwrap_or(0),
                skip_narrative: a.no_narrative,
            };
            answer(&ctx, Question::Ask(req)).await
        }
        Cmd::Explain(a) => {
            let req = ExplainRequest {
                alert_id: a.alert_id,
                session_id: a.session.unwrap_or_default(),
                language: a.lang.unwrap_or_default(),
                skip_narrative: a.no_narrative,
            };
            answer(&ctx, Question::Explain(req)).await
        }
        Cmd::Node => node(&ctx).await,
    }
}

/// Builds the node list and connection options; errors are usage errors except a DNS
/// name that does not resolve (a connection failure).
async fn setup(cli: &Cli) -> Result<Ctx, (Exit, String)> {
    let c = &cli.conn;
    let usage = |m: String| (Exit::Usage, m);
    let sources = [c.addr.is_some(), !c.nodes.is_empty(), c.nodes_dns.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(usage(
            "use only one of --addr, --nodes and --nodes-dns".into(),
        ));
    }
    let mut tls_server_name = c.tls_server_name.clone();
    let nodes = if let Some(a) = &c.addr {
        vec![Node {
            label: a.clone(),
            target: conn::parse_target(a, c.port).map_err(usage)?,
        }]
    } else if !c.nodes.is_empty() {
        let mut v = Vec::new();
        for n in &c.nodes {
            let target = conn::parse_target(n, c.port).map_err(usage)?;
            if v.iter().any(|x: &Node| x.target == target) {
                continue;
            }
            v.push(Node {
                label: n.trim().to_string(),
                target,
            });
        }
        v
    } else if let Some(name) = &c.nodes_dns {
        let host = name
            .rsplit_once(':')
            .filter(|(h, _)| !h.contains(':'))
            .map_or(name.as_str(), |(h, _)| h);
        tls_server_name.get_or_insert_with(|| host.to_string());
        conn::resolve_nodes(name, c.port)
            .await
            .map_err(|m| (Exit::Connection, m))?
    } else {
        vec![Node {
            label: "local".into(),
            target: Target::Unix(c.socket.clone()),
        }]
    };
    if c.ca.is_none()
        && nodes
            .iter()
            .any(|n| matches!(n.target, Target::Tcp { tls: true, .. }))
    {
        return Err(usage(
            "https needs --ca FILE (the CA that signed the nodes' certificates), usually with --cert and --key".into(),
        ));
    }
    let token = match (&c.token, &c.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| usage(format!("{}: {e}", f.display())))?
                .trim()
                .to_string(),
        ),
        (None, None) => std::env::var("SAKER_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    let opts = ConnOpts::load(
        c.ca.as_deref(),
        c.cert.as_deref(),
        c.key.as_deref(),
        tls_server_name,
        token,
        c.timeout,
    )
    .map_err(usage)?;
    Ok(Ctx {
        nodes,
        opts: Arc::new(opts),
        json: cli.json,
    })
}

/// Writes to stdout. A closed stdout (`saker events --follow | head`) ends the program
/// quietly with success; other write errors are ignored.
fn out(s: &str) {
    #[cfg(test)]
    print!("{s}");
    #[cfg(not(test))]
    if let Err(e) = std::io::stdout().lock().write_all(s.as_bytes()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// stdout as a `Write` for streaming printers, through [`out`].
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        out(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stdout().flush();
        Ok(())
    }
}

/// Prints one JSON object on its own line, terminal-safe.
fn json_line(v: &Value) {
    let text = serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out(&json_safe(&text));
    out("\n");
}

/// A message as JSON (canonical proto3 mapping).
fn to_json<T: serde::Serialize>(m: &T) -> Value {
    serde_json::to_value(m).unwrap_or(Value::Null)
}

/// If `message` is a filter error (`line:col: ...`), the filter with a caret under the
/// column; `None` otherwise.
pub fn filter_caret(filter: &str, message: &str) -> Option<String> {
    let mut parts = message.splitn(3, ':');
    let line: usize = parts.next()?.trim().parse().ok()?;
    let col: usize = parts.next()?.trim().parse().ok()?;
    parts.next()?;
    let text = filter.lines().nth(line.checked_sub(1)?)?;
    let prefix: String = text.chars().take(col.checked_sub(1)?).collect();
    let pad = escape(&prefix).chars().count();
    Some(format!("  {}\n  {}^", escape(text), " ".repeat(pad)))
}

/// Reports failed nodes on stderr (and, with --json, as `{"node","error"}` lines) and
/// returns the exit code of the whole command. With `quiet_not_found`, NOT_FOUND answers
/// are not reported when some node succeeded.
fn report<T>(
    ctx: &Ctx,
    results: &[NodeResult<T>],
    filter: Option<&str>,
    quiet_not_found: bool,
) -> Exit {
    let any_ok = results.iter().any(|r| r.result.is_ok());
    for r in results {
        let Err(e) = &r.result else { continue };
        if quiet_not_found && any_ok && e.exit() == Exit::NotFound {
            continue;
        }
        if ctx.multi() || ctx.nodes[0].label != "local" {
            eprintln!("saker: node {}: {e}", escape(&r.node));
        } else {
            eprintln!("saker: {e}");
        }
        if let (
            Some(f),
            CallError::Status {
                code: tonic::Code::InvalidArgument,
                message,
            },
        ) = (filter, e)
        {
            if let Some(c) = filter_caret(f, message) {
                eprintln!("{c}");
            }
        }
        if ctx.json {
            json_line(&json!({"node": r.node, "error": e.to_json()}));
        }
    }
    combine(results.iter().map(|r| r.result.as_ref().err()))
}

/// Scope of feed requests.
fn scope(context: bool) -> i32 {
    if context {
        v1::FeedScope::AlertsAndEvents as i32
    } else {
        v1::FeedScope::Alerts as i32
    }
}

/// `{"node": .., "alert"|"event": ..}`.
fn feed_json(node: &str, it: &FeedItem) -> Value {
    match &it.item {
        Some(Item::Alert(a)) => json!({"node": node, "alert": to_json(a)}),
        Some(Item::Event(e)) => json!({"node": node, "event": to_json(e)}),
        None => json!({"node": node}),
    }
}

async fn events(ctx: &Ctx, a: EventsArgs) -> Exit {
    if a.cursor.is_some() && ctx.multi() {
        eprintln!("saker: --cursor works with one node only");
        return Exit::Usage;
    }
    let filter = a.filter.clone().unwrap_or_default();
    let req = QueryEventsRequest {
        filter: filter.clone(),
        since_ns: a.range.since.unwrap_or(0),
        until_ns: a.range.until.unwrap_or(0),
        limit: a.limit,
        cursor: a.cursor.clone().unwrap_or_default(),
        order: if a.oldest {
            v1::Order::OldestFirst
        } else {
            v1::Order::NewestFirst
        } as i32,
        scope: scope(a.context),
    };
    let results = fanout::run(&ctx.nodes, &ctx.opts, move |mut api| {
        let req = req.clone();
        async move { Ok(api.events.query_events(req).await?.into_inner()) }
    })
    .await;
    let exit = report(ctx, &results, Some(&filter), false);
    let mut pages = Vec::new();
    let mut cursors = Vec::new();
    for r in results {
        if let Ok(page) = r.result {
            if !page.next_cursor.is_empty() {
                cursors.push((r.node.clone(), page.next_cursor));
            }
            pages.push((r.node, page.items));
        }
    }
    let items = fanout::merge_feed(pages, a.limit as usize, !a.oldest);
    if ctx.json {
        for (n, it) in &items {
            json_line(&feed_json(n, it));
        }
        for (n, c) in &cursors {
            json_line(&json!({"node": n, "next_cursor": c}));
        }
    } else if exit == Exit::Ok {
        if items.is_empty() {
            eprintln!(
                "no matching {}",
                if a.context {
                    "alerts or events"
                } else {
                    "alerts"
                }
            );
        } else {
            out(&render::feed_table(&items, ctx.multi()));
        }
        if let (false, Some((_, c))) = (ctx.multi(), cursors.first()) {
            eprintln!(
                "({} more: add --cursor {})",
                if a.oldest { "newer" } else { "older" },
                super::answer::command_text(&super::answer::shell_quote(c))
            );
        }
    }
    exit
}

/// What a follow task tells the printer.
enum FollowMsg {
    Msg(String, Box<Msg>),
    /// The node's stream is over: `None` when it ended normally.
    Closed(String, Option<CallError>),
}

async fn follow(ctx: &Ctx, a: EventsArgs) -> Exit {
    let filter = a.filter.clone().unwrap_or_default();
    let req = SubscribeEventsRequest {
        filter: filter.clone(),
        since_ns: a.range.since.unwrap_or(0),
        scope: scope(a.context),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<FollowMsg>(1024);
    for n in &ctx.nodes {
        let (tx, req, opts, node) = (tx.clone(), req.clone(), ctx.opts.clone(), n.clone());
        tokio::spawn(async move {
            let end = async {
                let mut api = conn::connect(&node.target, &opts).await?;
                let mut stream = api
                    .events
                    .subscribe_events(req)
                    .await
                    .map_err(|s| CallError::from_status(&s))?
                    .into_inner();
                while let Some(m) = stream
                    .message()
                    .await
                    .map_err(|s| CallError::from_status(&s))?
                {
                    if let Some(msg) = m.msg {
                        if tx
                            .send(FollowMsg::Msg(node.label.clone(), Box::new(msg)))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
                Ok::<(), CallError>(())
            }
            .await;
            let _ = tx
                .send(FollowMsg::Closed(node.label.clone(), end.err()))
                .await;
        });
    }
    drop(tx);
    let mut outcomes: Vec<NodeResult<()>> = Vec::new();
    let show_node = ctx.multi();
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(msg) = msg else { break };
        let (node, msg) = match msg {
            FollowMsg::Msg(node, m) => (node, *m),
            FollowMsg::Closed(node, err) => {
                outcomes.push(NodeResult {
                    node,
                    result: err.map_or(Ok(()), Err),
                });
                continue;
            }
        };
        match msg {
            Msg::Item(it) => {
                if ctx.json {
                    json_line(&feed_json(&node, &it));
                } else {
                    let line = render::feed_line(show_node.then_some(node.as_str()), &it);
                    out(&format!("{line}\n"));
                }
            }
            Msg::BackfillDone(b) => {
                if ctx.json {
                    json_line(&json!({"node": node, "backfill_done": to_json(&b)}));
                } else {
                    eprintln!(
                        "-- {}{} stored items{}; live from here",
                        if show_node {
                            format!("{}: ", escape(&node))
                        } else {
                            String::new()
                        },
                        b.count,
                        if b.truncated {
                            " (older ones left out)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Msg::End(e) => {
                if ctx.json {
                    json_line(&json!({"node": node, "end": to_json(&e)}));
                } else {
                    let reason = v1::StreamEndReason::try_from(e.reason)
                        .map(|r| {
                            r.as_str_name()
                                .trim_start_matches("STREAM_END_REASON_")
                                .to_lowercase()
                        })
                        .unwrap_or_else(|_| "unknown".into());
                    eprintln!(
                        "saker: node {}: stream ended by the server: {} {} ({} dropped){}",
                        escape(&node),
                        reason,
                        escape(&e.message),
                        e.dropped,
                        if e.resume_cursor.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; catch up with: saker events --oldest --cursor {}",
                                super::answer::command_text(&super::answer::shell_quote(
                                    &e.resume_cursor
                                ))
                            )
                        }
                    );
                }
            }
        }
    }
    if outcomes.is_empty() {
        // Interrupted before any stream ended.
        return Exit::Ok;
    }
    report(ctx, &outcomes, Some(&filter), false)
}

async fn stats(ctx: &Ctx, a: StatsArgs) -> Exit {
    let mut by = Vec::new();
    for b in &a.by {
        let g = b.proto() as i32;
        if by.contains(&g) {
            eprintln!("saker: --by lists {} twice", render::group_by_name(g));
            return Exit::Usage;
        }
        by.push(g);
    }
    let filter = a.filter.clone().unwrap_or_default();
    let req = GetStatsRequest {
        filter: filter.clone(),
        since_ns: a.range.since.unwrap_or(0),
        until_ns: a.range.until.unwrap_or(0),
        group_by: by,
        // Ask each node for more groups than shown, so merged counts are right for the
        // groups that are large overall.
        limit: if ctx.multi() { 10_000 } else { a.limit },
    };
    let results = fanout::run(&ctx.nodes, &ctx.opts, move |mut api| {
        let req = req.clone();
        async move { Ok(api.events.get_stats(req).await?.into_inner()) }
    })
    .await;
    let exit = report(ctx, &results, Some(&filter), false);
    let ok: Vec<(String, v1::GetStatsResponse)> = results
        .into_iter()
        .filter_map(|r| r.result.ok().map(|s| (r.node, s)))
        .collect();
    if ok.is_empty() {
        return exit;
    }
    let labels: Vec<String> = ok.iter().map(|(n, _)| n.clone()).collect();
    let merged = fanout::merge_stats(
        ok.iter().map(|(_, s)| s.clone()).collect(),
        a.limit as usize,
    );
    if ctx.json {
        for (n, s) in &ok {
            json_line(&json!({"node": n, "stats": to_json(s)}));
        }
        if ctx.multi() {
            json_line(&json!({"nodes": labels, "stats": to_json(&merged)}));
        }
    } else {
        if ctx.multi() {
            out(&format!(
                "{} of {} nodes answered: {}\n",
                labels.len(),
                ctx.nodes.len(),
                labels
                    .iter()
                    .map(|l| escape(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out(&render::stats(&merged));
    }
    exit
}

async fn incidents(ctx: &Ctx, a: IncidentsArgs) -> Exit {
    let filter = a.filter.clone().unwrap_or_default();
    let req = ListIncidentsRequest {
        filter: filter.clone(),
        since_ns: a.range.since.unwrap_or(0),
        until_ns: a.range.until.unwrap_or(0),
        limit: a.limit,
        cursor: String::new(),
        order: if a.oldest {
            v1::Order::OldestFirst
        } else {
            v1::Order::NewestFirst
        } as i32,
        min_severity: a.min_severity.map_or(0, |s| s.proto() as i32),
    };
    let results = fanout::run(&ctx.nodes, &ctx.opts, move |mut api| {
        let req = req.clone();
        async move { Ok(api.incidents.list_incidents(req).await?.into_inner()) }
    })
    .await;
    let exit = report(ctx, &results, Some(&filter), false);
    let lists: Vec<_> = results
        .into_iter()
        .filter_map(|r| r.result.ok().map(|l| (r.node, l.incidents)))
        .collect();
    let items = fanout::merge_incidents(lists, a.limit as usize, !a.oldest);
    if ctx.json {
        for (n, i) in &items {
            json_line(&json!({"node": n, "incident": to_json(i)}));
        }
    } else if exit == Exit::Ok {
        if items.is_empty() {
            eprintln!("no matching incidents");
        } else {
            out(&render::incidents_table(&items, ctx.multi()));
        }
    }
    exit
}

async fn incident(ctx: &Ctx, id: String) -> Exit {
    let results = fanout::run(&ctx.nodes, &ctx.opts, move |mut api| {
        let req = GetIncidentRequest { id: id.clone() };
        async move { Ok(api.incidents.get_incident(req).await?.into_inner()) }
    })
    .await;
    let exit = report(ctx, &results, None, true);
    let mut first = true;
    for r in &results {
        if let Ok(inc) = &r.result {
            if ctx.json {
                json_line(&json!({"node": r.node, "incident": to_json(inc)}));
            } else {
                if !first {
                    out("\n");
                }
                out(&render::incident(&r.node, inc));
            }
            first = false;
        }
    }
    exit
}

async fn node(ctx: &Ctx) -> Exit {
    let results = fanout::run(&ctx.nodes, &ctx.opts, |mut api| async move {
        Ok(api.node.get_info(GetInfoRequest {}).await?.into_inner())
    })
    .await;
    let exit = report(ctx, &results, None, false);
    let mut first = true;
    for r in &results {
        if let Ok(info) = &r.result {
            if ctx.json {
                json_line(&json!({"node": r.node, "info": to_json(info)}));
            } else {
                if !first {
                    out("\n");
                }
                out(&render::node_info(&r.node, info));
            }
            first = false;
        }
    }
    exit
}

enum Question {
    Ask(AskRequest),
    Explain(ExplainRequest),
}

async fn answer(ctx: &Ctx, q: Question) -> Exit {
    if ctx.multi() {
        eprintln!("saker: ask and explain talk to one node: choose it with --addr or --socket");
        return Exit::Usage;
    }
    let node = &ctx.nodes[0];
    let filter = match &q {
        Question::Ask(r) => r.context_filter.clone(),
        Question::Explain(_) => String::new(),
    };
    let fail = |e: CallError| {
        report(
            ctx,
            &[NodeResult::<()> {
                node: node.label.clone(),
                result: Err(e),
            }],
            Some(&filter),
            false,
        )
    };
    let mut api = match conn::connect(&node.target, &ctx.opts).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let stream = match q {
        Question::Ask(r) => api.assistant.ask(r).await,
        Question::Explain(r) => api.assistant.explain(r).await,
    };
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(s) => return fail(CallError::from_status(&s)),
    };
    let mut printer = AnswerPrinter::new(Stdout);
    let result = loop {
        let m = tokio::select! {
            m = stream.message() => m,
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        match m {
            Ok(Some(part)) => {
                if ctx.json {
                    json_line(&json!({"node": node.label, "part": to_json(&part)}));
                } else if printer.part(part).is_err() {
                    // stdout closed (e.g. piped into head): stop quietly.
                    return Exit::Ok;
                }
            }
            Ok(None) => break Ok(()),
            Err(s) => break Err(CallError::from_status(&s)),
        }
    };
    if !ctx.json {
        let _ = printer.finish();
    }
    drop(printer);
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let c = filter_caret(
            "k8s.ns.name= and x",
            "1:13: expected a value (near token 'and')",
        )
        .unwrap();
        assert_eq!(c, "  k8s.ns.name= and x\n              ^");
        // Escaped characters before the column widen the prefix.
        let c = filter_caret("a\u{1b}=1 b", "1:6: unexpected (near token 'b')").unwrap();
        assert_eq!(c, "  a\\x1b=1 b\n          ^");
        assert!(filter_caret("x", "unknown field").is_none());
        assert!(filter_caret("x", "9:1: beyond").is_none());
    }
}
