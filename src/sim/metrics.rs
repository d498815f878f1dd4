//! What the simulator counts while the day runs: per queue (by the queue a contact arrived
//! in), per agent (duty and busy time) and per router call (wall-clock latency).

use std::time::Duration;

use smallvec::SmallVec;

use crate::model::{MediaMap, Timestamp};

/// Counts of one queue, by the queue a contact arrived in: a contact that overflows to another
/// queue and is answered there counts as handled here, so every arrival has exactly one fate.
#[derive(Debug, Default, Clone)]
pub(super) struct Tally {
    pub offered: u64,
    pub handled: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub rerouted: u64,
    pub callbacks: u64,
    pub completed: u64,
    pub answered_in_target: u64,
    pub wait_answered_us: i128,
    pub work_us: i128,
    pub max_wait_us: i64,
    pub waiting_at_end: u64,
    pub in_service_at_end: u64,
    /// Wall-clock nanoseconds of each `arrive` call for this queue.
    pub arrive_ns: Vec<u32>,
}

impl Tally {
    /// Notes a contact's waiting time (answered, abandoned, overflowed or still waiting).
    pub fn saw_wait(&mut self, wait: Duration) {
        self.max_wait_us = self.max_wait_us.max(wait.as_micros() as i64);
    }
}

/// One agent's time and work.
#[derive(Debug, Clone)]
pub(super) struct AgentTime {
    pub logged_in: bool,
    /// Contacts connected now.
    pub connected: u32,
    /// After-call work periods running now.
    pub acw: u32,
    /// Until when the agent is not ready for each media type (after a missed offer).
    pub not_ready_until: MediaMap<Timestamp>,
    /// Time accounted up to here.
    mark: Timestamp,
    /// Logged in, or still finishing work after logging out.
    pub duty_us: i64,
    /// Holding a contact or in after-call work.
    pub busy_us: i64,
    pub handled: u64,
    /// Work (connected time + after-call work) per queue index.
    pub work_by_queue: SmallVec<[(u32, i64); 4]>,
}

impl AgentTime {
    pub fn new(start: Timestamp) -> Self {
        AgentTime {
            logged_in: false,
            connected: 0,
            acw: 0,
            not_ready_until: MediaMap::default(),
            mark: start,
            duty_us: 0,
            busy_us: 0,
            handled: 0,
            work_by_queue: SmallVec::new(),
        }
    }

    fn busy(&self) -> bool {
        self.connected + self.acw > 0
    }

    /// Accounts the time since the last change; call before every change of state.
    pub fn flush(&mut self, now: Timestamp) {
        let elapsed = now.0.saturating_sub(self.mark.0).max(0);
        if self.logged_in || self.busy() {
            self.duty_us += elapsed;
        }
        if self.busy() {
            self.busy_us += elapsed;
        }
        self.mark = now;
    }

    /// Adds work done for a queue.
    pub fn add_work(&mut self, queue: u32, work: Duration) {
        let us = work.as_micros() as i64;
        match self.work_by_queue.iter_mut().find(|(q, _)| *q == queue) {
            Some((_, total)) => *total += us,
            None => self.work_by_queue.push((queue, us)),
        }
    }
}

/// The router calls whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Arrive,
    Accept,
    Complete,
    Abandon,
    Callback,
    Timeout,
    Available,
    LogIn,
    LogOut,
}

impl Call {
    pub const ALL: [Call; 9] = [
        Call::Arrive,
        Call::Accept,
        Call::Complete,
        Call::Abandon,
        Call::Callback,
        Call::Timeout,
        Call::Available,
        Call::LogIn,
        Call::LogOut,
    ];

    /// The router method's name.
    pub fn name(self) -> &'static str {
        match self {
            Call::Arrive => "arrive",
            Call::Accept => "accept",
            Call::Complete => "complete",
            Call::Abandon => "abandon",
            Call::Callback => "request_callback",
            Call::Timeout => "handle_timeout",
            Call::Available => "set_available",
            Call::LogIn => "log_in",
            Call::LogOut => "log_out",
        }
    }
}

/// Wall-clock nanoseconds of every router call, by call.
#[derive(Debug, Default)]
pub(super) struct Latency {
    pub by_call: [Vec<u32>; Call::ALL.len()],
}

impl Latency {
    pub fn record(&mut self, call: Call, nanos: u32) {
        self.by_call[call as usize].push(nanos);
    }
}

/// Median, 99th percentile and maximum of a sample, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Number of calls measured.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest.
    pub max_us: f64,
}

impl Percentiles {
    /// Summarises nanosecond samples (sorted in place); `None` when there are none.
    pub fn of(samples: &mut [u32]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            f64::from(samples[index]) / 1000.0
        };
        Some(Percentiles {
            count: samples.len() as u64,
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            max_us: f64::from(samples[samples.len() - 1]) / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<u32> = (1..=100).rev().map(|n| n * 1000).collect();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!(
            (p.count, p.p50_us, p.p99_us, p.max_us),
            (100, 50.0, 99.0, 100.0)
        );
        assert!(Percentiles::of(&mut []).is_none());
    }

    #[test]
    fn agent_time_counts_duty_and_busy_separately() {
        let mut a = AgentTime::new(Timestamp(0));
        a.logged_in = true;
        a.flush(Timestamp(10));
        a.connected = 1;
        a.flush(Timestamp(30));
        a.logged_in = false;
        a.flush(Timestamp(40));
        a.connected = 0;
        a.flush(Timestamp(100));
        assert_eq!((a.duty_us, a.busy_us), (40, 30));
    }
}
