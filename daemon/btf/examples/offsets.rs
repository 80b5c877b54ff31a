//! Prints how long parsing takes and the offsets of the given fields.
//!
//! `cargo run --release -p saker-btf --example offsets -- [BTF_FILE] [struct.member.path ...]`

use std::time::{Duration, Instant};

use saker_btf::Btf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/sys/kernel/btf/vmlinux".to_owned());
    let data = std::fs::read(&path)?;

    // Time parsing alone (not the read), best of several runs to hide cold caches.
    let mut times: Vec<Duration> = Vec::new();
    let mut btf = Btf::parse(&data)?;
    for _ in 0..10 {
        let start = Instant::now();
        btf = Btf::parse(&data)?;
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{path}: {} bytes, {} types; parse min {:?}, median {:?}",
        data.len(),
        btf.type_count(),
        times[0],
        times[times.len() / 2]
    );

    for field in args {
        let Some((ty, member)) = field.split_once('.') else {
            eprintln!("{field}: want struct.member[.member...]");
            continue;
        };
        match btf.member_offset(ty, member) {
            Ok(off) => println!("{field} = {off}"),
            Err(e) => println!("{field}: {e}"),
        }
    }
    Ok(())
}
