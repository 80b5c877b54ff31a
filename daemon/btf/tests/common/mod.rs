//! A tiny BTF writer for building synthetic blobs in tests.
#![allow(dead_code)] // each test crate uses a different part

pub const INT: u32 = 1;
pub const PTR: u32 = 2;
pub const STRUCT: u32 = 4;
pub const UNION: u32 = 5;
pub const TYPEDEF: u32 = 8;
pub const CONST: u32 = 10;

/// Writes BTF records; ids and string offsets may start after a base (split BTF).
pub struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    str_base: u32,
    next_id: u32,
}

impl Builder {
    /// Base BTF: ids from 1, string section starting with the empty string.
    pub fn new() -> Self {
        Builder {
            types: Vec::new(),
            strings: vec![0],
            str_base: 0,
            next_id: 1,
        }
    }

    /// Split BTF over a base with `base_types` types and a `base_str_len`-byte string section.
    pub fn split(base_types: u32, base_str_len: u32) -> Self {
        Builder {
            types: Vec::new(),
            strings: Vec::new(),
            str_base: base_str_len,
            next_id: base_types + 1,
        }
    }

    /// Offset of `s` (0, the base's empty string, for "").
    pub fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.str_base + self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a raw record: name, kind, kind_flag, vlen, size/type, trailing words.
    pub fn raw(
        &mut self,
        name: &str,
        kind: u32,
        kflag: bool,
        vlen: u16,
        st: u32,
        tail: &[u32],
    ) -> u32 {
        let name_off = self.str(name);
        let info = (kind << 24) | u32::from(vlen) | (u32::from(kflag) << 31);
        for w in [name_off, info, st].iter().chain(tail) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A signed int of `size` bytes (no bitfield encoding).
    pub fn int(&mut self, name: &str, size: u32) -> u32 {
        self.raw(name, INT, false, 0, size, &[(1 << 24) | (size * 8)])
    }

    /// An int with BTF_INT_BITS = `bits` (a bitfield in non-kind_flag structs).
    pub fn int_bits(&mut self, name: &str, size: u32, bits: u32) -> u32 {
        self.raw(name, INT, false, 0, size, &[bits])
    }

    pub fn ptr(&mut self, to: u32) -> u32 {
        self.raw("", PTR, false, 0, to, &[])
    }

    pub fn typedef(&mut self, name: &str, to: u32) -> u32 {
        self.raw(name, TYPEDEF, false, 0, to, &[])
    }

    pub fn konst(&mut self, to: u32) -> u32 {
        self.raw("", CONST, false, 0, to, &[])
    }

    /// A struct or union; members are (name, type, offset word as stored).
    pub fn composite(
        &mut self,
        kind: u32,
        name: &str,
        size: u32,
        kflag: bool,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut tail = Vec::new();
        for &(m, ty, off) in members {
            tail.extend([self.str(m), ty, off]);
        }
        self.raw(name, kind, kflag, members.len() as u16, size, &tail)
    }

    /// A struct without kind_flag; member offsets are in bits.
    pub fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(STRUCT, name, size, false, members)
    }

    pub fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(UNION, name, size, false, members)
    }

    /// Header + type section + string section.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xEB9Fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]); // version, flags
        let type_len = self.types.len() as u32;
        for w in [24, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Indexes of the u32 header words (after magic, version, flags).
pub const HDR_LEN: usize = 0;
pub const TYPE_OFF: usize = 1;
pub const TYPE_LEN: usize = 2;
pub const STR_OFF: usize = 3;
pub const STR_LEN: usize = 4;

/// Reads the u32 header word `idx` (see `HDR_LEN`…`STR_LEN`).
pub fn header_word(blob: &[u8], idx: usize) -> u32 {
    let at = 4 + idx * 4;
    u32::from_le_bytes(blob[at..at + 4].try_into().unwrap())
}

pub fn set_header_word(blob: &mut [u8], idx: usize, v: u32) {
    let at = 4 + idx * 4;
    blob[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Deterministic xorshift, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
