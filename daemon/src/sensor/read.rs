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
        loop {
            let mut guard = match fd.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!("ring buffer poll failed: {e}");
                    return;
                }
            };
            let ring = guard.get_inner_mut();
            while let Some(item) = ring.next() {
                counters.received.fetch_add(1, Ordering::Relaxed);
                match decode(&item, &clock) {
                    Ok(ev) => {
                        if let Err(e) = tx.try_send(ev) {
                            match e {
                                mpsc::error::TrySendError::Full(_) => {
                                    counters.queue_full.fetch_add(1, Ordering::Relaxed);
                                }
                                mpsc::error::TrySendError::Closed(_) => return,
                            }
                        }
                    }
                    Err(e) => {
                        counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("skipping malformed record: {e}");
                    }
                }
            }
            guard.clear_ready();
        }
    });
    Ok(EventStream { rx, task })
}
