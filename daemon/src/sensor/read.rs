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
        counters.received.fetch_add(1, Ordering::Relaxed);
        match decode(&item, clock) {
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
