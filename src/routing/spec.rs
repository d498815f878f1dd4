//! Resolved, id-based descriptions of queues, agents and contacts: what the router works on.
//! [`super::Catalog`] builds them from the setups administrators write.

use crate::model::{
    AgentId, ContactId, CustomerId, Level, MediaMap, MediaSet, MediaType, Priority, QueueId,
    SkillId, TagId, TenantId, Timestamp,
};
use std::time::Duration;

use super::setup::Fairness;
use super::strategy::Strategy;

/// Required or preferred, as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modifier {
    /// Agents without the key at the level are not eligible.
    Required,
    /// Agents with the key at the level score `weight` more.
    Preferred {
        /// Score added for a satisfied preference.
        weight: u32,
    },
}

/// One matching rule of a contact: the agent key, its minimum level, and how it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Criterion {
    /// The agent key (`language=es`, `mortgage`).
    pub key: SkillId,
    /// The name relaxation rules refer to (`language`).
    pub tag: TagId,
    /// Minimum agent level before relaxation.
    pub min_level: Level,
    /// Required or preferred.
    pub modifier: Modifier,
}

/// What one relaxation step loosens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaxAction {
    /// Criteria with this tag accept this level (if lower than theirs).
    MinLevel {
        /// Which criteria.
        tag: TagId,
        /// The new minimum.
        level: Level,
    },
    /// Criteria with this tag no longer count.
    Drop {
        /// Which criteria.
        tag: TagId,
    },
    /// Tier levels (penalties) up to this one become reachable.
    MaxTierLevel(u32),
}

/// A relaxation step at a waiting time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaxStep {
    /// Waiting time from which the step applies.
    pub after: Duration,
    /// What loosens.
    pub action: RelaxAction,
}

/// Where a queue sends contacts that overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverflowTarget {
    /// No overflow: contacts wait.
    None,
    /// Voicemail: the contact ends here; the flow records a voicemail contact.
    Voicemail,
    /// Callback: the contact becomes a callback, keeping its place.
    Callback,
    /// The contact ends; the flow disconnects it.
    Disconnect,
    /// Another queue; the contact keeps its arrival time.
    Queue(QueueId),
}

/// A queue, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Id.
    pub id: QueueId,
    /// Owner.
    pub tenant: TenantId,
    /// Strategy name (its behaviour decides).
    pub strategy: Strategy,
    /// How long an offer rings.
    pub offer_timeout: Duration,
    /// Waiting time after which contacts overflow.
    pub max_wait: Option<Duration>,
    /// Overflow target.
    pub overflow: OverflowTarget,
    /// Service-level target.
    pub service_level: Duration,
    /// app_queue weight for `queue-weight-first` fairness.
    pub weight: u32,
    /// Aging factor of waiting time in cross-queue comparisons, in thousandths.
    pub wait_factor_permille: u32,
    /// Customer-affinity window.
    pub affinity: Duration,
    /// ring-progressively step.
    pub ring_progressively_delay: Duration,
    /// Handle time assumed before statistics exist.
    pub default_handle: Duration,
    /// Criteria every contact of the queue carries.
    pub criteria: Vec<Criterion>,
    /// Relaxation steps, in order of time.
    pub relax: Vec<RelaxStep>,
    /// mod_callcenter tier rule: one more tier level per this much waiting.
    pub tier_step: Option<Duration>,
    /// Highest tier level reachable at first (`None`: all).
    pub max_tier_level: Option<u32>,
}

impl QueueSpec {
    /// A queue with defaults, for tests: longest-idle-agent, 20 s offers, no overflow.
    pub fn new(id: QueueId, tenant: TenantId) -> Self {
        QueueSpec {
            id,
            tenant,
            strategy: Strategy::LongestIdleAgent,
            offer_timeout: Duration::from_secs(20),
            max_wait: None,
            overflow: OverflowTarget::None,
            service_level: Duration::from_secs(20),
            weight: 0,
            wait_factor_permille: 1000,
            affinity: Duration::ZERO,
            ring_progressively_delay: Duration::from_secs(10),
            default_handle: Duration::from_secs(180),
            criteria: Vec::new(),
            relax: Vec::new(),
            tier_step: None,
            max_tier_level: None,
        }
    }
}

/// An agent's place in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The queue.
    pub queue: QueueId,
    /// Tier level or penalty: lower is tried first.
    pub level: u32,
    /// Position within the level.
    pub position: u32,
}

/// An agent, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// Id.
    pub id: AgentId,
    /// Employer.
    pub tenant: TenantId,
    /// Keys and levels, sorted by key, one entry per key.
    pub skills: Vec<(SkillId, Level)>,
    /// Concurrent contacts per media type.
    pub slots: MediaMap<u8>,
    /// Queues served.
    pub memberships: Vec<Membership>,
}

impl AgentSpec {
    /// An agent with one voice slot, no skills, no queues, for tests.
    pub fn new(id: AgentId, tenant: TenantId) -> Self {
        let mut slots = MediaMap::default();
        *slots.get_mut(MediaType::Voice) = 1;
        AgentSpec {
            id,
            tenant,
            skills: Vec::new(),
            slots,
            memberships: Vec::new(),
        }
    }

    /// The agent's level of `key`, if it has it.
    pub fn level_of(&self, key: SkillId) -> Option<Level> {
        level_in(&self.skills, key)
    }
}

/// Looks up `key` in a sorted skill list.
#[inline]
pub fn level_in(skills: &[(SkillId, Level)], key: SkillId) -> Option<Level> {
    skills
        .binary_search_by_key(&key, |(k, _)| *k)
        .ok()
        .map(|i| skills[i].1)
}

/// A contact, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSpec {
    /// Id (assigned by the store).
    pub id: ContactId,
    /// Owner.
    pub tenant: TenantId,
    /// Queue.
    pub queue: QueueId,
    /// Media type.
    pub media: MediaType,
    /// Priority: higher first.
    pub priority: Priority,
    /// Arrival: waiting time counts from here, across restarts and callbacks.
    pub arrival: Timestamp,
    /// The customer, for history and affinity.
    pub customer: Option<CustomerId>,
    /// Criteria beyond the queue's own (from attribute rules and explicit criteria).
    pub criteria: Vec<Criterion>,
}

impl ContactSpec {
    /// A voice contact with no criteria, for tests.
    pub fn new(id: ContactId, tenant: TenantId, queue: QueueId, arrival: Timestamp) -> Self {
        ContactSpec {
            id,
            tenant,
            queue,
            media: MediaType::Voice,
            priority: Priority(0),
            arrival,
            customer: None,
            criteria: Vec::new(),
        }
    }
}

/// Router-wide settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    /// Cross-queue fairness rule.
    pub fairness: Fairness,
    /// Seed of random strategies.
    pub seed: u64,
    /// Customers remembered for affinity.
    pub history_capacity: usize,
    /// For each media type, the media types it blocks on the same agent.
    pub blocks: MediaMap<MediaSet>,
    /// How long after a start no contact overflows only because nobody is logged in yet.
    pub startup_grace: Duration,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings::from_setup(&super::setup::RoutingSettings::default())
    }
}

impl RouterSettings {
    /// Resolves the file settings.
    pub fn from_setup(setup: &super::setup::RoutingSettings) -> Self {
        let mut blocks = MediaMap::<MediaSet>::default();
        for (media, blocked) in &setup.blending {
            for other in blocked {
                blocks.get_mut(*media).insert(*other);
            }
        }
        RouterSettings {
            fairness: setup.fairness,
            seed: setup.seed,
            history_capacity: setup.history_capacity,
            blocks,
            // Validated by the configuration; a NaN from elsewhere means no grace, not a panic.
            startup_grace: Duration::from_secs_f64(if setup.startup_grace_s.is_finite() {
                setup.startup_grace_s.clamp(0.0, 86_400.0)
            } else {
                0.0
            }),
        }
    }
}
