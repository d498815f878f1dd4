//! Trunk admission (sans-IO): whether a client (tenant) may take another call now.
//!
//! The seed's rule: with A the client's available agents, R its trunk/agent ratio and T its
//! after-hours trunks, the client may hold max(⌊A × R⌋, A + T) simultaneous calls. On top:
//! a shared trunk pool across clients, in which a client already using its fair share is blocked
//! when another client is likely to receive a call soon (from its recent arrival rate); and the
//! likelihood that the client's current calls end within a window (from the handle times seen)
//! may admit a call the limit would reject. Every decision carries its inputs and the rule that
//! decided, and is counted.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::model::{TenantId, Timestamp};

/// Handle times kept per client for the likelihood of calls ending (bounds memory).
pub const HANDLE_SAMPLES: usize = 512;
/// Arrivals kept per client for its rate (bounds memory; more means the rate is high anyway).
pub const ARRIVAL_SAMPLES: usize = 4096;

/// A client's trunk entitlement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientTrunks {
    /// R: trunks per available agent (e.g. 1.5: callers wait in queue for half the agents).
    pub ratio: f64,
    /// T: trunks the client keeps when few agents are available (after hours: voicemail, IVR).
    pub after_hours: u32,
}

/// Admission settings shared by every client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionSettings {
    /// Trunks in the shared pool (`0`: no pool limit).
    pub pool: u32,
    /// How far ahead "soon" looks (likely arrivals, likely ends).
    pub window: Duration,
    /// How far back arrival rates look.
    pub rate_window: Duration,
    /// Probability from which "likely" counts (e.g. 0.5).
    pub likely: f64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            pool: 0,
            window: Duration::from_secs(30),
            rate_window: Duration::from_secs(300),
            likely: 0.5,
        }
    }
}

/// The rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdmissionRule {
    /// Within the client's permitted calls and the pool.
    WithinLimit,
    /// Over the client's permitted calls, but one of its calls is likely to end soon.
    LikelyEnding,
    /// Over the client's permitted calls: rejected (busy).
    OverClientLimit,
    /// Every trunk of the pool is in use: rejected (busy).
    PoolExhausted,
    /// The pool is contended and the client already uses its fair share, while another client
    /// is likely to receive a call soon: blocked (busy).
    PoolContention,
    /// The client is not known to admission.
    UnknownClient,
}

impl AdmissionRule {
    /// Whether the rule admits the call.
    pub fn admits(self) -> bool {
        matches!(
            self,
            AdmissionRule::WithinLimit | AdmissionRule::LikelyEnding
        )
    }

    /// A short stable code for logs, metrics and CDRs.
    pub fn code(self) -> &'static str {
        match self {
            AdmissionRule::WithinLimit => "within-limit",
            AdmissionRule::LikelyEnding => "likely-ending",
            AdmissionRule::OverClientLimit => "over-client-limit",
            AdmissionRule::PoolExhausted => "pool-exhausted",
            AdmissionRule::PoolContention => "pool-contention",
            AdmissionRule::UnknownClient => "unknown-client",
        }
    }
}

/// A decision with the inputs it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionDecision {
    /// The client.
    pub tenant: TenantId,
    /// The rule that decided (see [`AdmissionRule::admits`]).
    pub rule: AdmissionRule,
    /// A: available agents.
    pub agents: u32,
    /// R.
    pub ratio: f64,
    /// T.
    pub after_hours: u32,
    /// max(⌊A × R⌋, A + T).
    pub permitted: u32,
    /// The client's calls in progress before this one.
    pub active: u32,
    /// Every client's calls in progress before this one.
    pub pool_active: u32,
    /// The pool size (`0`: none).
    pub pool: u32,
    /// Probability that one of the client's calls ends within the window, when it was asked.
    pub ending: Option<f64>,
    /// The client most likely to receive a call, and the probability, when it was asked.
    pub other_arrival: Option<(TenantId, f64)>,
}

impl AdmissionDecision {
    /// Whether the call is admitted.
    pub fn admitted(&self) -> bool {
        self.rule.admits()
    }
}

impl fmt::Display for AdmissionDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: A={} R={} T={} permitted=max({},{})={} active={} pool={}/{}",
            if self.admitted() {
                "admitted"
            } else {
                "rejected"
            },
            self.rule.code(),
            self.agents,
            self.ratio,
            self.after_hours,
            (f64::from(self.agents) * self.ratio).floor(),
            self.agents.saturating_add(self.after_hours),
            self.permitted,
            self.active,
            self.pool_active,
            if self.pool == 0 {
                "∞".to_owned()
            } else {
                self.pool.to_string()
            },
        )?;
        if let Some(p) = self.ending {
            write!(f, " p(a call ends within the window)={p:.2}")?;
        }
        if let Some((tenant, p)) = self.other_arrival {
            write!(f, " p({tenant} receives a call within the window)={p:.2}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Client {
    trunks: ClientTrunks,
    agents: u32,
    /// Start times of the calls in progress (one entry per call).
    calls: Vec<Timestamp>,
    arrivals: VecDeque<Timestamp>,
    handle_times: VecDeque<Duration>,
}

impl Client {
    fn permitted(&self) -> u32 {
        permitted(self.agents, self.trunks)
    }
}

/// max(⌊A × R⌋, A + T), the seed's permitted simultaneous calls.
pub fn permitted(agents: u32, trunks: ClientTrunks) -> u32 {
    let by_ratio = (f64::from(agents) * trunks.ratio.max(0.0)).floor();
    let by_ratio = if by_ratio.is_finite() {
        by_ratio.min(f64::from(u32::MAX)) as u32
    } else {
        0
    };
    by_ratio.max(agents.saturating_add(trunks.after_hours))
}

/// Counts of decisions per rule.
pub type AdmissionCounters = BTreeMap<AdmissionRule, u64>;

/// Admission for every client, and the shared pool.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    settings: AdmissionSettings,
    clients: BTreeMap<TenantId, Client>,
    counters: AdmissionCounters,
}

impl Admission {
    /// Admission with no clients yet.
    pub fn new(settings: AdmissionSettings) -> Self {
        Admission {
            settings,
            clients: BTreeMap::new(),
            counters: BTreeMap::new(),
        }
    }

    /// Adds a client or changes its entitlement.
    pub fn set_client(&mut self, tenant: TenantId, trunks: ClientTrunks) {
        self.clients
            .entry(tenant)
            .and_modify(|c| c.trunks = trunks)
            .or_insert_with(|| Client {
                trunks,
                agents: 0,
                calls: Vec::new(),
                arrivals: VecDeque::new(),
                handle_times: VecDeque::new(),
            });
    }

    /// Sets A, the client's available agents (from the agent manager).
    pub fn set_available_agents(&mut self, tenant: TenantId, agents: u32) {
        if let Some(client) = self.clients.get_mut(&tenant) {
            client.agents = agents;
        }
    }

    /// Decides on a new call of `tenant` at `now` and, if admitted, counts it as in progress
    /// until [`release`](Self::release). The arrival counts towards the client's rate either way.
    pub fn admit(&mut self, now: Timestamp, tenant: TenantId) -> AdmissionDecision {
        let decision = self.decide(now, tenant);
        let rate_window = self.settings.rate_window;
        if let Some(client) = self.clients.get_mut(&tenant) {
            client.arrivals.push_back(now);
            while client.arrivals.front().is_some_and(|t| {
                now.since(*t) > rate_window || client.arrivals.len() > ARRIVAL_SAMPLES
            }) {
                client.arrivals.pop_front();
            }
            if decision.admitted() {
                client.calls.push(now);
            }
        }
        *self.counters.entry(decision.rule).or_default() += 1;
        decision
    }

    /// A call of `tenant` that started at `started` ended at `now`: its trunk is free again and
    /// its handle time feeds the likelihood of calls ending.
    pub fn release(&mut self, now: Timestamp, tenant: TenantId, started: Timestamp) {
        let Some(client) = self.clients.get_mut(&tenant) else {
            return;
        };
        if let Some(i) = client.calls.iter().position(|t| *t == started) {
            client.calls.swap_remove(i);
        } else if !client.calls.is_empty() {
            // The caller lost track of the start; free the oldest so the count stays true.
            let oldest = (0..client.calls.len())
                .min_by_key(|i| client.calls[*i])
                .unwrap_or(0);
            client.calls.swap_remove(oldest);
        }
        client.handle_times.push_back(now.since(started));
        if client.handle_times.len() > HANDLE_SAMPLES {
            client.handle_times.pop_front();
        }
    }

    /// The decision a call of `tenant` would get at `now`, without counting or reserving.
    pub fn decide(&self, now: Timestamp, tenant: TenantId) -> AdmissionDecision {
        let pool = self.settings.pool;
        let pool_active: u32 = self.clients.values().map(|c| c.calls.len() as u32).sum();
        let Some(client) = self.clients.get(&tenant) else {
            return AdmissionDecision {
                tenant,
                rule: AdmissionRule::UnknownClient,
                agents: 0,
                ratio: 0.0,
                after_hours: 0,
                permitted: 0,
                active: 0,
                pool_active,
                pool,
                ending: None,
                other_arrival: None,
            };
        };
        let active = client.calls.len() as u32;
        let permitted = client.permitted();
        let mut decision = AdmissionDecision {
            tenant,
            rule: AdmissionRule::WithinLimit,
            agents: client.agents,
            ratio: client.trunks.ratio,
            after_hours: client.trunks.after_hours,
            permitted,
            active,
            pool_active,
            pool,
            ending: None,
            other_arrival: None,
        };
        if pool > 0 && pool_active >= pool {
            decision.rule = AdmissionRule::PoolExhausted;
            return decision;
        }
        if active >= permitted {
            let ending = self.ending_probability(now, client);
            decision.ending = Some(ending);
            decision.rule = if ending >= self.settings.likely {
                AdmissionRule::LikelyEnding
            } else {
                AdmissionRule::OverClientLimit
            };
            return decision;
        }
        if pool > 0 {
            let total_permitted: u64 = self
                .clients
                .values()
                .map(|c| u64::from(c.permitted()))
                .sum();
            // The pool is contended when the clients together may hold more than it has.
            if total_permitted > u64::from(pool) {
                let fair_share = f64::from(pool) * f64::from(permitted) / total_permitted as f64;
                let free_after = pool - pool_active - 1;
                let waiting_others = self.likely_others(now, tenant);
                if let Some(&(other, p)) = waiting_others.first() {
                    decision.other_arrival = Some((other, p));
                    if f64::from(active) >= fair_share
                        && (free_after as usize) < waiting_others.len()
                    {
                        decision.rule = AdmissionRule::PoolContention;
                        return decision;
                    }
                }
            }
        }
        decision
    }

    /// Decisions made so far, per rule.
    pub fn counters(&self) -> &AdmissionCounters {
        &self.counters
    }

    /// Calls in progress for a client.
    pub fn active(&self, tenant: TenantId) -> u32 {
        self.clients
            .get(&tenant)
            .map_or(0, |c| c.calls.len() as u32)
    }

    /// Other clients within their limit that are likely to receive a call within the window,
    /// most likely first.
    fn likely_others(&self, now: Timestamp, tenant: TenantId) -> Vec<(TenantId, f64)> {
        let window = self.settings.window.as_secs_f64();
        let rate_window = self.settings.rate_window.as_secs_f64().max(1e-3);
        let mut likely: Vec<(TenantId, f64)> = self
            .clients
            .iter()
            .filter(|(id, c)| **id != tenant && (c.calls.len() as u32) < c.permitted())
            .filter_map(|(id, c)| {
                let recent = c
                    .arrivals
                    .iter()
                    .filter(|t| now.since(**t).as_secs_f64() <= rate_window)
                    .count();
                let rate = recent as f64 / rate_window;
                // Poisson arrivals: P(at least one in the window).
                let p = 1.0 - (-rate * window).exp();
                (p >= self.settings.likely).then_some((*id, p))
            })
            .collect();
        likely.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        likely
    }

    /// P(at least one of the client's calls ends within the window), from the handle times
    /// seen: for a call that has lasted e, P(T ≤ e + w | T > e) over the samples.
    fn ending_probability(&self, now: Timestamp, client: &Client) -> f64 {
        if client.handle_times.is_empty() || client.calls.is_empty() {
            return 0.0;
        }
        let window = self.settings.window;
        let mut none_ends = 1.0;
        for started in &client.calls {
            let elapsed = now.since(*started);
            let longer: Vec<&Duration> = client
                .handle_times
                .iter()
                .filter(|h| **h > elapsed)
                .collect();
            let p = if longer.is_empty() {
                // Already longer than any call seen: assume it ends soon (it is an outlier).
                1.0
            } else {
                longer.iter().filter(|h| ***h <= elapsed + window).count() as f64
                    / longer.len() as f64
            };
            none_ends *= 1.0 - p;
        }
        1.0 - none_ends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> Timestamp {
        Timestamp((secs * 1e6) as i64)
    }

    const ACME: TenantId = TenantId(1);
    const GLOBEX: TenantId = TenantId(2);

    #[test]
    fn permitted_calls_follow_the_seed_formula() {
        // (A, R, T, permitted, which term wins)
        let table = [
            (10, 1.5, 2, 15, "A×R larger"),
            (2, 1.5, 4, 6, "A+T larger"),
            (0, 2.0, 3, 3, "no agents: after-hours trunks only"),
            (4, 1.0, 0, 4, "equal terms"),
            (3, 1.4, 0, 4, "A×R is floored"),
            (0, 1.5, 0, 0, "nothing permitted"),
        ];
        for (a, r, t, expected, case) in table {
            let got = permitted(
                a,
                ClientTrunks {
                    ratio: r,
                    after_hours: t,
                },
            );
            assert_eq!(got, expected, "{case}: A={a} R={r} T={t}");
        }
        assert_eq!(
            permitted(
                u32::MAX,
                ClientTrunks {
                    ratio: 1e30,
                    after_hours: u32::MAX
                }
            ),
            u32::MAX
        );
        assert_eq!(
            permitted(
                5,
                ClientTrunks {
                    ratio: f64::NAN,
                    after_hours: 1
                }
            ),
            6
        );
    }

    #[test]
    fn calls_over_the_client_limit_are_rejected_and_counted() {
        let mut admission = Admission::new(AdmissionSettings::default());
        admission.set_client(
            ACME,
            ClientTrunks {
                ratio: 1.5,
                after_hours: 0,
            },
        );
        admission.set_available_agents(ACME, 2);
        let decisions: Vec<AdmissionRule> = (0..4)
            .map(|i| admission.admit(at(i as f64), ACME).rule)
            .collect();
        assert_eq!(
            decisions,
            vec![
                AdmissionRule::WithinLimit,
                AdmissionRule::WithinLimit,
                AdmissionRule::WithinLimit,
                AdmissionRule::OverClientLimit
            ]
        );
        assert_eq!(admission.counters()[&AdmissionRule::OverClientLimit], 1);
        let rejected = admission.decide(at(5.0), ACME);
        assert!(
            rejected
                .to_string()
                .contains("permitted=max(3,2)=3 active=3"),
            "{rejected}"
        );
        // A call ends: the next is admitted again.
        admission.release(at(6.0), ACME, at(0.0));
        assert!(admission.admit(at(7.0), ACME).admitted());
    }

    #[test]
    fn the_pool_limits_every_client_together() {
        let mut admission = Admission::new(AdmissionSettings {
            pool: 3,
            ..AdmissionSettings::default()
        });
        for tenant in [ACME, GLOBEX] {
            admission.set_client(
                tenant,
                ClientTrunks {
                    ratio: 1.0,
                    after_hours: 5,
                },
            );
            admission.set_available_agents(tenant, 0);
        }
        assert!(admission.admit(at(0.0), ACME).admitted());
        assert!(admission.admit(at(0.0), GLOBEX).admitted());
        assert!(admission.admit(at(0.0), GLOBEX).admitted());
        let decision = admission.admit(at(1.0), ACME);
        assert_eq!(decision.rule, AdmissionRule::PoolExhausted);
        assert!(decision.to_string().contains("pool=3/3"), "{decision}");
    }

    #[test]
    fn a_likely_ending_call_admits_a_call_over_the_limit() {
        let mut admission = Admission::new(AdmissionSettings::default());
        admission.set_client(
            ACME,
            ClientTrunks {
                ratio: 1.0,
                after_hours: 0,
            },
        );
        admission.set_available_agents(ACME, 1);
        // History: calls last 60-70 s.
        for i in 0..20 {
            let start = at(f64::from(i) * 100.0);
            assert!(admission.admit(start, ACME).admitted());
            admission.release(
                start.plus(Duration::from_secs(60 + i as u64 % 10)),
                ACME,
                start,
            );
        }
        let start = at(10_000.0);
        assert!(admission.admit(start, ACME).admitted());
        // 10 s into the call an end within 30 s is unlikely: rejected.
        let early = admission.decide(start.plus(Duration::from_secs(10)), ACME);
        assert_eq!(early.rule, AdmissionRule::OverClientLimit);
        assert!(early.ending.is_some_and(|p| p < 0.5), "{early}");
        // 50 s into it, every call seen ended by 70 s: admitted.
        let late = admission.decide(start.plus(Duration::from_secs(50)), ACME);
        assert_eq!(late.rule, AdmissionRule::LikelyEnding);
        assert!(
            late.to_string()
                .contains("p(a call ends within the window)=1.00"),
            "{late}"
        );
    }

    #[test]
    fn a_client_over_its_fair_share_is_blocked_when_another_is_likely_to_call() {
        let mut admission = Admission::new(AdmissionSettings {
            pool: 4,
            ..AdmissionSettings::default()
        });
        // Each may hold 4: together 8 on a pool of 4, so each's fair share is 2.
        for tenant in [ACME, GLOBEX] {
            admission.set_client(
                tenant,
                ClientTrunks {
                    ratio: 1.0,
                    after_hours: 0,
                },
            );
            admission.set_available_agents(tenant, 4);
        }
        // Globex receives a call every 10 s: it is likely to receive one within 30 s.
        for i in 0..10 {
            let t = at(f64::from(i) * 10.0);
            assert!(admission.admit(t, GLOBEX).admitted());
            admission.release(t.plus(Duration::from_secs(5)), GLOBEX, t);
        }
        let now = at(100.0);
        assert!(admission.admit(now, ACME).admitted());
        assert!(admission.admit(now, ACME).admitted());
        assert!(
            admission.admit(now, ACME).admitted(),
            "three of four trunks in use, one left for Globex"
        );
        let blocked = admission.admit(now, ACME);
        assert_eq!(blocked.rule, AdmissionRule::PoolContention);
        // Ten calls in the last five minutes: 1 - e^-1 = 0.63 that one comes within 30 s.
        assert!(
            blocked
                .other_arrival
                .is_some_and(|(t, p)| t == GLOBEX && (p - 0.632).abs() < 0.01),
            "{blocked}"
        );
        // Globex is not blocked: it is under its fair share.
        assert!(admission.admit(now, GLOBEX).admitted());
    }

    #[test]
    fn unknown_clients_are_rejected_with_their_own_rule() {
        let mut admission = Admission::new(AdmissionSettings::default());
        assert_eq!(
            admission.admit(at(0.0), ACME).rule,
            AdmissionRule::UnknownClient
        );
    }

    #[test]
    fn memory_per_client_is_bounded() {
        let mut admission = Admission::new(AdmissionSettings {
            rate_window: Duration::from_secs(1_000_000),
            ..AdmissionSettings::default()
        });
        admission.set_client(
            ACME,
            ClientTrunks {
                ratio: 1.0,
                after_hours: 1,
            },
        );
        admission.set_available_agents(ACME, 1_000_000);
        for i in 0..10_000 {
            let t = at(f64::from(i));
            admission.admit(t, ACME);
            admission.release(t, ACME, t);
        }
        let client = &admission.clients[&ACME];
        assert!(client.arrivals.len() <= ARRIVAL_SAMPLES + 1);
        assert!(client.handle_times.len() <= HANDLE_SAMPLES);
    }

    proptest::proptest! {
        #[test]
        fn the_pool_is_never_exceeded_and_every_decision_is_counted(
            ops in proptest::collection::vec((0u32..3, proptest::bool::ANY, 0u32..6, 0u64..120), 1..300),
            pool in 0u32..8,
        ) {
            let mut admission = Admission::new(AdmissionSettings { pool, ..AdmissionSettings::default() });
            for tenant in 0..3 {
                admission.set_client(TenantId(tenant), ClientTrunks { ratio: 1.5, after_hours: tenant });
            }
            let mut calls: Vec<(TenantId, Timestamp)> = Vec::new();
            let mut now = Timestamp::ZERO;
            let mut decided = 0u64;
            for (tenant, arrive, agents, step) in ops {
                now = now.plus(Duration::from_secs(step));
                let tenant = TenantId(tenant);
                admission.set_available_agents(tenant, agents);
                if arrive || calls.is_empty() {
                    let decision = admission.admit(now, tenant);
                    decided += 1;
                    if decision.admitted() {
                        calls.push((tenant, now));
                    }
                    if decision.rule == AdmissionRule::WithinLimit {
                        proptest::prop_assert!(decision.active < decision.permitted);
                    }
                } else {
                    let (tenant, started) = calls.remove(step as usize % calls.len());
                    admission.release(now, tenant, started);
                }
                let total: u32 = (0..3).map(|t| admission.active(TenantId(t))).sum();
                proptest::prop_assert_eq!(total as usize, calls.len());
                if pool > 0 {
                    proptest::prop_assert!(total <= pool, "{} calls on a pool of {}", total, pool);
                }
            }
            proptest::prop_assert_eq!(admission.counters().values().sum::<u64>(), decided);
        }
    }
}
