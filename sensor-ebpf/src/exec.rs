//! sched_process_exec: the new image of a process, with argv, exe identity and the drift
//! signals (overlay upper layer, memfd), and drift prevention.

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_buf,
        bpf_send_signal,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use saker_common::{class, flag, kind, ExecEvent, ARGS_LEN};

use crate::{
    kernel,
    output::{count_drop, fill_header, wakeup_flags, wanted, EVENTS, PREVENT_ALLOW},
};

const SIGKILL: u32 = 9;

/// raw_tp args: (struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let Some(cfg) = wanted(class::EXEC) else {
        return 0;
    };
    let bprm: *const u8 = ctx.arg(2);
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_drop(class::EXEC);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(&mut (*ev).hdr, kind::EXEC);
        let mut flags = 0u32;

        let name = kernel::binprm_filename(bprm);
        (*ev).filename_len = match bpf_probe_read_kernel_str_bytes(name, &mut (*ev).filename) {
            Ok(s) => s.len() as u32,
            Err(_) => {
                flags |= flag::PATH_TRUNCATED;
                0
            }
        };
        // A full buffer means the kernel string did not fit.
        if (*ev).filename_len as usize >= (*ev).filename.len() - 1 {
            flags |= flag::PATH_TRUNCATED;
        }

        let task = kernel::current_task();
        let mm = kernel::task_mm(task);
        let (start, end) = kernel::mm_args(mm);
        let mut len = end.wrapping_sub(start) as usize;
        if end < start {
            len = 0;
        }
        if len > ARGS_LEN {
            len = ARGS_LEN;
            flags |= flag::ARGS_TRUNCATED;
        }
        (*ev).args_len = 0;
        if len > 0 {
            let dst = &mut (*ev).args;
            if bpf_probe_read_user_buf(start as *const u8, &mut dst[..len]).is_ok() {
                (*ev).args_len = len as u32;
            }
        }

        let exe = kernel::exe_info(mm);
        (*ev).exe_dev = exe.dev;
        (*ev).exe_ino = exe.ino;
        if exe.overlay {
            flags |= flag::EXE_OVERLAY;
        }
        if exe.upper_layer {
            flags |= flag::EXE_UPPER_LAYER;
        }
        if exe.memfd {
            flags |= flag::EXE_MEMFD;
        }

        // Drift prevention: kill before the first user instruction of the new image.
        let in_container = (*ev).hdr.mnt_ns != cfg.host_mnt_ns;
        if cfg.prevent_drift != 0 && exe.upper_layer && in_container {
            let cg = bpf_get_current_cgroup_id();
            if PREVENT_ALLOW.get_ptr(cg).is_none() && bpf_send_signal(SIGKILL) == 0 {
                flags |= flag::PREVENTED;
            }
        }
        (*ev).hdr.flags = flags;
    }
    entry.submit(wakeup_flags());
    0
}
