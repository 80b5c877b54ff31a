//! The independent Python client (tests/python/client.py, grpcio) against the real
//! server: unix socket, mutual TLS over TCP, a client without a certificate refused,
//! reflection, the bearer token and the hostile inputs (tests/python/test_api.py).
//!
//! Needs `python3` with the `venv` module (Debian: python3, python3-venv) and PyPI access
//! the first time: the venv is made under the target dir and reused while
//! tests/python/requirements.txt is unchanged. Stubs are generated at test time (gen.sh).
//! Runs as root (the daemon loads its eBPF sensor).

mod api_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use api_support::*;
use saker::api::{ApiConfig, ApiServer};

fn python_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python"))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv with requirements.txt installed (made once, kept under the target dir).
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("saker-api-venv");
    let req = python_dir().join("requirements.txt");
    let want = std::fs::read_to_string(&req).unwrap();
    let stamp = dir.join(".saker-requirements");
    let python = dir.join("bin/python");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&want) {
        return python;
    }
    let v = Command::new("python3").arg("--version").output();
    assert!(
        v.is_ok_and(|o| o.status.success()),
        "python3 is needed for the Python client tests (Debian: python3 python3-venv)"
    );
    run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&dir),
        "creating the venv (Debian: python3-venv)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&req),
        "pip install -r tests/python/requirements.txt (needs PyPI)",
    );
    std::fs::write(&stamp, want).unwrap();
    python
}

#[test]
fn python_client_against_the_real_server() {
    let python = venv();
    let env = Env::start(
        "py",
        Opts {
            tls: true,
            ..Opts::default()
        },
    );
    let seeded = env.seed();

    // A second API on the same daemon that requires a token.
    let token_socket = env.dir.join("run/token.sock");
    let token_server = env
        .rt
        .block_on(ApiServer::start(
            env.daemon.clone(),
            assistant(),
            ApiConfig {
                socket: Some(token_socket.clone()),
                token: Some(TOKEN.into()),
                ..Default::default()
            },
        ))
        .expect("the token server starts");

    let stubs = env.dir.join("stubs");
    run(
        Command::new("sh")
            .arg(python_dir().join("gen.sh"))
            .arg(&stubs)
            .env("PYTHON", &python),
        "generating the Python stubs (gen.sh)",
    );
    let expect = serde_json::json!({
        "node": NODE,
        "cluster": CLUSTER,
        "namespace": NS,
        "alert_ids": seeded.alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        "ns_alerts": seeded.by_workload[0].len() + seeded.by_workload[1].len(),
        "hostile_id": seeded.hostile_id,
        "prevented_id": seeded.prevented_id,
    });
    let expect_file = env.dir.join("expect.json");
    std::fs::write(&expect_file, expect.to_string()).unwrap();

    let out = Command::new(&python)
        .args(["-m", "unittest", "-v", "test_api"])
        .current_dir(python_dir())
        .env("SAKER_STUBS", &stubs)
        .env("SAKER_SOCKET", &env.socket)
        .env(
            "SAKER_TCP",
            format!("127.0.0.1:{}", env.tcp.unwrap().port()),
        )
        .env("SAKER_TLS_DIR", &env.certs.as_ref().unwrap().dir)
        .env("SAKER_TOKEN_SOCKET", &token_socket)
        .env("SAKER_TOKEN", TOKEN)
        .env("SAKER_EXPECT", &expect_file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("GRPC_VERBOSITY", "NONE")
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the Python client tests failed");
    assert!(text.contains("OK"), "{text}");
    env.rt.block_on(token_server.shutdown());
    env.stop();
}
