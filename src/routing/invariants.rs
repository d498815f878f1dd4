//! The router's invariants, checked from scratch (slow; for tests and debugging).

use rustc_hash::FxHashMap;
use std::time::Duration;

use crate::model::{AgentId, ContactId, MediaMap, MediaType};

use super::relax::allowed_tier;
use super::router::{Phase, Router};
use super::spec::OverflowTarget;
use super::strategy::Behaviour;

/// Per agent: slots held per media type, contacts ringing it, contacts connected to it.
type Holdings = (MediaMap<u8>, Vec<ContactId>, Vec<ContactId>);

impl Router {
    /// Checks every invariant at `now` (after the router handled everything due at `now`):
    /// slots and reservations agree with live offers, no contact is offered to two agents
    /// outside ring-all, indexes agree with phases, and no contact waits while a free slot that
    /// matches it exists. Returns the first violation found.
    pub fn check_invariants(&self, now: crate::model::Timestamp) -> Result<(), String> {
        let mut held: FxHashMap<AgentId, Holdings> = FxHashMap::default();
        let mut waiting = 0usize;
        for (id, live) in &self.contacts {
            let queue = self
                .queue(live.spec.queue)
                .map_err(|e| format!("{id}: {e}"))?;
            match &live.phase {
                Phase::Waiting(bucket) => {
                    waiting += 1;
                    let b = self
                        .waiting
                        .bucket(*bucket)
                        .ok_or(format!("{id} waits in a missing bucket"))?;
                    if b.queue != live.spec.queue
                        || b.media != live.spec.media
                        || b.priority != live.spec.priority
                    {
                        return Err(format!(
                            "{id} waits in a bucket of another queue, media or priority"
                        ));
                    }
                    if b.signature != live.signature {
                        return Err(format!("{id} waits in a bucket with another signature"));
                    }
                    if b.entries.binary_search(&(live.spec.arrival, *id)).is_err() {
                        return Err(format!("{id} is not in its bucket"));
                    }
                }
                Phase::Targeted(agent) => {
                    let a = self
                        .agent(*agent)
                        .map_err(|e| format!("{id} targets {e}"))?;
                    if !a.targeted.contains(id) {
                        return Err(format!("{id} targets {agent}, which does not list it"));
                    }
                }
                Phase::Offered(legs) => {
                    if legs.is_empty() {
                        return Err(format!("{id} is offered to nobody"));
                    }
                    let behaviour = queue.spec.strategy.behaviour();
                    let multi =
                        matches!(behaviour, Behaviour::RingAll | Behaviour::RingProgressively);
                    if legs.len() > 1 && !multi {
                        return Err(format!(
                            "{id} is offered to {} agents by {}",
                            legs.len(),
                            queue.spec.strategy
                        ));
                    }
                    for (i, leg) in legs.iter().enumerate() {
                        if legs[..i].iter().any(|l| l.agent == leg.agent) {
                            return Err(format!("{id} rings {} twice", leg.agent));
                        }
                        let entry = held.entry(leg.agent).or_default();
                        *entry.0.get_mut(live.spec.media) += 1;
                        entry.1.push(*id);
                    }
                }
                Phase::Connected { agent, .. } => {
                    let entry = held.entry(*agent).or_default();
                    *entry.0.get_mut(live.spec.media) += 1;
                    entry.2.push(*id);
                }
                // Held: in no index and holding no agent.
                Phase::Held => {}
                Phase::Detached => return Err(format!("{id} was left detached")),
            }
        }
        let targeted: usize = self.agents.iter().flatten().map(|a| a.targeted.len()).sum();
        if self.waiting_contacts() != self.waiting.len() + targeted {
            return Err(format!(
                "{} contacts counted waiting, {} found",
                self.waiting_contacts(),
                self.waiting.len() + targeted
            ));
        }
        if waiting != self.waiting.len() {
            return Err(format!(
                "{waiting} contacts wait but the index holds {}",
                self.waiting.len()
            ));
        }
        for agent in self.agents.iter().flatten() {
            let id = agent.spec.id;
            let (used, mut offered, mut connected) = held.remove(&id).unwrap_or_default();
            if used != agent.used {
                return Err(format!(
                    "{id} has slots used {:?} but holds {:?}",
                    agent.used.0, used.0
                ));
            }
            for media in MediaType::ALL {
                if used.get(media) > agent.spec.slots.get(media) {
                    return Err(format!(
                        "{id} holds {} {media} contacts in {} slots",
                        used.get(media),
                        agent.spec.slots.get(media)
                    ));
                }
            }
            let mut listed_offered = agent.offered.to_vec();
            let mut listed_connected = agent.connected.to_vec();
            for list in [
                &mut offered,
                &mut connected,
                &mut listed_offered,
                &mut listed_connected,
            ] {
                list.sort();
            }
            if offered != listed_offered || connected != listed_connected {
                return Err(format!(
                    "{id} lists offers {listed_offered:?} / connections {listed_connected:?}, but holds {offered:?} / {connected:?}"
                ));
            }
            let free = agent.compute_free(&self.settings.blocks);
            if free != agent.free {
                return Err(format!(
                    "{id} is marked free for {:?} but is free for {:?}",
                    agent.free, free
                ));
            }
            for &(queue_id, index) in &agent.member_of {
                let queue = self.queue(queue_id).map_err(|e| e.to_string())?;
                for media in MediaType::ALL {
                    if queue.free.get(media).contains(index) != free.contains(media) {
                        return Err(format!(
                            "{queue_id} disagrees with {id} about {media} being free"
                        ));
                    }
                }
            }
            for contact in &agent.targeted {
                match self.contacts.get(contact).map(|c| &c.phase) {
                    Some(Phase::Targeted(target)) if *target == id => {}
                    _ => {
                        return Err(format!(
                            "{id} lists {contact} as waiting for it, but it is not"
                        ));
                    }
                }
            }
        }
        // No contact waits while a free slot that matches it exists.
        for (id, live) in &self.contacts {
            let candidates_from: Vec<AgentId> = match live.phase {
                Phase::Waiting(_) => Vec::new(),
                Phase::Targeted(agent) => vec![agent],
                _ => continue,
            };
            let queue = self.queue(live.spec.queue).map_err(|e| e.to_string())?;
            let wait = now.since(live.spec.arrival);
            let allowed = allowed_tier(&queue.spec, wait);
            for (_, member) in queue.members() {
                if !candidates_from.is_empty() && !candidates_from.contains(&member.agent) {
                    continue;
                }
                let agent = self.agent(member.agent).map_err(|e| e.to_string())?;
                if agent.free.contains(live.spec.media)
                    && member.level <= allowed
                    && agent.meets(&live.signature, &queue.spec, wait).is_none()
                {
                    return Err(format!(
                        "{id} waits in {} while {} is free and matches it",
                        live.spec.queue, member.agent
                    ));
                }
            }
            // Nobody who could ever serve it: it should have overflowed, if the queue overflows.
            if matches!(live.phase, Phase::Waiting(_))
                && queue.spec.overflow != OverflowTarget::None
                && now >= self.grace_until
            {
                let forever = Duration::from_secs(u64::MAX / 4_000_000);
                let someone = queue.members().any(|(_, member)| {
                    self.agent(member.agent).is_ok_and(|agent| {
                        agent.logged_in
                            && *agent.spec.slots.get(live.spec.media) > 0
                            && (queue.spec.tier_step.is_some()
                                || member.level <= allowed_tier(&queue.spec, forever))
                            && agent.meets(&live.signature, &queue.spec, forever).is_none()
                    })
                });
                if !someone {
                    return Err(format!(
                        "{id} waits in {} where no logged-in agent could ever serve it",
                        live.spec.queue
                    ));
                }
            }
        }
        Ok(())
    }
}
