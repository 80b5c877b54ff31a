//! saker's eBPF programs: exec, process lifecycle, file and network activity.
//!
//! Every program writes one fixed-size record (layouts in `saker-common`) into the `EVENTS`
//! ring buffer; a failed reserve is counted per class in `DROPS` so userspace can report
//! exactly what it did not see. Kernel struct offsets are not compiled in: the loader
//! reads them from BTF and writes them into the `OFFSETS` global before load.
#![no_std]
#![no_main]

mod exec;
mod file;
mod kernel;
mod lifecycle;
mod net;
mod output;
mod syscall;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // eBPF programs cannot unwind; the verifier rejects any reachable panic path.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
