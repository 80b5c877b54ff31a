//! Inference thread count.
//!
//! candle 0.11 runs work on two kinds of threads: its quantized matmuls use a
//! private spinning "barrier pool" sized once per process from `CANDLE_NUM_THREADS`
//! (falling back to `RAYON_NUM_THREADS`, then to the physical core count), while
//! softmax, RoPE and f32 matmuls use whichever rayon pool is current. So the setting
//! is applied twice: the env variable is set before candle's first quantized op, and
//! every forward pass runs inside a rayon pool of the same size via `install`.

use std::sync::OnceLock;

use crate::error::{ModelError, Result};

static CANDLE_THREADS: OnceLock<usize> = OnceLock::new();

/// Default: leave one core to the sensor's event path.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

/// `requested`, or the default for 0.
pub fn resolve(requested: usize) -> usize {
    if requested == 0 {
        default_threads()
    } else {
        requested
    }
}

/// Fixes candle's process-wide quantized-matmul worker count at the first call;
/// later calls cannot change it (candle reads it once) and get the count in force.
pub fn configure_candle(requested: usize) -> usize {
    *CANDLE_THREADS.get_or_init(|| {
        let n = resolve(requested);
        // Runs before this process builds any quantized model, so before candle
        // reads the variable. Rust's own env access is locked; no C code here
        // reads the environment concurrently.
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        n
    })
}

/// A rayon pool for one model's forward passes.
pub fn pool(n: usize, name: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| ModelError::ThreadPool(e.to_string()))
}
