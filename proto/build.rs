//! Generates the saker.v1 messages, the tonic client and server stubs, a file
//! descriptor set (for gRPC reflection) and serde impls (canonical proto3 JSON).
//!
//! Needs `protoc` (Debian: `apt-get install protobuf-compiler`), found on PATH or
//! through the `PROTOC` environment variable.

use std::env;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "saker/v1/common.proto",
    "saker/v1/event.proto",
    "saker/v1/events.proto",
    "saker/v1/incident.proto",
    "saker/v1/assistant.proto",
    "saker/v1/node.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor = out.join("saker_v1_descriptor.bin");
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    tonic_prost_build::configure()
        // Channels are the caller's business (unix socket, mTLS): no `connect`.
        .build_transport(false)
        .file_descriptor_set_path(&descriptor)
        .compile_protos(&protos, &[root])
        .map_err(|e| format!("generating saker.v1 (is protoc installed?): {e}"))?;

    let set = std::fs::read(&descriptor)?;
    pbjson_build::Builder::new()
        .register_descriptors(&set)?
        .preserve_proto_field_names()
        .build(&[".saker.v1"])?;
    Ok(())
}
