//! Precompiled right-hand sides: globs, case-insensitive needles, string
//! sets, path-prefix sets and IP networks. Built once at compile time so
//! evaluation allocates nothing.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// Shell glob (`fnmatch` without `FNM_PATHNAME`, as Falco uses it): `*`
/// matches any run of characters including `/`, `?` one character, `[...]`
/// a class (`[!...]`/`[^...]` negated, `a-z` ranges). No escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    toks: Box<[Tok]>,
    fold_case: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        items: Box<[(char, char)]>,
    },
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Char(p) => *p == c,
            Tok::Any => true,
            Tok::Star => false,
            Tok::Class { negated, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

impl Glob {
    pub fn new(pattern: &str, fold_case: bool) -> Glob {
        let pat: Vec<char> = if fold_case {
            pattern.chars().map(|c| c.to_ascii_lowercase()).collect()
        } else {
            pattern.chars().collect()
        };
        let mut toks = Vec::with_capacity(pat.len());
        let mut i = 0;
        while i < pat.len() {
            match pat[i] {
                '*' => {
                    // Consecutive stars are one star.
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                    i += 1;
                }
                '?' => {
                    toks.push(Tok::Any);
                    i += 1;
                }
                '[' => match Self::class(&pat, i + 1) {
                    Some((tok, next)) => {
                        toks.push(tok);
                        i = next;
                    }
                    None => {
                        // No closing bracket: a literal '['.
                        toks.push(Tok::Char('['));
                        i += 1;
                    }
                },
                c => {
                    toks.push(Tok::Char(c));
                    i += 1;
                }
            }
        }
        Glob {
            toks: toks.into_boxed_slice(),
            fold_case,
        }
    }

    /// Parses a class body starting after `[`; returns the token and the
    /// index after `]`.
    fn class(pat: &[char], mut i: usize) -> Option<(Tok, usize)> {
        let mut negated = false;
        if matches!(pat.get(i), Some('!' | '^')) {
            negated = true;
            i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = *pat.get(i)?;
            if c == ']' && !first {
                return Some((
                    Tok::Class {
                        negated,
                        items: items.into_boxed_slice(),
                    },
                    i + 1,
                ));
            }
            first = false;
            if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|&h| h != ']') {
                let hi = pat[i + 2];
                items.push((c, hi));
                i += 3;
            } else {
                items.push((c, c));
                i += 1;
            }
        }
    }

    /// Greedy matcher with a single backtrack point: O(len(text) *
    /// len(pattern)) worst case, no recursion.
    pub fn matches(&self, text: &str) -> bool {
        let toks = &self.toks;
        let next = |ti: usize| -> Option<char> {
            text.get(ti..).and_then(|s| s.chars().next()).map(|c| {
                if self.fold_case {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
        };
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if pi < toks.len() {
                if toks[pi] == Tok::Star {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                if let Some(c) = next(ti) {
                    if toks[pi].matches(c) {
                        pi += 1;
                        ti += c.len_utf8();
                        continue;
                    }
                }
            } else if ti >= text.len() {
                return true;
            }
            // Mismatch: let the last star swallow one more character.
            match star {
                Some((sp, st)) => match next(st) {
                    Some(c) => {
                        let st = st + c.len_utf8();
                        star = Some((sp, st));
                        pi = sp;
                        ti = st;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

/// ASCII case-insensitive substring search; the needle is lowered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct INeedle(Box<[u8]>);

impl INeedle {
    pub fn new(needle: &str) -> INeedle {
        INeedle(needle.to_ascii_lowercase().into_bytes().into_boxed_slice())
    }

    pub fn found_in(&self, hay: &str) -> bool {
        let n = &self.0;
        let h = hay.as_bytes();
        if n.is_empty() {
            return true;
        }
        if h.len() < n.len() {
            return false;
        }
        let first = n[0];
        let upper = first.to_ascii_uppercase();
        let last_start = h.len() - n.len();
        let mut i = 0;
        while i <= last_start {
            // Jump to the next byte that can start a match.
            let Some(off) = memchr::memchr2(first, upper, &h[i..=last_start]) else {
                return false;
            };
            let s = i + off;
            if h[s..s + n.len()].eq_ignore_ascii_case(n) {
                return true;
            }
            i = s + 1;
        }
        false
    }
}

/// Set of strings for `in`: linear scan when small, hashed when big.
#[derive(Debug, Clone)]
pub enum StrSet {
    Small(Box<[Box<str>]>),
    Hashed(HashSet<Box<str>, BuildHasherDefault<FxHasher>>),
}

const LINEAR_MAX: usize = 16;

impl StrSet {
    pub fn new(mut items: Vec<String>) -> StrSet {
        items.sort_unstable();
        items.dedup();
        if items.len() <= LINEAR_MAX {
            StrSet::Small(items.into_iter().map(String::into_boxed_str).collect())
        } else {
            StrSet::Hashed(items.into_iter().map(String::into_boxed_str).collect())
        }
    }

    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(items) => items.iter().any(|x| **x == *s),
            StrSet::Hashed(set) => set.contains(s),
        }
    }
}

/// A fast non-cryptographic hasher (the rustc "Fx" hash) for short keys.
/// Set contents come from rule files, not from events, so hash flooding by
/// event data is not a concern: lookups of attacker strings only probe.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `pmatch`: a path matches an entry if it equals it or lies below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSet(Box<[Box<str>]>);

impl PathSet {
    pub fn new(items: Vec<String>) -> PathSet {
        PathSet(
            items
                .into_iter()
                .map(|p| {
                    // "/etc/" and "/etc" are the same prefix; "/" stays "".
                    let t = p.trim_end_matches('/');
                    let t = if t.is_empty() && p.starts_with('/') {
                        ""
                    } else {
                        t
                    };
                    t.to_string().into_boxed_str()
                })
                .collect(),
        )
    }

    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|e| {
            if e.is_empty() {
                return path.starts_with('/');
            }
            match path.strip_prefix(&**e) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            }
        })
    }
}

/// An address or CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

fn canon(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canon(a.trim().parse::<IpAddr>().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|&n| n <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canon(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = Glob::new("/home/*/.ssh/*", false);
        assert!(g.matches("/home/bob/.ssh/id_rsa"));
        assert!(
            g.matches("/home/a/b/.ssh/x"),
            "* crosses '/' like fnmatch without FNM_PATHNAME"
        );
        assert!(!g.matches("/root/.ssh/id_rsa"));
        assert!(Glob::new("*../*../*", false).matches("/var/www/../../etc/passwd"));
        assert!(!Glob::new("*../*../*", false).matches("/var/www/../etc"));
        assert!(Glob::new("a?c", false).matches("aéc"));
        assert!(Glob::new("[a-c]x[!0-9]", false).matches("bxz"));
        assert!(!Glob::new("[a-c]x[!0-9]", false).matches("bx1"));
        assert!(Glob::new("[]]", false).matches("]"));
        assert!(Glob::new("a[b", false).matches("a[b"));
        assert!(Glob::new("", false).matches(""));
        assert!(!Glob::new("", false).matches("x"));
        assert!(Glob::new("*", false).matches(""));
        assert!(Glob::new("*.SH", true).matches("run.sh"));
        assert!(!Glob::new("*.SH", false).matches("run.sh"));
        // Pathological pattern stays fast (no exponential backtracking).
        let text = "a".repeat(5000);
        let pattern = "*a".repeat(50) + "b";
        let start = std::time::Instant::now();
        assert!(!Glob::new(&pattern, false).matches(&text));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn icontains() {
        let n = INeedle::new("AWS_Secret");
        assert!(n.found_in("export aws_secret_access_key=1"));
        assert!(n.found_in("AWS_SECRET"));
        assert!(!n.found_in("aws_secre"));
        assert!(INeedle::new("").found_in(""));
        assert!(INeedle::new("é").found_in("café"));
    }

    #[test]
    fn sets_and_paths() {
        let small = StrSet::new(vec!["b".into(), "a".into()]);
        assert!(small.contains("a") && !small.contains("c"));
        let big = StrSet::new((0..100).map(|i| format!("x{i}")).collect());
        assert!(big.contains("x57") && !big.contains("x100"));

        let p = PathSet::new(vec!["/etc".into(), "/root/".into()]);
        assert!(p.matches("/etc"));
        assert!(p.matches("/etc/passwd"));
        assert!(!p.matches("/etcx/passwd"));
        assert!(p.matches("/root/.ssh"));
        assert!(p.matches("/root"));
        assert!(!p.matches("/ro"));
        assert!(PathSet::new(vec!["/".into()]).matches("/anything"));
    }

    #[test]
    fn networks() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        let h = IpNet::parse("169.254.169.254").unwrap();
        assert!(h.contains("169.254.169.254".parse().unwrap()));
        assert!(!h.contains("169.254.169.253".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nope").is_none());
    }
}
