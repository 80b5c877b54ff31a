//! Network activity: connect(2) on IPv4/IPv6 sockets.

use aya_ebpf::{helpers::bpf_probe_read_user, macros::tracepoint, programs::TracePointContext};
use saker_common::{class, kind, ConnectEvent};

use crate::{
    output::{count_drop, fill_header, wakeup_flags, EVENTS},
    syscall::{arg, remember, ret, take, Pending},
};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// connect(fd, uservaddr, addrlen): the address is copied at entry (what the caller asked
/// for); other families (AF_UNIX, netlink, …) are not reported.
#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let (Some(fd), Some(ptr)) = (arg::<i64>(&ctx, 0), arg::<u64>(&ctx, 1)) else {
        return 0;
    };
    let Ok(family) = (unsafe { bpf_probe_read_user(ptr as *const u16) }) else {
        return 0;
    };
    if family != AF_INET && family != AF_INET6 {
        return 0;
    }
    let mut p = Pending::new(kind::CONNECT, fd as i32, ptr, 0, 0);
    if let Ok(sa) = unsafe { bpf_probe_read_user(ptr as *const [u8; 28]) } {
        p.sa = sa;
    } else if let Ok(sa) = unsafe { bpf_probe_read_user(ptr as *const [u8; 16]) } {
        // A sockaddr_in at the very end of a mapping: 16 bytes is all there is.
        p.sa[..16].copy_from_slice(&sa);
    } else {
        return 0;
    }
    remember(class::NET, &p);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let Some(p) = take() else {
        return 0;
    };
    if p.kind != kind::CONNECT {
        return 0;
    }
    let Some(mut entry) = EVENTS.reserve::<ConnectEvent>(0) else {
        count_drop(class::NET);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    let sa = p.sa;
    let family = u16::from_ne_bytes([sa[0], sa[1]]);
    unsafe {
        fill_header(&mut (*ev).hdr, kind::CONNECT);
        (*ev).ret = ret(&ctx);
        (*ev).fd = p.dfd;
        (*ev).family = family;
        (*ev).port = u16::from_be_bytes([sa[2], sa[3]]);
        let mut addr = [0u8; 16];
        if family == AF_INET {
            addr[..4].copy_from_slice(&sa[4..8]);
        } else {
            addr.copy_from_slice(&sa[8..24]);
        }
        (*ev).addr = addr;
    }
    entry.submit(wakeup_flags());
    0
}
