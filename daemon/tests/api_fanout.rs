//! Cluster fan-out: three real daemons (eBPF sensor, rules, store, API over mTLS TCP) on
//! 127.0.0.2, 127.0.0.3 and 127.0.0.4, asked at once by the `saker` CLI with `--nodes`:
//! stats are summed, events merged by time, incidents listed with their node, and a node
//! that is down is reported without failing the others.

mod api_support;

use std::net::Ipv4Addr;

use api_support::*;

#[test]
fn three_nodes_are_queried_at_once_and_a_down_node_is_reported() {
    require_root();
    let certs = Certs::make(&temp_dir("fanout-certs").join("tls"));
    let envs: Vec<Env> = (2..=4u8)
        .map(|i| {
            Env::start(
                &format!("fanout-{i}"),
                Opts {
                    tls: true,
                    node: Some(format!("node-{i}")),
                    tcp_ip: Some(Ipv4Addr::new(127, 0, 0, i)),
                    certs: Some(certs.clone()),
                    ..Opts::default()
                },
            )
        })
        .collect();
    let seeded: Vec<Seeded> = envs.iter().map(|e| e.seed()).collect();
    let nodes: Vec<String> = envs
        .iter()
        .map(|e| format!("https://{}", e.tcp.unwrap()))
        .collect();
    let base = |extra: &[&str]| {
        let mut a = vec![
            "--nodes".to_string(),
            nodes.join(","),
            "--ca".into(),
            certs.ca.display().to_string(),
            "--cert".into(),
            certs.client_cert.display().to_string(),
            "--key".into(),
            certs.client_key.display().to_string(),
            "--json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = base(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        saker(&refs)
    };

    // Stats: the three nodes' totals summed.
    let one_node_total = seeded[0].alerts.len() as u64;
    let o = run(&["stats", "--by", "policy"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // One line per node, then the merged line (which lists the nodes it covers).
    let lines = json_lines(&o);
    let total = |l: &serde_json::Value| {
        l["stats"]["total"]
            .as_str()
            .and_then(|t| t.parse::<u64>().ok())
    };
    let per_node: Vec<u64> = lines
        .iter()
        .filter(|l| l.get("node").is_some())
        .filter_map(total)
        .collect();
    assert_eq!(per_node, vec![one_node_total; 3]);
    let merged = lines
        .iter()
        .find(|l| l.get("nodes").is_some())
        .expect("a merged line");
    assert_eq!(merged["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(total(merged), Some(3 * one_node_total));

    // Events: every node's alerts, merged in time order.
    let o = run(&["events", "-n", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    let alerts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("alert").is_some()).collect();
    assert_eq!(alerts.len() as u64, 3 * one_node_total, "{}", stdout(&o));
    let times: Vec<i64> = alerts
        .iter()
        .map(|l| {
            l["alert"]["time_ns"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "merged by time");

    // Incidents: listed with their node.
    let o = run(&["incidents"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut from: Vec<String> = json_lines(&o)
        .iter()
        .filter(|l| l.get("incident").is_some())
        .filter_map(|l| l["node"].as_str().map(str::to_string))
        .collect();
    from.sort();
    // The seeded mission has three workloads: three incidents per node.
    let mut want: Vec<String> = nodes.iter().flat_map(|n| vec![n.clone(); 3]).collect();
    want.sort();
    assert_eq!(
        from, want,
        "every node's incidents, each listed with its node"
    );

    // One node down: reported, the others still answer.
    let mut envs = envs;
    let down = envs.pop().unwrap();
    let down_addr = format!("https://{}", down.tcp.unwrap());
    down.stop();
    let o = run(&["stats"]);
    assert_eq!(code(&o), 0, "a down node is not fatal: {}", stderr(&o));
    let out = stdout(&o) + &stderr(&o);
    assert!(
        out.contains(&down_addr) || out.contains("127.0.0.4"),
        "the down node is reported: {out}"
    );
    for e in envs {
        e.stop();
    }
}
