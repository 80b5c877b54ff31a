//! Member lookup: by name through anonymous members, and along member paths.

use crate::error::BtfError;
use crate::parse::{kind, Member, Type};
use crate::{Btf, Layer};

/// Deepest typedef/const/… chain or anonymous-member nesting followed. Real kernel
/// types stay in single digits; the limit stops loops in malformed BTF.
const MAX_DEPTH: u32 = 32;
/// Members visited per lookup at most, so hostile BTF (wide DAGs of anonymous members)
/// cannot make a lookup take exponential time. task_struct is ~300 with nesting.
const MAX_VISITS: u32 = 1 << 20;

/// A member found by name: its byte offset in the searched struct and its type.
struct Hit {
    offset: u32,
    type_id: u32,
}

/// What a lookup is about, to name it in errors.
struct Ctx<'a> {
    ty: &'a str,
    /// The path up to and including the member being searched.
    path: &'a [&'a str],
    visits: u32,
}

impl Ctx<'_> {
    fn member(&self) -> String {
        self.path.join(".")
    }
    fn no_such_member(&self) -> BtfError {
        BtfError::NoSuchMember {
            ty: self.ty.to_owned(),
            member: self.member(),
        }
    }
    fn too_deep(&self) -> BtfError {
        BtfError::TooDeep {
            ty: self.ty.to_owned(),
            member: self.member(),
        }
    }
    fn overflow(&self) -> BtfError {
        BtfError::Overflow {
            ty: self.ty.to_owned(),
            member: self.member(),
        }
    }
    fn bitfield(&self, bit_offset: u32, bits: u32) -> BtfError {
        BtfError::Bitfield {
            ty: self.ty.to_owned(),
            member: self.member(),
            bit_offset,
            bits,
        }
    }
}

pub(crate) fn path_offset(btf: &Btf, ty: &str, path: &[&str]) -> Result<u32, BtfError> {
    if path.is_empty() || path.iter().any(|p| p.is_empty()) {
        return Err(BtfError::BadPath(path.join(".")));
    }
    let ids = candidates(btf, ty.as_bytes());
    if ids.is_empty() {
        return Err(BtfError::NoSuchType(ty.to_owned()));
    }
    // vmlinux has a few duplicate struct names (distinct definitions in different
    // compilation units). Accept the answer if every definition that has the path agrees.
    let mut found: Option<u32> = None;
    let mut first_err = None;
    for id in ids {
        match walk(btf, id, ty, path) {
            Ok(off) => match found {
                None => found = Some(off),
                Some(first) if first != off => {
                    return Err(BtfError::Ambiguous {
                        ty: ty.to_owned(),
                        member: path.join("."),
                        first,
                        other: off,
                    })
                }
                Some(_) => {}
            },
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (found, first_err) {
        (Some(off), _) => Ok(off),
        (None, Some(e)) => Err(e),
        (None, None) => Err(BtfError::NoSuchType(ty.to_owned())),
    }
}

/// Ids of the structs and unions named `name`, base layers first.
fn candidates(btf: &Btf, name: &[u8]) -> Vec<u32> {
    let mut ids = match &btf.inner.base {
        Some(base) => candidates(base, name),
        None => Vec::new(),
    };
    if let Some(own) = btf.inner.composites.get(name) {
        ids.extend_from_slice(own);
    }
    ids
}

/// Follows `path` from the struct or union `id`, summing member offsets.
fn walk(btf: &Btf, id: u32, ty: &str, path: &[&str]) -> Result<u32, BtfError> {
    let (mut layer, mut t) = get(btf, id)?;
    let mut total: u32 = 0;
    let mut visits = 0;
    for (i, name) in path.iter().enumerate() {
        let mut ctx = Ctx {
            ty,
            path: &path[..=i],
            visits,
        };
        let hit = find_member(btf, &mut ctx, layer, t, name.as_bytes(), 0)?
            .ok_or_else(|| ctx.no_such_member())?;
        visits = ctx.visits;
        total = total
            .checked_add(hit.offset)
            .ok_or_else(|| ctx.overflow())?;
        if i + 1 == path.len() {
            break;
        }
        match skip_modifiers(btf, &ctx, hit.type_id)? {
            Some((l, next)) if is_composite(next) => (layer, t) = (l, next),
            other => {
                return Err(BtfError::NotComposite {
                    ty: ty.to_owned(),
                    member: ctx.member(),
                    kind: other.map_or("void", |(_, t)| kind::name(t.kind)),
                })
            }
        }
    }
    Ok(total)
}

/// Searches `t`'s members for `name`, descending into anonymous structs and unions.
fn find_member(
    btf: &Btf,
    ctx: &mut Ctx<'_>,
    layer: &Layer,
    t: &Type,
    name: &[u8],
    depth: u32,
) -> Result<Option<Hit>, BtfError> {
    if depth > MAX_DEPTH {
        return Err(ctx.too_deep());
    }
    for m in members(layer, t) {
        ctx.visits += 1;
        if ctx.visits > MAX_VISITS {
            return Err(ctx.too_deep());
        }
        let (bit_offset, bits) = if t.kind_flag {
            (m.offset & 0x00ff_ffff, m.offset >> 24)
        } else {
            (m.offset, 0)
        };
        let m_name = layer.str_at(m.name_off)?;
        if m_name == name {
            let bits = if bits == 0 {
                int_bitfield_bits(btf, ctx, m.type_id)?
            } else {
                bits
            };
            if bits != 0 || bit_offset % 8 != 0 {
                return Err(ctx.bitfield(bit_offset, bits));
            }
            return Ok(Some(Hit {
                offset: bit_offset / 8,
                type_id: m.type_id,
            }));
        }
        if !m_name.is_empty() {
            continue;
        }
        let Some((l, inner)) = skip_modifiers(btf, ctx, m.type_id)? else {
            continue;
        };
        if !is_composite(inner) {
            continue;
        }
        if let Some(hit) = find_member(btf, ctx, l, inner, name, depth + 1)? {
            if bits != 0 || bit_offset % 8 != 0 {
                return Err(ctx.bitfield(bit_offset, bits));
            }
            let offset = (bit_offset / 8)
                .checked_add(hit.offset)
                .ok_or_else(|| ctx.overflow())?;
            return Ok(Some(Hit { offset, ..hit }));
        }
    }
    Ok(None)
}

/// Without kind_flag, BTF encodes a bitfield in the member's INT type (bit size
/// smaller than the int, or a bit offset); returns that bit size, or 0 if not one.
fn int_bitfield_bits(btf: &Btf, ctx: &Ctx<'_>, type_id: u32) -> Result<u32, BtfError> {
    let Some((_, t)) = skip_modifiers(btf, ctx, type_id)? else {
        return Ok(0);
    };
    if t.kind != kind::INT {
        return Ok(0);
    }
    let bits = t.extra & 0xff;
    let offset = (t.extra >> 16) & 0xff;
    if offset != 0 || u64::from(bits) != u64::from(t.size_or_type) * 8 {
        Ok(bits)
    } else {
        Ok(0)
    }
}

fn is_composite(t: &Type) -> bool {
    matches!(t.kind, kind::STRUCT | kind::UNION)
}

fn members<'a>(layer: &'a Layer, t: &Type) -> &'a [Member] {
    // The parser stored exactly vlen members at `extra`; this only guards the invariant.
    let start = t.extra as usize;
    start
        .checked_add(usize::from(t.vlen))
        .and_then(|end| layer.members.get(start..end))
        .unwrap_or(&[])
}

/// The type `id`, which may live in a base layer.
fn get(btf: &Btf, id: u32) -> Result<(&Layer, &Type), BtfError> {
    let mut layer: &Layer = &btf.inner;
    loop {
        if id >= layer.first_id {
            let t = layer.types.get((id - layer.first_id) as usize);
            return t.map(|t| (layer, t)).ok_or(BtfError::BadTypeId { id });
        }
        match &layer.base {
            Some(base) => layer = &base.inner,
            None => return Err(BtfError::BadTypeId { id }),
        }
    }
}

/// Follows typedef/const/volatile/restrict/type_tag to the underlying type; `None` is void.
fn skip_modifiers<'a>(
    btf: &'a Btf,
    ctx: &Ctx<'_>,
    mut id: u32,
) -> Result<Option<(&'a Layer, &'a Type)>, BtfError> {
    for _ in 0..MAX_DEPTH {
        if id == 0 {
            return Ok(None);
        }
        let (layer, t) = get(btf, id)?;
        match t.kind {
            kind::TYPEDEF | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => {
                id = t.size_or_type;
            }
            _ => return Ok(Some((layer, t))),
        }
    }
    Err(ctx.too_deep())
}
