//! Where the scheduler's "now" comes from.
//!
//! Everything the scheduler decides by date (which connections are due,
//! which versions have expired, which tenants are past their grace period)
//! asks a [`Clock`], never the system directly, so that tests can move
//! time on by 48 hours or six months in a moment ([`ManualClock`]).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock plus an offset that only grows: `advance` moves
/// time on, and it goes on running from there.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    offset: Arc<Mutex<Duration>>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_on_when_told_and_keeps_running() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::hours(48));
        let after = clock.now();
        assert!(after - before >= Duration::hours(48));
        assert!(after - before < Duration::hours(48) + Duration::minutes(1));
        assert!(clock.now() >= after);
    }
}
