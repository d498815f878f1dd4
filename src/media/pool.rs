//! The handler pool (the seeds' bandwidth manager, sans-IO): which media handler takes a new
//! contact. The least-loaded healthy handler wins, load being active legs over capacity scaled
//! by the handler's weight; a handler that is down gets nothing new.

use super::handler::{HandlerId, HandlerLoad};

/// One handler as the pool sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolMember {
    /// The handler.
    pub id: HandlerId,
    /// Relative share of new contacts at equal load (1.0 = normal).
    pub weight: f64,
    /// Its last reported load.
    pub load: HandlerLoad,
}

/// Handlers and their loads.
#[derive(Debug, Clone, Default)]
pub struct HandlerPool {
    members: Vec<PoolMember>,
}

impl HandlerPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler (down until its first healthy load report).
    pub fn add(&mut self, id: HandlerId, weight: f64) {
        if self.members.iter().any(|m| m.id == id) {
            return;
        }
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            1.0
        };
        self.members.push(PoolMember {
            id,
            weight,
            load: HandlerLoad::default(),
        });
    }

    /// Records a handler's load (and with it, whether it is healthy).
    pub fn report(&mut self, id: HandlerId, load: HandlerLoad) {
        if let Some(member) = self.members.iter_mut().find(|m| m.id == id) {
            member.load = load;
        }
    }

    /// Marks a handler up again (connected and resynced): it takes new contacts again, with the
    /// capacity and load it last reported.
    pub fn mark_up(&mut self, id: HandlerId) {
        if let Some(member) = self.members.iter_mut().find(|m| m.id == id) {
            member.load.healthy = true;
        }
    }

    /// Marks a handler down: it takes no new contacts until it reports healthy again.
    pub fn mark_down(&mut self, id: HandlerId) {
        if let Some(member) = self.members.iter_mut().find(|m| m.id == id) {
            member.load.healthy = false;
        }
    }

    /// The handler for a new contact: healthy, below capacity, least loaded for its weight
    /// (ties: the lower id). `None` when no handler can take one.
    pub fn choose(&self) -> Option<HandlerId> {
        self.members
            .iter()
            .filter(|m| m.load.healthy && m.load.active_legs < m.load.capacity)
            .map(|m| {
                let used = f64::from(m.load.active_legs) / f64::from(m.load.capacity.max(1));
                (used / m.weight, m.id)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, id)| id)
    }

    /// Every handler with its load.
    pub fn members(&self) -> &[PoolMember] {
        &self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(active: u32, capacity: u32) -> HandlerLoad {
        HandlerLoad {
            active_legs: active,
            capacity,
            healthy: true,
        }
    }

    #[test]
    fn the_least_loaded_healthy_handler_takes_the_contact() {
        let mut pool = HandlerPool::new();
        pool.add(HandlerId(1), 1.0);
        pool.add(HandlerId(2), 1.0);
        assert_eq!(pool.choose(), None, "nobody reported healthy yet");
        pool.report(HandlerId(1), load(50, 100));
        pool.report(HandlerId(2), load(10, 40));
        assert_eq!(pool.choose(), Some(HandlerId(2)), "25% beats 50%");
        pool.mark_down(HandlerId(2));
        assert_eq!(
            pool.choose(),
            Some(HandlerId(1)),
            "a handler that is down gets nothing new"
        );
        pool.mark_up(HandlerId(2));
        assert_eq!(
            pool.choose(),
            Some(HandlerId(2)),
            "back up with the capacity it reported"
        );
        pool.report(HandlerId(1), load(100, 100));
        pool.mark_down(HandlerId(2));
        assert_eq!(pool.choose(), None, "full");
    }

    #[test]
    fn weights_shift_the_share() {
        let mut pool = HandlerPool::new();
        pool.add(HandlerId(1), 2.0);
        pool.add(HandlerId(2), 1.0);
        pool.report(HandlerId(1), load(60, 100));
        pool.report(HandlerId(2), load(40, 100));
        assert_eq!(
            pool.choose(),
            Some(HandlerId(1)),
            "60% at weight 2 counts as 30%"
        );
        pool.add(HandlerId(3), f64::NAN);
        assert_eq!(pool.members()[2].weight, 1.0);
    }
}
