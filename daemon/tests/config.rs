//! The configuration file: the shipped default file equals the built-in defaults, every
//! key is present in it, and bad keys or values are refused with an error naming the key
//! (and its position). Also runs the real `sakerd` binary with a bad file.

use std::path::PathBuf;

use saker::config::{Config, LogFormat, SHIPPED};

fn shipped_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/saker.toml"))
}

#[test]
fn shipped_file_parses_and_equals_the_defaults() {
    let c = Config::load(&shipped_path()).expect("the shipped file loads");
    assert_eq!(c, Config::default());
    // The embedded copy is the file on disk.
    assert_eq!(SHIPPED, std::fs::read_to_string(shipped_path()).unwrap());
}

/// Every key of the schema appears in the shipped file (serialising the defaults gives
/// the full key set; none may be left out of the documented file).
#[test]
fn shipped_file_lists_every_key() {
    let all: toml::Table = toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
    let shipped: toml::Table = toml::from_str(SHIPPED).unwrap();
    fn keys(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let name = format!("{prefix}{k}");
            match v {
                toml::Value::Table(sub) => keys(sub, &format!("{name}."), out),
                _ => out.push(name),
            }
        }
    }
    let (mut a, mut s) = (Vec::new(), Vec::new());
    keys(&all, "", &mut a);
    keys(&shipped, "", &mut s);
    a.sort();
    s.sort();
    assert_eq!(a, s);
    assert!(a.len() > 35, "{a:?}");
    // Each key is documented: a comment above it, or above the paragraph it belongs to.
    let mut commented = false;
    for line in SHIPPED.lines().map(str::trim) {
        if line.starts_with('#') {
            commented = true;
        } else if line.is_empty() || line.starts_with('[') {
            commented = false;
        } else {
            assert!(commented, "undocumented key: {line}");
        }
    }
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(Config::parse("empty.toml", "").unwrap(), Config::default());
}

#[test]
fn values_are_read() {
    let c = Config::parse(
        "t.toml",
        r#"
node = "n1"
[policies]
prevent_drift = true
[outputs.webhook]
enabled = true
url = "http://127.0.0.1:2801/"
max_retries = 2
[log]
format = "json"
level = "debug,saker=trace"
[metrics]
enabled = false
listen = "not an address"
"#,
    )
    .unwrap();
    assert_eq!(c.node, "n1");
    assert!(c.policies.prevent_drift);
    assert_eq!(c.outputs.webhook.max_retries, 2);
    assert_eq!(c.log.format, LogFormat::Json);
    // Disabled metrics: the address is not checked (and not used).
    assert_eq!(c.metrics_listen(), None);
    assert_eq!(c.outputs.webhook.timeout_ms, 5000);
}

fn err(text: &str) -> (String, String) {
    let e = Config::parse("bad.toml", text).expect_err("must be refused");
    (e.key().to_string(), e.to_string())
}

#[test]
fn unknown_key_names_key_and_position() {
    let (key, msg) = err("node = \"x\"\n\n[outputs.file]\nenabled = true\nkepp = 3\n");
    assert_eq!(key, "outputs.file.kepp", "{msg}");
    assert!(
        msg.starts_with("bad.toml:5:1: outputs.file.kepp: "),
        "{msg}"
    );
    assert!(msg.contains("unknown field `kepp`"), "{msg}");

    let (key, msg) = err("[sensor]\nring_mb = 8\n");
    assert_eq!(key, "sensor.ring_mb", "{msg}");
    let (key, msg) = err("[nosuch]\na = 1\n");
    assert_eq!(key, "nosuch", "{msg}");
    assert!(msg.starts_with("bad.toml:1:"), "{msg}");
}

#[test]
fn wrong_type_names_key_and_position() {
    let (key, msg) = err("[store]\npath = \"/x\"\nretention_max_age_hours = \"a week\"\n");
    assert_eq!(key, "store.retention_max_age_hours", "{msg}");
    assert!(msg.starts_with("bad.toml:3:27: "), "{msg}");
    let (key, msg) = err("[log]\nformat = \"xml\"\n");
    assert_eq!(key, "log.format", "{msg}");
    assert!(msg.contains("xml"), "{msg}");
    let (_, msg) = err("node = \n");
    assert!(
        msg.starts_with("bad.toml:1:"),
        "syntax errors carry a position: {msg}"
    );
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[sensor]\nring_mib = 3\n", "sensor.ring_mib", "power of two"),
        ("[sensor]\nring_mib = 0\n", "sensor.ring_mib", "power of two"),
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen", "IP:port"),
        ("[api]\nlisten = \"0.0.0.0:50051\"\n", "api.tls_cert", "mutual TLS"),
        ("[api]\ntls_key = \"/k.pem\"\n", "api.tls_key", "api.listen"),
        ("[api]\nsocket = \"\"\n", "api.socket", "unix socket"),
        ("[outputs]\nmin_priority = \"loud\"\n", "outputs.min_priority", "loud"),
        ("[outputs]\nqueue = 0\n", "outputs.queue", "at least 1"),
        (
            "[outputs.webhook]\nenabled = true\nurl = \"https://x/\"\n",
            "outputs.webhook.url",
            "https",
        ),
        (
            "[outputs.webhook]\nenabled = true\nurl = \"\"\n",
            "outputs.webhook.url",
            "required",
        ),
        (
            "[outputs.webhook]\nenabled = true\nurl = \"http://h/\"\nbackoff_initial_ms = 50\nbackoff_max_ms = 10\n",
            "outputs.webhook.backoff_initial_ms",
            "backoff_max_ms",
        ),
        ("[outputs.file]\nenabled = true\nmax_size_mib = 0\n", "outputs.file.max_size_mib", "at least 1"),
        ("[log]\nlevel = \"info,saker=loud\"\n", "log.level", "loud"),
        ("[store]\npath = \"\"\n", "store.path", "empty"),
        ("[outputs.file]\nenabled = true\nkeep = 5000\n", "outputs.file.keep", "1000"),
        (
            "[outputs.webhook]\nenabled = true\nurl = \"http://h/\"\ntimeout_ms = 0\n",
            "outputs.webhook.timeout_ms",
            "between",
        ),
    ];
    for (text, key, part) in cases {
        let e = Config::parse("bad.toml", text).expect_err(text);
        let msg = e.to_string();
        assert_eq!(e.key(), *key, "{text}: {msg}");
        assert!(msg.starts_with(&format!("bad.toml: {key}: ")), "{msg}");
        assert!(msg.contains(part), "{text}: {msg}");
    }
}

/// The real binary refuses a bad file at start, naming the file, position and key, and
/// fails on a missing --config file; `--help` lists --config.
#[test]
fn sakerd_refuses_a_bad_file() {
    let dir = std::env::temp_dir().join(format!("saker-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("saker.toml");
    std::fs::write(&f, "[metrics]\nenabled = true\nlisten = \"127.0.0.1\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sakerd"))
        .args(["--config", f.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("metrics.listen"), "{stderr}");
    assert!(stderr.contains(f.to_str().unwrap()), "{stderr}");

    std::fs::write(&f, "[policies]\nprevent_drfit = true\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sakerd"))
        .args(["--config", f.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{}:2:1: policies.prevent_drfit", f.display())),
        "{stderr}"
    );

    // A flag that makes a valid file invalid is refused too, naming the key.
    std::fs::write(&f, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sakerd"))
        .args(["--config", f.to_str().unwrap(), "--ring-mib", "3", "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("sensor.ring_mib"), "{stderr}");

    let missing = dir.join("nope.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sakerd"))
        .args(["--config", missing.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}
