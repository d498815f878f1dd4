//! Explanations: for one contact, every member of its queue, whether it is eligible and why
//! not, its score and strategy rank, and who would win now and why.

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{AgentId, ContactId, Level, MediaType, Priority, QueueId, SkillId, TagId};

use super::catalog::Catalog;
use super::error::RouterError;
use super::relax::{allowed_tier, effective_min};
use super::router::{Router, preference_score};
use super::spec::Modifier;
use super::strategy::{Behaviour, Strategy};

/// Why an agent can or cannot take the contact now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Eligible and free: a candidate now.
    Candidate,
    /// Eligible but has no free slot of the media type (busy, ringing, or blocked by blending).
    Busy,
    /// Eligible but not available for the media type (break, missed offer).
    Unavailable,
    /// Not logged in.
    LoggedOut,
    /// Has no slot of this media type at all.
    NoSlots,
    /// Lacks a required key at the level needed now.
    MissingKey {
        /// The key.
        key: SkillId,
        /// The level needed after relaxation.
        needs: Level,
        /// The agent's level.
        has: Option<Level>,
    },
    /// Ringing for this contact now.
    Ringing,
    /// Connected to this contact.
    Serving,
    /// Its tier level (penalty) is not reachable yet.
    TierNotReached {
        /// The agent's level in this queue.
        level: u32,
        /// The highest level reachable now.
        allowed: u32,
    },
}

/// One member of the contact's queue, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateExplanation {
    /// The agent.
    pub agent: AgentId,
    /// Tier level / penalty in this queue.
    pub level: u32,
    /// Position in this queue.
    pub position: u32,
    /// Eligible and free, or why not.
    pub verdict: Verdict,
    /// Sum of satisfied preference weights.
    pub score: u32,
    /// Whether this agent served the customer last.
    pub previous_agent: bool,
    /// The strategy's measure for this agent (lower ranks first), e.g. idle time.
    pub strategy_rank: u64,
    /// The strategy's measure in words, e.g. "last contact 340s ago".
    pub strategy_value: String,
}

impl CandidateExplanation {
    /// Whether the agent is in contention (free and eligible, or already ringing/serving).
    pub fn in_contention(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Candidate | Verdict::Ringing | Verdict::Serving
        )
    }
}

/// A criterion as it stands after relaxation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionExplanation {
    /// The key.
    pub key: SkillId,
    /// The name relaxation refers to.
    pub tag: TagId,
    /// Required or preferred.
    pub modifier: Modifier,
    /// Minimum level before relaxation.
    pub base_level: Level,
    /// Minimum level now; `None` once dropped.
    pub level_now: Option<Level>,
}

/// Everything the router considers for one contact, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The contact.
    pub contact: ContactId,
    /// Its queue.
    pub queue: QueueId,
    /// Its media type.
    pub media: MediaType,
    /// Its priority.
    pub priority: Priority,
    /// How long it has waited.
    pub waited: Duration,
    /// Where it is (waiting, offered, connected…).
    pub phase: &'static str,
    /// The queue's strategy.
    pub strategy: Strategy,
    /// Its criteria after relaxation.
    pub criteria: Vec<CriterionExplanation>,
    /// Highest tier level reachable now (`None`: all).
    pub max_tier_level: Option<u32>,
    /// Every member of the queue, best candidates first.
    pub candidates: Vec<CandidateExplanation>,
    /// Agents currently ringing or connected.
    pub agents: Vec<AgentId>,
    /// Why the contact is where it is.
    pub summary: String,
}

impl Router {
    /// Explains the router's view of a live contact at `now`.
    pub fn explain(
        &self,
        now: crate::model::Timestamp,
        contact: ContactId,
    ) -> Result<Explanation, RouterError> {
        let live = self
            .contacts
            .get(&contact)
            .ok_or(RouterError::UnknownContact(contact))?;
        let queue = self.queue(live.spec.queue)?;
        let waited = now.since(live.spec.arrival);
        let media = live.spec.media;
        let allowed = allowed_tier(&queue.spec, waited);
        let previous = live
            .spec
            .customer
            .and_then(|c| self.history.last_agent(c))
            .map(|(a, _)| a);
        let criteria = live
            .signature
            .iter()
            .chain(live.preferred.iter())
            .map(|c| CriterionExplanation {
                key: c.key,
                tag: c.tag,
                modifier: c.modifier,
                base_level: c.min_level,
                level_now: effective_min(&queue.spec, c, waited),
            })
            .collect();
        let mut candidates = Vec::new();
        let behaviour = queue.spec.strategy.behaviour();
        for (index, member) in queue.members() {
            let Ok(agent) = self.agent(member.agent) else {
                continue;
            };
            let (rank, value) = describe_strategy(behaviour, queue, member, agent, live, now);
            let holds_it = agent.offered.contains(&contact) || agent.connected.contains(&contact);
            let verdict = if holds_it && agent.connected.contains(&contact) {
                Verdict::Serving
            } else if holds_it {
                Verdict::Ringing
            } else if *agent.spec.slots.get(media) == 0 {
                Verdict::NoSlots
            } else if let Some(missing) = agent.meets(&live.signature, &queue.spec, waited) {
                Verdict::MissingKey {
                    key: missing.key,
                    needs: missing.needs,
                    has: missing.has,
                }
            } else if member.level > allowed {
                Verdict::TierNotReached {
                    level: member.level,
                    allowed,
                }
            } else if !agent.logged_in {
                Verdict::LoggedOut
            } else if !agent.available.contains(media) {
                Verdict::Unavailable
            } else if !queue.free.get(media).contains(index) {
                Verdict::Busy
            } else {
                Verdict::Candidate
            };
            candidates.push(CandidateExplanation {
                agent: member.agent,
                level: member.level,
                position: member.position,
                verdict,
                score: preference_score(agent, &live.preferred, &queue.spec, waited),
                previous_agent: previous == Some(member.agent),
                strategy_rank: rank,
                strategy_value: value,
            });
        }
        let weighted = behaviour == Behaviour::WeightedRandom;
        let affinity = !queue.spec.affinity.is_zero();
        let class = |c: &CandidateExplanation| {
            (
                !c.in_contention(),
                !(c.previous_agent && affinity),
                std::cmp::Reverse(c.score),
                if weighted { 0 } else { c.level },
                c.strategy_rank,
                c.agent,
            )
        };
        candidates.sort_by_key(class);
        let agents: Vec<AgentId> = self.contact_agents(contact).into_iter().collect();
        let contenders: Vec<&CandidateExplanation> =
            candidates.iter().filter(|c| c.in_contention()).collect();
        let eligible = candidates
            .iter()
            .filter(|c| {
                c.in_contention() || matches!(c.verdict, Verdict::Busy | Verdict::Unavailable)
            })
            .count();
        let summary = match (contenders.first(), contenders.get(1)) {
            (Some(winner), runner_up) => {
                let why = match runner_up {
                    None => "the only eligible free agent".to_owned(),
                    Some(second) if behaviour == Behaviour::RingAll => format!(
                        "ring-all: rings every agent in the best class (with {} and others)",
                        second.agent
                    ),
                    Some(second) => why_first(winner, second, affinity, weighted, behaviour),
                };
                let now_or_then = if agents.is_empty() {
                    "would go to"
                } else {
                    "went to"
                };
                format!(
                    "{} {now_or_then} {}: {why}",
                    live.phase.name(),
                    winner.agent
                )
            }
            (None, _) if eligible == 0 => format!(
                "{}: none of the {} members can serve it now (see each verdict)",
                live.phase.name(),
                candidates.len()
            ),
            (None, _) => format!(
                "{}: {eligible} eligible member(s), none free for {media}",
                live.phase.name()
            ),
        };
        Ok(Explanation {
            contact,
            queue: live.spec.queue,
            media,
            priority: live.spec.priority,
            waited,
            phase: live.phase.name(),
            strategy: queue.spec.strategy,
            criteria,
            max_tier_level: (allowed != u32::MAX).then_some(allowed),
            candidates,
            agents,
            summary,
        })
    }
}

impl Explanation {
    /// A human-readable rendering with names from the catalog (for logs and the supervisor view).
    pub fn render(&self, catalog: &Catalog) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} in {} ({}, priority {}, waited {:.1}s, strategy {}): {}",
            self.contact,
            catalog.queue_name(self.queue),
            self.media,
            self.priority.0,
            self.waited.as_secs_f64(),
            self.strategy,
            self.summary
        );
        for c in &self.criteria {
            let now = match c.level_now {
                Some(level) => format!("level ≥ {level}"),
                None => "dropped".to_owned(),
            };
            let modifier = match c.modifier {
                Modifier::Required => "required".to_owned(),
                Modifier::Preferred { weight } => format!("preferred (weight {weight})"),
            };
            let _ = writeln!(
                out,
                "  criterion {} {modifier}: base level {}, now {now}",
                catalog.skill_name(c.key),
                c.base_level
            );
        }
        if let Some(max) = self.max_tier_level {
            let _ = writeln!(out, "  tier levels reachable: up to {max}");
        }
        for c in &self.candidates {
            let verdict = match &c.verdict {
                Verdict::Candidate => "candidate".to_owned(),
                Verdict::Ringing => "ringing for it".to_owned(),
                Verdict::Serving => "serving it".to_owned(),
                Verdict::Busy => "eligible, busy".to_owned(),
                Verdict::Unavailable => "eligible, unavailable".to_owned(),
                Verdict::LoggedOut => "logged out".to_owned(),
                Verdict::NoSlots => format!("no {} slots", self.media),
                Verdict::MissingKey { key, needs, has } => format!(
                    "lacks {} ≥ {needs} (has {})",
                    catalog.skill_name(*key),
                    has.map_or("none".to_owned(), |l| l.to_string())
                ),
                Verdict::TierNotReached { level, allowed } => {
                    format!("tier level {level} not reached (up to {allowed} now)")
                }
            };
            let _ = writeln!(
                out,
                "  {:<16} level {:<3} position {:<5} score {:<4} {:<22}{} {verdict}",
                catalog.agent_name(c.agent),
                c.level,
                c.position,
                c.score,
                c.strategy_value,
                if c.previous_agent {
                    " (previous agent)"
                } else {
                    ""
                },
            );
        }
        out
    }
}

/// The strategy's measure for one member, as a number (lower first) and in words.
fn describe_strategy(
    behaviour: Behaviour,
    queue: &super::roster::QueueState,
    member: &super::roster::Member,
    agent: &super::roster::AgentState,
    live: &super::router::Live,
    now: crate::model::Timestamp,
) -> (u64, String) {
    let idle = |since: crate::model::Timestamp| now.since(since).as_secs();
    let ago = |since: crate::model::Timestamp, what: &str| {
        if since == crate::model::Timestamp::ZERO {
            format!("{what} never")
        } else {
            format!("{what} {}s ago", idle(since))
        }
    };
    match behaviour {
        Behaviour::RingAll => (0, "rings with its class".to_owned()),
        Behaviour::LongestIdle => (
            u64::MAX - idle(agent.last_end),
            ago(agent.last_end, "last contact"),
        ),
        Behaviour::LeastRecentInQueue => (
            u64::MAX - idle(member.last_end),
            ago(member.last_end, "last here"),
        ),
        Behaviour::RoundRobin => {
            let start = queue.last_offered_position.map_or(0, |p| p.wrapping_add(1));
            (
                u64::from(member.position.wrapping_sub(start)),
                format!("position {} in turn", member.position),
            )
        }
        Behaviour::InOrder | Behaviour::RingProgressively => (
            u64::from(member.position),
            format!("position {}", member.position),
        ),
        Behaviour::LeastTalkTime => (
            agent.talk_today.as_secs(),
            format!("talked {}s today", agent.talk_today.as_secs()),
        ),
        Behaviour::FewestCalls => (
            u64::from(agent.handled_today),
            format!("{} contacts today", agent.handled_today),
        ),
        Behaviour::FewestCallsInQueue => (
            u64::from(member.completed),
            format!("{} from this queue", member.completed),
        ),
        Behaviour::Random | Behaviour::WeightedRandom => (0, "random draw".to_owned()),
        Behaviour::BestSkill => {
            let total: u64 = live
                .signature
                .iter()
                .chain(live.preferred.iter())
                .map(|c| agent.spec.level_of(c.key).map_or(0, |l| u64::from(l.get())))
                .sum();
            (u64::MAX - total, format!("skill total {total}"))
        }
    }
}

/// Names the first ranking rule on which the winner beat the runner-up.
fn why_first(
    winner: &CandidateExplanation,
    second: &CandidateExplanation,
    affinity: bool,
    weighted: bool,
    behaviour: Behaviour,
) -> String {
    if affinity && winner.previous_agent != second.previous_agent {
        return format!("served this customer before (over {})", second.agent);
    }
    if winner.score != second.score {
        return format!(
            "preference score {} over {} of {}",
            winner.score, second.score, second.agent
        );
    }
    if !weighted && winner.level != second.level {
        return format!(
            "tier level {} before {} of {}",
            winner.level, second.level, second.agent
        );
    }
    match behaviour {
        Behaviour::Random | Behaviour::WeightedRandom => {
            format!("random draw over {}", second.agent)
        }
        _ if winner.strategy_rank != second.strategy_rank => format!(
            "strategy: {} against {} of {}",
            winner.strategy_value, second.strategy_value, second.agent
        ),
        _ => format!("tie on every rule; lower agent id than {}", second.agent),
    }
}
