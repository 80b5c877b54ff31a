//! The one error type of this crate.

use std::path::PathBuf;

/// Why BTF could not be read or a field offset could not be resolved.
///
/// Format errors carry the byte offset in the input where the problem was found.
/// Lookup errors name the struct as the caller spelled it and the member path up to
/// and including the part that failed (e.g. `ty: "mnt_namespace", member: "ns.inum"`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The file could not be read.
    #[error("cannot read BTF from {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data does not start with the BTF magic (big-endian BTF is not supported).
    #[error("not BTF: magic at byte 0 is {found:#06x}, want 0xeb9f (little-endian BTF)")]
    BadMagic { found: u16 },

    /// A BTF version this reader does not know.
    #[error("unsupported BTF version {found} at byte 2 (want 1)")]
    BadVersion { found: u8 },

    /// A header field is inconsistent.
    #[error("bad BTF header at byte {offset}: {reason}")]
    BadHeader { offset: usize, reason: &'static str },

    /// The header or a section runs past the end of the data.
    #[error("BTF truncated: the {what} at byte {offset} runs past the end of the data")]
    Truncated { what: &'static str, offset: usize },

    /// A type record (or its trailing data) runs past the end of the type section.
    #[error("BTF truncated: type {id} at byte {offset} runs past the end of the type section")]
    TruncatedType { id: u32, offset: usize },

    /// A type record of a kind this reader does not know (its size is then unknown).
    #[error("type {id} at byte {offset} has unknown BTF kind {kind}")]
    UnknownKind { id: u32, kind: u8, offset: usize },

    /// A name offset outside the string section, or a string without its NUL.
    #[error("string offset {offset} is outside the BTF string section or not NUL-terminated")]
    BadString { offset: u32 },

    /// A reference to a type id that does not exist.
    #[error("reference to BTF type id {id}, which does not exist")]
    BadTypeId { id: u32 },

    /// Type references nest deeper than any real kernel type does: looped or hostile BTF.
    #[error("resolving {ty}.{member}: types nest too deep or loop (malformed BTF)")]
    TooDeep { ty: String, member: String },

    /// No struct or union of this name.
    #[error("no struct or union named {0} in BTF")]
    NoSuchType(String),

    /// The struct exists but has no such member (searched through anonymous members).
    #[error("{ty} has no member {member}")]
    NoSuchMember { ty: String, member: String },

    /// The member is a bitfield, which has no byte offset.
    #[error("{ty}.{member} is a bitfield (bit offset {bit_offset}, {bits} bits); only byte-aligned members have a byte offset")]
    Bitfield {
        ty: String,
        member: String,
        bit_offset: u32,
        bits: u32,
    },

    /// A path continues past a member that is not an embedded struct or union (e.g. a
    /// pointer: its target must be read at run time, it is not at a fixed offset).
    #[error(
        "{ty}.{member} is a {kind}, not an embedded struct or union, so the path cannot continue"
    )]
    NotComposite {
        ty: String,
        member: String,
        kind: &'static str,
    },

    /// Several structs share the name and disagree about the offset.
    #[error("{ty}.{member} is ambiguous: BTF defines {ty} more than once, with offsets {first} and {other}")]
    Ambiguous {
        ty: String,
        member: String,
        first: u32,
        other: u32,
    },

    /// The summed offset does not fit in u32 (only possible with malformed BTF).
    #[error("offset of {ty}.{member} overflows u32 (malformed BTF)")]
    Overflow { ty: String, member: String },

    /// An empty path or a path with an empty component (e.g. `"ns..inum"`).
    #[error("bad field path {0:?}: it or one of its components is empty")]
    BadPath(String),
}
