//! tend's own messages: the `log` crate's logger, which stamps each message and
//! queues it for the sink. The sink takes them before the next service line,
//! so tend's line about a service never overtakes that service's output.
//!
//! Must not: format (the sink knows the format in force), or hold more than
//! [`OWN_CAP`] bytes (beyond it messages are counted and dropped; the sink says
//! how many).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::format::ClockCache;

/// Bytes of messages waiting for the sink before further ones are dropped.
const OWN_CAP: usize = 256 << 10;

pub struct OwnRecord {
    pub stamp: [u8; 24],
    pub level: Level,
    pub text: String,
}

#[derive(Default)]
struct Own {
    records: Vec<OwnRecord>,
    bytes: usize,
    dropped: u64,
    clock: ClockCache,
}

/// Shared between the logger (which `log` requires to be `Sync`) and the sink.
#[derive(Default)]
pub struct Shared {
    own: Mutex<Own>,
    /// Set while `own` holds messages: checked cheaply before every block of
    /// service lines.
    pending: AtomicBool,
}

impl Shared {
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Queue one message (the logger, and tests).
    pub fn push(&self, level: Level, text: String) {
        let Ok(mut own) = self.own.lock() else {
            return;
        };
        if own.bytes > OWN_CAP {
            own.dropped += 1;
            return;
        }
        let stamp = *own.clock.stamp(SystemTime::now());
        own.bytes += text.len();
        own.records.push(OwnRecord { stamp, level, text });
        self.pending.store(true, Ordering::Release);
    }

    /// Everything queued, and how many were dropped.
    pub fn take(&self) -> (Vec<OwnRecord>, u64) {
        let Ok(mut own) = self.own.lock() else {
            return (Vec::new(), 0);
        };
        self.pending.store(false, Ordering::Release);
        own.bytes = 0;
        let dropped = std::mem::take(&mut own.dropped);
        (std::mem::take(&mut own.records), dropped)
    }
}

struct OwnLogger {
    shared: Arc<Shared>,
}

impl Log for OwnLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.shared.push(record.level(), record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Make `shared` the destination of every `log` macro; `level` through
/// `log::set_max_level`, so that a reload can change it. A second install (in
/// tests) keeps the first logger.
pub fn install(shared: Arc<Shared>, level: LevelFilter) {
    let _ = log::set_boxed_logger(Box::new(OwnLogger { shared }));
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_queue_in_order_and_overflow_is_counted() {
        let shared = Shared::default();
        assert!(!shared.has_pending());
        shared.push(Level::Info, "one".into());
        shared.push(Level::Error, "two".into());
        assert!(shared.has_pending());
        let (records, dropped) = shared.take();
        assert_eq!(dropped, 0);
        let texts: Vec<(&str, Level)> =
            records.iter().map(|r| (r.text.as_str(), r.level)).collect();
        assert_eq!(texts, [("one", Level::Info), ("two", Level::Error)]);
        assert!(!shared.has_pending());
        for _ in 0..100 {
            shared.push(Level::Info, "x".repeat(10_000));
        }
        let (records, dropped) = shared.take();
        assert!(records.len() < 30 && dropped > 70);
        assert_eq!(records.len() as u64 + dropped, 100);
    }
}
