//! OCI image archives built locally from busybox-static, so tests need no registry.
//!
//! Layout (see docs/containers.md in the shared docs): one gzip layer holding `/bin/busybox`,
//! its applet symlinks, `/etc/passwd`, `/etc/group` and a sticky `/tmp`; the image config,
//! manifest, `index.json` (annotated with `io.containerd.image.name`) and `oci-layout`, tarred
//! so that `ctr images import` accepts it. Tars are deterministic (sorted, fixed owner/mtime,
//! `gzip -n`), so the same inputs give the same digests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cmd::{run, run_stdout, sha256_bytes, sha256_file};

/// Name of the general-purpose image imported by [`crate::containerd::Containerd::start`].
pub const BUSYBOX_IMAGE: &str = "localhost/busybox:latest";
/// Name of the pod sandbox image (`sleep infinity`), containerd's CRI `sandbox_image`.
pub const PAUSE_IMAGE: &str = "localhost/pause:latest";
/// Where the busybox-static package installs its binary.
pub const BUSYBOX_BINARY: &str = "/bin/busybox";

const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Builder of local OCI image archives.
pub struct Image;

impl Image {
    /// Writes an OCI image archive named `name` (e.g. `localhost/busybox:latest`) under `dir`
    /// and returns its path. `entrypoint` and `cmd` go into the image config as given.
    pub fn build_busybox(
        dir: &Path,
        name: &str,
        entrypoint: &[&str],
        cmd: &[&str],
    ) -> Result<PathBuf> {
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let work = dir.join(&slug);
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("clearing {}", work.display()))?;
        }
        let rootfs = work.join("rootfs");
        let layout = work.join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;

        write_rootfs(&rootfs)?;
        let layer_tar = work.join("layer.tar");
        deterministic_tar(&rootfs, &["."], &layer_tar)?;
        let diff_id = sha256_file(&layer_tar)?;
        let layer_gz = gzip(&layer_tar)?;
        let layer = add_blob_file(&blobs, &layer_gz)?;

        let config = json!({
            "architecture": oci_arch()?,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                // null, not [], when unset: what registries' images carry.
                "Entrypoint": (!entrypoint.is_empty()).then_some(entrypoint),
                "Cmd": (!cmd.is_empty()).then_some(cmd),
                "WorkingDir": "/",
            },
            "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
        });
        let config = add_blob(&blobs, &serde_json::to_vec(&config)?)?;

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": { "mediaType": MEDIA_CONFIG, "digest": config.digest, "size": config.size },
            "layers": [{ "mediaType": MEDIA_LAYER, "digest": layer.digest, "size": layer.size }],
        });
        let manifest = add_blob(&blobs, &serde_json::to_vec(&manifest)?)?;

        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": MEDIA_MANIFEST,
                "digest": manifest.digest,
                "size": manifest.size,
                "platform": { "architecture": oci_arch()?, "os": "linux" },
                "annotations": { "io.containerd.image.name": name },
            }],
        });
        write(&layout.join("index.json"), &serde_json::to_vec(&index)?)?;
        write(
            &layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;

        let archive = dir.join(format!("{slug}.oci.tar"));
        deterministic_tar(&layout, &["oci-layout", "index.json", "blobs"], &archive)?;
        // The unpacked copies are only intermediates.
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
        Ok(archive)
    }

    /// [`BUSYBOX_IMAGE`]: entrypoint unset, `Cmd ["sh"]`, like the public busybox image.
    pub fn build_default_busybox(dir: &Path) -> Result<PathBuf> {
        Self::build_busybox(dir, BUSYBOX_IMAGE, &[], &["sh"])
    }

    /// [`PAUSE_IMAGE`]: a pod sandbox that only sleeps.
    pub fn build_pause(dir: &Path) -> Result<PathBuf> {
        Self::build_busybox(dir, PAUSE_IMAGE, &["/bin/sleep", "infinity"], &[])
    }
}

fn write_rootfs(rootfs: &Path) -> Result<()> {
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d))
            .with_context(|| format!("creating {d} in rootfs"))?;
    }
    // Set explicitly: create_dir honours the umask, and the mode is what the tar records.
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::set_permissions(rootfs.join("root"), std::fs::Permissions::from_mode(0o700))?;

    let busybox = rootfs.join("bin/busybox");
    std::fs::copy(BUSYBOX_BINARY, &busybox)
        .with_context(|| format!("copying {BUSYBOX_BINARY} (install busybox-static)"))?;
    // Equivalent of `busybox --install -s /bin` in a chroot, without needing one.
    let applets = run_stdout(Command::new(BUSYBOX_BINARY).arg("--list"))?;
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = rootfs.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .with_context(|| format!("symlinking {}", link.display()))?;
    }
    write(
        &rootfs.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write(&rootfs.join("etc/group"), b"root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

fn deterministic_tar(dir: &Path, entries: &[&str], out: &Path) -> Result<()> {
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "--mtime=@0",
            "--format=gnu",
        ])
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg("--")
        .args(entries))?;
    Ok(())
}

/// `gzip -n` (no name or timestamp in the header) keeping the input; returns `<in>.gz`.
fn gzip(path: &Path) -> Result<PathBuf> {
    run(Command::new("gzip").args(["-n", "-k", "-f"]).arg(path))?;
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    Ok(PathBuf::from(gz))
}

struct Blob {
    digest: String,
    size: u64,
}

fn add_blob(blobs: &Path, data: &[u8]) -> Result<Blob> {
    let hex = sha256_bytes(data)?;
    write(&blobs.join(&hex), data)?;
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size: data.len() as u64,
    })
}

fn add_blob_file(blobs: &Path, file: &Path) -> Result<Blob> {
    let hex = sha256_file(file)?;
    let dest = blobs.join(&hex);
    std::fs::rename(file, &dest)
        .with_context(|| format!("moving {} to {}", file.display(), dest.display()))?;
    let size = std::fs::metadata(&dest)?.len();
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size,
    })
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// The OCI (GOARCH) name of this machine's architecture.
fn oci_arch() -> Result<&'static str> {
    Ok(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => bail!("no OCI architecture name known for {other}"),
    })
}
