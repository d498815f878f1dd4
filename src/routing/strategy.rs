//! Strategies: how the router breaks ties between eligible agents with equal preference scores.
//!
//! Each strategy of FreeSWITCH mod_callcenter and Asterisk app_queue exists under its own name,
//! so a migrating administrator finds theirs; several names share one behaviour here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A queue's strategy, under the name the administrator wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// mod_callcenter `ring-all`: offer to every eligible agent; the first to accept wins.
    RingAll,
    /// app_queue `ringall`: as ring-all, within the lowest penalty available.
    #[serde(rename = "ringall")]
    Ringall,
    /// mod_callcenter `longest-idle-agent`: the agent idle longest (over all queues).
    #[default]
    LongestIdleAgent,
    /// app_queue `leastrecent`: the member least recently finished a contact from this queue.
    #[serde(rename = "leastrecent")]
    Leastrecent,
    /// mod_callcenter `round-robin`: the next position after the agent offered last.
    RoundRobin,
    /// app_queue `rrmemory`: round robin remembering where it left off.
    #[serde(rename = "rrmemory")]
    Rrmemory,
    /// app_queue `rrordered`: rrmemory in configured order.
    #[serde(rename = "rrordered")]
    Rrordered,
    /// mod_callcenter `top-down`: from the first position every time.
    TopDown,
    /// app_queue `linear`: in configured order, from the first every time.
    Linear,
    /// mod_callcenter `sequentially-by-agent-order`: by tier level, then position.
    SequentiallyByAgentOrder,
    /// mod_callcenter `agent-with-least-talk-time`: least talk time today.
    AgentWithLeastTalkTime,
    /// mod_callcenter `agent-with-fewest-calls`: fewest contacts handled today (all queues).
    AgentWithFewestCalls,
    /// app_queue `fewestcalls`: fewest contacts completed from this queue.
    #[serde(rename = "fewestcalls")]
    Fewestcalls,
    /// mod_callcenter and app_queue `random`.
    Random,
    /// app_queue `wrandom`: random, weighted against higher penalties.
    #[serde(rename = "wrandom")]
    Wrandom,
    /// mod_callcenter `ring-progressively`: top-down, adding the next agent every few seconds
    /// while the earlier ones keep ringing.
    RingProgressively,
    /// Switchboard: highest skill level on the contact's criteria first, then longest idle.
    BestSkill,
}

/// The behaviour behind one or more strategy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Offer to every agent in the best class.
    RingAll,
    /// Oldest end of last contact, over all queues.
    LongestIdle,
    /// Oldest end of last contact from this queue.
    LeastRecentInQueue,
    /// Next position after the last offered one.
    RoundRobin,
    /// Lowest position first.
    InOrder,
    /// Least talk time today.
    LeastTalkTime,
    /// Fewest contacts handled today over all queues.
    FewestCalls,
    /// Fewest contacts completed from this queue.
    FewestCallsInQueue,
    /// Uniformly random among the best class.
    Random,
    /// Random weighted by tier level, ignoring level as a rank (app_queue wrandom).
    WeightedRandom,
    /// In order, widening the offer every few seconds.
    RingProgressively,
    /// Highest level on the contact's criteria.
    BestSkill,
}

impl Strategy {
    /// Every strategy name.
    pub const ALL: [Strategy; 17] = [
        Strategy::RingAll,
        Strategy::Ringall,
        Strategy::LongestIdleAgent,
        Strategy::Leastrecent,
        Strategy::RoundRobin,
        Strategy::Rrmemory,
        Strategy::Rrordered,
        Strategy::TopDown,
        Strategy::Linear,
        Strategy::SequentiallyByAgentOrder,
        Strategy::AgentWithLeastTalkTime,
        Strategy::AgentWithFewestCalls,
        Strategy::Fewestcalls,
        Strategy::Random,
        Strategy::Wrandom,
        Strategy::RingProgressively,
        Strategy::BestSkill,
    ];

    /// The name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring-all",
            Strategy::Ringall => "ringall",
            Strategy::LongestIdleAgent => "longest-idle-agent",
            Strategy::Leastrecent => "leastrecent",
            Strategy::RoundRobin => "round-robin",
            Strategy::Rrmemory => "rrmemory",
            Strategy::Rrordered => "rrordered",
            Strategy::TopDown => "top-down",
            Strategy::Linear => "linear",
            Strategy::SequentiallyByAgentOrder => "sequentially-by-agent-order",
            Strategy::AgentWithLeastTalkTime => "agent-with-least-talk-time",
            Strategy::AgentWithFewestCalls => "agent-with-fewest-calls",
            Strategy::Fewestcalls => "fewestcalls",
            Strategy::Random => "random",
            Strategy::Wrandom => "wrandom",
            Strategy::RingProgressively => "ring-progressively",
            Strategy::BestSkill => "best-skill",
        }
    }

    /// What the router does for this name.
    pub fn behaviour(self) -> Behaviour {
        match self {
            Strategy::RingAll | Strategy::Ringall => Behaviour::RingAll,
            Strategy::LongestIdleAgent => Behaviour::LongestIdle,
            Strategy::Leastrecent => Behaviour::LeastRecentInQueue,
            Strategy::RoundRobin | Strategy::Rrmemory | Strategy::Rrordered => {
                Behaviour::RoundRobin
            }
            Strategy::TopDown | Strategy::Linear | Strategy::SequentiallyByAgentOrder => {
                Behaviour::InOrder
            }
            Strategy::AgentWithLeastTalkTime => Behaviour::LeastTalkTime,
            Strategy::AgentWithFewestCalls => Behaviour::FewestCalls,
            Strategy::Fewestcalls => Behaviour::FewestCallsInQueue,
            Strategy::Random => Behaviour::Random,
            Strategy::Wrandom => Behaviour::WeightedRandom,
            Strategy::RingProgressively => Behaviour::RingProgressively,
            Strategy::BestSkill => Behaviour::BestSkill,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?}")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_from_files_and_strings() {
        #[derive(Deserialize)]
        struct Q {
            strategy: Strategy,
        }
        for strategy in Strategy::ALL {
            let parsed: Q = toml::from_str(&format!("strategy = \"{}\"", strategy.name())).unwrap();
            assert_eq!(parsed.strategy, strategy);
            assert_eq!(strategy.name().parse::<Strategy>().unwrap(), strategy);
        }
    }

    #[test]
    fn names_from_both_switches_share_behaviours() {
        assert_eq!(Strategy::RingAll.behaviour(), Strategy::Ringall.behaviour());
        assert_eq!(Strategy::TopDown.behaviour(), Strategy::Linear.behaviour());
        assert_eq!(
            Strategy::RoundRobin.behaviour(),
            Strategy::Rrmemory.behaviour()
        );
        assert_ne!(
            Strategy::LongestIdleAgent.behaviour(),
            Strategy::Leastrecent.behaviour()
        );
    }
}
