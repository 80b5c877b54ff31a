//! Locating the real weights. Missing weights fail the test loudly: CI fetches
//! them before testing, and a silent skip would hide a broken install.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn weights_dir() -> PathBuf {
    std::env::var_os("SAKER_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"))
}

fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask fetch-model` first (or point SAKER_MODEL_DIR at the weights)",
        path.display()
    );
    path
}

pub fn llm_path() -> PathBuf {
    require(weights_dir().join("smollm2-135m-instruct.q8_0.gguf"))
}

pub fn minilm_dir() -> PathBuf {
    let dir = weights_dir().join("minilm");
    require(dir.join("model.safetensors"));
    dir
}

/// A fresh scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
