//! Round trips, filters against a brute-force evaluation, pagination, grouped counts.

mod common;

use common::*;
use saker_event::{Alert, BString};
use saker_store::{Cursor, EventQuery, GroupKey, Order, Query, Store, StoreError, WriterHandle};

fn open(dir: &tempfile::TempDir) -> Store {
    match Store::open(dir.path().join("alerts.db"), config()) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

fn send_all(w: &WriterHandle, alerts: &[Alert]) {
    for a in alerts {
        assert!(w.send(a.clone()), "queue full");
    }
    w.flush().expect("flush");
}

/// Like assert_eq on id lists, but reports the first difference instead of 1000 ids.
fn assert_ids(got: &[String], expected: &[String], what: &str) {
    if got == expected {
        return;
    }
    let i = got.iter().zip(expected).take_while(|(a, b)| a == b).count();
    panic!(
        "{what}: {} ids, expected {}; first difference at {i}: got {:?}, expected {:?}",
        got.len(),
        expected.len(),
        got.get(i),
        expected.get(i)
    );
}

/// Every page of `q`, following cursors.
fn all_pages(
    store: &Store,
    filter: Option<&str>,
    pred: bool,
    limit: usize,
    order: Order,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let mut q = Query::new().limit(limit).order(order).after(cursor.clone());
        if let Some(f) = filter {
            q = q.filter(f);
            if pred {
                q = q.predicate(predicate(f));
            }
        }
        let page = store
            .query_alerts(&q)
            .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        assert!(page.items.len() <= limit);
        out.extend(ids(&page.items));
        pages += 1;
        assert!(pages < 10_000, "pagination does not end");
        match page.next {
            Some(c) => {
                // A next cursor is only given when the page is full.
                assert_eq!(page.items.len(), limit);
                cursor = Some(c);
            }
            None => return out,
        }
    }
}

#[test]
fn hostile_strings_round_trip_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let w = store.writer();

    let mut evil = simple_alert("evil-1", BASE_NS);
    evil.event.event.process.comm = BString::from(HOSTILE);
    evil.event.ctx.proc.args = vec![
        BString::new(b"/tmp/\xff\xfe\x00bin".to_vec()),
        BString::from("\"double\" 'single' `tick` \\ \n\t\x1b[31m"),
    ];
    evil.rule = "Rule with 'quotes' and \"doubles\"; DELETE FROM alerts".into();
    evil.policy = Some("Drift Detection".into());
    evil.output_fields
        .insert("k'ey\"".into(), "v\u{0}al\u{feff}".into());
    let mut other = simple_alert("other-1", BASE_NS + 1);
    other.event.event.process.comm = BString::from("bash");
    send_all(&w, &[evil.clone(), other.clone()]);

    // Exact round trip, invalid UTF-8 and NUL bytes included.
    assert_eq!(store.get_alert("evil-1").expect("get"), Some(evil.clone()));
    assert_eq!(
        store.get_alert("other-1").expect("get"),
        Some(other.clone())
    );
    assert_eq!(
        store.get_alert("'; DROP TABLE alerts; --").expect("get"),
        None
    );

    // The hostile value as a filter value: a parameter, so it just matches.
    let page = store
        .query_alerts(&Query::new().filter(format!("proc.name = \"{HOSTILE}\"")))
        .expect("query");
    assert_eq!(ids(&page.items), vec!["evil-1"]);
    let page = store
        .query_alerts(
            &Query::new()
                .filter("rule contains \"; DELETE FROM alerts\" or proc.name = \"x' OR '1'='1\""),
        )
        .expect("query");
    assert_eq!(ids(&page.items), vec!["evil-1"]);
    // proc.exe is argv[0] decoded lossily.
    let page = store
        .query_alerts(&Query::new().filter("proc.exe startswith \"/tmp/\u{fffd}\u{fffd}\""))
        .expect("query");
    assert_eq!(ids(&page.items), vec!["evil-1"]);
    assert_eq!(store.count(&Query::new()).expect("count"), 2);
    store.close().expect("close");
}

#[test]
fn column_fields_match_a_known_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut a = simple_alert("known", BASE_NS + 5);
    let meta = a.event.ctx.container.get_or_insert_with(Default::default);
    meta.namespace = Some("risk-10-aws-bedrock-java".into());
    meta.pod_name = Some("bedrock-0".into());
    meta.workload = Some("bedrock".into());
    meta.image = Some("ghcr.io/x/java:21".into());
    meta.image_repository = Some("ghcr.io/x/java".into());
    a.event.ctx.container_id = Some("0123456789abcdef0123".into());
    a.event.ctx.node = "node-7".into();
    a.event.ctx.cluster = "eks-prod".into();
    a.event.event.process.comm = BString::from("java");
    a.event.event.process.pid = 4242;
    a.event.event.process.ppid = 1;
    a.event.ctx.proc.args = vec![BString::from("/usr/bin/java"), BString::from("-jar")];
    a.rule = "Drift".into();
    a.policy = Some("Drift Detection".into());
    a.severity = saker_event::Severity::Critical;
    a.mitre_techniques = vec!["T1059.004".into(), "T1105".into()];
    let w = store.writer();
    send_all(&w, &[a]);
    for f in [
        "alert.id = known",
        "evt.time = 1760000000000000005",
        "rule = Drift",
        "policy = \"Drift Detection\"",
        "priority = CRITICAL",
        "severity >= error and severity < alert",
        "node.name = node-7",
        "kubernetes.cluster.name = eks-prod",
        "container.id = 0123456789ab",
        "container.image = ghcr.io/x/java:21",
        "container.image.repository = ghcr.io/x/java",
        "k8s.ns.name = risk-10-aws-bedrock-java",
        "k8s.pod.name = bedrock-0",
        "k8s.workload.name = bedrock",
        "proc.name = java",
        "proc.exe = /usr/bin/java",
        "proc.pid = 4242",
        "proc.ppid = 1",
        "mitre.technique = T1105",
    ] {
        assert_eq!(store.count(&Query::new().filter(f)).expect(f), 1, "{f}");
        assert!(saker_store::SqlFilter::translate(f).expect(f).exact, "{f}");
    }
    for f in [
        "container.id = host",
        "proc.exe = java",
        "mitre.technique = T1059",
    ] {
        assert_eq!(store.count(&Query::new().filter(f)).expect(f), 0, "{f}");
    }
}

/// Filters that translate to SQL exactly.
const SQL_FILTERS: &[&str] = &[
    "k8s.ns.name=risk-10-aws-bedrock-java and policy=\"Drift Detection\"",
    "k8s.ns.name != default",
    "not k8s.ns.name = default",
    "k8s.ns.name = 'ns-\"quoted\"'",
    "policy in (\"Drift Detection\", \"Runtime Threats\") or severity >= CRITICAL",
    "not (rule contains shell or proc.name startswith py)",
    "proc.name endswith sh and not container.id = host",
    "container.id = host",
    "mitre.technique = T1059 and not mitre.technique in (T1105, T1496)",
    "mitre.technique != T1611",
    "not mitre.technique != T1611",
    "mitre.technique startswith T10 or mitre.technique endswith .004",
    "mitre.technique exists and not mitre.technique contains 9",
    "proc.pid < 1000 or proc.ppid >= 4000",
    "proc.pid in (1, 2, 3, 100, 200, 0x100) or evt.time > 1760000000000150000",
    "evt.time <= 1760000000000010000 or evt.time >= 18446744073709551615",
    "evt.time < 18446744073709551615 and proc.pid > -5",
    "priority < WARNING",
    "priority in (ERROR, critical, Info)",
    "severity != NOTICE",
    "proc.exe exists and not proc.exe icontains BIN",
    "proc.exe icontains /usr/bin",
    "proc.exe = \"\"",
    "container.image.repository pmatch (docker.io/library, /x) and container.image endswith ':1.25'",
    "container.image pmatch (docker.io/library/nginx:1.25/)",
    "proc.exe pmatch (/)",
    "k8s.pod.name glob \"payments-pod-*\" or k8s.workload.name iglob \"*WEB*\"",
    "k8s.pod.name glob \"*-pod-?\"",
    "proc.name = \"'; DROP TABLE alerts; --\"",
    "proc.name contains \"\u{fffd}\"",
    "(k8s.ns.name in (payments, kube-system) and (severity > WARNING or rule startswith Drift)) or not node.name = node-a",
    "kubernetes.cluster.name = prod and container.image endswith \":1.25\"",
    "alert.id startswith \"node-a-00\"",
    "k8s.ns.name in ()",
    "not k8s.ns.name in ()",
    "proc.exe endswith \"\" and proc.name startswith \"\" and rule contains \"\"",
    "not not k8s.ns.name exists",
    "policy exists and not policy = \"Drift Detection\"",
    "not (k8s.workload.name = api-web or k8s.workload.name != batch-web)",
    "k8s.ns.name intersects (default, payments) and priority exists",
];

/// Filters with fields that are not columns: SQL pre-filter plus predicate.
const PREDICATE_FILTERS: &[&str] = &[
    "evt.type = execve and k8s.ns.name = payments",
    "evt.type in (connect, openat) or severity >= ERROR",
    "not (proc.cmdline contains \"-c\" and rule contains shell)",
    "proc.name glob \"[bc]*\"",
    "not (k8s.ns.name = default or evt.type = connect)",
];

fn generated_store(dir: &tempfile::TempDir) -> (Store, Vec<Alert>) {
    let store = open(dir);
    let alerts = gen_alerts(1000, 7);
    send_all(&store.writer(), &alerts);
    (store, alerts)
}

#[test]
fn filters_agree_with_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, alerts) = generated_store(&dir);
    assert_eq!(store.count(&Query::new()).expect("count"), 1000);
    let mut nonempty = 0;
    for &f in SQL_FILTERS {
        let sql = saker_store::SqlFilter::translate(f).expect(f);
        assert!(sql.exact, "{f} should be exact SQL: {sql:?}");
        let expected = ids(brute_force(&alerts, f));
        nonempty += usize::from(!expected.is_empty() && expected.len() < 1000);
        let got = all_pages(&store, Some(f), false, 1000, Order::Asc);
        assert_ids(&got, &expected, &format!("filter {f}"));
        assert_eq!(
            store.count(&Query::new().filter(f)).expect(f),
            expected.len() as u64,
            "count {f}"
        );
    }
    // The generated data exercises the filters (not everything empty or full).
    assert!(
        nonempty >= SQL_FILTERS.len() - 6,
        "only {nonempty} selective filters"
    );

    for &f in PREDICATE_FILTERS {
        let sql = saker_store::SqlFilter::translate(f).expect(f);
        assert!(!sql.exact, "{f}");
        // Without the predicate: a typed error naming the fields.
        match store.count(&Query::new().filter(f)) {
            Err(StoreError::NeedsPredicate { fields }) => assert!(!fields.is_empty()),
            other => panic!("{f}: {other:?}"),
        }
        let expected = ids(brute_force(&alerts, f));
        assert!(!expected.is_empty(), "{f}");
        let got = all_pages(&store, Some(f), true, 1000, Order::Asc);
        assert_ids(&got, &expected, &format!("filter {f}"));
        let n = store
            .count(&Query::new().filter(f).predicate(predicate(f)))
            .expect(f);
        assert_eq!(n, expected.len() as u64, "count {f}");
    }
}

#[test]
fn pagination_covers_every_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, alerts) = generated_store(&dir);
    for (f, pred) in [
        (None, false),
        (Some("k8s.ns.name != default"), false),
        (Some("mitre.technique = T1059 or priority >= ERROR"), false),
        (Some("evt.type = execve or rule = \"Reverse shell\""), true),
    ] {
        let expected = match f {
            Some(f) => ids(brute_force(&alerts, f)),
            None => ids(brute_force(&alerts, "alert.id exists")),
        };
        for limit in [1, 37, 1000] {
            if limit == 1 && f.is_some() {
                continue; // one full pass at limit 1 is enough
            }
            let asc = all_pages(&store, f, pred, limit, Order::Asc);
            assert_ids(&asc, &expected, &format!("{f:?} limit {limit}"));
            let mut desc = all_pages(&store, f, pred, limit, Order::Desc);
            desc.reverse();
            assert_ids(&desc, &expected, &format!("{f:?} limit {limit} desc"));
        }
    }
    // Time window: since inclusive, until exclusive.
    let (since, until) = (BASE_NS + 100_000, BASE_NS + 200_000);
    let mut expected: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.time_ns >= since && a.time_ns < until)
        .collect();
    expected.sort_by(|x, y| (x.time_ns, &x.id).cmp(&(y.time_ns, &y.id)));
    let q = Query::new().since(since).until(until).limit(10_000);
    assert_eq!(
        ids(&store.query_alerts(&q).expect("window").items),
        ids(expected.iter().copied())
    );
    assert!(matches!(
        "nope".parse::<Cursor>(),
        Err(StoreError::BadCursor(_))
    ));
}

#[test]
fn grouped_counts_agree_with_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, alerts) = generated_store(&dir);
    let keysets: &[&[GroupKey]] = &[
        &[GroupKey::Policy],
        &[GroupKey::Namespace, GroupKey::Severity],
        &[GroupKey::Technique],
        &[GroupKey::Rule, GroupKey::Technique],
        &[GroupKey::Workload, GroupKey::Node],
    ];
    for (f, pred) in [
        ("alert.id exists", false),
        (
            "policy in (\"Drift Detection\", \"Runtime Threats\") or severity >= CRITICAL",
            false,
        ),
        ("evt.type = execve and not k8s.ns.name = payments", true),
    ] {
        let matching = brute_force(&alerts, f);
        for keys in keysets {
            let mut q = Query::new().filter(f);
            if pred {
                q = q.predicate(predicate(f));
            }
            let got = store.grouped_counts(&q, keys).expect("grouped");
            assert_eq!(got, brute_groups(&matching, keys), "{f} by {keys:?}");
        }
    }
    // No keys: one group with the total.
    let total = store.grouped_counts(&Query::new(), &[]).expect("total");
    assert_eq!(total.len(), 1);
    assert_eq!(total[0].count, 1000);
}

#[test]
fn filter_errors_are_typed_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    match store.count(&Query::new().filter("k8s.ns.name = x and\n  nosuch.field = 1")) {
        Err(StoreError::Filter(saker_rules::FilterError::Compile(
            saker_rules::CompileError::UnknownField { name, pos },
        ))) => assert_eq!((name.as_str(), pos.line, pos.col), ("nosuch.field", 2, 3)),
        other => panic!("{other:?}"),
    }
    match store.query_alerts(&Query::new().filter("rule = 'unterminated")) {
        Err(StoreError::Filter(saker_rules::FilterError::Syntax(e))) => {
            assert_eq!(
                (e.line, e.col, e.message.as_str()),
                (1, 8, "unterminated string")
            )
        }
        other => panic!("{other:?}"),
    }
    match store.count(&Query::new().filter("proc.pid = abc")) {
        Err(StoreError::Filter(saker_rules::FilterError::Compile(
            saker_rules::CompileError::BadValue { .. },
        ))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_events_links_and_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let w = store.writer();
    let cid = "c".repeat(64);
    // Event 7 arrives after the alert that links it; 99 never arrives.
    for (seq, t) in [(1u64, 10i64), (2, 30), (5, 20), (6, 40)] {
        assert!(w.send_event(event(seq, BASE_NS + t, Some(&cid), 100 + seq as u32)));
    }
    assert!(w.send_with_context(simple_alert("al-1", BASE_NS + 50), vec![2, 5, 7, 99]));
    assert!(w.send_event(event(7, BASE_NS + 5, Some(&cid), 107)));
    assert!(w.send_event(event(8, BASE_NS + 5, None, 1)));
    // Same id again: the first one stays.
    let mut dup = simple_alert("al-1", BASE_NS + 60);
    dup.rule = "changed".into();
    assert!(w.send(dup));
    // Re-enriched event replaces the stored one.
    let mut e6 = event(6, BASE_NS + 40, Some(&cid), 106);
    e6.ctx.meta_pending = true;
    assert!(w.send_event(e6.clone()));
    w.flush().expect("flush");

    let ctx = store.context_events("al-1").expect("context");
    let seqs: Vec<u64> = ctx.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![7, 5, 2], "time order, missing 99 skipped");
    assert_eq!(ctx[1], event(5, BASE_NS + 20, Some(&cid), 105));
    assert!(store.context_events("nope").expect("context").is_empty());
    let stored = store.get_alert("al-1").expect("get").expect("present");
    assert_ne!(stored.rule, "changed");

    let by_container = store
        .events_by(&EventQuery {
            container_id: Some(cid.clone()),
            since_ns: Some(BASE_NS + 10),
            ..EventQuery::default()
        })
        .expect("events");
    assert_eq!(
        by_container.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 5, 2, 6]
    );
    assert_eq!(by_container[3], e6);
    let host = store
        .events_by(&EventQuery {
            host_only: true,
            ..EventQuery::default()
        })
        .expect("events");
    assert_eq!(host.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8]);
    let by_pid = store
        .events_by(&EventQuery {
            pid: Some(105),
            kind: Some("clone".into()),
            ..EventQuery::default()
        })
        .expect("events");
    assert_eq!(by_pid.len(), 1);

    let st = w.stats();
    assert_eq!(
        (
            st.alerts_committed,
            st.events_committed,
            st.links_committed,
            st.duplicate_alerts
        ),
        (1, 7, 4, 1)
    );
    assert_eq!(
        (st.dropped_alerts, st.write_errors, st.failed_rows),
        (0, 0, 0)
    );
}

#[test]
fn full_queue_drops_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = match Store::open(
        dir.path().join("a.db"),
        saker_store::StoreConfig {
            channel_capacity: 4,
            // Long batches: the writer holds its batch while the queue fills.
            flush_interval: std::time::Duration::from_millis(300),
            batch_max: 10_000,
            ..config()
        },
    ) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let w = store.writer();
    let alerts = gen_alerts(200, 3);
    let accepted = alerts.iter().filter(|a| w.send((*a).clone())).count() as u64;
    w.flush().expect("flush");
    let st = w.stats();
    assert!(st.dropped_alerts > 0, "{st:?}");
    assert_eq!(st.dropped_alerts + accepted, 200);
    assert_eq!(st.alerts_committed, accepted);
    assert_eq!(store.count(&Query::new()).expect("count"), accepted);
    // After close, sends are refused and counted; queries still work.
    let s2 = store.clone();
    store.close().expect("close");
    assert!(!w.send(simple_alert("late", BASE_NS)));
    assert!(matches!(w.flush(), Err(StoreError::WriterGone)));
    assert_eq!(s2.count(&Query::new()).expect("count"), accepted);
}

#[test]
fn reopen_keeps_data_and_checks_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/alerts.db");
    let alerts = gen_alerts(50, 11);
    {
        let store = Store::open(&path, config()).expect("open");
        send_all(&store.writer(), &alerts);
        store.close().expect("close");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let store = Store::open(&path, config()).expect("reopen");
    assert_eq!(store.count(&Query::new()).expect("count"), 50);
    drop(store);

    // A newer schema is refused; so is a foreign SQLite file.
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.pragma_update(None, "user_version", saker_store::SCHEMA_VERSION + 1)
        .expect("bump");
    drop(conn);
    match Store::open(&path, config()) {
        Err(StoreError::SchemaTooNew { found, .. }) => {
            assert_eq!(found, saker_store::SCHEMA_VERSION + 1)
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).expect("raw");
    conn.execute_batch("CREATE TABLE t(x);").expect("create");
    drop(conn);
    assert!(matches!(
        Store::open(&other, config()),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn a_bad_row_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let w = store.writer();
    assert!(w.send(simple_alert("good-1", BASE_NS)));
    // SQLite integers are i64: this sequence number cannot be stored.
    assert!(w.send_event(event(u64::MAX, BASE_NS, None, 1)));
    assert!(w.send_event(event(3, BASE_NS, None, 1)));
    match w.flush() {
        Err(StoreError::WriteFailed {
            rows: 1,
            disk_full: false,
            message,
        }) => {
            assert!(message.contains("out of range"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The rest of the batch is committed; the next flush is clean.
    assert!(store.get_alert("good-1").expect("get").is_some());
    assert_eq!(
        store
            .events_by(&EventQuery::default())
            .expect("events")
            .len(),
        1
    );
    let st = w.stats();
    assert_eq!(
        (
            st.failed_rows,
            st.write_errors,
            st.alerts_committed,
            st.events_committed
        ),
        (1, 0, 1, 1)
    );
    w.flush().expect("clean flush");
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Store>();
    check::<WriterHandle>();
    fn send<T: Send + 'static>() {}
    send::<Query>();
}

#[test]
fn the_daemons_extra_fields_go_to_the_predicate() {
    let mut reg = saker_rules::saker_fields();
    reg.register(saker_rules::FieldDef::new(
        "proc.exe.sha256",
        saker_rules::FieldType::Str,
        "hash",
    ))
    .expect("register");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path().join("a.db"),
        saker_store::StoreConfig {
            fields: Some(std::sync::Arc::new(reg)),
            ..config()
        },
    )
    .expect("open");
    let alerts = gen_alerts(300, 13);
    send_all(&store.writer(), &alerts);
    let f = "proc.exe.sha256 exists or k8s.ns.name = payments";
    match store.count(&Query::new().filter(f)) {
        Err(StoreError::NeedsPredicate { fields }) => assert_eq!(fields, vec!["proc.exe.sha256"]),
        other => panic!("{other:?}"),
    }
    // No alert has a hash: the filter is the namespace check.
    let pred = predicate("k8s.ns.name = payments");
    let n = store
        .count(&Query::new().filter(f).predicate(pred))
        .expect("count");
    assert_eq!(
        n,
        brute_force(&alerts, "k8s.ns.name = payments").len() as u64
    );
    assert!(n > 0);
    // The default registry does not know the field.
    let plain = open(&tempfile::tempdir().expect("tempdir"));
    assert!(matches!(
        plain.count(&Query::new().filter(f)),
        Err(StoreError::Filter(saker_rules::FilterError::Compile(
            saker_rules::CompileError::UnknownField { .. }
        )))
    ));
}

#[test]
fn an_open_reader_does_not_block_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("alerts.db");
    let store = Store::open(&path, config()).expect("open");
    let w = store.writer();
    send_all(&w, &gen_alerts(10, 1));
    // A reader inside a transaction holds its snapshot...
    let reader = rusqlite::Connection::open(&path).expect("raw");
    reader.execute_batch("BEGIN").expect("begin");
    let n: i64 = reader
        .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 10);
    // ...while the writer commits more (flush would hang if it were blocked).
    let start = std::time::Instant::now();
    let more: Vec<Alert> = gen_alerts(510, 2).into_iter().skip(10).collect();
    send_all(&w, &more);
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(store.count(&Query::new()).expect("count"), 510);
    let n: i64 = reader
        .query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 10, "the reader keeps its snapshot");
    reader.execute_batch("COMMIT").expect("commit");
}
