//! A small reader of Linux kernel BTF that resolves byte offsets of struct fields.
//!
//! saker's sensor reads kernel structs at offsets computed at load time (see
//! `saker_common::Offsets`). This crate reads the raw BTF the kernel exports in
//! `/sys/kernel/btf/vmlinux` (and, as split BTF, `/sys/kernel/btf/<module>`) and answers
//! "at which byte of `struct X` is field `a.b.c`", looking through anonymous structs and
//! unions the way C does.
//!
//! ```no_run
//! use saker_btf::Btf;
//! let btf = Btf::from_file("/sys/kernel/btf/vmlinux")?;
//! let tgid = btf.member_offset("task_struct", "tgid")?;
//! let inum = btf.field_path_offset("mnt_namespace", &["ns", "inum"])?;
//! let all = saker_btf::resolve_all(&btf, &[("file", "f_path.dentry"), ("dentry", "d_name.name")])?;
//! # Ok::<(), saker_btf::BtfError>(())
//! ```

mod error;
mod parse;
mod resolve;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use error::BtfError;
use parse::{kind, Member, Type};

/// Parsed BTF: the type records, their strings, and an index of struct/union names.
///
/// Cloning is cheap (the data is shared). A split BTF keeps its base alive and answers
/// lookups for the base's types too.
#[derive(Clone)]
pub struct Btf {
    inner: Arc<Layer>,
}

/// One BTF blob; split BTF stacks a layer on its base.
struct Layer {
    base: Option<Btf>,
    /// Id of `types[0]`: 1 for base BTF, the base's next free id for split BTF.
    first_id: u32,
    /// String offsets below this belong to the base.
    str_base: u32,
    strings: Vec<u8>,
    types: Vec<Type>,
    members: Vec<Member>,
    /// Named structs and unions of this layer only; names may repeat in vmlinux.
    composites: HashMap<Box<[u8]>, Vec<u32>>,
}

impl Btf {
    /// Reads and parses a base BTF file, e.g. `/sys/kernel/btf/vmlinux`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.to_owned(),
            source,
        })?;
        Btf::parse(&data)
    }

    /// Parses base BTF (type ids start at 1).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        Btf::build(data, None)
    }

    /// Parses split BTF, such as a kernel module's `/sys/kernel/btf/<module>`, whose type
    /// ids and string offsets continue after those of `base`.
    pub fn parse_split(data: &[u8], base: &Btf) -> Result<Btf, BtfError> {
        Btf::build(data, Some(base.clone()))
    }

    /// Number of types, counting those of the base for split BTF (void excluded), so
    /// the valid ids are `1..=type_count()`.
    pub fn type_count(&self) -> usize {
        self.inner.first_id as usize - 1 + self.inner.types.len()
    }

    /// Byte offset of `member` in the struct or union named `ty`.
    ///
    /// The member is searched through anonymous struct/union members (C's rules), and
    /// their offsets are added. A dotted `member` such as `"ns.inum"` is a path, as in
    /// [`Btf::field_path_offset`].
    pub fn member_offset(&self, ty: &str, member: &str) -> Result<u32, BtfError> {
        let path: Vec<&str> = member.split('.').collect();
        self.field_path_offset(ty, &path)
    }

    /// Byte offset of the member reached by following `path` from the struct or union
    /// named `ty` through embedded (not pointed-to) structs and unions, e.g.
    /// `("file", &["f_path", "dentry"])`. Each step searches anonymous members too.
    pub fn field_path_offset(&self, ty: &str, path: &[&str]) -> Result<u32, BtfError> {
        resolve::path_offset(self, ty, path)
    }

    fn build(data: &[u8], base: Option<Btf>) -> Result<Btf, BtfError> {
        let sec = parse::sections(data)?;
        let (first_id, str_base) = match &base {
            None => (1, 0),
            Some(b) => {
                let over = |reason| BtfError::BadHeader { offset: 0, reason };
                let next_id = u32::try_from(b.type_count() + 1)
                    .map_err(|_| over("base has too many types"))?;
                let l = &b.inner;
                let str_end = u32::try_from(l.strings.len())
                    .ok()
                    .and_then(|n| l.str_base.checked_add(n))
                    .ok_or(over("string offsets overflow u32"))?;
                (next_id, str_end)
            }
        };
        let parsed = parse::types(sec.types, sec.types_at, first_id)?;
        let mut layer = Layer {
            base,
            first_id,
            str_base,
            strings: sec.strings.to_vec(),
            types: parsed.types,
            members: parsed.members,
            composites: HashMap::new(),
        };
        layer.composites = index_composites(&layer)?;
        Ok(Btf {
            inner: Arc::new(layer),
        })
    }
}

/// Maps each struct/union name of `layer` to its ids.
fn index_composites(layer: &Layer) -> Result<HashMap<Box<[u8]>, Vec<u32>>, BtfError> {
    let mut index: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
    for (i, t) in layer.types.iter().enumerate() {
        // The parser checked that every id fits in u32.
        let id = layer.first_id.wrapping_add(i as u32);
        if !matches!(t.kind, kind::STRUCT | kind::UNION) || t.name_off == 0 {
            continue;
        }
        let name = layer.str_at(t.name_off)?;
        if name.is_empty() {
            continue;
        }
        match index.get_mut(name) {
            Some(ids) => ids.push(id),
            None => {
                index.insert(name.into(), vec![id]);
            }
        }
    }
    Ok(index)
}

impl Layer {
    /// The NUL-terminated string at `off`, which may live in a base layer.
    fn str_at(&self, off: u32) -> Result<&[u8], BtfError> {
        if off < self.str_base {
            return match &self.base {
                Some(b) => b.inner.str_at(off),
                None => Err(BtfError::BadString { offset: off }),
            };
        }
        let bad = || BtfError::BadString { offset: off };
        let tail = self
            .strings
            .get((off - self.str_base) as usize..)
            .ok_or_else(bad)?;
        let end = tail.iter().position(|&b| b == 0).ok_or_else(bad)?;
        Ok(&tail[..end])
    }
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("types", &self.type_count())
            .field("split", &self.inner.base.is_some())
            .finish()
    }
}

// The daemon shares one parsed vmlinux BTF between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Btf>();
};

/// Resolves a table of `(struct, dotted member path)` pairs, in order, stopping at the
/// first that fails (its error names it).
pub fn resolve_all(btf: &Btf, wanted: &[(&str, &str)]) -> Result<Vec<u32>, BtfError> {
    wanted
        .iter()
        .map(|&(ty, member)| btf.member_offset(ty, member))
        .collect()
}
