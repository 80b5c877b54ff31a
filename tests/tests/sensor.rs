//! The sensor against the real kernel: each test starts real processes and asserts the
//! exact values the eBPF programs reported. Runs as root (CI does).

use std::{
    ffi::OsString,
    net::{TcpListener, TcpStream},
    os::unix::ffi::{OsStrExt, OsStringExt},
    process::Command,
    time::Duration,
};

use saker::event::{Body, Event, FileKind};
use saker_tests::sensor::{TestCgroup, TestSensor};

const WAIT: Duration = Duration::from_secs(10);
const WORKLOAD: &str = env!("CARGO_BIN_EXE_saker-workload");

fn execs(evs: &[Event]) -> Vec<&saker::event::Exec> {
    evs.iter()
        .filter_map(|e| match &e.body {
            Body::Exec(x) => Some(x),
            _ => None,
        })
        .collect()
}

/// Spawns `cmd`, collects its events (and its children's) until it exits, reaps it.
fn run(s: &mut TestSensor, cmd: &mut Command) -> (u32, Vec<Event>) {
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let evs = s.collect_for(&[pid], WAIT, |e| has_exit(e, pid));
    child.wait().expect("wait");
    (pid, evs)
}

fn has_exit(evs: &[Event], pid: u32) -> bool {
    evs.iter()
        .any(|e| e.process.pid == pid && matches!(e.body, Body::Exit(_)))
}

#[test]
fn exec_with_twenty_hostile_arguments() {
    let mut s = TestSensor::start_default();
    let mut args: Vec<OsString> = (0..17)
        .map(|i| OsString::from(format!("arg {i}")))
        .collect();
    args.push(OsString::from("with \"double\" and 'single' quotes"));
    args.push(OsString::from_vec(b"invalid \xff\xfe utf8".to_vec()));
    args.push(OsString::from("")); // empty argument
    assert_eq!(args.len(), 20);
    let (pid, evs) = run(&mut s, Command::new("/bin/true").args(&args));
    let x = execs(&evs);
    assert_eq!(x.len(), 1, "one exec of pid {pid}: {evs:?}");
    let exec = x[0];
    assert_eq!(exec.filename.as_bytes(), b"/bin/true");
    let mut want: Vec<&[u8]> = vec![b"/bin/true"];
    want.extend(args.iter().map(|a| a.as_bytes()));
    let got: Vec<&[u8]> = exec.args.iter().map(|a| a.as_bytes()).collect();
    assert_eq!(got, want);
    assert!(!exec.args_truncated && !exec.exe_upper_layer && !exec.exe_memfd);
    let ev = evs
        .iter()
        .find(|e| matches!(e.body, Body::Exec(_)))
        .unwrap();
    assert_eq!(ev.process.pid, pid);
    assert_eq!(ev.process.ppid, std::process::id());
    assert_eq!(ev.process.comm.as_bytes(), b"true");
    assert_eq!(ev.process.uid, 0);
    let meta = std::fs::metadata("/bin/true").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(exec.exe_ino, meta.ino());
    // The JSON form escapes and keeps every byte of the hostile argument.
    let j = serde_json::to_string(ev).unwrap();
    assert!(
        j.contains(r#"{"hex":"696e76616c696420fffe2075746638","lossy":"invalid"#),
        "{j}"
    );
    assert!(j.contains(r#"with \"double\" and 'single' quotes"#));
}

#[test]
fn long_argv_is_cut_and_flagged() {
    let mut s = TestSensor::start_default();
    let big = "x".repeat(3000);
    let (_, evs) = run(&mut s, Command::new("/bin/true").args([&big, &big]));
    let x = execs(&evs);
    assert_eq!(x.len(), 1);
    assert!(x[0].args_truncated);
    // Exactly ARGS_LEN bytes are kept: "/bin/true\0" + big + "\0" + the start of big.
    let kept = saker_common::ARGS_LEN - "/bin/true".len() - 1 - big.len() - 1;
    assert_eq!(x[0].args.len(), 3);
    assert_eq!(x[0].args[1].as_bytes(), big.as_bytes());
    assert_eq!(x[0].args[2].as_bytes(), &big.as_bytes()[..kept]);
}

#[test]
fn fork_and_exit_codes() {
    let mut s = TestSensor::start_default();
    // The outer shell forks twice: one child exits 7, one is killed by SIGKILL.
    let (pid, evs) = run(
        &mut s,
        Command::new("/bin/sh")
            .args(["-c", "/bin/sh -c 'exit 7'; /bin/sh -c 'kill -9 $$'; exit 3"]),
    );
    let forks: Vec<u32> = evs
        .iter()
        .filter(|e| matches!(e.body, Body::Fork) && e.process.ppid == pid)
        .map(|e| e.process.pid)
        .collect();
    assert_eq!(forks.len(), 2, "two children forked by pid {pid}: {evs:#?}");
    let exit_of = |p: u32| {
        evs.iter()
            .find_map(|e| match &e.body {
                Body::Exit(x) if e.process.pid == p => Some((x.code, x.signal)),
                _ => None,
            })
            .expect("exit event")
    };
    assert_eq!(exit_of(forks[0]), (Some(7), None));
    assert_eq!(exit_of(forks[1]), (None, Some(9)));
    assert_eq!(exit_of(pid), (Some(3), None));
}

#[test]
fn create_write_and_chmod_of_a_temp_file() {
    let mut s = TestSensor::start_default();
    let dir = std::env::temp_dir().join(format!("saker-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("dropped");
    let script = format!("echo data > '{0}' && chmod 755 '{0}'", f.display());
    let (_, evs) = run(&mut s, Command::new("/bin/sh").args(["-c", &script]));
    let files: Vec<&saker::event::FileOp> = evs
        .iter()
        .filter_map(|e| match &e.body {
            Body::File(f) => Some(f),
            _ => None,
        })
        .filter(|op| op.path.as_bytes() == f.as_os_str().as_bytes())
        .collect();
    let open = files
        .iter()
        .find(|o| o.op == FileKind::Open)
        .expect("open event");
    assert_eq!(open.flags & 0o3, libc::O_WRONLY as u32);
    assert_eq!(
        open.flags & (libc::O_CREAT | libc::O_TRUNC) as u32,
        (libc::O_CREAT | libc::O_TRUNC) as u32
    );
    assert_eq!(open.mode, 0o666);
    assert!(open.ret >= 0);
    let chmod = files
        .iter()
        .find(|o| o.op == FileKind::Chmod)
        .expect("chmod event");
    assert_eq!(chmod.mode & 0o7777, 0o755);
    assert_eq!(chmod.ret, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn connect_events(evs: &[Event]) -> Vec<&saker::event::Connect> {
    evs.iter()
        .filter_map(|e| match &e.body {
            Body::Connect(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_ipv4_and_ipv6_accepted_and_refused() {
    let mut s = TestSensor::start_default();
    let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l6 = TcpListener::bind("[::1]:0").unwrap();
    let p4 = l4.local_addr().unwrap().port();
    let p6 = l6.local_addr().unwrap().port();
    // Free ports with nothing listening: bind, note, close.
    let r4 = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r6 = TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{p4}; exec 4<>/dev/tcp/::1/{p6}; \
         (exec 5<>/dev/tcp/127.0.0.1/{r4}) 2>/dev/null; (exec 6<>/dev/tcp/::1/{r6}) 2>/dev/null; exit 0"
    );
    let (_, evs) = run(&mut s, Command::new("/bin/bash").args(["-c", &script]));
    drop((l4, l6));
    let c = connect_events(&evs);
    let find = |addr: &str, port: u16| {
        c.iter()
            .find(|x| x.addr.to_string() == addr && x.port == port)
            .unwrap_or_else(|| panic!("connect to {addr}:{port} in {c:?}"))
    };
    assert_eq!(find("127.0.0.1", p4).ret, 0);
    assert_eq!(find("::1", p6).ret, 0);
    assert_eq!(find("127.0.0.1", r4).ret, -(libc::ECONNREFUSED as i64));
    assert_eq!(find("::1", r6).ret, -(libc::ECONNREFUSED as i64));
    // The test's own connects are not reported: the sensor only sees what it is told to.
    let _ = TcpStream::connect(("127.0.0.1", r4));
}

#[test]
fn memfd_execution_is_flagged() {
    let mut s = TestSensor::start_default();
    let (_, evs) = run(&mut s, Command::new(WORKLOAD).arg("memfd-exec"));
    let x = execs(&evs);
    assert_eq!(
        x.len(),
        2,
        "the workload's exec and the memfd exec: {evs:#?}"
    );
    assert!(!x[0].exe_memfd);
    assert!(x[1].exe_memfd, "{:?}", x[1]);
    assert_eq!(
        x[1].args.first().map(|a| a.as_bytes()),
        Some(&b"memfd-true"[..])
    );
    let created = evs.iter().any(|e| {
        matches!(&e.body, Body::File(f) if f.op == FileKind::MemfdCreate && f.path.as_bytes() == b"saker-memfd" && f.ret >= 0)
    });
    assert!(created, "memfd_create event with its name");
}

#[test]
fn drops_are_counted_exactly_and_the_reader_survives() {
    const N: u64 = 20_000;
    let cg = TestCgroup::create("saker-drop-test");
    // The smallest ring (one page holds ~3 file records) and only the test cgroup.
    let mut s = TestSensor::start(saker::sensor::SensorConfig {
        ring_bytes: 4096,
        cgroup_filter: Some(cg.id),
        ..Default::default()
    });
    let target = std::env::temp_dir().join(format!("saker-burst-{}", std::process::id()));
    let mut child = Command::new(WORKLOAD)
        .arg("open-burst")
        .arg(&target)
        .arg(N.to_string())
        .arg(cg.procs())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let evs = s.drain_for(Duration::from_secs(2));
    let received = evs
        .iter()
        .filter(|e| {
            e.process.pid == pid
                && matches!(&e.body, Body::File(f) if f.op == FileKind::Open && f.path.as_bytes() == target.as_os_str().as_bytes())
        })
        .count() as u64;
    let d = s.drops();
    let dropped = d.kernel_class("file");
    eprintln!("burst of {N}: received {received}, dropped {dropped} ({d:?})");
    assert!(
        dropped > 0,
        "a one-page ring must overflow during a {N}-open burst"
    );
    assert_eq!(d.queue_full, 0);
    assert_eq!(d.decode_errors, 0);
    assert_eq!(
        received + dropped,
        N,
        "every open is either delivered or counted"
    );
    let _ = std::fs::remove_file(&target);
    // Still alive: a later event arrives.
    let (_, evs) = run(
        &mut s,
        Command::new(WORKLOAD)
            .arg("open-burst")
            .arg(&target)
            .arg("1")
            .arg(cg.procs()),
    );
    assert!(evs.iter().any(|e| matches!(e.body, Body::File(_))));
    let _ = std::fs::remove_file(&target);
}

#[test]
fn read_only_opens_are_reported_only_for_credential_files() {
    let mut s = TestSensor::start_default();
    let (_, evs) = run(
        &mut s,
        Command::new("/bin/sh").args(["-c", "cat /etc/shadow /etc/hostname > /dev/null"]),
    );
    let opened: Vec<&[u8]> = evs
        .iter()
        .filter_map(|e| match &e.body {
            Body::File(f) if f.op == FileKind::Open && f.flags & 0o3 == 0 => {
                Some(f.path.as_bytes())
            }
            _ => None,
        })
        .collect();
    assert!(opened.contains(&&b"/etc/shadow"[..]), "{opened:?}");
    assert!(
        !opened.contains(&&b"/etc/hostname"[..]),
        "plain read-only opens stay in the kernel"
    );
}
