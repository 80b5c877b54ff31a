//! Re-quantizes a GGUF file (e.g. SmolLM2's Q4_1 → Q8_0, which candle runs 2-5x faster):
//! `cargo run --release -p saker-models --example requantize -- SRC DST`.
//! Prints `converted kept bytes` on success. Used by `cargo xtask fetch-model`.

use std::path::PathBuf;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [src, dst] = args.as_slice() else {
        eprintln!("usage: requantize SRC DST");
        std::process::exit(2);
    };
    match saker_models::requantize_gguf(src, dst, saker_models::GgmlDType::Q8_0) {
        Ok(r) => println!("{} {} {}", r.converted, r.kept, r.bytes_written),
        Err(e) => {
            eprintln!("requantizing {}: {e}", src.display());
            std::process::exit(1);
        }
    }
}
