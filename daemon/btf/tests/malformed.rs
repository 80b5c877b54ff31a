//! The real vmlinux BTF, truncated and corrupted at many points: parsing and lookups
//! must return errors (or answers), never panic or hang.

mod common;

use common::*;
use saker_btf::{resolve_all, Btf};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const WANTED: &[(&str, &str)] = &[
    ("task_struct", "tgid"),
    ("task_struct", "real_parent"),
    ("mnt_namespace", "ns.inum"),
    ("mm_struct", "arg_start"),
    ("file", "f_path.dentry"),
    ("inode", "i_nlink"),
    ("dentry", "d_name.name"),
    ("ovl_inode", "__upperdentry"),
];

fn vmlinux() -> Vec<u8> {
    std::fs::read(VMLINUX).unwrap_or_else(|e| {
        panic!("these tests need the kernel's BTF at {VMLINUX} (CONFIG_DEBUG_INFO_BTF=y): {e}")
    })
}

/// How many blobs parsed, and how many lookups in them answered.
#[derive(Default, Debug)]
struct Tally {
    blobs: usize,
    parsed: usize,
    answered: usize,
}

impl Tally {
    /// Parses and, if that works, looks things up; only a panic fails the test.
    fn exercise(&mut self, blob: &[u8]) {
        self.blobs += 1;
        if let Ok(btf) = Btf::parse(blob) {
            self.parsed += 1;
            let _ = resolve_all(&btf, WANTED);
            for &(ty, path) in WANTED {
                self.answered += usize::from(btf.member_offset(ty, path).is_ok());
            }
        }
    }
}

#[test]
fn truncated_anywhere() {
    let good = vmlinux();
    let mut t = Tally::default();
    // Every cut inside the header and the first records.
    for len in 0..512 {
        t.exercise(&good[..len]);
    }
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..64 {
        t.exercise(&good[..rng.below(good.len())]);
    }
    eprintln!("truncated_anywhere: {t:?}");
}

#[test]
fn sections_shortened_anywhere() {
    // A plain cut fails at the header's bounds check; shrinking the header's lengths
    // too makes the parser meet the cut mid-record or mid-string.
    let good = vmlinux();
    let mut t = Tally::default();
    let type_len = header_word(&good, TYPE_LEN) as usize;
    let str_len = header_word(&good, STR_LEN) as usize;
    let mut rng = Rng(0x5eed_0002);
    for i in 0..48 {
        let mut blob = good.clone();
        let cut = if i < 8 {
            i * 5 + 1
        } else {
            rng.below(type_len)
        };
        set_header_word(&mut blob, TYPE_LEN, cut as u32);
        t.exercise(&blob);
    }
    for i in 0..16 {
        let mut blob = good.clone();
        let cut = if i < 4 { i } else { rng.below(str_len) };
        set_header_word(&mut blob, STR_LEN, cut as u32);
        t.exercise(&blob);
    }
    eprintln!("sections_shortened_anywhere: {t:?}");
    assert!(
        t.parsed > 0,
        "no damaged blob parsed, so no lookup was exercised"
    );
}

#[test]
fn corrupted_anywhere() {
    let good = vmlinux();
    let mut t = Tally::default();
    let mut rng = Rng(0x5eed_0003);
    // Every header byte, with a few values each.
    for at in 0..24 {
        for v in [0, 1, 0x7f, 0x80, 0xff, good[at] ^ 0x10] {
            let mut blob = good.clone();
            blob[at] = v;
            t.exercise(&blob);
        }
    }
    // Random single bytes, then bursts of many bytes, anywhere in the data.
    for round in 0..160 {
        let mut blob = good.clone();
        let n = if round < 100 { 1 } else { 64 };
        for _ in 0..n {
            let at = rng.below(blob.len());
            blob[at] = rng.next() as u8;
        }
        t.exercise(&blob);
    }
    eprintln!("corrupted_anywhere: {t:?}");
    assert!(
        t.parsed > 0,
        "no damaged blob parsed, so no lookup was exercised"
    );
}

#[test]
fn corrupted_struct_records_still_resolve_safely() {
    // Random corruption rarely hits the structs being looked up, and mostly breaks a
    // record's kind so parsing stops early. So corrupt a few whole 4-byte words (records
    // are word-aligned) near the start of the type section, where the core structs
    // (task_struct, file, dentry, inode…) live: names, sizes, member types and offsets.
    let good = vmlinux();
    let mut t = Tally::default();
    let types_at = (header_word(&good, HDR_LEN) + header_word(&good, TYPE_OFF)) as usize;
    let words = (header_word(&good, TYPE_LEN) as usize).min(64 * 1024) / 4;
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..120 {
        let mut blob = good.clone();
        for _ in 0..6 {
            let at = types_at + 4 * rng.below(words);
            let v = match rng.below(4) {
                0 => 0,
                1 => u32::MAX,
                2 => rng.below(200_000) as u32,
                _ => rng.next() as u32,
            };
            blob[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        t.exercise(&blob);
    }
    eprintln!("corrupted_struct_records_still_resolve_safely: {t:?}");
    assert!(
        t.parsed > 0,
        "no corrupted blob parsed, so no lookup was exercised"
    );
}
