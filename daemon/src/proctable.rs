//! The process table: every live process (and recently exited ones, for late events and
//! ancestry), bootstrapped from /proc and kept current from fork/exec/exit events.
//! Bounded: exited entries are evicted after a grace period, and when the table is full
//! the oldest exited entries go first, then the oldest entries.

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    bstr::BString,
    event::{Body, Event},
};

#[derive(Clone, Debug, PartialEq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub comm: BString,
    /// Executable path (from exec, or /proc/PID/exe at bootstrap).
    pub exe: BString,
    pub args: Vec<BString>,
    /// Working directory, best effort (read from /proc when the process was seen).
    pub cwd: Option<BString>,
    pub uid: u32,
    pub cgroup_id: u64,
    /// Mount namespace inode (0 when unknown).
    pub mnt_ns: u32,
    /// Session id and controlling tty (`tty_nr`, 0 = none), from /proc when seen alive,
    /// else inherited from the parent (both survive fork and exec).
    pub sid: Option<u32>,
    pub tty: Option<u32>,
    pub exe_upper_layer: bool,
    pub exe_memfd: bool,
    /// Boot-time ns of the last exec (0 when unknown, e.g. bootstrapped).
    pub exec_ktime_ns: u64,
    pub exit_code: Option<u32>,
    /// SHA-256 of the executable and the IoC entry it matched (set by detection).
    pub exe_sha256: Option<String>,
    pub exe_ioc: Option<String>,
    exited_at: Option<Instant>,
    seen_at: Instant,
}

pub struct ProcTable {
    procs: HashMap<u32, ProcInfo>,
    capacity: usize,
    grace: Duration,
}

impl ProcTable {
    pub fn new(capacity: usize, grace: Duration) -> ProcTable {
        ProcTable {
            procs: HashMap::with_capacity(capacity.min(65536)),
            capacity,
            grace,
        }
    }

    /// A table filled from /proc.
    pub fn bootstrap(capacity: usize, grace: Duration) -> ProcTable {
        let mut t = ProcTable::new(capacity, grace);
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                if let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                {
                    if let Some(p) = read_proc(pid) {
                        t.insert(p);
                    }
                }
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    pub fn get_mut(&mut self, pid: u32) -> Option<&mut ProcInfo> {
        self.procs.get_mut(&pid)
    }

    /// Up to `max` live processes in mount namespace `mnt_ns` (whose `/proc/PID/root`
    /// shows that namespace's files after the process of interest has exited).
    pub fn live_in_mnt_ns(&self, mnt_ns: u32, max: usize) -> Vec<u32> {
        if mnt_ns == 0 {
            return Vec::new();
        }
        self.procs
            .values()
            .filter(|p| p.mnt_ns == mnt_ns && p.exited_at.is_none())
            .map(|p| p.pid)
            .take(max)
            .collect()
    }

    /// Ancestors of `pid`, nearest first (parent, grandparent, …), at most `max`.
    pub fn ancestors(&self, pid: u32, max: usize) -> Vec<&ProcInfo> {
        let mut out = Vec::new();
        let mut cur = self.procs.get(&pid).map(|p| p.ppid);
        while let Some(ppid) = cur {
            if ppid == 0 || out.len() >= max {
                break;
            }
            match self.procs.get(&ppid) {
                // A cycle can only come from pid reuse; stop rather than loop.
                Some(p) if !out.iter().any(|q: &&ProcInfo| q.pid == p.pid) => {
                    out.push(p);
                    cur = Some(p.ppid);
                }
                _ => break,
            }
        }
        out
    }

    /// Applies an event to the table.
    pub fn apply(&mut self, ev: &Event) {
        let now = Instant::now();
        let p = &ev.process;
        match &ev.body {
            Body::Fork => {
                // The child starts as a copy of its parent (same image, args, cwd).
                let mut child = self
                    .procs
                    .get(&p.ppid)
                    .cloned()
                    .unwrap_or_else(|| ProcInfo {
                        pid: p.pid,
                        ppid: p.ppid,
                        comm: p.comm.clone(),
                        exe: BString::default(),
                        args: Vec::new(),
                        cwd: None,
                        uid: p.uid,
                        cgroup_id: p.cgroup_id,
                        mnt_ns: p.mnt_ns,
                        sid: None,
                        tty: None,
                        exe_upper_layer: false,
                        exe_memfd: false,
                        exec_ktime_ns: 0,
                        exit_code: None,
                        exe_sha256: None,
                        exe_ioc: None,
                        exited_at: None,
                        seen_at: now,
                    });
                child.pid = p.pid;
                child.ppid = p.ppid;
                child.exit_code = None;
                child.exited_at = None;
                child.seen_at = now;
                self.insert(child);
            }
            Body::Exec(x) => {
                let cwd = read_cwd(p.pid)
                    .or_else(|| self.procs.get(&p.pid).and_then(|o| o.cwd.clone()))
                    .or_else(|| self.procs.get(&p.ppid).and_then(|o| o.cwd.clone()));
                let inherited = self.procs.get(&p.pid).or_else(|| self.procs.get(&p.ppid));
                let (sid, tty) = match read_stat(p.pid) {
                    Some(st) => (Some(st.sid), Some(st.tty)),
                    None => (inherited.and_then(|o| o.sid), inherited.and_then(|o| o.tty)),
                };
                self.insert(ProcInfo {
                    pid: p.pid,
                    ppid: p.ppid,
                    comm: p.comm.clone(),
                    exe: x.filename.clone(),
                    args: x.args.clone(),
                    cwd,
                    uid: p.uid,
                    cgroup_id: p.cgroup_id,
                    mnt_ns: p.mnt_ns,
                    sid,
                    tty,
                    exe_upper_layer: x.exe_upper_layer,
                    exe_memfd: x.exe_memfd,
                    exec_ktime_ns: ev.ktime_ns,
                    exit_code: None,
                    exe_sha256: None,
                    exe_ioc: None,
                    exited_at: None,
                    seen_at: now,
                });
            }
            Body::Exit(x) => {
                if let Some(e) = self.procs.get_mut(&p.pid) {
                    e.exit_code = Some(x.raw);
                    e.exited_at = Some(now);
                }
            }
            _ => {
                if !self.procs.contains_key(&p.pid) {
                    if let Some(info) = read_proc(p.pid) {
                        self.insert(info);
                    }
                }
            }
        }
    }

    /// Drops exited entries older than the grace period.
    pub fn evict_expired(&mut self) {
        let grace = self.grace;
        let now = Instant::now();
        self.procs
            .retain(|_, p| p.exited_at.is_none_or(|t| now.duration_since(t) < grace));
    }

    fn insert(&mut self, p: ProcInfo) {
        if self.procs.len() >= self.capacity && !self.procs.contains_key(&p.pid) {
            self.evict_expired();
            if self.procs.len() >= self.capacity {
                self.evict_oldest();
            }
        }
        self.procs.insert(p.pid, p);
    }

    fn evict_oldest(&mut self) {
        // Exited first (oldest exit), then the least recently seen live entry.
        let victim = self
            .procs
            .values()
            .min_by_key(|p| {
                (
                    p.exited_at.is_none(),
                    p.exited_at.unwrap_or(p.seen_at),
                    p.seen_at,
                )
            })
            .map(|p| p.pid);
        if let Some(pid) = victim {
            self.procs.remove(&pid);
        }
    }
}

/// cwd as the process sees it (its root's prefix removed, for containers).
fn read_cwd(pid: u32) -> Option<BString> {
    use std::os::unix::ffi::OsStrExt;
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let root = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
    let rel = if root == Path::new("/") {
        cwd
    } else {
        Path::new("/").join(cwd.strip_prefix(&root).ok()?)
    };
    Some(BString(rel.as_os_str().as_bytes().to_vec()))
}

/// The fields of /proc/PID/stat saker uses.
struct Stat {
    comm: BString,
    ppid: u32,
    sid: u32,
    tty: u32,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may itself contain ") ": parse from the last ')'.
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = BString(stat.get(open + 1..close)?.to_vec());
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    // state ppid pgrp session tty_nr …
    let f: Vec<&str> = rest.split(' ').take(5).collect();
    Some(Stat {
        comm,
        ppid: f.get(1)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        tty: f.get(4)?.parse().ok()?,
    })
}

/// Reads one process from /proc (None if it is gone or unreadable).
pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    use std::os::unix::ffi::OsStrExt;
    let Stat {
        comm,
        ppid,
        sid,
        tty,
    } = read_stat(pid)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<BString> = cmdline
        .strip_suffix(&[0])
        .unwrap_or(&cmdline)
        .split(|&b| b == 0)
        .filter(|a| !cmdline.is_empty() || !a.is_empty())
        .map(BString::from)
        .collect();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| BString(p.as_os_str().as_bytes().to_vec()))
        .unwrap_or_default();
    let meta = std::fs::metadata(format!("/proc/{pid}")).ok();
    use std::os::unix::fs::MetadataExt;
    Some(ProcInfo {
        pid,
        ppid,
        comm,
        exe,
        args,
        cwd: read_cwd(pid),
        uid: meta.map_or(0, |m| m.uid()),
        cgroup_id: 0,
        sid: Some(sid),
        tty: Some(tty),
        mnt_ns: std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map_or(0, |m| m.ino() as u32),
        exe_upper_layer: false,
        exe_memfd: false,
        exec_ktime_ns: 0,
        exit_code: None,
        exe_sha256: None,
        exe_ioc: None,
        exited_at: None,
        seen_at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Exec, Exit, Process};

    fn ev(pid: u32, ppid: u32, body: Body) -> Event {
        Event {
            time_ns: 0,
            ktime_ns: 1,
            process: Process {
                pid,
                tid: pid,
                ppid,
                ..Default::default()
            },
            body,
        }
    }

    fn exec(name: &str) -> Body {
        Body::Exec(Exec {
            filename: name.into(),
            args: vec![name.into()],
            args_truncated: false,
            filename_truncated: false,
            exe_dev: 0,
            exe_ino: 0,
            exe_overlay: false,
            exe_upper_layer: false,
            exe_memfd: false,
            prevented: false,
        })
    }

    #[test]
    fn fork_exec_exit_and_ancestry() {
        let mut t = ProcTable::new(100, Duration::from_secs(60));
        t.apply(&ev(9_000_001, 1, exec("/bin/sh")));
        t.apply(&ev(9_000_002, 9_000_001, Body::Fork));
        assert_eq!(t.get(9_000_002).unwrap().exe.as_bytes(), b"/bin/sh");
        t.apply(&ev(9_000_002, 9_000_001, exec("/tmp/easyminer")));
        let anc: Vec<u32> = t.ancestors(9_000_002, 8).iter().map(|p| p.pid).collect();
        assert_eq!(anc, vec![9_000_001]);
        t.apply(&ev(
            9_000_002,
            9_000_001,
            Body::Exit(Exit {
                raw: 256,
                code: Some(1),
                signal: None,
            }),
        ));
        assert_eq!(t.get(9_000_002).unwrap().exit_code, Some(256));
    }

    #[test]
    fn bounded_and_evicts_exited_first() {
        let mut t = ProcTable::new(3, Duration::from_secs(3600));
        for pid in 1..=3 {
            t.apply(&ev(pid, 0, exec("/bin/true")));
        }
        t.apply(&ev(
            2,
            0,
            Body::Exit(Exit {
                raw: 0,
                code: Some(0),
                signal: None,
            }),
        ));
        t.apply(&ev(4, 0, exec("/bin/true")));
        assert_eq!(t.len(), 3);
        assert!(t.get(2).is_none(), "the exited entry goes first");
        t.apply(&ev(5, 0, exec("/bin/true")));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn bootstrap_sees_this_process() {
        let t = ProcTable::bootstrap(1 << 16, Duration::from_secs(5));
        let me = t.get(std::process::id()).expect("own pid in the table");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        // SAFETY: getsid(0) has no preconditions.
        assert_eq!(me.sid, Some(unsafe { libc::getsid(0) } as u32));
    }
}
