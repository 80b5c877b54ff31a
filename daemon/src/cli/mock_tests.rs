//! The CLI end to end against the stand-in server (`mock`): connection over a unix
//! socket, token, fan-out with a down node, streams, and the exit codes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use saker_proto::v1::{GetInfoRequest, GetStatsRequest};
use tonic::Code;

use super::args::Cli;
use super::commands;
use super::conn::{self, ConnOpts, Node, Target};
use super::exit::{combine, Exit};
use super::fanout;
use super::mock;

async fn started(node: &str, token: bool) -> PathBuf {
    let p = mock::socket_path(node);
    mock::serve(&p, node, token).await;
    p
}

fn opts(token: Option<&str>) -> ConnOpts {
    ConnOpts {
        token: token.map(String::from),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn run(args: &[&str]) -> Exit {
    let mut v = vec!["saker"];
    v.extend_from_slice(args);
    commands::run(Cli::try_parse_from(v).expect("valid arguments")).await
}

#[tokio::test]
async fn bearer_token_reaches_the_server() {
    let p = started("tok", true).await;
    let mut api = conn::connect(&Target::Unix(p.clone()), &opts(Some(mock::TOKEN)))
        .await
        .unwrap();
    let info = api
        .node
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.node, "tok");
    let mut api = conn::connect(&Target::Unix(p.clone()), &opts(None))
        .await
        .unwrap();
    let e = api.node.get_info(GetInfoRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let s = p.to_str().unwrap();
    assert_eq!(
        run(&["--socket", s, "--token", mock::TOKEN, "node"]).await,
        Exit::Ok
    );
    assert_eq!(run(&["--socket", s, "node"]).await, Exit::Server);
    let _ = std::fs::remove_file(p);
}

#[tokio::test]
async fn fan_out_survives_a_down_node() {
    let a = started("a", false).await;
    let b = started("b", false).await;
    let nodes = vec![
        Node {
            label: "a".into(),
            target: Target::Unix(a.clone()),
        },
        Node {
            label: "down".into(),
            target: Target::Unix("/nonexistent/saker.sock".into()),
        },
        Node {
            label: "b".into(),
            target: Target::Unix(b.clone()),
        },
    ];
    let results = fanout::run(
        &nodes,
        &std::sync::Arc::new(opts(None)),
        |mut api| async move {
            Ok(api
                .events
                .get_stats(GetStatsRequest::default())
                .await?
                .into_inner())
        },
    )
    .await;
    assert_eq!(
        results.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(),
        ["a", "down", "b"]
    );
    assert!(results[0].result.is_ok() && results[2].result.is_ok());
    assert_eq!(
        results[1].result.as_ref().unwrap_err().exit(),
        Exit::Connection
    );
    assert_eq!(
        combine(results.iter().map(|r| r.result.as_ref().err())),
        Exit::Ok
    );
    let merged = fanout::merge_stats(
        results.into_iter().filter_map(|r| r.result.ok()).collect(),
        0,
    );
    assert_eq!(merged.total, 6);
    assert_eq!(merged.groups[0].count, 6);

    let nodes_arg = format!("{},/nonexistent/saker.sock,{}", a.display(), b.display());
    for cmd in [
        vec!["stats", "--by", "policy,severity"],
        vec!["events"],
        vec!["events", "--json"],
        vec!["incidents"],
        vec!["incident", "inc-0000000000000001"],
        vec!["node", "--json"],
    ] {
        let mut args = vec!["--nodes", nodes_arg.as_str()];
        args.extend(cmd.iter().copied());
        assert_eq!(run(&args).await, Exit::Ok, "{cmd:?}");
    }
    // A bad filter is a server error even when another node is down.
    assert_eq!(
        run(&["--nodes", &nodes_arg, "events", "--filter", "bad"]).await,
        Exit::Server
    );
    // Unknown incident everywhere reachable.
    assert_eq!(
        run(&["--nodes", &nodes_arg, "incident", "inc-nope"]).await,
        Exit::NotFound
    );
    // The assistant talks to one node.
    assert_eq!(
        run(&["--nodes", &nodes_arg, "ask", "hi"]).await,
        Exit::Usage
    );
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
}

#[tokio::test]
async fn exit_codes_of_one_node() {
    let p = started("n1", false).await;
    let s = p.to_str().unwrap();
    assert_eq!(
        run(&["--socket", s, "events", "--since", "1h", "-n", "5"]).await,
        Exit::Ok
    );
    assert_eq!(
        run(&["--socket", s, "events", "--filter", "bad"]).await,
        Exit::Server
    );
    assert_eq!(
        run(&["--socket", s, "stats", "--filter", "bad"]).await,
        Exit::Server
    );
    assert_eq!(
        run(&["--socket", s, "stats", "--by", "rule,rule"]).await,
        Exit::Usage
    );
    assert_eq!(
        run(&["--socket", s, "incident", "inc-0000000000000001"]).await,
        Exit::Ok
    );
    assert_eq!(
        run(&["--socket", s, "incident", "inc-unknown"]).await,
        Exit::NotFound
    );
    assert_eq!(
        run(&["--socket", s, "ask", "summarize", "the", "events"]).await,
        Exit::Ok
    );
    assert_eq!(
        run(&["--socket", s, "--json", "ask", "summarize"]).await,
        Exit::Ok
    );
    assert_eq!(
        run(&["--socket", s, "ask", "more", "--session", "s-gone"]).await,
        Exit::NotFound
    );
    assert_eq!(
        run(&["--socket", s, "ask", "x", "--filter", "bad"]).await,
        Exit::Server
    );
    assert_eq!(run(&["--socket", s, "explain", "n1-1-0"]).await, Exit::Ok);
    assert_eq!(
        run(&["--socket", s, "explain", "n1-9-9"]).await,
        Exit::NotFound
    );
    // The stream sends one item and a LAGGED end, then completes.
    assert_eq!(run(&["--socket", s, "events", "--follow"]).await, Exit::Ok);
    assert_eq!(
        run(&["--socket", s, "--json", "events", "--follow"]).await,
        Exit::Ok
    );
    assert_eq!(
        run(&["--socket", s, "events", "--follow", "--filter", "bad"]).await,
        Exit::Server
    );
    // Nothing listening.
    assert_eq!(
        run(&["--socket", "/nonexistent/saker.sock", "node"]).await,
        Exit::Connection
    );
    assert_eq!(
        run(&[
            "--nodes",
            "/nonexistent/a.sock,/nonexistent/b.sock",
            "events",
            "--follow"
        ])
        .await,
        Exit::Connection
    );
    // Usage errors found before connecting.
    assert_eq!(run(&["--addr", s, "--nodes", s, "node"]).await, Exit::Usage);
    assert_eq!(run(&["--addr", "ftp://x", "node"]).await, Exit::Usage);
    assert_eq!(
        run(&[
            "--addr",
            "https://127.0.0.1:1",
            "--cert",
            "/nonexistent",
            "--key",
            "/x",
            "node"
        ])
        .await,
        Exit::Usage
    );
    // https without a CA cannot verify the server.
    assert_eq!(
        run(&["--addr", "https://127.0.0.1:1", "node"]).await,
        Exit::Usage
    );
    assert_eq!(run(&["--nodes", "a,b", "node"]).await, Exit::Usage);
    let _ = std::fs::remove_file(p);
}

/// Makes a CA, a server certificate for localhost/127.0.0.1 and a client certificate
/// with the openssl command; `None` when openssl is not installed.
fn make_certs(dir: &std::path::Path) -> Option<()> {
    let script = r#"
set -e
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=saker-test-ca
openssl req $ec -keyout server.key -out server.csr -subj /CN=saker-node
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
openssl req $ec -keyout client.key -out client.csr -subj /CN=saker-cli
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
"#;
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    st.success().then_some(())
}

#[tokio::test]
async fn mutual_tls_over_tcp() {
    let dir = std::env::temp_dir().join(format!("saker-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if make_certs(&dir).is_none() {
        eprintln!("openssl is not available: mTLS test skipped");
        return;
    }
    let f = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let port = mock::serve_tls(
        "tls-node",
        &read("server.pem"),
        &read("server.key"),
        &read("ca.pem"),
    )
    .await;
    let addr = format!("https://127.0.0.1:{port}");
    let (ca, cert, key) = (f("ca.pem"), f("client.pem"), f("client.key"));
    let tls = [
        "--ca",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];

    let mut args = vec!["--addr", addr.as_str()];
    args.extend(tls);
    args.push("node");
    assert_eq!(run(&args).await, Exit::Ok);
    // By host name, and through --nodes with the name checked against the certificate.
    let by_name = format!("https://localhost:{port}");
    let mut args = vec!["--addr", by_name.as_str()];
    args.extend(tls);
    args.extend(["events", "--json"]);
    assert_eq!(run(&args).await, Exit::Ok);
    let nodes = format!("127.0.0.1:{port},127.0.0.1:1");
    let mut args = vec!["--nodes", nodes.as_str(), "--timeout", "2s"];
    args.extend(tls);
    args.push("stats");
    assert_eq!(run(&args).await, Exit::Ok);
    // A certificate for another name is refused.
    let mut args = vec![
        "--addr",
        addr.as_str(),
        "--tls-server-name",
        "other.example",
    ];
    args.extend(tls);
    args.push("node");
    assert_eq!(run(&args).await, Exit::Connection);
    // Without a client certificate the server refuses the connection.
    assert_eq!(
        run(&["--addr", &addr, "--ca", &ca, "node"]).await,
        Exit::Connection
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// For checking other clients by hand (e.g. tests/python/client.py): serves the mock on
/// $SAKER_MOCK_SOCKET for $SAKER_MOCK_SECS seconds (default 60).
///   SAKER_MOCK_SOCKET=/tmp/m.sock cargo test -p saker-daemon --bin saker serve_mock -- --ignored
#[tokio::test]
#[ignore]
async fn serve_mock_for_manual_checks() {
    let path = std::env::var("SAKER_MOCK_SOCKET").unwrap_or_else(|_| "/tmp/saker-mock.sock".into());
    let secs: u64 = std::env::var("SAKER_MOCK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    mock::serve(std::path::Path::new(&path), "mock-node", false).await;
    eprintln!("mock sakerd on {path} for {secs}s");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let _ = std::fs::remove_file(path);
}
