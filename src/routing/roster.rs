//! The router's view of agents and queue memberships: slots, availability, who is free for
//! what, and the statistics strategies rank by.

use smallvec::SmallVec;
use std::time::Duration;

use crate::model::{AgentId, ContactId, MediaMap, MediaSet, MediaType, QueueId, Timestamp};

use super::spec::{AgentSpec, QueueSpec};
use super::waiting::Signature;

/// Weight of the newest handle time in an agent's running average.
const HANDLE_TIME_SMOOTHING: f64 = 0.1;

/// An agent as the router tracks it.
#[derive(Debug, Clone)]
pub struct AgentState {
    /// The agent's skills, slots and memberships.
    pub spec: AgentSpec,
    /// Filter of the agent's keys (see [`super::relax::key_bit`]).
    pub key_mask: u128,
    /// (queue, member index) for every membership.
    pub member_of: SmallVec<[(QueueId, u32); 8]>,
    /// Logged in (only logged-in agents are offered anything).
    pub logged_in: bool,
    /// Media types the agent manager made available.
    pub available: MediaSet,
    /// Slots in use (offered or connected) per media type.
    pub used: MediaMap<u8>,
    /// Media types the agent can take a new contact of right now.
    pub free: MediaSet,
    /// End of the last contact (for longest-idle).
    pub last_end: Timestamp,
    /// Contacts handled since the daily reset.
    pub handled_today: u32,
    /// Talk time since the daily reset.
    pub talk_today: Duration,
    /// Running average handle time per media type, in seconds.
    pub handle_avg: MediaMap<Option<f64>>,
    /// Contacts offered to this agent (live legs).
    pub offered: SmallVec<[ContactId; 4]>,
    /// Contacts connected to this agent.
    pub connected: SmallVec<[ContactId; 4]>,
    /// Contacts waiting for this agent in their affinity window.
    pub targeted: Vec<ContactId>,
}

impl AgentState {
    /// A logged-out agent.
    pub fn new(spec: AgentSpec) -> Self {
        let key_mask = skills_mask(&spec.skills);
        AgentState {
            spec,
            key_mask,
            member_of: SmallVec::new(),
            logged_in: false,
            available: MediaSet::EMPTY,
            used: MediaMap::default(),
            free: MediaSet::EMPTY,
            last_end: Timestamp::ZERO,
            handled_today: 0,
            talk_today: Duration::ZERO,
            handle_avg: MediaMap::default(),
            offered: SmallVec::new(),
            connected: SmallVec::new(),
            targeted: Vec::new(),
        }
    }

    /// Replaces the agent's keys.
    pub fn set_skills(&mut self, skills: Vec<(crate::model::SkillId, crate::model::Level)>) {
        self.key_mask = skills_mask(&skills);
        self.spec.skills = skills;
    }

    /// What the agent could take now, given the blending rules.
    pub fn compute_free(&self, blocks: &MediaMap<MediaSet>) -> MediaSet {
        if !self.logged_in {
            return MediaSet::EMPTY;
        }
        let mut blocked = MediaSet::EMPTY;
        for media in MediaType::ALL {
            if *self.used.get(media) > 0 {
                for b in blocks.get(media).iter() {
                    blocked.insert(b);
                }
            }
        }
        MediaType::ALL
            .into_iter()
            .filter(|m| {
                self.available.contains(*m)
                    && self.used.get(*m) < self.spec.slots.get(*m)
                    && !blocked.contains(*m)
            })
            .collect()
    }

    /// Whether the agent meets every required criterion of `signature`, relaxed for `wait`.
    #[inline]
    pub fn meets(
        &self,
        signature: &Signature,
        queue: &QueueSpec,
        wait: Duration,
    ) -> Option<MissingKey> {
        for criterion in signature {
            let Some(min) = super::relax::effective_min(queue, criterion, wait) else {
                continue;
            };
            let has = self.spec.level_of(criterion.key);
            if has.is_none_or(|level| level < min) {
                return Some(MissingKey {
                    key: criterion.key,
                    needs: min,
                    has,
                });
            }
        }
        None
    }

    /// Handle time for predictions: the agent's own average, else the queue's default.
    pub fn handle_time(&self, media: MediaType, default: Duration) -> f64 {
        self.handle_avg
            .get(media)
            .unwrap_or(default.as_secs_f64())
            .max(0.001)
    }

    /// Folds a finished contact into the running average.
    pub fn record_handle_time(&mut self, media: MediaType, seconds: f64) {
        let avg = self.handle_avg.get_mut(media);
        *avg = Some(match *avg {
            None => seconds,
            Some(previous) => previous + HANDLE_TIME_SMOOTHING * (seconds - previous),
        });
    }
}

fn skills_mask(skills: &[(crate::model::SkillId, crate::model::Level)]) -> u128 {
    skills
        .iter()
        .fold(0, |mask, (key, _)| mask | super::relax::key_bit(*key))
}

/// A required key an agent lacks (or has too low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingKey {
    /// The key.
    pub key: crate::model::SkillId,
    /// The level needed now.
    pub needs: crate::model::Level,
    /// The agent's level, if any.
    pub has: Option<crate::model::Level>,
}

/// An agent's place in one queue, with the per-queue statistics app_queue strategies use.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// The agent.
    pub agent: AgentId,
    /// Tier level / penalty.
    pub level: u32,
    /// Position within the level.
    pub position: u32,
    /// Contacts completed from this queue.
    pub completed: u32,
    /// End of the last contact from this queue.
    pub last_end: Timestamp,
}

/// A set of small integers with O(1) insert, remove and iteration over members.
#[derive(Debug, Clone, Default)]
pub struct DenseSet {
    items: Vec<u32>,
    pos: Vec<u32>,
}

const ABSENT: u32 = u32::MAX;

impl DenseSet {
    /// Adds `x`; false if present.
    pub fn insert(&mut self, x: u32) -> bool {
        let i = x as usize;
        if self.pos.len() <= i {
            self.pos.resize(i + 1, ABSENT);
        }
        if self.pos[i] != ABSENT {
            return false;
        }
        self.pos[i] = self.items.len() as u32;
        self.items.push(x);
        true
    }

    /// Removes `x`; false if absent.
    pub fn remove(&mut self, x: u32) -> bool {
        let i = x as usize;
        let Some(&at) = self.pos.get(i) else {
            return false;
        };
        if at == ABSENT {
            return false;
        }
        self.items.swap_remove(at as usize);
        if let Some(&moved) = self.items.get(at as usize) {
            self.pos[moved as usize] = at;
        }
        self.pos[i] = ABSENT;
        true
    }

    /// Whether `x` is present.
    pub fn contains(&self, x: u32) -> bool {
        self.pos.get(x as usize).is_some_and(|p| *p != ABSENT)
    }

    /// The members, in no particular order.
    pub fn as_slice(&self) -> &[u32] {
        &self.items
    }
}

/// A queue as the router tracks it.
#[derive(Debug, Clone)]
pub struct QueueState {
    /// The queue's rules.
    pub spec: QueueSpec,
    /// Members by stable index (removed ones leave a hole that is reused).
    pub members: Vec<Option<Member>>,
    /// Holes in `members`.
    pub free_member_slots: Vec<u32>,
    /// Members free for each media type right now.
    pub free: MediaMap<DenseSet>,
    /// Position of the member offered last (round robin).
    pub last_offered_position: Option<u32>,
    /// Highest tier level among members (for tier-rule timers).
    pub max_member_level: u32,
}

impl QueueState {
    /// A queue without members.
    pub fn new(spec: QueueSpec) -> Self {
        QueueState {
            spec,
            members: Vec::new(),
            free_member_slots: Vec::new(),
            free: MediaMap::default(),
            last_offered_position: None,
            max_member_level: 0,
        }
    }

    /// Adds a member; returns its index.
    pub fn add_member(&mut self, member: Member) -> u32 {
        self.max_member_level = self.max_member_level.max(member.level);
        match self.free_member_slots.pop() {
            Some(slot) => {
                self.members[slot as usize] = Some(member);
                slot
            }
            None => {
                self.members.push(Some(member));
                self.members.len() as u32 - 1
            }
        }
    }

    /// Removes a member by index.
    pub fn remove_member(&mut self, index: u32) {
        if let Some(slot) = self.members.get_mut(index as usize)
            && slot.take().is_some()
        {
            self.free_member_slots.push(index);
            for set in self.free.0.iter_mut() {
                set.remove(index);
            }
        }
        self.max_member_level = self
            .members
            .iter()
            .flatten()
            .map(|m| m.level)
            .max()
            .unwrap_or(0);
    }

    /// The member at `index`.
    #[inline]
    pub fn member(&self, index: u32) -> Option<&Member> {
        self.members.get(index as usize).and_then(Option::as_ref)
    }

    /// Live members with their indexes.
    pub fn members(&self) -> impl Iterator<Item = (u32, &Member)> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (i as u32, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantId;

    #[test]
    fn dense_sets_insert_remove_and_iterate() {
        let mut s = DenseSet::default();
        assert!(s.insert(5));
        assert!(s.insert(1));
        assert!(!s.insert(5));
        assert!(s.contains(1));
        assert!(s.remove(5));
        assert!(!s.remove(5));
        assert!(!s.remove(999));
        assert_eq!(s.as_slice(), &[1]);
    }

    #[test]
    fn blending_blocks_chat_while_on_voice() {
        let mut spec = AgentSpec::new(AgentId(0), TenantId(0));
        *spec.slots.get_mut(MediaType::Chat) = 3;
        let mut agent = AgentState::new(spec);
        agent.logged_in = true;
        agent.available = MediaType::ALL.into_iter().collect();
        let mut blocks = MediaMap::<MediaSet>::default();
        blocks.get_mut(MediaType::Voice).insert(MediaType::Chat);
        let free = agent.compute_free(&blocks);
        assert!(free.contains(MediaType::Voice) && free.contains(MediaType::Chat));
        *agent.used.get_mut(MediaType::Voice) = 1;
        let free = agent.compute_free(&blocks);
        assert!(
            !free.contains(MediaType::Voice),
            "the one voice slot is used"
        );
        assert!(!free.contains(MediaType::Chat), "no chat while on voice");
        *agent.used.get_mut(MediaType::Voice) = 0;
        *agent.used.get_mut(MediaType::Chat) = 2;
        let free = agent.compute_free(&blocks);
        assert!(free.contains(MediaType::Voice), "chat does not block voice");
        assert!(free.contains(MediaType::Chat), "one chat slot left");
    }
}
