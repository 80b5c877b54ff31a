//! A stand-in sakerd for the CLI's tests: the four services on a unix socket, with canned
//! answers. It checks the bearer token, rejects the filter `bad` the way the real server
//! does, and knows one incident and one alert.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use saker_proto::v1::{
    assistant_service_server::{AssistantService, AssistantServiceServer},
    event_service_server::{EventService, EventServiceServer},
    incident_service_server::{IncidentService, IncidentServiceServer},
    node_service_server::{NodeService, NodeServiceServer},
    *,
};
use tonic::codegen::tokio_stream::{
    self,
    wrappers::{TcpListenerStream, UnixListenerStream},
    Stream,
};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// The token the mock accepts (when started with one).
pub const TOKEN: &str = "t0k3n";

type PartStream = Pin<Box<dyn Stream<Item = Result<AnswerPart, Status>> + Send>>;
type FeedStream = Pin<Box<dyn Stream<Item = Result<SubscribeEventsResponse, Status>> + Send>>;

#[derive(Clone)]
struct Mock {
    node: String,
    token: bool,
}

impl Mock {
    fn check<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let want = format!("Bearer {TOKEN}");
        if self.token
            && r.metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                != Some(want.as_str())
        {
            return Err(Status::unauthenticated("missing or wrong bearer token"));
        }
        Ok(())
    }
}

fn check_filter(f: &str) -> Result<(), Status> {
    if f == "bad" {
        return Err(Status::invalid_argument(
            "1:1: unknown field bad (near token 'bad')",
        ));
    }
    Ok(())
}

fn rs(b: &[u8]) -> Option<RawString> {
    Some(RawString {
        raw: b.to_vec(),
        lossy: String::from_utf8_lossy(b).into_owned(),
    })
}

/// The alert every node has (its id and time depend on the node).
pub fn alert(node: &str, t: i64) -> Alert {
    Alert {
        id: format!("{node}-1-0"),
        time_ns: t,
        rule: "Drift Detected (exec)".into(),
        policy: "Drift Detection".into(),
        severity: Severity::Critical as i32,
        output: "drifted binary easyminer executed".into(),
        prevented: false,
        node: node.into(),
        cluster: "c1".into(),
        mitre_techniques: vec!["T1496".into()],
        event: Some(Event {
            seq: 1,
            time_ns: t,
            r#type: "execve".into(),
            node: node.into(),
            cluster: "c1".into(),
            process: Some(Process {
                pid: 4242,
                ppid: 4200,
                name: rs(b"easyminer\x1b[2J"),
                exe: rs(b"/tmp/easyminer"),
                args: vec![rs(b"./easyminer").unwrap(), rs(b"-o\xff").unwrap()],
                cmdline: "./easyminer -o\u{fffd}".into(),
                ..Default::default()
            }),
            container: Some(Container {
                id: "ab".repeat(32),
                namespace: "risk-10-aws-bedrock-java".into(),
                pod_name: "java-app-1".into(),
                name: "app".into(),
                image: "registry/java:1".into(),
                ..Default::default()
            }),
            body: Some(event::Body::Exec(Exec {
                filename: rs(b"/tmp/easyminer"),
                exe_upper_layer: true,
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl EventService for Mock {
    async fn query_events(
        &self,
        r: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        self.check(&r)?;
        check_filter(&r.get_ref().filter)?;
        Ok(Response::new(QueryEventsResponse {
            items: vec![FeedItem {
                item: Some(feed_item::Item::Alert(alert(
                    &self.node,
                    1_764_152_553_000_000_000,
                ))),
            }],
            next_cursor: String::new(),
        }))
    }

    type SubscribeEventsStream = FeedStream;

    async fn subscribe_events(
        &self,
        r: Request<SubscribeEventsRequest>,
    ) -> Result<Response<FeedStream>, Status> {
        self.check(&r)?;
        check_filter(&r.get_ref().filter)?;
        let msgs = vec![
            Ok(SubscribeEventsResponse {
                msg: Some(subscribe_events_response::Msg::Item(FeedItem {
                    item: Some(feed_item::Item::Alert(alert(
                        &self.node,
                        1_764_152_554_000_000_000,
                    ))),
                })),
            }),
            Ok(SubscribeEventsResponse {
                msg: Some(subscribe_events_response::Msg::End(StreamEnd {
                    reason: StreamEndReason::Lagged as i32,
                    message: "subscriber too slow".into(),
                    dropped: 7,
                    resume_cursor: "1764152554000000000:x".into(),
                })),
            }),
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(msgs))))
    }

    async fn get_stats(
        &self,
        r: Request<GetStatsRequest>,
    ) -> Result<Response<GetStatsResponse>, Status> {
        self.check(&r)?;
        check_filter(&r.get_ref().filter)?;
        Ok(Response::new(GetStatsResponse {
            total: 3,
            prevented: 1,
            first_ns: 1,
            last_ns: 2,
            group_by: r.get_ref().group_by.clone(),
            groups: vec![StatsGroup {
                key: vec!["Drift Detection".into()],
                count: 3,
                prevented: 1,
                max_severity: Severity::Critical as i32,
                first_ns: 1,
                last_ns: 2,
            }],
            truncated: false,
        }))
    }
}

#[tonic::async_trait]
impl IncidentService for Mock {
    async fn list_incidents(
        &self,
        r: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        self.check(&r)?;
        check_filter(&r.get_ref().filter)?;
        Ok(Response::new(ListIncidentsResponse {
            incidents: vec![IncidentSummary {
                id: "inc-0000000000000001".into(),
                node: self.node.clone(),
                severity: Severity::Critical as i32,
                alert_count: 1,
                ..Default::default()
            }],
            next_cursor: String::new(),
        }))
    }

    async fn get_incident(
        &self,
        r: Request<GetIncidentRequest>,
    ) -> Result<Response<Incident>, Status> {
        self.check(&r)?;
        if r.get_ref().id != "inc-0000000000000001" {
            return Err(Status::not_found(format!("no incident {}", r.get_ref().id)));
        }
        Ok(Response::new(Incident {
            summary: Some(IncidentSummary {
                id: r.get_ref().id.clone(),
                node: self.node.clone(),
                ..Default::default()
            }),
            alert_ids: vec![format!("{}-1-0", self.node)],
            ..Default::default()
        }))
    }
}

fn answer(session: &str) -> PartStream {
    let parts = vec![
        answer_part::Part::Started(Started {
            session_id: if session.is_empty() {
                "s-new".into()
            } else {
                session.into()
            },
            context_filter: String::new(),
        }),
        answer_part::Part::Section(Section {
            title: "Alerts by policy".into(),
            kind: SectionKind::Table as i32,
            body: Some(section::Body::Table(Table {
                columns: vec!["policy".into(), "count".into()],
                rows: vec![Row {
                    cells: vec!["Drift Detection".into(), "3".into()],
                    alert_ids: vec![],
                }],
            })),
            alert_ids: vec![],
        }),
        answer_part::Part::Text(TextDelta {
            text: "A drifted miner ran.".into(),
            replace: false,
        }),
        answer_part::Part::Evidence(Evidence {
            alert_ids: vec!["n-1-0".into()],
            ..Default::default()
        }),
        answer_part::Part::Done(Done {
            intent: "summarize".into(),
            confidence: 1.0,
            ..Default::default()
        }),
    ];
    Box::pin(tokio_stream::iter(
        parts.into_iter().map(|p| Ok(AnswerPart { part: Some(p) })),
    ))
}

#[tonic::async_trait]
impl AssistantService for Mock {
    type AskStream = PartStream;

    async fn ask(&self, r: Request<AskRequest>) -> Result<Response<PartStream>, Status> {
        self.check(&r)?;
        let q = r.get_ref();
        if q.question.trim().is_empty() {
            return Err(Status::invalid_argument("empty question"));
        }
        if !q.session_id.is_empty() && q.session_id != "s-known" {
            return Err(Status::not_found("unknown session"));
        }
        check_filter(&q.context_filter)?;
        Ok(Response::new(answer(&q.session_id)))
    }

    type ExplainStream = PartStream;

    async fn explain(&self, r: Request<ExplainRequest>) -> Result<Response<PartStream>, Status> {
        self.check(&r)?;
        if r.get_ref().alert_id != format!("{}-1-0", self.node) {
            return Err(Status::not_found("no such alert"));
        }
        Ok(Response::new(answer(&r.get_ref().session_id)))
    }
}

#[tonic::async_trait]
impl NodeService for Mock {
    async fn get_info(&self, r: Request<GetInfoRequest>) -> Result<Response<NodeInfo>, Status> {
        self.check(&r)?;
        Ok(Response::new(NodeInfo {
            saker_version: "0.1.0".into(),
            node: self.node.clone(),
            cluster: "c1".into(),
            ..Default::default()
        }))
    }
}

/// A unique socket path in the temp dir.
pub fn socket_path(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "saker-cli-{}-{}-{tag}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The four services on one router.
fn router(node: &str, token: bool, server: Server) -> tonic::transport::server::Router {
    let m = Mock {
        node: node.into(),
        token,
    };
    let mut server = server;
    server
        .add_service(EventServiceServer::new(m.clone()))
        .add_service(IncidentServiceServer::new(m.clone()))
        .add_service(AssistantServiceServer::new(m.clone()))
        .add_service(NodeServiceServer::new(m))
}

/// Serves the mock on `path` (replacing a stale socket) until the runtime stops.
pub async fn serve(path: &Path, node: &str, token: bool) {
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).expect("bind mock socket");
    tokio::spawn(
        router(node, token, Server::builder())
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
}

/// Serves the mock with TLS on 127.0.0.1 (an ephemeral port, returned), requiring client
/// certificates signed by `client_ca`.
pub async fn serve_tls(node: &str, cert: &[u8], key: &[u8], client_ca: &[u8]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(client_ca));
    let server = Server::builder()
        .tls_config(tls)
        .expect("server TLS config");
    tokio::spawn(router(node, false, server).serve_with_incoming(TcpListenerStream::new(listener)));
    port
}
