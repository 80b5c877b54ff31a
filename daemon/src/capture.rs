//! Captures: decoded events written as a bincode stream (`sakerd record FILE`) and read
//! back by later stages' tests and benchmarks.
//!
//! Format: the magic `SAKERCAP1\n`, then per event a little-endian u32 length and the
//! bincode (standard config, serde) encoding of [`Event`].

use std::io::{self, Read, Write};

use crate::event::Event;

const MAGIC: &[u8] = b"SAKERCAP1\n";
/// Larger records are refused when reading (an exec record is < 16 KiB encoded).
const MAX_RECORD: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("not a saker capture (bad magic)")]
    Magic,
    #[error("record {index}: length {len} exceeds {MAX_RECORD}")]
    TooLong { index: u64, len: u32 },
    #[error("record {index}: {source}")]
    Decode {
        index: u64,
        #[source]
        source: bincode::error::DecodeError,
    },
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

pub struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> Result<Self, CaptureError> {
        out.write_all(MAGIC)?;
        Ok(Writer {
            out,
            buf: Vec::with_capacity(8192),
        })
    }

    pub fn write(&mut self, ev: &Event) -> Result<(), CaptureError> {
        self.buf.clear();
        bincode::serde::encode_into_std_write(ev, &mut self.buf, bincode::config::standard())?;
        self.out.write_all(&(self.buf.len() as u32).to_le_bytes())?;
        self.out.write_all(&self.buf)?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), CaptureError> {
        Ok(self.out.flush()?)
    }
}

pub struct Reader<R: Read> {
    input: R,
    index: u64,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut m = [0u8; 10];
        input.read_exact(&mut m).map_err(|_| CaptureError::Magic)?;
        if m != MAGIC {
            return Err(CaptureError::Magic);
        }
        Ok(Reader {
            input,
            index: 0,
            buf: Vec::new(),
        })
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Event, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return None,
            Err(e) => return Some(Err(e.into())),
        }
        let len = u32::from_le_bytes(len);
        let index = self.index;
        self.index += 1;
        if len > MAX_RECORD {
            return Some(Err(CaptureError::TooLong { index, len }));
        }
        self.buf.resize(len as usize, 0);
        if let Err(e) = self.input.read_exact(&mut self.buf) {
            return Some(Err(e.into()));
        }
        Some(
            bincode::serde::decode_from_slice(&self.buf, bincode::config::standard())
                .map(|(ev, _)| ev)
                .map_err(|source| CaptureError::Decode { index, source }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Connect, Process};

    #[test]
    fn round_trip_and_bad_input() {
        let ev = Event {
            time_ns: 5,
            ktime_ns: 6,
            process: Process {
                pid: 7,
                comm: b"x\xff".as_slice().into(),
                ..Default::default()
            },
            body: Body::Connect(Connect {
                fd: 3,
                addr: "::1".parse().unwrap(),
                port: 3333,
                ret: -111,
            }),
        };
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(&ev).unwrap();
        w.write(&ev).unwrap();
        let bytes = w.out.clone();
        let back: Vec<Event> = Reader::new(&bytes[..])
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(back, vec![ev.clone(), ev]);
        assert!(matches!(
            Reader::new(&b"nope"[..]),
            Err(CaptureError::Magic)
        ));
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        let r: Vec<_> = Reader::new(&bad[..]).unwrap().collect();
        assert!(matches!(r[0], Err(CaptureError::TooLong { .. })));
    }
}
