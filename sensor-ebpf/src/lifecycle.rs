//! Process lifecycle: fork (new processes only, not threads) and exit (group leaders).

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use saker_common::{class, kind, ExitEvent, ForkEvent};

use crate::{
    kernel,
    output::{count_drop, fill_header, wakeup_flags, wanted, EVENTS},
};

/// raw_tp args: (struct task_struct *parent, struct task_struct *child); runs in the parent.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    if wanted(class::LIFECYCLE).is_none() {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    let pid = kernel::task_pid(child);
    let tgid = kernel::task_tgid(child);
    if pid != tgid {
        return 0; // a new thread, not a new process
    }
    let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) else {
        count_drop(class::LIFECYCLE);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(&mut (*ev).hdr, kind::FORK);
        // The header describes the child; its parent is the current process.
        (*ev).hdr.ppid = (*ev).hdr.tgid;
        (*ev).hdr.pid = pid;
        (*ev).hdr.tgid = tgid;
    }
    entry.submit(wakeup_flags());
    0
}

/// raw_tp args: (struct task_struct *p, bool group_dead); runs in the exiting task.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    if wanted(class::LIFECYCLE).is_none() {
        return 0;
    }
    let task = kernel::current_task();
    if kernel::task_pid(task) != kernel::task_tgid(task) {
        return 0; // a thread
    }
    let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) else {
        count_drop(class::LIFECYCLE);
        return 0;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(&mut (*ev).hdr, kind::EXIT);
        (*ev).exit_code = kernel::task_exit_code(task);
        (*ev)._pad = 0;
    }
    entry.submit(wakeup_flags());
    0
}
