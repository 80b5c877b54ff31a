//! saker's eBPF programs: exec, process lifecycle, file and network activity.
//!
//! Every program writes one fixed-size record (layouts in `saker-common`) into the `EVENTS`
//! ring buffer; a failed reserve is counted per class in `DROPS` so userspace can report
//! exactly what it did not see. Kernel struct offsets are not compiled in: the loader
//! reads them from BTF and writes them into the `OFFSETS` global before load.
// The programs only exist for the BPF target; on the host (e.g. `cargo build --workspace`)
// this crate is an empty binary so workspace-wide commands work.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod exec;
#[cfg(target_arch = "bpf")]
mod file;
#[cfg(target_arch = "bpf")]
mod kernel;
#[cfg(target_arch = "bpf")]
mod lifecycle;
#[cfg(target_arch = "bpf")]
mod net;
#[cfg(target_arch = "bpf")]
mod output;
#[cfg(target_arch = "bpf")]
mod syscall;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("saker-ebpf is built for bpfel-unknown-none by the daemon's build script");
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // eBPF programs cannot unwind; the verifier rejects any reachable panic path.
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
