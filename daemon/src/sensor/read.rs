//! Ring buffer → decoded events, on a tokio task, into a bounded queue.

use std::sync::{atomic::Ordering, Arc};

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, sync::mpsc};

use super::{
    decode::{decode, Clock},
    SensorError, UserCounters,
};
use crate::event::Event;

/// Decoded events. Dropping it stops the reader task.
pub struct EventStream {
    rx: mpsc::Receiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl EventStream {
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Longest time a record waits in the ring when nothing forces a wakeup.
const DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// Decodes everything in the ring into the queue; false when the consumer is gone.
fn drain(
    ring: &mut RingBuf<MapData>,
    counters: &UserCounters,
    tx: &mpsc::Sender<Event>,
    clock: &Clock,
) -> bool {
    while let Some(item) = ring.next() {
        if !deliver(&item, counters, tx, clock) {
            return false;
        }
    }
    true
}

/// One ring-buffer record: counted, decoded (a malformed one is counted and skipped) and
/// queued (a full queue is counted); false when the consumer is gone.
fn deliver(item: &[u8], counters: &UserCounters, tx: &mpsc::Sender<Event>, clock: &Clock) -> bool {
    counters.received.fetch_add(1, Ordering::Relaxed);
    match decode(item, clock) {
        Ok(ev) => match tx.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        },
        Err(e) => {
            counters.decode_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("skipping malformed record: {e}");
        }
    }
    true
}

pub(super) fn spawn(
    ring: RingBuf<MapData>,
    counters: Arc<UserCounters>,
    capacity: usize,
) -> Result<EventStream, SensorError> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged for as long as
    // the AsyncFd owns the RingBuf.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| SensorError::Io(std::io::Error::other(e.to_string())))?;
    let clock = Clock::new();
    let task = tokio::spawn(async move {
        // The programs submit without waking us (except when the ring is a quarter full):
        // drain on a short timer, so a busy node costs one wakeup per tick, not per event.
        let mut tick = tokio::time::interval(DRAIN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                guard = fd.readable_mut() => match guard {
                    Ok(mut g) => {
                        if !drain(g.get_inner_mut(), &counters, &tx, &clock) {
                            return;
                        }
                        g.clear_ready();
                    }
                    Err(e) => {
                        tracing::error!("ring buffer poll failed: {e}");
                        return;
                    }
                },
                _ = tick.tick() => {
                    if !drain(fd.get_mut(), &counters, &tx, &clock) {
                        return;
                    }
                }
            }
        }
    });
    Ok(EventStream { rx, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use saker_common::{kind, ExecEvent, ExitEvent, Header};

    fn bytes<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain-old-data value.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
            .to_vec()
    }

    fn exit_record(pid: u32) -> Vec<u8> {
        bytes(&ExitEvent {
            hdr: Header {
                kind: kind::EXIT,
                tgid: pid,
                pid,
                ..Default::default()
            },
            exit_code: 0,
            _pad: 0,
        })
    }

    /// Truncated, oversized, lying and random records through the reader's per-record
    /// path: each is counted as received and as a decode error, none stops the reader or
    /// reaches the queue, and the valid records around them still arrive in order.
    #[test]
    fn malformed_records_are_counted_and_skipped() {
        let counters = UserCounters::default();
        let clock = Clock::new();
        let (tx, mut rx) = mpsc::channel(1024);
        let mut bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0xff],
            bytes(&Header {
                kind: 77,
                ..Default::default()
            }),
        ];
        let exit = exit_record(1);
        // Every strict prefix of a valid record.
        bad.extend((0..exit.len()).map(|n| exit[..n].to_vec()));
        // A record longer than its kind (a ring slot carrying more than one body).
        let mut long = exit.clone();
        long.extend_from_slice(&[0xAA; 4096]);
        bad.push(long);
        // An exec whose lengths point past the record, cut short.
        let mut e: ExecEvent = unsafe { std::mem::zeroed() };
        e.hdr = Header {
            kind: kind::EXEC,
            ..Default::default()
        };
        e.args_len = u32::MAX;
        e.filename_len = u32::MAX;
        let ex = bytes(&e);
        bad.push(ex[..ex.len() / 2].to_vec());
        // Garbage of every length up to two pages (xorshift: deterministic).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in (0..8192).step_by(61) {
            let g: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // Random bytes that happen to decode are not garbage for this test.
            if decode(&g, &clock).is_err() {
                bad.push(g);
            }
        }
        let mut sent_valid = 0u32;
        for (i, b) in bad.iter().enumerate() {
            assert!(
                deliver(b, &counters, &tx, &clock),
                "record {i} stopped the reader"
            );
            if i % 10 == 0 {
                sent_valid += 1;
                assert!(deliver(&exit_record(sent_valid), &counters, &tx, &clock));
            }
        }
        let total = bad.len() as u64 + u64::from(sent_valid);
        assert_eq!(counters.received.load(Ordering::Relaxed), total);
        assert_eq!(
            counters.decode_errors.load(Ordering::Relaxed),
            bad.len() as u64
        );
        assert_eq!(counters.queue_full.load(Ordering::Relaxed), 0);
        for want in 1..=sent_valid {
            let ev = rx.try_recv().expect("a valid record is queued");
            assert_eq!(ev.process.pid, want);
        }
        assert!(
            rx.try_recv().is_err(),
            "nothing malformed reached the queue"
        );

        // A full queue is counted too; a closed one stops the reader.
        let (tx, rx) = mpsc::channel(1);
        let c = UserCounters::default();
        assert!(deliver(&exit_record(1), &c, &tx, &clock));
        assert!(deliver(&exit_record(2), &c, &tx, &clock));
        assert_eq!(c.queue_full.load(Ordering::Relaxed), 1);
        drop(rx);
        assert!(!deliver(&exit_record(3), &c, &tx, &clock));
    }
}
