//! Parsing of `/proc/<pid>/mountinfo` (proc(5)).

use std::path::PathBuf;

use anyhow::{Context, Result};

/// One mount as seen from a process's mount namespace.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Mount point, relative to the process's root.
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options, e.g. `rw,lowerdir=...,upperdir=...`.
    pub super_options: String,
}

impl Mount {
    /// Value of `key=` in the superblock options (e.g. overlay's `upperdir`).
    pub fn super_option(&self, key: &str) -> Option<String> {
        self.super_options
            .split(',')
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
            .map(unescape)
    }
}

/// Mounts of `pid` (`None`: this process).
pub fn read(pid: Option<u32>) -> Result<Vec<Mount>> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/mountinfo"),
        None => "/proc/self/mountinfo".to_owned(),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .map(|l| parse_line(l).with_context(|| format!("{path}: bad line {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    // "id parent maj:min root mount_point options [optional fields...] - fstype source super_options"
    let (pre, post) = line.split_once(" - ")?;
    let mount_point = pre.split(' ').nth(4)?;
    let mut post = post.split(' ');
    Some(Mount {
        mount_point: PathBuf::from(unescape(mount_point)),
        fstype: post.next()?.to_owned(),
        source: unescape(post.next()?),
        super_options: post.next().unwrap_or_default().to_owned(),
    })
}

/// The kernel escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overlay_root() {
        let m = parse_line(
            "812 700 0:91 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/a:/b,upperdir=/x\\040y/fs,workdir=/x/work",
        )
        .unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/"));
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.super_option("upperdir").as_deref(), Some("/x y/fs"));
        assert_eq!(m.super_option("lowerdir").as_deref(), Some("/a:/b"));
        assert_eq!(m.super_option("dir"), None);
    }
}
