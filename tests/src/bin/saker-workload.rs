//! A small, exact workload for the sensor tests: it does precisely what a subcommand says,
//! so a test can assert exact counts and values.
//!
//! - `open-burst PATH N [CGROUP_PROCS]`: optionally move into a cgroup, then N times
//!   open(PATH, O_WRONLY|O_CREAT|O_TRUNC, 0640) + close.
//! - `memfd-exec`: copy /bin/true into a memfd named "saker-memfd" and execute it.
//! - `exec-storm N`: N times fork + exec /bin/true + wait (benchmarks).
//! - `open-storm PATH N [write]`: N times openat(PATH) read-only (or O_WRONLY|O_CREAT) +
//!   close (benchmarks).
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
        _ => {
            eprintln!("usage: saker-workload open-burst PATH N [CGROUP_PROCS] | memfd-exec");
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
