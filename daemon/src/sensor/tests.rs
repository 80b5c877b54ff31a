//! The file/network programs against the real kernel, through each attach path: fexit on
//! the syscall functions (where the kernel permits tracing programs), the raw `sys_exit`
//! program, and the syscall tracepoint pairs. All must report the same records for the
//! same syscalls. Needs root (loads eBPF), as CI runs.

use std::{
    ffi::CString,
    net::{IpAddr, Ipv4Addr, TcpListener, TcpStream},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use saker_common::class;

use super::{
    load::{RAW_SYS_EXIT, SYSCALLS},
    AttachReport, Sensor, SensorConfig, SyscallHooks,
};
use crate::event::{Body, Event, FileKind, AT_FDCWD};

/// What one reported syscall looks like, reduced to what must not depend on the hook.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    File {
        op: String,
        /// Path relative to the test's directory (the directory differs per run).
        path: String,
        dfd_is_cwd: bool,
        flags: u32,
        mode: u32,
        ok: bool,
    },
    Connect {
        addr: IpAddr,
        ok: bool,
    },
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("test paths have no NUL")
}

/// Runs the syscalls every file/net program covers, in this process.
fn exercise(dir: &Path, port: u16) {
    let p = |name: &str| cstr(&dir.join(name));
    // SAFETY (all libc calls below): NUL-terminated paths that live across the call, plain
    // integer arguments, and every returned fd is closed.
    unsafe {
        // openat(O_WRONLY|O_CREAT|O_TRUNC), then a read-only open of the same file (not
        // reported) and one of a credential file (reported).
        let fd = libc::open(
            p("created").as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o640,
        );
        assert!(fd >= 0, "open for writing");
        libc::close(fd);
        let fd = libc::open(p("created").as_ptr(), libc::O_RDONLY);
        assert!(fd >= 0);
        libc::close(fd);
        let fd = libc::open(c"/etc/shadow".as_ptr(), libc::O_RDONLY);
        if fd >= 0 {
            libc::close(fd);
        }
        // openat2 with its flags in a struct open_how.
        let how: [u64; 3] = [(libc::O_WRONLY | libc::O_CREAT) as u64, 0o600, 0];
        let fd = libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            p("openat2").as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        );
        assert!(fd >= 0, "openat2: {}", std::io::Error::last_os_error());
        libc::close(fd as i32);
        let fd = libc::syscall(libc::SYS_creat, p("creat").as_ptr(), 0o644);
        assert!(fd >= 0, "creat");
        libc::close(fd as i32);

        assert_eq!(
            libc::syscall(libc::SYS_chmod, p("created").as_ptr(), 0o700),
            0
        );
        let fd = libc::open(p("creat").as_ptr(), libc::O_RDONLY);
        assert_eq!(libc::syscall(libc::SYS_fchmod, fd, 0o711), 0);
        libc::close(fd);
        assert_eq!(
            libc::syscall(
                libc::SYS_fchmodat,
                libc::AT_FDCWD,
                p("openat2").as_ptr(),
                0o750
            ),
            0
        );
        let fd = libc::syscall(libc::SYS_memfd_create, c"saker-hooks".as_ptr(), 0);
        assert!(fd >= 0, "memfd_create");
        libc::close(fd as i32);

        assert_eq!(libc::syscall(libc::SYS_unlink, p("created").as_ptr()), 0);
        assert_eq!(
            libc::syscall(libc::SYS_unlinkat, libc::AT_FDCWD, p("creat").as_ptr(), 0),
            0
        );
        // A failed unlink is reported with its errno.
        assert_eq!(libc::syscall(libc::SYS_unlink, p("missing").as_ptr()), -1);
    }
    let _ok = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the listener");
}

fn reduce(ev: &Event, dir: &Path, port: u16) -> Option<Seen> {
    match &ev.body {
        Body::File(f) => {
            let path = f.path.as_bytes();
            // memfd names, fchmod (no path) and the credential file are kept as they are.
            let as_is = f.op == FileKind::MemfdCreate
                || (f.op == FileKind::Chmod && path.is_empty())
                || (f.op == FileKind::Open && path == b"/etc/shadow");
            let rel = if as_is {
                path
            } else {
                let d = dir.as_os_str().as_bytes();
                path.strip_prefix(d)?.strip_prefix(b"/")?
            };
            if f.op == FileKind::MemfdCreate && rel != b"saker-hooks" {
                return None;
            }
            Some(Seen::File {
                op: format!("{:?}", f.op),
                path: String::from_utf8_lossy(rel).into_owned(),
                dfd_is_cwd: f.dfd == AT_FDCWD,
                // O_LARGEFILE and O_CLOEXEC are libc's business, not the test's.
                flags: f.flags & 0o3103,
                mode: f.mode,
                ok: f.ret >= 0,
            })
        }
        Body::Connect(c) if c.port == port => Some(Seen::Connect {
            addr: c.addr,
            ok: c.ret == 0,
        }),
        _ => None,
    }
}

fn expected() -> Vec<Seen> {
    let file =
        |op: &str, path: &str, dfd_is_cwd: bool, flags: i32, mode: u32, ok: bool| Seen::File {
            op: op.into(),
            path: path.into(),
            dfd_is_cwd,
            flags: flags as u32,
            mode,
            ok,
        };
    let shadow_ok = Path::new("/etc/shadow").exists();
    let wr = libc::O_WRONLY | libc::O_CREAT;
    let mut v = vec![
        file("Open", "created", true, wr | libc::O_TRUNC, 0o640, true),
        file("Open", "/etc/shadow", true, 0, 0, shadow_ok),
        file("Open", "openat2", true, wr, 0o600, true),
        file("Open", "creat", true, wr | libc::O_TRUNC, 0o644, true),
        file("Chmod", "created", true, 0, 0o700, true),
        file("Chmod", "openat2", true, 0, 0o750, true),
        // fchmod: no path, the fd in dfd.
        file("Chmod", "", false, 0, 0o711, true),
        file("MemfdCreate", "saker-hooks", false, 0, 0, true),
        file("Unlink", "created", true, 0, 0, true),
        file("Unlink", "creat", true, 0, 0, true),
        file("Unlink", "missing", true, 0, 0, false),
        Seen::Connect {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ok: true,
        },
    ];
    v.sort();
    v
}

/// Loads the sensor with `hooks`, runs [`exercise`] and returns what it reported.
fn run(hooks: SyscallHooks, tag: &str) -> (Vec<Seen>, AttachReport, u64) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "sensor tests load eBPF programs and must run as root"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("saker-hooks-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test dir");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("listener");
    let port = listener.local_addr().expect("port").port();

    let cfg = SensorConfig {
        classes: class::ALL_MASK,
        // This process does the syscalls.
        exclude_pid: None,
        syscall_hooks: hooks,
        ..Default::default()
    };
    let me = std::process::id();
    let (sensor, seen) = rt.block_on(async {
        let mut sensor = Sensor::load(&cfg).expect("sensor loads");
        let mut stream = sensor.events().expect("event stream");
        exercise(&dir, port);
        let want = expected();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(50), stream.recv()).await {
                Ok(Some(ev)) if ev.process.pid == me => {
                    if let Some(s) = reduce(&ev, &dir, port) {
                        seen.push(s);
                    }
                }
                Ok(None) => break,
                _ => {}
            }
            seen.sort();
            if seen.len() >= want.len() {
                break;
            }
        }
        (sensor, seen)
    });
    let drops = sensor.drops().expect("drops").total();
    let _ = std::fs::remove_dir_all(&dir);
    (seen, sensor.report().clone(), drops)
}

/// The syscall programs of a report: (program, hook, error).
fn syscall_programs(r: &AttachReport) -> Vec<(String, String, Option<String>)> {
    r.programs
        .iter()
        .filter(|p| !p.hook.starts_with("raw_tracepoint/sched_"))
        .map(|p| (p.program.clone(), p.hook.clone(), p.error.clone()))
        .collect()
}

fn assert_raw_sys_exit(r: &AttachReport) {
    assert_eq!(
        syscall_programs(r),
        vec![(
            RAW_SYS_EXIT.to_string(),
            "raw_tracepoint/sys_exit".to_string(),
            None
        )]
    );
}

#[test]
fn every_syscall_hook_path_reports_the_same_records() {
    let (auto_seen, auto_report, auto_drops) = run(SyscallHooks::Auto, "auto");
    let (raw_seen, raw_report, raw_drops) = run(SyscallHooks::RawSysExit, "raw");
    let (tp_seen, tp_report, tp_drops) = run(SyscallHooks::Tracepoints, "tp");

    // Auto: fexit on every syscall function where tracing programs are permitted, else the
    // raw sys_exit program with the reason fexit was not used; never the tracepoints on a
    // kernel that has the raw one.
    let progs = syscall_programs(&auto_report);
    if progs.iter().any(|(_, hook, _)| hook.starts_with("fexit/")) {
        let want: Vec<_> = SYSCALLS
            .iter()
            .map(|s| {
                (
                    format!("fexit_{}", s.name),
                    format!("fexit/__x64_sys_{}", s.name),
                    None,
                )
            })
            .collect();
        assert_eq!(progs, want);
    } else {
        assert_raw_sys_exit(&auto_report);
        let raw = auto_report
            .programs
            .iter()
            .find(|p| p.program == RAW_SYS_EXIT)
            .expect("raw program");
        assert!(
            raw.fallback_from
                .as_deref()
                .is_some_and(|w| w.starts_with("fexit/__x64_sys_")),
            "says why fexit was not used: {:?}",
            raw.fallback_from
        );
    }
    assert_raw_sys_exit(&raw_report);
    // Forced fallback: the enter/exit pair of every syscall, nothing else.
    let want: Vec<_> = SYSCALLS
        .iter()
        .flat_map(|s| {
            ["enter", "exit"].map(|phase| {
                let prog = format!("sys_{phase}_{}", s.name);
                (prog.clone(), format!("tracepoint/syscalls/{prog}"), None)
            })
        })
        .collect();
    assert_eq!(syscall_programs(&tp_report), want);

    assert_eq!(auto_seen, expected(), "auto path");
    assert_eq!(raw_seen, expected(), "raw sys_exit path");
    assert_eq!(tp_seen, expected(), "tracepoint path");
    assert_eq!((auto_drops, raw_drops, tp_drops), (0, 0, 0));
}
