//! Decoding of the raw BTF format: header, type section, string section.
//!
//! Every read is bounds-checked; malformed input yields a [`BtfError`], never a panic.

use crate::error::BtfError;

const MAGIC: u16 = 0xEB9F;
const HEADER_LEN: usize = 24;
/// Size of `struct btf_type` (name_off, info, size/type).
const TYPE_LEN: usize = 12;

/// BTF kinds (`BTF_KIND_*` in include/uapi/linux/btf.h).
pub(crate) mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;

    /// Lower-case kind name, for error messages.
    pub fn name(kind: u8) -> &'static str {
        match kind {
            INT => "int",
            PTR => "pointer",
            ARRAY => "array",
            STRUCT => "struct",
            UNION => "union",
            ENUM | ENUM64 => "enum",
            FWD => "forward declaration",
            TYPEDEF => "typedef",
            VOLATILE => "volatile",
            CONST => "const",
            RESTRICT => "restrict",
            FUNC => "function",
            FUNC_PROTO => "function prototype",
            VAR => "variable",
            DATASEC => "data section",
            FLOAT => "float",
            DECL_TAG => "decl tag",
            TYPE_TAG => "type tag",
            _ => "unknown kind",
        }
    }
}

/// One decoded `btf_type` record. Trailing data we never look at is skipped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Type {
    pub name_off: u32,
    pub kind: u8,
    pub kind_flag: bool,
    pub vlen: u16,
    /// `size` for INT/STRUCT/UNION/ENUM…, referenced type id for PTR/TYPEDEF/CONST….
    pub size_or_type: u32,
    /// INT: the encoding word (bitfield bits/offset). STRUCT/UNION: index of the first
    /// member in [`Types::members`]. Otherwise 0.
    pub extra: u32,
}

/// One `btf_member` of a struct or union.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member {
    pub name_off: u32,
    pub type_id: u32,
    /// Bit offset; with the struct's kind_flag, bits 24-31 hold the bitfield size.
    pub offset: u32,
}

/// The type and string sections of one BTF blob, located by the header.
pub(crate) struct Sections<'a> {
    pub types: &'a [u8],
    /// Byte offset of the type section in the input, for error messages.
    pub types_at: usize,
    pub strings: &'a [u8],
}

/// The decoded type section.
pub(crate) struct Types {
    pub types: Vec<Type>,
    pub members: Vec<Member>,
}

/// `len` bytes at `off`, if all are inside `buf`.
fn bytes(buf: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    buf.get(off..off.checked_add(len)?)
}

fn u16_at(buf: &[u8], off: usize) -> Option<u16> {
    let b = bytes(buf, off, 2)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    let b = bytes(buf, off, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks the header and returns the sections it points at.
pub(crate) fn sections(data: &[u8]) -> Result<Sections<'_>, BtfError> {
    let short = |what| BtfError::Truncated { what, offset: 0 };
    let magic = u16_at(data, 0).ok_or(short("header"))?;
    if magic != MAGIC {
        return Err(BtfError::BadMagic { found: magic });
    }
    let version = *data.get(2).ok_or(short("header"))?;
    if version != 1 {
        return Err(BtfError::BadVersion { found: version });
    }
    let field = |off| u32_at(data, off).ok_or(short("header"));
    let hdr_len = field(4)?;
    let (type_off, type_len) = (field(8)?, field(12)?);
    let (str_off, str_len) = (field(16)?, field(20)?);
    // Newer kernels may append header fields; hdr_len says where the header ends.
    let hdr_len = hdr_len as usize;
    if hdr_len < HEADER_LEN {
        return Err(BtfError::BadHeader {
            offset: 4,
            reason: "hdr_len is smaller than the 24-byte header",
        });
    }
    if hdr_len > data.len() {
        return Err(short("header"));
    }
    let section = |what, off: u32, len: u32| {
        // Offsets are relative to the end of the header; u64 cannot overflow here.
        let start = hdr_len as u64 + u64::from(off);
        let end = start + u64::from(len);
        if end > data.len() as u64 {
            return Err(BtfError::Truncated {
                what,
                offset: usize::try_from(start).unwrap_or(usize::MAX),
            });
        }
        // end <= data.len(), so both fit in usize.
        let (start, end) = (start as usize, end as usize);
        Ok((start, &data[start..end]))
    };
    let (types_at, types) = section("type section", type_off, type_len)?;
    let (_, strings) = section("string section", str_off, str_len)?;
    Ok(Sections {
        types,
        types_at,
        strings,
    })
}

/// Decodes every type record; `first_id` is the id of the first one (1, or the next
/// id after the base for split BTF).
pub(crate) fn types(sec: &[u8], sec_at: usize, first_id: u32) -> Result<Types, BtfError> {
    // vmlinux averages ~35 bytes per record; over-reserving a little is cheaper than
    // regrowing a 150k-element Vec.
    let mut types = Vec::with_capacity(sec.len() / 32);
    let mut members = Vec::with_capacity(sec.len() / 48);
    let mut pos = 0usize;
    while pos < sec.len() {
        let id = u32::try_from(types.len())
            .ok()
            .and_then(|n| first_id.checked_add(n))
            .ok_or(BtfError::BadHeader {
                offset: sec_at + pos,
                reason: "more types than fit in a u32 type id",
            })?;
        let at = sec_at + pos;
        let truncated = BtfError::TruncatedType { id, offset: at };
        let (Some(name_off), Some(info), Some(size_or_type)) =
            (u32_at(sec, pos), u32_at(sec, pos + 4), u32_at(sec, pos + 8))
        else {
            return Err(truncated);
        };
        pos += TYPE_LEN;
        let vlen = (info & 0xffff) as u16;
        let kind = ((info >> 24) & 0x1f) as u8;
        let kind_flag = info >> 31 == 1;
        let n = usize::from(vlen);
        let trailing = match kind {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::ARRAY => 12,
            kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * n,
            kind::ENUM | kind::FUNC_PROTO => 8 * n,
            kind::PTR
            | kind::FWD
            | kind::TYPEDEF
            | kind::VOLATILE
            | kind::CONST
            | kind::RESTRICT
            | kind::FUNC
            | kind::FLOAT
            | kind::TYPE_TAG => 0,
            _ => {
                return Err(BtfError::UnknownKind {
                    id,
                    kind,
                    offset: at,
                })
            }
        };
        let data = bytes(sec, pos, trailing).ok_or(truncated)?;
        let extra = match kind {
            kind::INT => u32_at(data, 0).unwrap_or(0),
            kind::STRUCT | kind::UNION => {
                // members.len() <= sec.len() / 12, and sec.len() came from a u32.
                let first = members.len() as u32;
                members.extend(data.chunks_exact(12).map(|m| Member {
                    name_off: u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
                    type_id: u32::from_le_bytes([m[4], m[5], m[6], m[7]]),
                    offset: u32::from_le_bytes([m[8], m[9], m[10], m[11]]),
                }));
                first
            }
            _ => 0,
        };
        pos += trailing;
        types.push(Type {
            name_off,
            kind,
            kind_flag,
            vlen,
            size_or_type,
            extra,
        });
    }
    Ok(Types { types, members })
}
