//! Admission of API requests: injected faults, Retry-After bookkeeping,
//! per-mailbox concurrency and request budgets (Graph), per-user budgets
//! (Google), and the statistics tests read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::{lock, Sim};

/// Which provider's rules apply to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Graph,
    Google,
}

#[derive(Debug)]
pub enum Verdict {
    Go(Slot),
    /// Answer 429 (or Google's 403 rate-limit error).
    Throttle {
        retry_after: u64,
        reason: Reason,
    },
    /// Answer 503 with Retry-After.
    Unavailable {
        retry_after: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// More requests in flight than the mailbox allows.
    Concurrency,
    /// The request budget of the window is spent.
    Budget,
    /// A burst forced by `/_sim/faults`.
    Forced,
    /// The client came back before the Retry-After it was given.
    TooEarly,
}

/// An admitted request's concurrency slot, released on drop.
#[derive(Debug)]
pub struct Slot {
    sim: Arc<Sim>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(state) = lock(&self.sim.throttle).get_mut(&self.key) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// Deterministic "random" choice for request number `n` at `rate`.
fn injected(n: u64, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    // SplitMix64 of the request number, mapped to [0, 1).
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z as f64 / u64::MAX as f64) < rate
}

/// Requests that arrive this soon after a Retry-After was given were sent
/// before the client could have read it (concurrent requests in flight),
/// so they are throttled but not counted as violations.
pub const VIOLATION_GRACE: Duration = Duration::from_millis(250);

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Decide whether a request to `key` (`m365:{tenant}:{user}` or
/// `google:{domain}:{user}`) may proceed.
pub fn admit(sim: &Arc<Sim>, key: &str, family: Family) -> Verdict {
    let faults = sim.faults();
    let now = Instant::now();
    let request_no = sim.next_request();
    let mut throttle = lock(&sim.throttle);
    let state = throttle.entry(key.to_owned()).or_default();

    let refuse = |state: &mut crate::state::ThrottleState, retry_after: u64, reason| {
        let mut stats = lock(&sim.stats);
        stats.throttled += 1;
        let informed = state
            .blocked_since
            .is_some_and(|since| now.duration_since(since) >= VIOLATION_GRACE);
        if reason == Reason::TooEarly && informed {
            stats.violations += 1;
        }
        if family == Family::Graph {
            let until = now + Duration::from_secs(retry_after);
            if state.blocked_until.is_none() {
                state.blocked_since = Some(now);
            }
            state.blocked_until = Some(state.blocked_until.map_or(until, |b| b.max(until)));
        }
        Verdict::Throttle {
            retry_after,
            reason,
        }
    };

    if let Some(until) = state.blocked_until {
        if until > now {
            return refuse(state, ceil_secs(until - now), Reason::TooEarly);
        }
        state.blocked_until = None;
        state.blocked_since = None;
    }
    {
        let mut faults_now = lock(&sim.faults);
        if faults_now.throttle_burst > 0 {
            faults_now.throttle_burst -= 1;
            drop(faults_now);
            return refuse(state, faults.retry_after_secs, Reason::Forced);
        }
    }
    if injected(request_no, faults.error_rate) {
        if family == Family::Graph {
            state.blocked_until = Some(now + Duration::from_secs(faults.retry_after_secs));
            state.blocked_since = Some(now);
        }
        return Verdict::Unavailable {
            retry_after: faults.retry_after_secs,
        };
    }
    if family == Family::Graph && state.in_flight >= faults.mailbox_concurrency {
        return refuse(state, faults.retry_after_secs, Reason::Concurrency);
    }
    let budget = match family {
        Family::Graph => faults.mailbox_budget,
        Family::Google => faults.user_budget,
    };
    if let Some(budget) = budget {
        let window = Duration::from_millis(budget.window_ms);
        while state
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= budget.requests as usize {
            let oldest = *state.recent.front().expect("non-empty when over budget");
            let retry_after = ceil_secs(oldest + window - now);
            return refuse(state, retry_after, Reason::Budget);
        }
        state.recent.push_back(now);
    }
    state.in_flight += 1;
    let in_flight = state.in_flight;
    drop(throttle);
    let mut stats = lock(&sim.stats);
    let max = stats.max_concurrency.entry(key.to_owned()).or_default();
    *max = (*max).max(in_flight);
    Verdict::Go(Slot {
        sim: sim.clone(),
        key: key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_rate_is_roughly_honoured_and_deterministic() {
        let hits = (0..10_000).filter(|n| injected(*n, 0.1)).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert_eq!(injected(42, 0.5), injected(42, 0.5));
        assert!(!(0..1000).any(|n| injected(n, 0.0)));
    }
}
