//! Ring-buffer records → [`Event`]s, bounds-checked. A malformed record is an error the
//! caller counts and skips; nothing here can panic on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use saker_common::{
    flag, kind, ConnectEvent, ExecEvent, ExitEvent, FileEvent, ForkEvent, Header, COMM_LEN,
};

use crate::{
    bstr::BString,
    event::{Body, Connect, Event, Exec, Exit, FileKind, FileOp, Process},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("record kind {kind} has {got} bytes, expected {want}")]
    Size { kind: u32, got: usize, want: usize },
    #[error("unknown address family {0}")]
    Family(u16),
}

/// Converts boot-time stamps to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock ns at boot (realtime - boottime), sampled once.
    boot_epoch_ns: i64,
}

impl Clock {
    pub fn new() -> Clock {
        let rt = clock_ns(libc::CLOCK_REALTIME);
        let bt = clock_ns(libc::CLOCK_BOOTTIME);
        Clock {
            boot_epoch_ns: rt - bt,
        }
    }

    pub fn wall_ns(&self, ktime_ns: u64) -> i64 {
        self.boot_epoch_ns.saturating_add(ktime_ns as i64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

fn clock_ns(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; clock ids are constants.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Reads a `T` from the start of `buf` if `buf` is exactly `T`-sized.
fn read_exact<T: Copy>(buf: &[u8], k: u32) -> Result<T, DecodeError> {
    let want = std::mem::size_of::<T>();
    if buf.len() != want {
        return Err(DecodeError::Size {
            kind: k,
            got: buf.len(),
            want,
        });
    }
    // SAFETY: the length is checked; T is a plain-old-data #[repr(C)] type from
    // saker-common (every bit pattern is valid); read_unaligned needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const T) })
}

/// `buf[..len]`, with `len` clamped to the buffer (the kernel wrote it, but we check).
fn prefix(buf: &[u8], len: u32) -> &[u8] {
    &buf[..(len as usize).min(buf.len())]
}

fn cstr(buf: &[u8]) -> BString {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    BString(buf[..end].to_vec())
}

/// Splits NUL-separated argv bytes; a trailing NUL does not make an empty argument.
fn split_args(raw: &[u8]) -> Vec<BString> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(BString::from).collect()
}

fn process(h: &Header) -> Process {
    Process {
        tid: h.pid,
        pid: h.tgid,
        ppid: h.ppid,
        uid: h.uid,
        gid: h.gid,
        loginuid: (h.loginuid != u32::MAX).then_some(h.loginuid),
        comm: cstr(&h.comm[..COMM_LEN]),
        cgroup_id: h.cgroup_id,
        mnt_ns: h.mnt_ns,
        pid_ns: h.pid_ns,
    }
}

/// Decodes one ring-buffer record.
pub fn decode(buf: &[u8], clock: &Clock) -> Result<Event, DecodeError> {
    let hsize = std::mem::size_of::<Header>();
    if buf.len() < hsize {
        return Err(DecodeError::Short(buf.len()));
    }
    // SAFETY: length checked above; Header is plain old data.
    let h: Header = unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const Header) };
    let body = match h.kind {
        kind::EXEC => {
            let e: Box<ExecEvent> = Box::new(read_exact(buf, h.kind)?);
            Body::Exec(Exec {
                filename: cstr(prefix(&e.filename, e.filename_len)),
                args: split_args(prefix(&e.args, e.args_len)),
                args_truncated: h.flags & flag::ARGS_TRUNCATED != 0,
                filename_truncated: h.flags & flag::PATH_TRUNCATED != 0,
                exe_dev: e.exe_dev,
                exe_ino: e.exe_ino,
                exe_overlay: h.flags & flag::EXE_OVERLAY != 0,
                exe_upper_layer: h.flags & flag::EXE_UPPER_LAYER != 0,
                exe_memfd: h.flags & flag::EXE_MEMFD != 0,
                prevented: h.flags & flag::PREVENTED != 0,
            })
        }
        kind::FORK => {
            read_exact::<ForkEvent>(buf, h.kind)?;
            Body::Fork
        }
        kind::EXIT => {
            let e: ExitEvent = read_exact(buf, h.kind)?;
            let sig = (e.exit_code & 0x7f) as u8;
            Body::Exit(Exit {
                raw: e.exit_code,
                code: (sig == 0).then_some(((e.exit_code >> 8) & 0xff) as u8),
                signal: (sig != 0).then_some(sig),
            })
        }
        kind::OPEN | kind::CHMOD | kind::MEMFD_CREATE | kind::UNLINK => {
            let e: Box<FileEvent> = Box::new(read_exact(buf, h.kind)?);
            Body::File(FileOp {
                op: match h.kind {
                    kind::OPEN => FileKind::Open,
                    kind::CHMOD => FileKind::Chmod,
                    kind::MEMFD_CREATE => FileKind::MemfdCreate,
                    _ => FileKind::Unlink,
                },
                path: cstr(prefix(&e.path, e.path_len)),
                path_truncated: h.flags & flag::PATH_TRUNCATED != 0,
                dfd: e.dfd,
                flags: e.flags,
                mode: e.mode,
                ret: e.ret,
            })
        }
        kind::CONNECT => {
            let e: ConnectEvent = read_exact(buf, h.kind)?;
            let addr = match e.family {
                2 => IpAddr::V4(Ipv4Addr::new(e.addr[0], e.addr[1], e.addr[2], e.addr[3])),
                10 => IpAddr::V6(Ipv6Addr::from(e.addr)),
                f => return Err(DecodeError::Family(f)),
            };
            Body::Connect(Connect {
                fd: e.fd,
                addr,
                port: e.port,
                ret: e.ret,
            })
        }
        k => return Err(DecodeError::UnknownKind(k)),
    };
    Ok(Event {
        time_ns: clock.wall_ns(h.ktime_ns),
        ktime_ns: h.ktime_ns,
        process: process(&h),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32) -> Header {
        Header {
            kind,
            tgid: 42,
            pid: 43,
            ppid: 1,
            loginuid: u32::MAX,
            ..Default::default()
        }
    }

    fn bytes<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain-old-data value.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let clock = Clock::new();
        assert_eq!(decode(&[], &clock), Err(DecodeError::Short(0)));
        assert_eq!(decode(&[1, 2, 3], &clock), Err(DecodeError::Short(3)));
        let mut h = bytes(&header(99));
        assert_eq!(decode(&h, &clock), Err(DecodeError::UnknownKind(99)));
        h = bytes(&header(kind::EXEC));
        assert!(matches!(
            decode(&h, &clock),
            Err(DecodeError::Size { kind: 1, .. })
        ));
        // Every truncation of a valid exec record is rejected cleanly.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.hdr = header(kind::EXEC);
        e.args_len = u32::MAX; // lies about its length
        e.filename_len = u32::MAX;
        let full = bytes(&e);
        for cut in [0, 1, 71, 72, 100, full.len() - 1] {
            assert!(decode(&full[..cut], &clock).is_err());
        }
        assert!(decode(&full, &clock).is_ok());
    }

    #[test]
    fn exec_args_and_exit_status() {
        let clock = Clock::new();
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.hdr = header(kind::EXEC);
        let argv = b"sh\0-c\0echo \"hi\"\0\xff\0";
        e.args[..argv.len()].copy_from_slice(argv);
        e.args_len = argv.len() as u32;
        let Body::Exec(x) = decode(&bytes(&e), &clock).unwrap().body else {
            panic!()
        };
        let args: Vec<&[u8]> = x.args.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(args, vec![&b"sh"[..], b"-c", b"echo \"hi\"", b"\xff"]);

        let x = ExitEvent {
            hdr: header(kind::EXIT),
            exit_code: 3 << 8,
            _pad: 0,
        };
        let Body::Exit(ex) = decode(&bytes(&x), &clock).unwrap().body else {
            panic!()
        };
        assert_eq!((ex.code, ex.signal), (Some(3), None));
        let x = ExitEvent {
            hdr: header(kind::EXIT),
            exit_code: 9,
            _pad: 0,
        };
        let Body::Exit(ex) = decode(&bytes(&x), &clock).unwrap().body else {
            panic!()
        };
        assert_eq!((ex.code, ex.signal), (None, Some(9)));
    }
}
