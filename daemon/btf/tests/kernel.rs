//! Offsets from the running kernel's BTF, checked against bpftool (libbpf's reading of
//! the same file) and, on the kernel this was written on, against exact values.

mod common;

use std::collections::HashMap;
use std::process::Command;

use saker_btf::{resolve_all, Btf, BtfError};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The fields the sensor reads (one per `saker_common::Offsets` field), as
/// (struct, dotted path, offset on the reference kernel below).
const FIELDS: &[(&str, &str, u32)] = &[
    ("task_struct", "pid", 1264),
    ("task_struct", "tgid", 1268),
    ("task_struct", "real_parent", 1280),
    ("task_struct", "mm", 1136),
    ("task_struct", "loginuid", 1952),
    ("task_struct", "nsproxy", 1840),
    ("task_struct", "exit_code", 1164),
    ("nsproxy", "mnt_ns", 24),
    ("nsproxy", "pid_ns_for_children", 32),
    ("mnt_namespace", "ns.inum", 24),
    ("pid_namespace", "ns.inum", 136),
    ("mm_struct", "arg_start", 480),
    ("mm_struct", "arg_end", 488),
    ("mm_struct", "exe_file", 1312),
    ("file", "f_inode", 32),
    ("file", "f_path.dentry", 72),
    ("inode", "i_ino", 64),
    ("inode", "i_sb", 40),
    ("inode", "i_nlink", 72),
    ("super_block", "s_dev", 16),
    ("super_block", "s_magic", 96),
    ("dentry", "d_name.name", 40),
    ("ovl_inode", "vfs_inode", 32),
    ("ovl_inode", "__upperdentry", 648),
    ("linux_binprm", "filename", 96),
];

/// `uname -r` of the kernel whose offsets are in [`FIELDS`].
const REFERENCE_KERNEL: &str = "6.18.44-fc-v669";

fn vmlinux() -> (Vec<u8>, Btf) {
    let data = std::fs::read(VMLINUX).unwrap_or_else(|e| {
        panic!("these tests need the kernel's BTF at {VMLINUX} (CONFIG_DEBUG_INFO_BTF=y): {e}")
    });
    let btf = Btf::parse(&data).unwrap_or_else(|e| panic!("parsing {VMLINUX}: {e}"));
    (data, btf)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

// ---- An independent resolver over `bpftool btf dump format raw` ----

struct RawType {
    kind: String,
    name: String,
    /// `type_id=` of PTR/TYPEDEF/CONST/… lines.
    target: Option<u32>,
    /// (name, type_id, bits_offset, bitfield_size) of STRUCT/UNION members.
    members: Vec<(String, u32, u32, u32)>,
}

/// bpftool's view of the BTF: type id → type.
struct Bpftool(HashMap<u32, RawType>);

fn bpftool() -> Bpftool {
    // cargo's PATH often lacks sbin, where distributions put bpftool.
    let candidates = [
        std::env::var("BPFTOOL").unwrap_or_default(),
        "bpftool".into(),
        "/usr/sbin/bpftool".into(),
        "/usr/local/sbin/bpftool".into(),
    ];
    let output = candidates
        .iter()
        .filter(|c| !c.is_empty())
        .find_map(|tool| {
            Command::new(tool)
                .args(["btf", "dump", "file", VMLINUX, "format", "raw"])
                .output()
                .ok()
        });
    let Some(output) = output else {
        panic!(
            "bpftool is needed for these tests (it cross-checks the offsets): install it \
             (Debian/Ubuntu: apt-get install bpftool) or set BPFTOOL=/path/to/bpftool"
        );
    };
    assert!(
        output.status.success(),
        "bpftool btf dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Bpftool::parse(&String::from_utf8_lossy(&output.stdout))
}

/// `key=value` from a bpftool line.
fn field(line: &str, key: &str) -> Option<u32> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The `'quoted'` name of a bpftool line.
fn quoted(line: &str) -> String {
    line.split('\'').nth(1).unwrap_or_default().to_owned()
}

impl Bpftool {
    fn parse(text: &str) -> Bpftool {
        let mut types = HashMap::new();
        let mut current: Option<u32> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                // "[114] STRUCT 'task_struct' size=3264 vlen=248"
                let (id, rest) = rest.split_once("] ").expect("bpftool type line");
                let id: u32 = id.parse().expect("bpftool type id");
                let kind = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                types.insert(
                    id,
                    RawType {
                        target: field(rest, "type_id"),
                        name: quoted(rest),
                        kind,
                        members: Vec::new(),
                    },
                );
                current = Some(id);
            } else if let Some(member) = line.strip_prefix('\t') {
                // "\t'tgid' type_id=68 bits_offset=10144[ bitfield_size=N]"
                let Some(t) = current.and_then(|id| types.get_mut(&id)) else {
                    continue;
                };
                if t.kind == "STRUCT" || t.kind == "UNION" {
                    t.members.push((
                        quoted(member),
                        field(member, "type_id").expect("member type_id"),
                        field(member, "bits_offset").expect("member bits_offset"),
                        field(member, "bitfield_size").unwrap_or(0),
                    ));
                }
            }
        }
        Bpftool(types)
    }

    fn strip(&self, mut id: u32) -> u32 {
        while let Some(t) = self.0.get(&id) {
            match (t.kind.as_str(), t.target) {
                ("TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG", Some(to)) => id = to,
                _ => break,
            }
        }
        id
    }

    fn is_composite(&self, id: u32) -> bool {
        self.0
            .get(&id)
            .is_some_and(|t| t.kind == "STRUCT" || t.kind == "UNION")
    }

    /// (bit offset, type id, bitfield size) of `name` in `id`, through anonymous members.
    fn find(&self, id: u32, name: &str) -> Option<(u32, u32, u32)> {
        for (m, ty, bits, size) in &self.0.get(&id)?.members {
            if m == name {
                return Some((*bits, *ty, *size));
            }
            let inner = self.strip(*ty);
            if m == "(anon)" && self.is_composite(inner) {
                if let Some((b, t, s)) = self.find(inner, name) {
                    return Some((bits + b, t, s));
                }
            }
        }
        None
    }

    /// Byte offset of `path` in the first struct/union named `ty`.
    fn offset(&self, ty: &str, path: &str) -> Option<u32> {
        let mut ids: Vec<_> = self
            .0
            .iter()
            .filter(|(_, t)| t.name == ty && (t.kind == "STRUCT" || t.kind == "UNION"))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        let mut id = *ids.first()?;
        let mut bits = 0;
        for step in path.split('.') {
            let (b, t, _) = self.find(id, step)?;
            bits += b;
            id = self.strip(t);
        }
        assert_eq!(
            bits % 8,
            0,
            "{ty}.{path} is not byte aligned in bpftool's view"
        );
        Some(bits / 8)
    }
}

// ---- Tests ----

#[test]
fn offsets_match_bpftool() {
    let (_, btf) = vmlinux();
    let tool = bpftool();
    let mut checked = 0;
    for &(ty, path, _) in FIELDS {
        let ours = btf.member_offset(ty, path);
        match tool.offset(ty, path) {
            Some(want) => {
                assert_eq!(ours.unwrap_or_else(|e| panic!("{e}")), want, "{ty}.{path}");
                checked += 1;
            }
            // A kernel without the field (e.g. loginuid without CONFIG_AUDIT): we must
            // say which field is missing, not make one up.
            None => assert!(
                matches!(
                    ours,
                    Err(BtfError::NoSuchType(_) | BtfError::NoSuchMember { .. })
                ),
                "{ty}.{path}: bpftool has none, we say {ours:?}"
            ),
        }
    }
    assert!(checked > 0, "bpftool found none of the fields");
}

#[test]
fn offsets_are_exact_on_the_reference_kernel() {
    let (_, btf) = vmlinux();
    let release = kernel_release();
    if release != REFERENCE_KERNEL {
        // Other kernels differ; offsets_match_bpftool checks them.
        eprintln!("kernel {release} is not {REFERENCE_KERNEL}: exact values not checked");
        return;
    }
    assert_eq!(
        btf.member_offset("task_struct", "real_parent").unwrap(),
        1280
    );
    assert_eq!(btf.member_offset("task_struct", "tgid").unwrap(), 1268);
    let wanted: Vec<(&str, &str)> = FIELDS.iter().map(|&(t, p, _)| (t, p)).collect();
    let got = resolve_all(&btf, &wanted).unwrap();
    for (&(ty, path, want), got) in FIELDS.iter().zip(got) {
        assert_eq!(got, want, "{ty}.{path}");
    }
}

#[test]
fn path_forms_agree() {
    let (_, btf) = vmlinux();
    assert_eq!(
        btf.field_path_offset("mnt_namespace", &["ns", "inum"])
            .unwrap(),
        btf.member_offset("mnt_namespace", "ns.inum").unwrap()
    );
    // The sum of the steps.
    let ns = btf.member_offset("pid_namespace", "ns").unwrap();
    let inum = btf.member_offset("ns_common", "inum").unwrap();
    assert_eq!(
        btf.member_offset("pid_namespace", "ns.inum").unwrap(),
        ns + inum
    );
}

#[test]
fn missing_things_are_named() {
    let (_, btf) = vmlinux();
    let err = btf.member_offset("no_such_struct_xyz", "x").unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchType(t) if t == "no_such_struct_xyz"),
        "{err}"
    );

    let err = btf
        .member_offset("task_struct", "no_such_member")
        .unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { ty, member } if ty == "task_struct" && member == "no_such_member"),
        "{err}"
    );
    let err = btf
        .member_offset("mnt_namespace", "ns.no_such")
        .unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { ty, member } if ty == "mnt_namespace" && member == "ns.no_such"),
        "{err}"
    );
    // mm is a pointer: the path cannot go through it.
    let err = btf.member_offset("task_struct", "mm.pgd").unwrap_err();
    assert!(
        matches!(
            err,
            BtfError::NotComposite {
                kind: "pointer",
                ..
            }
        ),
        "{err}"
    );

    let err = resolve_all(
        &btf,
        &[
            ("task_struct", "tgid"),
            ("task_struct", "nope"),
            ("nope", "x"),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(&err, BtfError::NoSuchMember { member, .. } if member == "nope"),
        "{err}"
    );
}

#[test]
fn bitfields_are_refused() {
    let (_, btf) = vmlinux();
    let tool = bpftool();
    // Any bitfield bpftool shows directly in a uniquely named struct.
    let mut names: HashMap<&str, u32> = HashMap::new();
    for t in tool.0.values().filter(|t| t.kind == "STRUCT") {
        *names.entry(&t.name).or_default() += 1;
    }
    let (ty, member) = tool
        .0
        .values()
        .filter(|t| t.kind == "STRUCT" && t.name != "(anon)" && names[t.name.as_str()] == 1)
        .find_map(|t| {
            let m = t.members.iter().find(|m| m.3 != 0 && m.0 != "(anon)")?;
            Some((t.name.clone(), m.0.clone()))
        })
        .expect("vmlinux has bitfields");
    let err = btf.member_offset(&ty, &member).unwrap_err();
    assert!(
        matches!(err, BtfError::Bitfield { .. }),
        "{ty}.{member}: {err}"
    );
}

#[test]
fn module_btf_parses_as_split() {
    let (_, base) = vmlinux();
    let mut modules = 0;
    for entry in std::fs::read_dir("/sys/kernel/btf").expect("/sys/kernel/btf") {
        let path = entry.expect("dir entry").path();
        if path.file_name().is_some_and(|n| n == "vmlinux") {
            continue;
        }
        let data = std::fs::read(&path).expect("module BTF");
        let btf =
            Btf::parse_split(&data, &base).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(btf.type_count() >= base.type_count(), "{}", path.display());
        modules += 1;
    }
    eprintln!("{modules} module BTF files parsed");
}

#[test]
fn synthetic_module_over_real_vmlinux() {
    let (data, base) = vmlinux();
    let base_types = u32::try_from(base.type_count()).unwrap();
    let mut m = common::Builder::split(base_types, common::header_word(&data, common::STR_LEN));
    // Type 1 of vmlinux is an integer type; the module struct embeds its own struct too.
    let inner = m.strukt("saker_test_inner", 8, &[("word", 1, 0), ("second", 1, 32)]);
    m.strukt(
        "saker_test_mod",
        24,
        &[("first", 1, 0), ("inner", inner, 64)],
    );
    let btf = Btf::parse_split(&m.build(), &base).unwrap();
    assert_eq!(btf.type_count(), base.type_count() + 2);
    assert_eq!(
        btf.member_offset("saker_test_mod", "inner.second").unwrap(),
        12
    );
    // vmlinux types resolve through the module's handle as through the base's.
    assert_eq!(
        btf.member_offset("task_struct", "tgid").unwrap(),
        base.member_offset("task_struct", "tgid").unwrap()
    );
}
