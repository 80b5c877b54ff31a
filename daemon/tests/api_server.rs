//! The real gRPC server with tonic clients: hostile inputs get clean errors and the
//! server stays up; a slow subscriber is cut off with LAGGED (and counted) while the
//! pipeline goes on; a live alert from the sensor reaches a subscriber; shutdown ends
//! streams; reflection and health. Runs as root (the daemon loads its eBPF sensor).

mod api_support;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::*;
use saker::api::Limits;
use saker_proto::v1::{
    self, assistant_service_client::AssistantServiceClient,
    event_service_client::EventServiceClient, incident_service_client::IncidentServiceClient,
    node_service_client::NodeServiceClient, subscribe_events_response::Msg,
};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// `QueryEventsRequest` with its `filter` (a proto string) typed as bytes, to send
/// invalid UTF-8 where the server expects text.
#[derive(Clone, PartialEq, prost::Message)]
struct RawQuery {
    #[prost(bytes = "vec", tag = "1")]
    filter: Vec<u8>,
}

async fn raw_query(ch: Channel, filter: Vec<u8>) -> Result<v1::QueryEventsResponse, Status> {
    let mut g = tonic::client::Grpc::new(ch);
    g.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<RawQuery, v1::QueryEventsResponse>::default();
    g.unary(
        tonic::Request::new(RawQuery { filter }),
        PathAndQuery::from_static("/saker.v1.EventService/QueryEvents"),
        codec,
    )
    .await
    .map(|r| r.into_inner())
}

fn assert_status<T: std::fmt::Debug>(r: Result<T, Status>, code: Code, contains: &str) {
    match r {
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(
                s.message().contains(contains),
                "{:?} lacks {contains:?}",
                s.message()
            );
        }
    }
}

async fn alive(ch: &Channel) {
    let info = NodeServiceClient::new(ch.clone())
        .get_info(v1::GetInfoRequest {})
        .await
        .expect("the server answers after a hostile request")
        .into_inner();
    assert_eq!(info.node, NODE);
}

#[test]
fn hostile_inputs_get_clean_errors_and_the_server_stays_up() {
    let env = Env::start("hostile", Opts::default());
    env.seed();
    let ch = env.channel();
    env.rt.block_on(async {
        let mut ev = EventServiceClient::new(ch.clone()).max_decoding_message_size(64 << 20);
        let mut inc = IncidentServiceClient::new(ch.clone());
        let mut ask = AssistantServiceClient::new(ch.clone());

        // A 1 MB question.
        let r = ask
            .ask(v1::AskRequest {
                question: "why? ".repeat(200_000),
                ..Default::default()
            })
            .await;
        assert_status(r, Code::InvalidArgument, "1000000 bytes long; at most 4096");
        alive(&ch).await;

        // 10k-deep parentheses, in every method that takes a filter.
        let deep = "(".repeat(10_000) + "proc.name = x" + &")".repeat(10_000);
        let pos = "1:257: condition nests deeper than the limit of 256 levels (near token '(')";
        assert_status(
            ev.query_events(v1::QueryEventsRequest {
                filter: deep.clone(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            pos,
        );
        assert_status(
            ev.get_stats(v1::GetStatsRequest {
                filter: deep.clone(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            pos,
        );
        assert_status(
            inc.list_incidents(v1::ListIncidentsRequest {
                filter: deep.clone(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            pos,
        );
        assert_status(
            ev.subscribe_events(v1::SubscribeEventsRequest {
                filter: deep.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            pos,
        );
        assert_status(
            ask.ask(v1::AskRequest {
                question: "summarize".into(),
                context_filter: deep.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            pos,
        );
        alive(&ch).await;

        // Invalid UTF-8 where a string is expected: tonic refuses to decode it.
        for bad in [
            b"proc.name = \xff\xfe".to_vec(),
            vec![0xc3],
            vec![0xed, 0xa0, 0x80],
        ] {
            let r = raw_query(ch.clone(), bad).await;
            assert_status(r, Code::InvalidArgument, "malformed request message");
            alive(&ch).await;
        }
        // The same bytes as valid UTF-8 work.
        let ok = raw_query(ch.clone(), b"proc.name = easyminer".to_vec())
            .await
            .expect("a valid raw request");
        assert!(!ok.items.is_empty());

        // A request larger than the 4 MiB limit.
        let r = ev
            .query_events(v1::QueryEventsRequest {
                filter: "x".repeat(5 << 20),
                ..Default::default()
            })
            .await;
        assert_status(r, Code::ResourceExhausted, "too large");
        alive(&ch).await;
        // Large but accepted by the transport: the filter limit answers.
        let r = ev
            .query_events(v1::QueryEventsRequest {
                filter: "proc.name = x or ".repeat(20_000) + "proc.name = y",
                ..Default::default()
            })
            .await;
        assert_status(r, Code::InvalidArgument, "at most 65536");

        // Other malformed requests.
        assert_status(
            ev.query_events(v1::QueryEventsRequest {
                order: 42,
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "unknown order",
        );
        assert_status(
            ev.query_events(v1::QueryEventsRequest {
                since_ns: 10,
                until_ns: 5,
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "since_ns",
        );
        assert_status(
            ev.query_events(v1::QueryEventsRequest {
                cursor: "inc1:5:inc-x".into(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "cursor",
        );
        assert_status(
            ev.get_stats(v1::GetStatsRequest {
                group_by: vec![v1::GroupBy::Policy as i32, v1::GroupBy::Policy as i32],
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "repeated",
        );
        assert_status(
            ev.get_stats(v1::GetStatsRequest {
                group_by: vec![0],
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "UNSPECIFIED",
        );
        assert_status(
            ask.ask(v1::AskRequest {
                question: " \n ".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "empty",
        );
        assert_status(
            ask.explain(v1::ExplainRequest::default()).await.map(|_| ()),
            Code::InvalidArgument,
            "empty alert id",
        );
        assert_status(
            inc.get_incident(v1::GetIncidentRequest { id: "inc-x".into() })
                .await,
            Code::NotFound,
            "no incident inc-x",
        );
        // A huge page size is lowered, not refused.
        let page = ev
            .query_events(v1::QueryEventsRequest {
                limit: u32::MAX,
                ..Default::default()
            })
            .await
            .expect("limit is capped")
            .into_inner();
        assert!(!page.items.is_empty());

        // Many concurrent garbage requests, then a good one.
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let ch = ch.clone();
            tasks.push(tokio::spawn(async move {
                let bad = if i.is_multiple_of(2) {
                    vec![0xff; 64]
                } else {
                    vec![b'('; 4096]
                };
                let _ = raw_query(ch, bad).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        alive(&ch).await;
    });
    env.stop();
}

#[test]
fn a_slow_subscriber_ends_lagged_and_never_blocks_the_pipeline() {
    let env = Env::start(
        "lag",
        Opts {
            limits: Limits {
                max_subscriptions: 2,
                ..Limits::default()
            },
            ..Opts::default()
        },
    );
    const N: usize = 20_000;
    let t0 = now_ns() - 3600 * SEC;
    let alerts = bulk(N, t0, "lag");
    for chunk in alerts.chunks(5000) {
        env.store(chunk, &[]);
    }
    let ch = env.channel();
    let filter = "alert.id startswith lag-".to_string();
    env.rt.block_on(async {
        let mut ev = EventServiceClient::new(ch.clone()).max_decoding_message_size(64 << 20);
        let mut slow = ev
            .subscribe_events(v1::SubscribeEventsRequest {
                filter: filter.clone(),
                ..Default::default()
            })
            .await
            .expect("subscribe")
            .into_inner();
        // A second subscription fits the limit of 2, a third does not.
        let other = ev
            .subscribe_events(v1::SubscribeEventsRequest::default())
            .await
            .expect("second subscription");
        let r = ev
            .subscribe_events(v1::SubscribeEventsRequest::default())
            .await;
        assert_status(r.map(|_| ()), Code::ResourceExhausted, "limit 2");
        drop(other);

        // The pipeline publishes while the subscriber reads nothing: never blocked.
        let started = Instant::now();
        for a in &alerts {
            let _ = env.daemon.alerts_tx.send(Arc::new(a.clone()));
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "publishing took {took:?}");

        // Now read: some items, then the end with LAGGED.
        let mut delivered = Vec::new();
        let end = loop {
            let m = tokio::time::timeout(Duration::from_secs(30), slow.message())
                .await
                .expect("the stream moves")
                .expect("no error")
                .expect("an end message before the stream closes");
            match m.msg {
                Some(Msg::Item(it)) => match it.item {
                    Some(v1::feed_item::Item::Alert(a)) => delivered.push(a.id),
                    other => panic!("unexpected {other:?}"),
                },
                Some(Msg::End(e)) => break e,
                other => panic!("unexpected {other:?}"),
            }
        };
        eprintln!(
            "published {N} alerts in {took:?}; the slow subscriber got {} before {end:?}",
            delivered.len()
        );
        assert_eq!(end.reason, v1::StreamEndReason::Lagged as i32, "{end:?}");
        assert!(end.dropped > 0);
        assert!(delivered.len() + end.dropped as usize <= N);
        assert!(delivered.len() < N);
        assert!(
            slow.message().await.unwrap().is_none(),
            "the end is the last message"
        );
        // Delivered in order, and the resume cursor continues right after the last one.
        let want: Vec<String> = alerts[..delivered.len()]
            .iter()
            .map(|a| a.id.clone())
            .collect();
        assert_eq!(delivered, want);
        let mut missed = 0usize;
        let mut cursor = end.resume_cursor.clone();
        assert!(!cursor.is_empty());
        let mut first = None;
        loop {
            let p = ev
                .query_events(v1::QueryEventsRequest {
                    filter: filter.clone(),
                    cursor: cursor.clone(),
                    limit: 10_000,
                    ..Default::default()
                })
                .await
                .expect("resume with QueryEvents")
                .into_inner();
            if first.is_none() {
                first = p.items.first().cloned();
            }
            missed += p.items.len();
            if p.next_cursor.is_empty() {
                break;
            }
            cursor = p.next_cursor;
        }
        assert_eq!(missed, N - delivered.len());
        match first.and_then(|i| i.item) {
            Some(v1::feed_item::Item::Alert(a)) => assert_eq!(a.id, alerts[delivered.len()].id),
            other => panic!("unexpected {other:?}"),
        }

        // Counted, and reported by GetInfo.
        let stats = env.server.as_ref().unwrap().stats();
        assert_eq!(stats.subscriptions_lagged.load(Relaxed), 1);
        assert_eq!(stats.subscriber_dropped.load(Relaxed), end.dropped);
        let info = NodeServiceClient::new(ch.clone())
            .get_info(v1::GetInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        let lag = info
            .drops
            .iter()
            .find(|d| d.class_name == "subscriber_lagged")
            .expect("a subscriber_lagged counter");
        assert_eq!(lag.count, end.dropped);

        // Incidents over the 20k stored alerts (computed once, then cached).
        let mut inc = IncidentServiceClient::new(ch.clone()).max_decoding_message_size(64 << 20);
        for round in 0..2 {
            let t = Instant::now();
            let l = inc
                .list_incidents(v1::ListIncidentsRequest {
                    filter: filter.clone(),
                    ..Default::default()
                })
                .await
                .expect("incidents over 20k alerts")
                .into_inner();
            let full = inc
                .get_incident(v1::GetIncidentRequest {
                    id: l.incidents[0].id.clone(),
                })
                .await
                .expect("the 20k-alert incident")
                .into_inner();
            eprintln!(
                "round {round}: {} incident(s), {} alerts, in {:?}",
                l.incidents.len(),
                full.alert_ids.len(),
                t.elapsed()
            );
            assert_eq!(full.alert_ids.len(), N);
            assert!(t.elapsed() < Duration::from_secs(30));
        }

        // The subscription slot was released: a new one fits.
        ev.subscribe_events(v1::SubscribeEventsRequest::default())
            .await
            .expect("a slot is free again");
    });
    env.stop();
}

#[test]
fn live_alerts_reach_subscribers_and_shutdown_ends_the_stream() {
    let mut env = Env::start("live", Opts::default());
    let seeded = env.seed();
    let ch = env.channel();
    let miner = env.dir.join("xmrig");
    std::fs::copy("/bin/true", &miner).unwrap();
    let mut stream = env.rt.block_on(async {
        let mut ev = EventServiceClient::new(ch.clone()).max_decoding_message_size(64 << 20);
        // Backfill: the stored alerts of the namespace, then live ones.
        let mut s = ev
            .subscribe_events(v1::SubscribeEventsRequest {
                filter: format!("k8s.ns.name = {NS} or proc.name = xmrig"),
                since_ns: now_ns() - 3600 * SEC,
                ..Default::default()
            })
            .await
            .expect("subscribe")
            .into_inner();
        let mut stored = Vec::new();
        loop {
            match s.message().await.unwrap().unwrap().msg {
                Some(Msg::Item(it)) => match it.item {
                    Some(v1::feed_item::Item::Alert(a)) => stored.push(a.id),
                    other => panic!("{other:?}"),
                },
                Some(Msg::BackfillDone(d)) => {
                    assert_eq!(d.count as usize, stored.len());
                    assert!(!d.truncated);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            stored.len(),
            seeded.by_workload[0].len() + seeded.by_workload[1].len()
        );
        s
    });

    // A real exec of a known miner's name, seen by the eBPF sensor.
    let st = std::process::Command::new(&miner)
        .args(["--url", "stratum+tcp://198.51.100.1:3333"])
        .status()
        .unwrap();
    assert!(st.success());
    let a = env.rt.block_on(async {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), stream.message())
                .await
                .expect("the live alert arrives")
                .unwrap()
                .unwrap();
            if let Some(Msg::Item(v1::FeedItem {
                item: Some(v1::feed_item::Item::Alert(a)),
            })) = m.msg
            {
                break a;
            }
        }
    });
    assert_eq!(a.rule, "Malware - Known Cryptominer Executed");
    let p = a.event.as_ref().unwrap().process.as_ref().unwrap();
    assert_eq!(p.name.as_ref().unwrap().raw, b"xmrig");
    assert_eq!(a.node, NODE);

    // Shutdown: the stream ends with SHUTDOWN, then closes.
    let server = env.server.take().unwrap();
    let stop = env.rt.spawn(server.shutdown());
    env.rt.block_on(async {
        let end = loop {
            let m = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the stream ends at shutdown")
                .unwrap()
                .expect("an end message");
            if let Some(Msg::End(e)) = m.msg {
                break e;
            }
        };
        assert_eq!(end.reason, v1::StreamEndReason::Shutdown as i32);
        // After the last alert delivered (the exec raised two: miner and stratum).
        assert!(
            end.resume_cursor
                .starts_with(&format!("ev1:{}:", a.time_ns)),
            "{end:?}"
        );
        tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .expect("shutdown completes")
            .unwrap();
    });
    assert!(!env.socket.exists());
    env.stop();
}

#[test]
fn reflection_lists_the_services_and_health_says_serving() {
    let env = Env::start(
        "reflect",
        Opts {
            token: Some(TOKEN.into()),
            ..Opts::default()
        },
    );
    let ch = env.channel();
    env.rt.block_on(async {
        use tonic_health::pb::{
            health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
        };
        use tonic_reflection::pb::v1::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        // Health needs no token (probes), and says SERVING for every service.
        let mut h = HealthClient::new(ch.clone());
        for s in saker_proto::SERVICE_NAMES.iter().copied().chain([""]) {
            let r = h
                .check(HealthCheckRequest { service: s.into() })
                .await
                .unwrap_or_else(|e| panic!("health of {s:?}: {e}"))
                .into_inner();
            assert_eq!(r.status, ServingStatus::Serving as i32, "{s}");
        }
        // Reflection needs the token like the API.
        let req = |m: MessageRequest| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        };
        let mut rc = ServerReflectionClient::new(ch.clone());
        let r = rc
            .server_reflection_info(tokio_stream::iter([req(MessageRequest::ListServices(
                String::new(),
            ))]))
            .await;
        assert_eq!(r.err().map(|e| e.code()), Some(Code::Unauthenticated));
        let token: tonic::metadata::MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
        let mut rc = ServerReflectionClient::with_interceptor(
            ch.clone(),
            move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("authorization", token.clone());
                Ok(r)
            },
        );
        let mut s = rc
            .server_reflection_info(tokio_stream::iter([
                req(MessageRequest::ListServices(String::new())),
                req(MessageRequest::FileContainingSymbol(
                    "saker.v1.EventService".into(),
                )),
            ]))
            .await
            .unwrap()
            .into_inner();
        let mut names = Vec::new();
        let mut files = 0;
        while let Some(m) = s.message().await.unwrap() {
            match m.message_response.unwrap() {
                MessageResponse::ListServicesResponse(l) => {
                    names.extend(l.service.into_iter().map(|s| s.name))
                }
                MessageResponse::FileDescriptorResponse(f) => {
                    files += f.file_descriptor_proto.len()
                }
                other => panic!("{other:?}"),
            }
        }
        for want in saker_proto::SERVICE_NAMES.iter().copied().chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]) {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert!(files >= 1);
    });
    env.stop();
}
