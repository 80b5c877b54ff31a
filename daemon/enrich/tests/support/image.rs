//! A busybox OCI image archive, built locally (one uncompressed layer).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::{run, sha256_hex, Res};

/// What was built: the archive and the manifest digest containerd will report as the
/// image's target.
pub struct BuiltImage {
    pub archive: PathBuf,
    pub manifest_digest: String,
}

/// Writes an OCI archive of image `name` (e.g. `localhost/busybox:latest`) under `dir`.
pub fn build_busybox(dir: &Path, name: &str) -> Res<BuiltImage> {
    let rootfs = dir.join("rootfs");
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::create_dir_all(&blobs)?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    run(Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/busybox", "--install", "-s", "/bin"]))?;
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;

    let layer_tar = dir.join("layer.tar");
    tar(&rootfs, &["."], &layer_tar)?;
    let layer = blob(&blobs, &std::fs::read(&layer_tar)?)?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        // Uncompressed layer: its digest is its diff id.
        "rootfs": { "type": "layers", "diff_ids": [layer.0] },
    });
    let config = blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1 }],
    });
    let manifest = blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.0,
            "size": manifest.1,
            "annotations": { "io.containerd.image.name": name },
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let archive = dir.join("busybox.oci.tar");
    tar(&layout, &["oci-layout", "index.json", "blobs"], &archive)?;
    Ok(BuiltImage {
        archive,
        manifest_digest: manifest.0,
    })
}

/// Stores a blob; returns (`sha256:<hex>`, size).
fn blob(blobs: &Path, data: &[u8]) -> Res<(String, usize)> {
    let hex = sha256_hex(data);
    std::fs::write(blobs.join(&hex), data)?;
    Ok((format!("sha256:{hex}"), data.len()))
}

fn tar(dir: &Path, members: &[&str], out: &Path) -> Res<()> {
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--mtime=@0",
        ])
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .args(members))?;
    Ok(())
}
