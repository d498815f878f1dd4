//! The figures of a simulated day, and the table `switchboard simulate` prints.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::engine::Engine;
use super::metrics::{Call, Percentiles, Tally};
use super::scenario::Scenario;

/// Above this many queues the table shows the ones with the lowest service level.
const QUEUES_SHOWN: usize = 24;
/// How many queues a long table shows.
const WORST_SHOWN: usize = 10;

/// What a simulated day produced: deterministic figures (the same for the same seed) and the
/// router's wall-clock decision latency (which varies from run to run).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's title.
    pub scenario: String,
    /// The file it came from.
    pub file: String,
    /// The seed the day ran with.
    pub seed: u64,
    /// Opening time, `HH:MM`.
    pub opens: String,
    /// Closing time (the end of the simulation), `HH:MM`.
    pub closes: String,
    /// Everything the seed determines.
    #[serde(flatten)]
    pub figures: Figures,
    /// Wall-clock time of the router's calls.
    pub decision_latency: LatencyFigures,
    /// Wall-clock time of the whole run, in seconds.
    pub wall_s: f64,
}

/// The figures a seed determines: equal for equal seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Agents in the scenario.
    pub agents: usize,
    /// Per queue, by the queue contacts arrived in.
    pub queues: Vec<QueueFigures>,
    /// All queues together.
    pub overall: QueueFigures,
    /// Per agent group.
    pub agent_groups: Vec<GroupFigures>,
    /// Offer legs the agents let ring out.
    pub offers_missed: u64,
    /// Events simulated (arrivals, answers, timers, …).
    pub events: u64,
}

/// One queue's day (or all queues' day for the overall line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigures {
    /// Queue name (`all` for the overall line).
    pub name: String,
    /// Contacts that arrived.
    pub offered: u64,
    /// Contacts connected to an agent (including those still connected at closing).
    pub handled: u64,
    /// Contacts whose customer left before being connected.
    pub abandoned: u64,
    /// Contacts that left through the overflow target (voicemail, disconnect).
    pub overflowed: u64,
    /// Contacts still waiting or ringing at closing.
    pub waiting_at_end: u64,
    /// Contacts still connected at closing.
    pub in_service_at_end: u64,
    /// Contacts moved to another queue by overflow (their fate counts here).
    pub rerouted: u64,
    /// Contacts that became callbacks.
    pub callbacks: u64,
    /// Handled contacts answered within the service-level target.
    pub answered_in_target: u64,
    /// The target in seconds (`None` for the overall line: each queue's own applies).
    pub service_level_target_s: Option<f64>,
    /// answered_in_target ÷ (handled + abandoned), from 0 to 1.
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of handled contacts, in seconds.
    pub asa_s: Option<f64>,
    /// Average handle time: connected time + after-call work of completed contacts, in seconds.
    pub aht_s: Option<f64>,
    /// Longest wait of any contact (answered, abandoned, overflowed or still waiting), seconds.
    pub max_wait_s: f64,
    /// Busy time ÷ logged-in time of the agents serving the queue, from 0 to 1.
    pub occupancy: Option<f64>,
}

/// One agent group's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// Group name.
    pub name: String,
    /// Agents in the group.
    pub agents: usize,
    /// Contacts they were connected to.
    pub handled: u64,
    /// Hours logged in (or finishing work after logging out), summed over the agents.
    pub staffed_hours: f64,
    /// Busy time ÷ logged-in time.
    pub occupancy: Option<f64>,
}

/// The router's decision latency: wall-clock time of each call, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyFigures {
    /// Every call.
    pub all: Option<Percentiles>,
    /// Per router method.
    pub by_call: Vec<CallLatency>,
    /// `arrive` calls per queue.
    pub arrive_by_queue: Vec<CallLatency>,
}

/// Latency of one kind of call (or of arrivals at one queue).
#[derive(Debug, Clone, Serialize)]
pub struct CallLatency {
    /// The router method, or the queue.
    pub name: String,
    /// Its figures.
    #[serde(flatten)]
    pub latency: Percentiles,
}

impl Report {
    /// The same figures as JSON, for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }

    /// Builds the report of a finished run.
    pub(super) fn build(
        scenario: &Scenario,
        mut engine: Engine<'_>,
        seed: u64,
        wall: Duration,
    ) -> Report {
        let queues: Vec<QueueFigures> = engine
            .tallies
            .iter()
            .enumerate()
            .map(|(i, tally)| {
                let queue = &scenario.queues[i];
                let mut figures = queue_figures(&queue.name, tally);
                figures.service_level_target_s = Some(queue.spec.service_level.as_secs_f64());
                figures
            })
            .collect();
        let mut total = Tally::default();
        for tally in &engine.tallies {
            add(&mut total, tally);
        }
        let mut overall = queue_figures("all", &total);

        // Occupancy: each agent's time is split over its queues in proportion to the work it
        // did for each (equally over its memberships if it did none).
        let mut busy = vec![0.0f64; queues.len()];
        let mut duty = vec![0.0f64; queues.len()];
        let mut group_time = vec![(0u64, 0i64, 0i64, 0usize); scenario.groups.len()];
        let (mut all_busy, mut all_duty) = (0i64, 0i64);
        for (i, (group, time)) in engine.agent_times().enumerate() {
            let g = &mut group_time[group];
            g.0 += time.handled;
            g.1 += time.busy_us;
            g.2 += time.duty_us;
            g.3 += 1;
            all_busy += time.busy_us;
            all_duty += time.duty_us;
            if time.duty_us == 0 {
                continue;
            }
            let work: i64 = time.work_by_queue.iter().map(|(_, w)| *w).sum();
            if work > 0 {
                for (queue, w) in &time.work_by_queue {
                    let share = *w as f64 / work as f64;
                    busy[*queue as usize] += time.busy_us as f64 * share;
                    duty[*queue as usize] += time.duty_us as f64 * share;
                }
            } else {
                let memberships = &scenario.agents[i].spec.memberships;
                let share = 1.0 / memberships.len().max(1) as f64;
                for m in memberships {
                    duty[m.queue.index()] += time.duty_us as f64 * share;
                }
            }
        }
        let mut queues = queues;
        for (i, figures) in queues.iter_mut().enumerate() {
            figures.occupancy = (duty[i] > 0.0).then(|| busy[i] / duty[i]);
        }
        overall.occupancy = (all_duty > 0).then(|| all_busy as f64 / all_duty as f64);
        let agent_groups = scenario
            .groups
            .iter()
            .zip(&group_time)
            .map(|(group, (handled, busy, duty, agents))| GroupFigures {
                name: group.name.clone(),
                agents: *agents,
                handled: *handled,
                staffed_hours: *duty as f64 / 3.6e9,
                occupancy: (*duty > 0).then(|| *busy as f64 / *duty as f64),
            })
            .collect();

        let mut every = Vec::new();
        let mut by_call = Vec::new();
        for call in Call::ALL {
            let samples = &mut engine.latency.by_call[call as usize];
            every.extend_from_slice(samples);
            if let Some(latency) = Percentiles::of(samples) {
                by_call.push(CallLatency {
                    name: call.name().to_owned(),
                    latency,
                });
            }
        }
        let arrive_by_queue = engine
            .tallies
            .iter_mut()
            .enumerate()
            .filter_map(|(i, tally)| {
                Percentiles::of(&mut tally.arrive_ns).map(|latency| CallLatency {
                    name: scenario.queues[i].name.clone(),
                    latency,
                })
            })
            .collect();
        let (open, close) = scenario.hours();
        Report {
            scenario: scenario.name.clone(),
            file: scenario.file.clone(),
            seed,
            opens: clock(open),
            closes: clock(close),
            figures: Figures {
                agents: scenario.agents.len(),
                queues,
                overall,
                agent_groups,
                offers_missed: engine.offers_missed,
                events: engine.events,
            },
            decision_latency: LatencyFigures {
                all: Percentiles::of(&mut every),
                by_call,
                arrive_by_queue,
            },
            wall_s: wall.as_secs_f64(),
        }
    }
}

fn add(total: &mut Tally, tally: &Tally) {
    total.offered += tally.offered;
    total.handled += tally.handled;
    total.abandoned += tally.abandoned;
    total.overflowed += tally.overflowed;
    total.rerouted += tally.rerouted;
    total.callbacks += tally.callbacks;
    total.completed += tally.completed;
    total.answered_in_target += tally.answered_in_target;
    total.wait_answered_us += tally.wait_answered_us;
    total.work_us += tally.work_us;
    total.max_wait_us = total.max_wait_us.max(tally.max_wait_us);
    total.waiting_at_end += tally.waiting_at_end;
    total.in_service_at_end += tally.in_service_at_end;
}

fn queue_figures(name: &str, t: &Tally) -> QueueFigures {
    let ratio = |num: f64, den: u64| (den > 0).then(|| num / den as f64);
    QueueFigures {
        name: name.to_owned(),
        offered: t.offered,
        handled: t.handled,
        abandoned: t.abandoned,
        overflowed: t.overflowed,
        waiting_at_end: t.waiting_at_end,
        in_service_at_end: t.in_service_at_end,
        rerouted: t.rerouted,
        callbacks: t.callbacks,
        answered_in_target: t.answered_in_target,
        service_level_target_s: None,
        service_level: ratio(t.answered_in_target as f64, t.handled + t.abandoned),
        asa_s: ratio(t.wait_answered_us as f64 / 1e6, t.handled),
        aht_s: ratio(t.work_us as f64 / 1e6, t.completed),
        max_wait_s: t.max_wait_us as f64 / 1e6,
        occupancy: None,
    }
}

/// `HH:MM` of seconds since 00:00.
fn clock(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as i64;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A duration for people: `12.4s`, `4m05s`, `1h02m`.
fn span(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let s = seconds.round() as i64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0).round() as i64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn seconds_or_dash(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), span)
}

fn queue_row(f: &mut fmt::Formatter<'_>, width: usize, q: &QueueFigures) -> fmt::Result {
    writeln!(
        f,
        "{:<width$} {:>8} {:>8} {:>9} {:>10} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9}",
        q.name,
        q.offered,
        q.handled,
        q.abandoned,
        q.overflowed,
        q.waiting_at_end,
        percent(q.service_level),
        seconds_or_dash(q.asa_s),
        seconds_or_dash(q.aht_s),
        span(q.max_wait_s),
        percent(q.occupancy),
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = &self.figures;
        writeln!(f, "{} ({})", self.scenario, self.file)?;
        writeln!(
            f,
            "seed {} · {}–{} · {} queues · {} agents · {} events simulated in {}",
            self.seed,
            self.opens,
            self.closes,
            figures.queues.len(),
            figures.agents,
            figures.events,
            if self.wall_s < 1.0 {
                format!("{:.0} ms", self.wall_s * 1000.0)
            } else {
                format!("{:.2} s", self.wall_s)
            }
        )?;
        writeln!(f)?;

        let mut shown: Vec<&QueueFigures> = figures.queues.iter().collect();
        let long = shown.len() > QUEUES_SHOWN;
        if long {
            shown.sort_by(|a, b| {
                a.service_level
                    .unwrap_or(1.0)
                    .total_cmp(&b.service_level.unwrap_or(1.0))
                    .then_with(|| a.name.cmp(&b.name))
            });
            shown.truncate(WORST_SHOWN);
        }
        let width = shown
            .iter()
            .map(|q| q.name.chars().count())
            .chain([5, "agent group".len()])
            .chain(figures.agent_groups.iter().map(|g| g.name.chars().count()))
            .max()
            .unwrap_or(5);
        writeln!(
            f,
            "{:<width$} {:>8} {:>8} {:>9} {:>10} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9}",
            "queue",
            "offered",
            "handled",
            "abandoned",
            "overflowed",
            "waiting",
            "SL",
            "ASA",
            "AHT",
            "max wait",
            "occupancy"
        )?;
        for q in &shown {
            queue_row(f, width, q)?;
        }
        if long {
            writeln!(
                f,
                "{:<width$} ({} more queues; these are the {WORST_SHOWN} with the lowest service level; --json has all)",
                "…",
                figures.queues.len() - shown.len()
            )?;
        }
        queue_row(f, width, &figures.overall)?;

        if !figures.agent_groups.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<width$} {:>8} {:>8} {:>14} {:>9}",
                "agent group", "agents", "handled", "staffed hours", "occupancy"
            )?;
            for g in &figures.agent_groups {
                writeln!(
                    f,
                    "{:<width$} {:>8} {:>8} {:>14.1} {:>9}",
                    g.name,
                    g.agents,
                    g.handled,
                    g.staffed_hours,
                    percent(g.occupancy)
                )?;
            }
        }

        writeln!(f)?;
        writeln!(
            f,
            "router decision latency (wall clock, µs; varies from run to run)"
        )?;
        writeln!(
            f,
            "{:<18} {:>10} {:>8} {:>8} {:>9}",
            "call", "count", "p50", "p99", "max"
        )?;
        let latency = &self.decision_latency;
        let rows = latency
            .by_call
            .iter()
            .map(|c| (c.name.as_str(), &c.latency))
            .chain(latency.all.as_ref().map(|all| ("all", all)));
        for (name, p) in rows {
            writeln!(
                f,
                "{:<18} {:>10} {:>8.2} {:>8.2} {:>9.1}",
                name, p.count, p.p50_us, p.p99_us, p.max_us
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "SL: handled within the queue's service_level_s ÷ (handled + abandoned). ASA: mean wait of handled contacts."
        )?;
        writeln!(
            f,
            "AHT: connected time + after-call work of completed contacts. Occupancy: time holding a contact or in"
        )?;
        writeln!(
            f,
            "after-call work ÷ time logged in (a queue gets each agent's time in proportion to the agent's work there)."
        )?;
        writeln!(
            f,
            "Contacts count in the queue they arrived in: offered = handled + abandoned + overflowed + waiting at closing."
        )?;
        let mut notes = Vec::new();
        let named = |pick: fn(&QueueFigures) -> u64| -> Vec<String> {
            figures
                .queues
                .iter()
                .filter(|q| pick(q) > 0)
                .map(|q| format!("{} {}", q.name, pick(q)))
                .collect()
        };
        let callbacks = named(|q| q.callbacks);
        if !callbacks.is_empty() {
            notes.push(format!("Became callbacks: {}.", callbacks.join(", ")));
        }
        let rerouted = named(|q| q.rerouted);
        if !rerouted.is_empty() {
            notes.push(format!(
                "Overflowed to another queue: {}.",
                rerouted.join(", ")
            ));
        }
        if figures.offers_missed > 0 {
            notes.push(format!(
                "Offers agents let ring out: {}.",
                figures.offers_missed
            ));
        }
        if notes.is_empty() {
            Ok(())
        } else {
            writeln!(f, "{}", notes.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_wallboard() {
        assert_eq!(span(12.44), "12.4s");
        assert_eq!(span(245.0), "4m05s");
        assert_eq!(span(3720.0), "1h02m");
        assert_eq!(clock(8.0 * 3600.0), "08:00");
        assert_eq!(percent(Some(0.8123)), "81.2%");
        assert_eq!(percent(None), "-");
    }
}
