//! Hand-built BTF: nesting rules, error cases, split BTF and exhaustive corruption.

mod common;

use common::*;
use saker_btf::{resolve_all, Btf, BtfError};

/// A dentry-like layout: members in an anonymous union (one behind const), in an
/// anonymous struct, behind typedefs, plus pointers, a bitfield and a missing field.
fn sample() -> Builder {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    let long = b.int("long", 8);
    let ch = b.int("char", 1);
    let name_ptr = b.ptr(ch);
    let qstr = b.strukt("qstr", 16, &[("hash", int, 0), ("name", name_ptr, 64)]);
    let cqstr = b.konst(qstr);
    let anon_u = b.union("", 16, &[("d_name", cqstr, 0), ("__d_name", qstr, 0)]);
    let anon_s = b.strukt("", 8, &[("pad", int, 0), ("inner", int, 32)]);
    let anon_td = b.typedef("anon_t", anon_s);
    let qstr_td = b.typedef("qstr_t", cqstr);
    b.strukt(
        "dentry",
        72,
        &[
            ("flags", int, 0),
            ("", anon_u, 64),
            ("", anon_td, 256),
            ("tail", long, 320),
            ("alias", qstr_td, 384),
            ("parent", name_ptr, 512),
        ],
    );
    b
}

fn offset(btf: &Btf, ty: &str, member: &str) -> u32 {
    btf.member_offset(ty, member)
        .unwrap_or_else(|e| panic!("{ty}.{member}: {e}"))
}

#[test]
fn finds_members_through_anonymous_members_and_typedefs() {
    let btf = Btf::parse(&sample().build()).unwrap();
    assert_eq!(offset(&btf, "dentry", "flags"), 0);
    assert_eq!(offset(&btf, "dentry", "d_name"), 8);
    assert_eq!(offset(&btf, "dentry", "__d_name"), 8);
    assert_eq!(offset(&btf, "dentry", "d_name.name"), 16);
    assert_eq!(offset(&btf, "dentry", "inner"), 36);
    assert_eq!(offset(&btf, "dentry", "tail"), 40);
    // Path through typedef -> const -> struct.
    assert_eq!(offset(&btf, "dentry", "alias.name"), 56);
    assert_eq!(
        btf.field_path_offset("dentry", &["d_name", "name"])
            .unwrap(),
        16
    );
    assert_eq!(
        resolve_all(&btf, &[("dentry", "tail"), ("qstr", "name")]).unwrap(),
        vec![40, 8]
    );
}

#[test]
fn errors_name_what_is_missing() {
    let btf = Btf::parse(&sample().build()).unwrap();
    let err = btf.member_offset("ovl_inode", "vfs_inode").unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchType(t) if t == "ovl_inode"),
        "{err}"
    );

    let err = btf.member_offset("dentry", "loginuid").unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { ty, member } if ty == "dentry" && member == "loginuid"),
        "{err}"
    );
    assert_eq!(err.to_string(), "dentry has no member loginuid");

    let err = btf.member_offset("dentry", "d_name.nope").unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { ty, member } if ty == "dentry" && member == "d_name.nope"),
        "{err}"
    );

    let err = btf.member_offset("dentry", "parent.name").unwrap_err();
    assert!(
        matches!(&err, BtfError::NotComposite { member, kind: "pointer", .. } if member == "parent"),
        "{err}"
    );
    let err = btf.member_offset("dentry", "flags.x").unwrap_err();
    assert!(
        matches!(err, BtfError::NotComposite { kind: "int", .. }),
        "{err}"
    );

    for bad in ["", "d_name..name", ".flags", "flags."] {
        let err = btf.member_offset("dentry", bad).unwrap_err();
        assert!(matches!(err, BtfError::BadPath(_)), "{bad:?}: {err}");
    }
    assert!(matches!(
        btf.field_path_offset("dentry", &[]),
        Err(BtfError::BadPath(_))
    ));

    // The first failing entry is the one reported.
    let err = resolve_all(
        &btf,
        &[("dentry", "tail"), ("dentry", "nope"), ("nope", "x")],
    )
    .unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { member, .. } if member == "nope"),
        "{err}"
    );
}

#[test]
fn bitfields_are_refused() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    let int3 = b.int_bits("int", 4, 3);
    // kind_flag struct: bitfield size in the offset's top 8 bits.
    b.composite(
        STRUCT,
        "kflag",
        8,
        true,
        &[("bits", int, (3 << 24) | 5), ("whole", int, 32)],
    );
    // Without kind_flag: the bitfield is an INT with fewer bits, or an unaligned offset.
    b.strukt(
        "plain",
        8,
        &[("narrow", int3, 0), ("odd", int, 4), ("ok", int, 32)],
    );
    let btf = Btf::parse(&b.build()).unwrap();

    let err = btf.member_offset("kflag", "bits").unwrap_err();
    assert!(
        matches!(&err, BtfError::Bitfield { ty, member, bit_offset: 5, bits: 3 } if ty == "kflag" && member == "bits"),
        "{err}"
    );
    assert_eq!(offset(&btf, "kflag", "whole"), 4);
    assert!(matches!(
        btf.member_offset("plain", "narrow"),
        Err(BtfError::Bitfield { bits: 3, .. })
    ));
    assert!(matches!(
        btf.member_offset("plain", "odd"),
        Err(BtfError::Bitfield { bit_offset: 4, .. })
    ));
    assert_eq!(offset(&btf, "plain", "ok"), 4);
}

#[test]
fn duplicate_struct_names_must_agree() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.strukt("dup", 8, &[("a", int, 0), ("same", int, 32)]);
    b.strukt(
        "dup",
        8,
        &[("b", int, 0), ("same", int, 32), ("moved", int, 0)],
    );
    b.strukt("dup", 8, &[("moved", int, 32)]);
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(offset(&btf, "dup", "same"), 4);
    // Only one definition has it: no conflict.
    assert_eq!(offset(&btf, "dup", "a"), 0);
    let err = btf.member_offset("dup", "moved").unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::Ambiguous {
                first: 0,
                other: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn loops_and_blowups_end_in_errors() {
    let mut b = Builder::new();
    b.int("int", 4);
    // typedef 2 -> typedef 3 -> typedef 2.
    let t1 = b.typedef("loop_a", 3);
    b.typedef("loop_b", t1);
    b.strukt("looped", 4, &[("x", t1, 0)]);
    let btf = Btf::parse(&b.build()).unwrap();
    let err = btf.member_offset("looped", "x.y").unwrap_err();
    assert!(matches!(err, BtfError::TooDeep { .. }), "{err}");

    // A wide DAG: each level has two anonymous members of the next level, 30 deep;
    // a naive search would visit 2^30 members looking for a missing name.
    let mut b = Builder::new();
    let int = b.int("int", 4);
    let mut level = b.strukt("", 4, &[("leaf", int, 0)]);
    for _ in 0..30 {
        level = b.strukt("", 4, &[("", level, 0), ("", level, 0)]);
    }
    b.strukt("wide", 4, &[("", level, 0)]);
    let btf = Btf::parse(&b.build()).unwrap();
    let start = std::time::Instant::now();
    let err = btf.member_offset("wide", "missing").unwrap_err();
    assert!(matches!(err, BtfError::TooDeep { .. }), "{err}");
    assert_eq!(offset(&btf, "wide", "leaf"), 0);
    assert!(
        start.elapsed().as_secs() < 10,
        "lookup took {:?}",
        start.elapsed()
    );
}

#[test]
fn self_referencing_anonymous_member_is_too_deep() {
    let mut b = Builder::new();
    b.int("int", 4);
    // Type 2: struct me { <anonymous member of type 2> }.
    b.raw("me", STRUCT, false, 1, 4, &[0, 2, 0]);
    let btf = Btf::parse(&b.build()).unwrap();
    let err = btf.member_offset("me", "x").unwrap_err();
    assert!(matches!(err, BtfError::TooDeep { .. }), "{err}");
}

#[test]
fn bad_references_are_errors() {
    let mut b = Builder::new();
    let int = b.int("int", 4);
    b.strukt("dangling", 8, &[("x", 999, 0), ("y", int, 32)]);
    let mut blob = b.build();
    let btf = Btf::parse(&blob).unwrap();
    assert!(matches!(
        btf.member_offset("dangling", "x.z"),
        Err(BtfError::BadTypeId { id: 999 })
    ));
    // Even a last path step checks its type (for the int bitfield encoding).
    assert!(matches!(
        btf.member_offset("dangling", "x"),
        Err(BtfError::BadTypeId { id: 999 })
    ));

    // Point the first member's name past the string section.
    let member_name_at = 24 + 12 + 4 + 12;
    blob[member_name_at..member_name_at + 4].copy_from_slice(&10_000u32.to_le_bytes());
    let btf = Btf::parse(&blob).unwrap();
    assert!(matches!(
        btf.member_offset("dangling", "y"),
        Err(BtfError::BadString { offset: 10_000 })
    ));
}

#[test]
fn header_errors_carry_offsets() {
    let good = sample().build();
    assert!(matches!(
        Btf::parse(&good[..10]),
        Err(BtfError::Truncated { what: "header", .. })
    ));

    let mut bad = good.clone();
    // Big-endian BTF.
    bad[0] = 0xeb;
    bad[1] = 0x9f;
    let err = Btf::parse(&bad).unwrap_err();
    assert!(matches!(err, BtfError::BadMagic { found: 0x9feb }), "{err}");
    assert!(err.to_string().contains("0x9feb"), "{err}");

    let mut bad = good.clone();
    bad[2] = 2;
    assert!(matches!(
        Btf::parse(&bad),
        Err(BtfError::BadVersion { found: 2 })
    ));

    let mut bad = good.clone();
    set_header_word(&mut bad, HDR_LEN, 20);
    assert!(matches!(
        Btf::parse(&bad),
        Err(BtfError::BadHeader { offset: 4, .. })
    ));

    let type_len = header_word(&good, TYPE_LEN);
    let cut = &good[..24 + type_len as usize - 3];
    assert!(matches!(
        Btf::parse(cut),
        Err(BtfError::Truncated {
            what: "type section",
            offset: 24
        })
    ));

    // Shrink type_len so the last record is cut: the error names its id and offset.
    let mut bad = good.clone();
    set_header_word(&mut bad, TYPE_LEN, type_len - 4);
    match Btf::parse(&bad) {
        Err(BtfError::TruncatedType { id, offset }) => {
            assert!(id > 1 && offset > 24, "id {id} offset {offset}")
        }
        other => panic!("{other:?}"),
    }

    // Kind 31 does not exist.
    let mut bad = good.clone();
    bad[24 + 4 + 3] = 31;
    assert!(matches!(
        Btf::parse(&bad),
        Err(BtfError::UnknownKind {
            id: 1,
            kind: 31,
            offset: 24
        })
    ));

    // A longer header (future fields) is skipped over.
    let mut long = good[..24].to_vec();
    long.extend_from_slice(&[0; 8]);
    long.extend_from_slice(&good[24..]);
    set_header_word(&mut long, HDR_LEN, 32);
    let btf = Btf::parse(&long).unwrap();
    assert_eq!(offset(&btf, "dentry", "d_name.name"), 16);

    let err = Btf::from_file("/nonexistent/btf").unwrap_err();
    assert!(matches!(err, BtfError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/btf"), "{err}");
}

#[test]
fn split_btf_continues_ids_and_strings_of_its_base() {
    let mut base = Builder::new();
    let int = base.int("int", 4);
    let inner = base.strukt("base_inner", 8, &[("a", int, 0), ("b", int, 32)]);
    let base_blob = base.build();
    let base_btf = Btf::parse(&base_blob).unwrap();
    assert_eq!(base_btf.type_count(), 2);

    let mut split = Builder::split(2, header_word(&base_blob, STR_LEN));
    let own = split.strukt("mod_inner", 4, &[("c", int, 0)]);
    assert_eq!(own, 3);
    split.strukt(
        "mod_state",
        24,
        &[("x", int, 0), ("inner", inner, 64), ("mine", own, 128)],
    );
    let btf = Btf::parse_split(&split.build(), &base_btf).unwrap();
    assert_eq!(btf.type_count(), 4);
    assert_eq!(offset(&btf, "mod_state", "inner.b"), 12);
    assert_eq!(offset(&btf, "mod_state", "mine.c"), 16);
    // Base types stay reachable through the split handle.
    assert_eq!(offset(&btf, "base_inner", "b"), 4);
    // Parsed without its base, the same blob refers to ids and strings it lacks.
    assert!(Btf::parse(&split.build()).is_err());
}

/// Runs every lookup the sample supports; results may be errors, never panics.
fn exercise(btf: &Btf) {
    for path in [
        "flags",
        "d_name",
        "d_name.name",
        "inner",
        "tail",
        "alias.name",
        "parent.x",
        "nope",
    ] {
        let _ = btf.member_offset("dentry", path);
    }
    let _ = btf.member_offset("qstr", "name");
    let _ = btf.type_count();
}

#[test]
fn every_truncation_and_byte_corruption_of_a_small_blob_is_handled() {
    let good = sample().build();
    for len in 0..good.len() {
        if let Ok(btf) = Btf::parse(&good[..len]) {
            exercise(&btf);
        }
    }
    let mut blob = good.clone();
    for at in 0..good.len() {
        for v in [
            0,
            0xff,
            good[at] ^ 1,
            good[at] ^ 0x80,
            good[at].wrapping_add(12),
        ] {
            blob[at] = v;
            if let Ok(btf) = Btf::parse(&blob) {
                exercise(&btf);
            }
        }
        blob[at] = good[at];
    }
}
