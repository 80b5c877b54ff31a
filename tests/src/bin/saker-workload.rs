//! A small, exact workload for the sensor tests: it does precisely what a subcommand says,
//! so a test can assert exact counts and values.
//!
//! - `open-burst PATH N [CGROUP_PROCS]`: optionally move into a cgroup, then N times
//!   open(PATH, O_WRONLY|O_CREAT|O_TRUNC, 0640) + close.
//! - `memfd-exec`: copy /bin/true into a memfd named "saker-memfd" and execute it.
//! - `exec-storm N`: N times fork + exec /bin/true + wait (benchmarks).
//! - `open-storm PATH N [write]`: N times openat(PATH) read-only (or O_WRONLY|O_CREAT) +
//!   close (benchmarks).
//! - `connect-storm N PORT`: N times socket(UDP) + connect(127.0.0.1:PORT) + close (UDP:
//!   no peer, no handshake, no TIME_WAIT; the sensor sees every connect(2)).
//! - `storm KIND SECONDS [ARG]`: KIND (`exec`, `open` on path ARG with O_CREAT, `connect`
//!   to port ARG) at full speed for SECONDS; prints `{"kind":…,"ops":…,"wall_s":…}` (soak).
//!
//! The storms print `{"wall_s":…,"user_s":…,"sys_s":…}` (own and children's CPU) at the end.

use std::{ffi::CString, io::Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("open-burst") => open_burst(&args[2..]),
        Some("memfd-exec") => memfd_exec(),
        Some("exec-storm") => timed(|| exec_storm(args[2].parse().expect("count"))),
        Some("open-storm") => timed(|| {
            open_storm(
                &args[2],
                args[3].parse().expect("count"),
                args.get(4).is_some(),
            )
        }),
        Some("connect-storm") => timed(|| {
            connect_storm(
                args[2].parse().expect("count"),
                args[3].parse().expect("port"),
            )
        }),
        Some("storm") => storm(&args[2..]),
        _ => {
            eprintln!(
                "usage: saker-workload open-burst PATH N [CGROUP_PROCS] | memfd-exec | \
                 exec-storm N | open-storm PATH N [write] | connect-storm N PORT | \
                 storm exec|open|connect SECONDS [PATH|PORT]"
            );
            std::process::exit(2);
        }
    }
}

fn open_burst(a: &[String]) {
    let path = CString::new(a[0].as_str()).expect("path without NUL");
    let n: u64 = a[1].parse().expect("count");
    if let Some(procs) = a.get(2) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(procs)
            .expect("cgroup.procs");
        write!(f, "{}", std::process::id()).expect("join cgroup");
    }
    for _ in 0..n {
        // SAFETY: valid NUL-terminated path; the fd is closed right away.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                0o640,
            )
        };
        assert!(fd >= 0, "open failed");
        unsafe { libc::close(fd) };
    }
}

fn memfd_exec() {
    let name = c"saker-memfd";
    // SAFETY: constant name; flags 0.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create failed");
    let bin = std::fs::read("/bin/true").expect("read /bin/true");
    // SAFETY: fd is a fresh memfd we own.
    let n = unsafe { libc::write(fd, bin.as_ptr().cast(), bin.len()) };
    assert_eq!(n as usize, bin.len());
    let argv0 = c"memfd-true";
    let argv = [argv0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argv/envp arrays; on success this does not return.
    unsafe { libc::fexecve(fd, argv.as_ptr(), envp.as_ptr()) };
    panic!("fexecve failed: {}", std::io::Error::last_os_error());
}

fn timed(f: impl FnOnce()) {
    let t = std::time::Instant::now();
    f();
    let wall = t.elapsed().as_secs_f64();
    let cpu = |who| {
        // SAFETY: getrusage fills the struct.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut r) };
        let s = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        (s(r.ru_utime), s(r.ru_stime))
    };
    let (u1, s1) = cpu(libc::RUSAGE_SELF);
    let (u2, s2) = cpu(libc::RUSAGE_CHILDREN);
    println!(
        "{{\"wall_s\":{wall:.6},\"user_s\":{:.6},\"sys_s\":{:.6}}}",
        u1 + u2,
        s1 + s2
    );
}

fn exec_storm(n: u64) {
    let prog = c"/bin/true";
    let argv = [prog.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    for _ in 0..n {
        // SAFETY: fork in a single-threaded program; the child only calls execve/_exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

fn open_storm(path: &str, n: u64, write: bool) {
    let path = CString::new(path).expect("path without NUL");
    let flags = if write {
        libc::O_WRONLY | libc::O_CREAT
    } else {
        libc::O_RDONLY
    };
    for _ in 0..n {
        // SAFETY: valid path; fd closed right away.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), flags, 0o644) };
        assert!(fd >= 0, "openat failed");
        unsafe { libc::close(fd) };
    }
}

fn connect_storm(n: u64, port: u16) {
    let addr = loopback(port);
    for _ in 0..n {
        connect_once(&addr);
    }
}

fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is valid before the fields are set.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as libc::sa_family_t;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    a
}

fn connect_once(addr: &libc::sockaddr_in) {
    // SAFETY: a fresh UDP socket, connected to a valid sockaddr_in, closed right away.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "socket failed");
        let r = libc::connect(
            fd,
            (addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert!(
            r == 0,
            "connect failed: {}",
            std::io::Error::last_os_error()
        );
        libc::close(fd);
    }
}

/// Runs one kind of operation at full speed for a duration and reports how many ran.
fn storm(a: &[String]) {
    let kind = a.first().map(String::as_str).unwrap_or("");
    let secs: f64 = a.get(1).and_then(|s| s.parse().ok()).expect("seconds");
    let arg = a.get(2).cloned().unwrap_or_default();
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    let start = std::time::Instant::now();
    let mut ops = 0u64;
    // Check the clock every few operations: it is cheap but not free.
    let batch: u64 = match kind {
        "exec" => 16,
        "open" | "connect" => 256,
        _ => {
            eprintln!("storm: unknown kind {kind:?} (exec, open, connect)");
            std::process::exit(2);
        }
    };
    let path = CString::new(if arg.is_empty() {
        "/tmp/saker-storm"
    } else {
        &arg
    })
    .expect("path");
    let addr = loopback(arg.parse().unwrap_or(9));
    while std::time::Instant::now() < until {
        match kind {
            "exec" => exec_storm(batch),
            "open" => {
                for _ in 0..batch {
                    // SAFETY: valid path; fd closed right away.
                    let fd = unsafe {
                        libc::openat(
                            libc::AT_FDCWD,
                            path.as_ptr(),
                            libc::O_WRONLY | libc::O_CREAT,
                            0o644,
                        )
                    };
                    assert!(fd >= 0, "openat failed");
                    unsafe { libc::close(fd) };
                }
            }
            _ => {
                for _ in 0..batch {
                    connect_once(&addr);
                }
            }
        }
        ops += batch;
    }
    println!(
        "{{\"kind\":\"{kind}\",\"ops\":{ops},\"wall_s\":{:.3}}}",
        start.elapsed().as_secs_f64()
    );
}
