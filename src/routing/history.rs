//! Which agent last served each customer, with a bound on how many customers are remembered.

use rustc_hash::FxHashMap;
use std::collections::VecDeque;

use crate::model::{AgentId, CustomerId, Timestamp};

/// Last agent per customer; the customers not served for the longest are forgotten first.
#[derive(Debug, Clone)]
pub struct CustomerHistory {
    capacity: usize,
    last: FxHashMap<CustomerId, (AgentId, Timestamp)>,
    order: VecDeque<(CustomerId, Timestamp)>,
}

impl CustomerHistory {
    /// A history remembering up to `capacity` customers (at least one).
    pub fn new(capacity: usize) -> Self {
        CustomerHistory {
            capacity: capacity.max(1),
            last: FxHashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Records that `agent` served `customer` at `at` (later records win).
    pub fn record(&mut self, customer: CustomerId, agent: AgentId, at: Timestamp) {
        if let Some((_, previous)) = self.last.get(&customer)
            && *previous > at
        {
            return;
        }
        self.last.insert(customer, (agent, at));
        self.order.push_back((customer, at));
        while self.last.len() > self.capacity {
            self.evict_oldest();
        }
        // Re-served customers leave stale entries behind; compact so the queue stays bounded.
        if self.order.len() > 2 * self.capacity + 16 {
            let last = &self.last;
            self.order
                .retain(|(c, at)| last.get(c).is_some_and(|(_, t)| t == at));
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((customer, at)) = self.order.pop_front() {
            if self.last.get(&customer).is_some_and(|(_, t)| *t == at) {
                self.last.remove(&customer);
                return;
            }
        }
    }

    /// The agent who last served `customer`, and when.
    pub fn last_agent(&self, customer: CustomerId) -> Option<(AgentId, Timestamp)> {
        self.last.get(&customer).copied()
    }

    /// Number of customers remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no customer is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_agent_and_forgets_the_oldest_customer() {
        let mut h = CustomerHistory::new(2);
        h.record(CustomerId(1), AgentId(1), Timestamp(10));
        h.record(CustomerId(2), AgentId(2), Timestamp(20));
        h.record(CustomerId(1), AgentId(3), Timestamp(30));
        assert_eq!(
            h.last_agent(CustomerId(1)),
            Some((AgentId(3), Timestamp(30)))
        );
        h.record(CustomerId(3), AgentId(4), Timestamp(40));
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.last_agent(CustomerId(2)),
            None,
            "customer 2 was served longest ago"
        );
        assert!(h.last_agent(CustomerId(1)).is_some());
    }

    #[test]
    fn stays_bounded_when_the_same_customers_return_forever() {
        let mut h = CustomerHistory::new(3);
        for t in 0..10_000 {
            h.record(CustomerId(t % 5), AgentId(0), Timestamp(t as i64));
        }
        assert_eq!(h.len(), 3);
        assert!(h.order.len() <= 2 * 3 + 17);
    }
}
