//! Loads the upstream Falco rule files (read from ../shared, never copied
//! into the repository) with saker's field set.

mod common;

use std::path::PathBuf;

use common::MapSource;
use saker_rules::{saker_fields, EvtType, RuleSet};

fn rules_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SAKER_FALCO_RULES_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/falco-rules")
}

fn upstream_files() -> Vec<PathBuf> {
    let dir = rules_dir();
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect()
}

#[test]
fn upstream_rules_load() {
    let reg = saker_fields();
    let (rs, report) = RuleSet::load(&upstream_files(), &reg).expect("upstream files load");
    let total = report.loaded.len() + report.skipped.len();
    println!(
        "loaded {} of {} rules ({} disabled)",
        report.loaded.len(),
        total,
        report.disabled.len()
    );
    for (reason, n) in report.skip_summary() {
        println!("  {n:3}  {reason}");
    }
    for (name, reason) in &report.skipped {
        println!("skipped: {name}: {reason}");
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    assert_eq!(total, 93);
    assert!(
        report.loaded.len() * 100 >= total * 80,
        "only {} of {total} loaded",
        report.loaded.len()
    );
    for name in [
        "Drop and execute new binary in container",
        "Fileless execution via memfd_create",
        "Execution from /dev/shm",
        "Detect crypto miners using the Stratum protocol",
        "Container Drift Detected (chmod)",
        "Container Drift Detected (open+create)",
    ] {
        assert!(rs.get(name).is_some(), "{name} did not load");
    }
    let (cond_fields, out_fields) = rs.required_fields();
    let name = |id| reg.get(id).map(|d| d.name.clone()).unwrap_or_default();
    println!(
        "condition fields of enabled rules: {}",
        cond_fields
            .iter()
            .map(|&i| name(i))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "output-only fields: {}",
        out_fields
            .difference(&cond_fields)
            .map(|&i| name(i))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn load() -> (saker_rules::FieldRegistry, RuleSet) {
    let reg = saker_fields();
    let (rs, _) = RuleSet::load(&upstream_files(), &reg).expect("upstream files load");
    (reg, rs)
}

fn fired<'a>(rs: &'a RuleSet, evt: &str, src: &MapSource<'_>) -> Vec<&'a str> {
    rs.matching(EvtType::from_name(evt), src)
        .map(|r| r.name.as_str())
        .collect()
}

/// An exec in a container, as the daemon would describe it.
fn exec<'r>(reg: &'r saker_rules::FieldRegistry, cmdline: &str) -> MapSource<'r> {
    let name = cmdline.split(' ').next().unwrap_or("");
    MapSource::new(reg)
        .s("evt.type", "execve")
        .i("evt.num", 42)
        .s("proc.name", name)
        .s("proc.exe", name)
        .s("proc.exepath", &format!("/usr/bin/{name}"))
        .s("proc.cmdline", cmdline)
        .s("proc.args", cmdline.split_once(' ').map_or("", |(_, a)| a))
        .s("proc.pname", "bash")
        .s("proc.cwd", "/app/")
        .s("user.name", "root")
        .i("user.uid", 0)
        .i("user.loginuid", -1)
        .i("proc.tty", 0)
        .s("container.id", "3ad7b26ded6d")
        .s("container.image.repository", "docker.io/library/alpine")
        .b("proc.is_exe_upper_layer", false)
        .b("proc.is_exe_from_memfd", false)
}

#[test]
fn stratum_rule_fires_on_miner_cmdline_only() {
    let (reg, rs) = load();
    let miner = exec(
        &reg,
        "xmrig -o stratum+tcp://pool.minexmr.com:4444 -u wallet",
    );
    let benign = exec(&reg, "curl -s https://example.com/install.sh");
    let stratum = "Detect crypto miners using the Stratum protocol";
    assert!(fired(&rs, "execve", &miner).contains(&stratum));
    assert!(!fired(&rs, "execve", &benign).contains(&stratum));
    // The same command line on a non-exec event type is not a candidate.
    let open = exec(&reg, "xmrig -o stratum+tcp://x:1").s("evt.type", "openat");
    assert!(!fired(&rs, "openat", &open).contains(&stratum));

    let rule = rs.get(stratum).unwrap();
    assert_eq!(rule.priority, saker_rules::Priority::Critical);
    assert_eq!(rule.mitre_techniques, vec!["T1496"]);
    assert_eq!(rule.mitre_tactics, vec!["TA0040"]);
    assert_eq!(
        rule.format_output(&miner),
        "Possible miner running | evt_type=execve user=root user_uid=0 user_loginuid=-1 \
         process=xmrig proc_exepath=/usr/bin/xmrig parent=bash \
         command=xmrig -o stratum+tcp://pool.minexmr.com:4444 -u wallet terminal=0 exe_flags=<NA>"
    );
    let fields = rule.output_fields(&miner);
    assert_eq!(
        fields.get("proc.name"),
        Some(&Some(saker_rules::OwnedValue::Str("xmrig".into())))
    );
    assert_eq!(
        fields.get("user.uid"),
        Some(&Some(saker_rules::OwnedValue::Int(0)))
    );
    assert_eq!(fields.get("evt.arg.flags"), Some(&None));
}

#[test]
fn drop_and_execute_needs_upper_layer_and_container() {
    let (reg, rs) = load();
    let name = "Drop and execute new binary in container";
    let dropped = exec(&reg, "/tmp/implant").b("proc.is_exe_upper_layer", true);
    assert!(fired(&rs, "execve", &dropped).contains(&name));
    let from_image = exec(&reg, "/tmp/implant");
    assert!(!fired(&rs, "execve", &from_image).contains(&name));
    let on_host = exec(&reg, "/tmp/implant")
        .b("proc.is_exe_upper_layer", true)
        .s("container.id", "host");
    assert!(!fired(&rs, "execve", &on_host).contains(&name));
    let rule = rs.get(name).unwrap();
    assert_eq!(rule.mitre_tactics, vec!["TA0003"]);
}

#[test]
fn fileless_execution_and_dev_shm() {
    let (reg, rs) = load();
    let fileless = "Fileless execution via memfd_create";
    let memfd = exec(&reg, "kworker").b("proc.is_exe_from_memfd", true);
    assert!(fired(&rs, "execve", &memfd).contains(&fileless));
    // runc legitimately re-executes itself from a memfd.
    let runc = exec(&reg, "runc init").b("proc.is_exe_from_memfd", true);
    assert!(!fired(&rs, "execve", &runc).contains(&fileless));

    let shm = "Execution from /dev/shm";
    let from_shm = exec(&reg, "payload").s("proc.exe", "/dev/shm/payload");
    assert!(fired(&rs, "execve", &from_shm).contains(&shm));
    let shell_shm = exec(&reg, "sh -c /dev/shm/x.sh");
    assert!(fired(&rs, "execve", &shell_shm).contains(&shm));
    assert!(!fired(&rs, "execve", &exec(&reg, "sh -c ls")).contains(&shm));
}

#[test]
fn drift_rules_are_loaded_disabled_and_work_when_enabled() {
    let (reg, mut rs) = load();
    let chmod = "Container Drift Detected (chmod)";
    let create = "Container Drift Detected (open+create)";
    assert!(!rs.get(chmod).unwrap().enabled);
    let ev = MapSource::new(&reg)
        .s("evt.type", "fchmodat")
        .i("evt.num", 7)
        .s("container.id", "3ad7b26ded6d")
        .i("evt.rawres", 0)
        .s("evt.arg.mode", "S_IXUSR|S_IRUSR|S_IWUSR")
        .s("proc.cmdline", "chmod +x /tmp/x");
    assert!(
        !fired(&rs, "fchmodat", &ev).contains(&chmod),
        "disabled rules do not fire"
    );
    assert!(rs.get(chmod).unwrap().matches(&ev));
    assert!(rs.set_enabled(chmod, true));
    assert!(fired(&rs, "fchmodat", &ev).contains(&chmod));
    let no_exec = MapSource::new(&reg)
        .s("evt.type", "fchmodat")
        .s("container.id", "3ad7b26ded6d")
        .i("evt.rawres", 0)
        .s("evt.arg.mode", "S_IRUSR|S_IWUSR");
    assert!(!fired(&rs, "fchmodat", &no_exec).contains(&chmod));
    let failed = MapSource::new(&reg)
        .s("evt.type", "fchmodat")
        .s("container.id", "3ad7b26ded6d")
        .i("evt.rawres", -1)
        .s("evt.arg.mode", "S_IXUSR");
    assert!(!fired(&rs, "fchmodat", &failed).contains(&chmod));

    assert!(rs.set_enabled(create, true));
    let opened = MapSource::new(&reg)
        .s("evt.type", "openat")
        .s("container.id", "3ad7b26ded6d")
        .i("evt.rawres", 3)
        .b("evt.is_open_exec", true)
        .s("proc.cmdline", "cp /x /usr/local/bin/x");
    assert!(fired(&rs, "openat", &opened).contains(&create));
    // runc's own exec.fifo is excluded.
    let runc = MapSource::new(&reg)
        .s("evt.type", "openat")
        .s("container.id", "3ad7b26ded6d")
        .i("evt.rawres", 3)
        .b("evt.is_open_exec", true)
        .s("proc.cmdline", "runc:[1:CHILD] init")
        .s("fd.name", "/exec.fifo");
    assert!(!fired(&rs, "openat", &runc).contains(&create));
}

#[test]
fn sensitive_file_read_uses_lists_and_macros() {
    let (reg, rs) = load();
    let name = "Read sensitive file untrusted";
    let read = |proc_name: &str| {
        MapSource::new(&reg)
            .s("evt.type", "openat")
            .i("evt.num", 9)
            .b("evt.is_open_read", true)
            .s("fd.typechar", "f")
            .i("fd.num", 3)
            .s("fd.name", "/etc/shadow")
            .s("fd.directory", "/etc")
            .s("proc.name", proc_name)
            .s("proc.cmdline", proc_name)
            .l("proc.aname", &[proc_name, "bash", "sshd", "systemd"])
    };
    assert!(fired(&rs, "openat", &read("cat")).contains(&name));
    // sshd is in read_sensitive_file_binaries; useradd comes from a list
    // nested in user_mgmt_binaries.
    assert!(!fired(&rs, "openat", &read("sshd")).contains(&name));
    assert!(!fired(&rs, "openat", &read("useradd")).contains(&name));
    // The "(systemd)" list item is a quoted value, not a list reference.
    assert!(!fired(&rs, "openat", &read("(systemd)")).contains(&name));
}

#[test]
fn index_skips_rules_that_cannot_match() {
    let (_, rs) = load();
    let execve = rs.candidate_count(EvtType::from_name("execve"));
    let enabled = rs.rules().iter().filter(|r| r.enabled).count();
    assert!(execve > 10 && execve < enabled, "{execve} of {enabled}");
    // Every upstream rule constrains evt.type, so an unrelated syscall
    // evaluates nothing.
    assert_eq!(rs.candidate_count(EvtType::from_name("nanosleep")), 0);
    assert_eq!(rs.candidate_count(EvtType::UNKNOWN), 0);
    let stratum = rs
        .get("Detect crypto miners using the Stratum protocol")
        .unwrap();
    assert_eq!(
        stratum.evt_types().names(),
        Some(vec!["execve", "execveat"])
    );
}
