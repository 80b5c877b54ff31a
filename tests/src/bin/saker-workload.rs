//! A small, exact workload for the sensor tests: it does precisely what a subcommand says,
//! so a test can assert exact counts and values.
//!
//! - `open-burst PATH N [CGROUP_PROCS]`: optionally move into a cgroup, then N times
//!   open(PATH, O_WRONLY|O_CREAT|O_TRUNC, 0640) + close.
//! - `memfd-exec`: copy /bin/true into a memfd named "saker-memfd" and execute it.

use std::{ffi::CString, io::Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("open-burst") => open_burst(&args[2..]),
        Some("memfd-exec") => memfd_exec(),
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
