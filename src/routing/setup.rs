//! What administrators write: queues, agents and routing settings as they appear in
//! `switchboard.toml` and in simulator scenarios. [`super::Catalog`] resolves them into the
//! id-based specs the router works on; [`validate`](QueueSetup::validate) checks what serde
//! cannot (ranges, references between entries) and names the offending key.

use crate::agents::StayOnLine;
use crate::model::{Level, MediaType, Priority};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::strategy::Strategy;

/// A setup value that is out of range or refers to something that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SetupError {
    /// Dotted path of the offending key, e.g. `queues[2].relax[0].min_level`.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl SetupError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Router-wide settings (`[routing]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// How an agent who serves several queues picks among their waiting contacts.
    pub fairness: Fairness,
    /// Seed of the random and weighted-random strategies (same seed, same choices).
    pub seed: u64,
    /// How many customers' last agent the router remembers for affinity (oldest forgotten first).
    pub history_capacity: usize,
    /// Which media types a contact of a given type blocks on the same agent while offered or
    /// connected, e.g. `voice = ["chat"]`: no chat while on voice.
    pub blending: BTreeMap<MediaType, Vec<MediaType>>,
    /// Seconds after a start during which contacts are not overflowed merely because no agent
    /// is logged in yet (agents need a moment to log back in after a restart).
    pub startup_grace_s: f64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        let realtime = [MediaType::Voice, MediaType::Video, MediaType::Callback];
        let blending = realtime.iter().map(|m| (*m, realtime.to_vec())).collect();
        Self {
            fairness: Fairness::PriorityThenWait,
            seed: 1,
            history_capacity: 100_000,
            blending,
            startup_grace_s: 120.0,
        }
    }
}

/// The rule that decides between contacts of different queues for one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fairness {
    /// Highest priority first, then the longest effective wait (waiting time × the queue's
    /// `wait_factor`), then the lowest contact id.
    PriorityThenWait,
    /// Asterisk app_queue's `weight`: the queue with the highest weight first, then as above.
    QueueWeightFirst,
}

/// One queue (`[[queues]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSetup {
    /// Unique name of the queue.
    pub name: String,
    /// The client (tenant) that owns the queue.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// How the best of several eligible agents is chosen (see the README's strategy table).
    #[serde(default)]
    pub strategy: Strategy,
    /// Seconds an offer rings before it counts as missed.
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout_s: f64,
    /// Seconds a contact may wait before it overflows; absent means no limit.
    #[serde(default)]
    pub max_wait_s: Option<f64>,
    /// Where a contact goes at `max_wait_s`, or at once when no logged-in agent could ever serve it.
    #[serde(default)]
    pub overflow: OverflowSetup,
    /// Service-level target in seconds: a contact answered within it counts as in service level.
    #[serde(default = "default_service_level")]
    pub service_level_s: f64,
    /// app_queue-style weight, used when `fairness = "queue-weight-first"`.
    #[serde(default)]
    pub weight: u32,
    /// Aging: a contact's waiting time counts this many times in cross-queue comparisons.
    #[serde(default = "default_wait_factor")]
    pub wait_factor: f64,
    /// Customer affinity: for this many seconds of waiting, a returning customer waits for the
    /// agent who served them last (if that agent is logged in and could serve them).
    #[serde(default)]
    pub affinity_s: f64,
    /// ring-progressively: seconds between adding the next agent to a ringing offer.
    #[serde(default = "default_ring_progressively_delay")]
    pub ring_progressively_delay_s: f64,
    /// Handle time assumed for predictions until agents have their own statistics.
    #[serde(default = "default_handle")]
    pub default_handle_s: f64,
    /// Skills every contact of this queue requires: skill name → minimum level.
    #[serde(default)]
    pub skills: BTreeMap<String, Level>,
    /// How contact attributes become criteria (required or preferred, minimum level).
    #[serde(default)]
    pub attributes: Vec<AttributeRule>,
    /// Relaxation over waiting time: lower levels, dropped criteria, wider tiers.
    #[serde(default)]
    pub relax: Vec<RelaxSetup>,
    /// mod_callcenter-style tier rules: the tier levels reachable grow with waiting time.
    #[serde(default)]
    pub tier_rules: Option<TierRulesSetup>,
    /// The highest tier level (penalty) offered at first; absent means all levels.
    #[serde(default)]
    pub max_tier_level: Option<u32>,
    /// The queue's contact flow file, relative to the config file's directory; absent means
    /// the built-in flow (waiting with music, no prompts).
    #[serde(default)]
    pub flow: Option<String>,
}

fn default_tenant() -> String {
    "default".to_owned()
}
fn default_offer_timeout() -> f64 {
    20.0
}
fn default_service_level() -> f64 {
    20.0
}
fn default_wait_factor() -> f64 {
    1.0
}
fn default_ring_progressively_delay() -> f64 {
    10.0
}
fn default_handle() -> f64 {
    180.0
}

/// Where overflowing contacts go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum OverflowSetup {
    /// Stay in the queue (no overflow).
    #[default]
    None,
    /// Leave a voicemail, which comes back as a contact of media type voicemail.
    Voicemail,
    /// Become a callback, keeping the place in the queue.
    Callback,
    /// End the contact (the flow plays a message and hangs up).
    Disconnect,
    /// Move to another queue, keeping the original arrival time.
    Queue(String),
}

/// How one contact attribute is matched against agents in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    /// Attribute name, e.g. `language`. A contact with `language = "es"` needs the agent key
    /// `language=es`.
    pub name: String,
    /// Required (filters agents) or preferred (scores them).
    pub modifier: ModifierSetup,
    /// Score an agent gets for satisfying a preferred attribute.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Minimum level of the agent's key.
    #[serde(default = "default_min_level")]
    pub min_level: Level,
}

fn default_weight() -> u32 {
    1
}
fn default_min_level() -> Level {
    Level::MIN
}

/// Required or preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModifierSetup {
    /// Agents without it are not eligible.
    Required,
    /// Agents with it score higher.
    Preferred,
}

/// One relaxation step: after `after_s` seconds of waiting, one rule loosens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaxSetup {
    /// Seconds of waiting after which the step applies.
    pub after_s: f64,
    /// The attribute or skill name whose criterion loosens.
    #[serde(default)]
    pub name: Option<String>,
    /// Accept this (lower) level from now on.
    #[serde(default)]
    pub min_level: Option<Level>,
    /// Drop the criterion altogether.
    #[serde(default)]
    pub drop: bool,
    /// Offer to tier levels (penalties) up to this one from now on.
    #[serde(default)]
    pub max_tier_level: Option<u32>,
}

/// mod_callcenter's tier rules: level N becomes reachable after N × `wait_per_level_s`
/// (`tier-rule-wait-second` with `tier-rule-wait-multiply-level`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRulesSetup {
    /// Seconds of waiting per tier level.
    pub wait_per_level_s: f64,
}

/// One agent (`[[agents]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSetup {
    /// Unique name of the agent (an extension or login).
    pub name: String,
    /// The client (tenant) the agent works for.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Skills: name → level 1..10.
    #[serde(default)]
    pub skills: BTreeMap<String, Level>,
    /// Attributes: `language = ["es", "en"]`, `site = "berlin"`, `vip = true`,
    /// `seniority = 4` (a level), `language = { es = 10, en = 6 }` (values with levels).
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Media slots: media type → concurrent contacts (default: one voice slot).
    #[serde(default = "default_slots")]
    pub slots: BTreeMap<MediaType, u8>,
    /// Queues the agent serves, with tier level (penalty) and position.
    #[serde(default)]
    pub queues: Vec<MembershipSetup>,
    /// The agent's SIP user (`user` or `user@domain`) that voice contacts ring; absent means
    /// the agent takes non-voice contacts only.
    #[serde(default)]
    pub sip: Option<String>,
    /// Whether the agent's phone leg stays up between contacts.
    #[serde(default)]
    pub stay_on_line: StayOnLine,
}

fn default_slots() -> BTreeMap<MediaType, u8> {
    BTreeMap::from([(MediaType::Voice, 1)])
}

/// An agent attribute's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// `vip = true`: key `vip=true` at level 10 (false: no key).
    Flag(bool),
    /// `seniority = 4`: key `seniority` at level 4.
    Number(i64),
    /// `site = "berlin"`: key `site=berlin` at level 10.
    Text(String),
    /// `language = ["es", "en"]`: keys `language=es`, `language=en` at level 10.
    List(Vec<String>),
    /// `language = { es = 10, en = 6 }`: keys with their levels.
    Levels(BTreeMap<String, Level>),
}

/// An agent's membership in a queue: a queue name, or a table with tier level and position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MembershipSetup {
    /// Just the queue, at level 1.
    Name(String),
    /// The queue with tier level (penalty; lower is tried first) and position within the level.
    Tier(TierSetup),
}

/// A membership with tier level and position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSetup {
    /// Queue name.
    pub queue: String,
    /// Tier level (mod_callcenter) or penalty (app_queue): lower is tried first.
    #[serde(default = "default_tier_level")]
    pub level: u32,
    /// Position within the level, for ordered and round-robin strategies.
    #[serde(default)]
    pub position: Option<u32>,
}

fn default_tier_level() -> u32 {
    1
}

impl MembershipSetup {
    /// The queue's name.
    pub fn queue(&self) -> &str {
        match self {
            MembershipSetup::Name(name) => name,
            MembershipSetup::Tier(tier) => &tier.queue,
        }
    }
}

/// The agent keys and levels an attribute value grants (`language=es` → 10, …).
pub fn attribute_keys(name: &str, value: &AttributeValue) -> Result<Vec<(String, Level)>, String> {
    Ok(match value {
        AttributeValue::Flag(true) => vec![(format!("{name}=true"), Level::MAX)],
        AttributeValue::Flag(false) => Vec::new(),
        AttributeValue::Number(n) => {
            vec![(name.to_owned(), Level::new(*n).map_err(|e| e.to_string())?)]
        }
        AttributeValue::Text(text) => vec![(format!("{name}={text}"), Level::MAX)],
        AttributeValue::List(values) => values
            .iter()
            .map(|v| (format!("{name}={v}"), Level::MAX))
            .collect(),
        AttributeValue::Levels(levels) => levels
            .iter()
            .map(|(v, level)| (format!("{name}={v}"), *level))
            .collect(),
    })
}

fn check_seconds(path: String, value: f64, allow_zero: bool) -> Result<(), SetupError> {
    if !value.is_finite() || value < 0.0 || (!allow_zero && value == 0.0) {
        let expected = if allow_zero {
            "a number of seconds ≥ 0"
        } else {
            "a number of seconds > 0"
        };
        return Err(SetupError::new(path, format!("{value} is not {expected}")));
    }
    Ok(())
}

fn check_name(path: String, name: &str) -> Result<(), SetupError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(SetupError::new(
            path,
            "expected a non-empty name of at most 200 characters",
        ));
    }
    Ok(())
}

impl QueueSetup {
    /// A queue with every default, for tests and generated scenarios.
    pub fn named(name: &str) -> Self {
        QueueSetup {
            name: name.to_owned(),
            tenant: default_tenant(),
            strategy: Strategy::default(),
            offer_timeout_s: default_offer_timeout(),
            max_wait_s: None,
            overflow: OverflowSetup::None,
            service_level_s: default_service_level(),
            weight: 0,
            wait_factor: default_wait_factor(),
            affinity_s: 0.0,
            ring_progressively_delay_s: default_ring_progressively_delay(),
            default_handle_s: default_handle(),
            skills: BTreeMap::new(),
            attributes: Vec::new(),
            relax: Vec::new(),
            tier_rules: None,
            max_tier_level: None,
            flow: None,
        }
    }

    /// Checks ranges and internal references; `at` is this queue's path, e.g. `queues[2]`.
    pub fn validate(&self, at: &str) -> Result<(), SetupError> {
        check_name(format!("{at}.name"), &self.name)?;
        check_name(format!("{at}.tenant"), &self.tenant)?;
        check_seconds(format!("{at}.offer_timeout_s"), self.offer_timeout_s, false)?;
        if let Some(max_wait) = self.max_wait_s {
            check_seconds(format!("{at}.max_wait_s"), max_wait, true)?;
        }
        check_seconds(format!("{at}.service_level_s"), self.service_level_s, true)?;
        check_seconds(format!("{at}.affinity_s"), self.affinity_s, true)?;
        check_seconds(
            format!("{at}.ring_progressively_delay_s"),
            self.ring_progressively_delay_s,
            false,
        )?;
        check_seconds(
            format!("{at}.default_handle_s"),
            self.default_handle_s,
            false,
        )?;
        if !self.wait_factor.is_finite() || self.wait_factor <= 0.0 || self.wait_factor > 1000.0 {
            return Err(SetupError::new(
                format!("{at}.wait_factor"),
                format!("{} is not a factor in (0, 1000]", self.wait_factor),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, rule) in self.attributes.iter().enumerate() {
            check_name(format!("{at}.attributes[{i}].name"), &rule.name)?;
            if !seen.insert(rule.name.as_str()) {
                return Err(SetupError::new(
                    format!("{at}.attributes[{i}].name"),
                    format!("attribute {:?} has two rules; expected one", rule.name),
                ));
            }
        }
        if let Some(OverflowSetup::Queue(target)) = Some(&self.overflow)
            && target == &self.name
        {
            return Err(SetupError::new(
                format!("{at}.overflow"),
                "a queue cannot overflow into itself",
            ));
        }
        let mut last_after = 0.0;
        for (i, step) in self.relax.iter().enumerate() {
            let path = format!("{at}.relax[{i}]");
            check_seconds(format!("{path}.after_s"), step.after_s, true)?;
            if step.after_s < last_after {
                return Err(SetupError::new(
                    format!("{path}.after_s"),
                    format!(
                        "{} comes before the previous step's {}; expected steps in order of time",
                        step.after_s, last_after
                    ),
                ));
            }
            last_after = step.after_s;
            let loosens_criterion = step.min_level.is_some() || step.drop;
            match (&step.name, loosens_criterion, step.max_tier_level) {
                (None, false, None) => {
                    return Err(SetupError::new(
                        path,
                        "expected `name` with `min_level` or `drop = true`, or `max_tier_level`",
                    ));
                }
                (Some(_), false, _) => {
                    return Err(SetupError::new(
                        path,
                        "`name` needs `min_level` or `drop = true`",
                    ));
                }
                (None, true, _) => {
                    return Err(SetupError::new(
                        path,
                        "`min_level` and `drop` need the `name` of a criterion",
                    ));
                }
                (Some(name), true, _) => {
                    let known = self.skills.contains_key(name)
                        || self.attributes.iter().any(|rule| &rule.name == name);
                    if !known {
                        return Err(SetupError::new(
                            format!("{path}.name"),
                            format!(
                                "{name:?} is neither a skill nor an attribute rule of this queue"
                            ),
                        ));
                    }
                }
                (None, false, Some(_)) => {}
            }
        }
        if let Some(rules) = &self.tier_rules {
            check_seconds(
                format!("{at}.tier_rules.wait_per_level_s"),
                rules.wait_per_level_s,
                false,
            )?;
        }
        Ok(())
    }
}

impl AgentSetup {
    /// An agent with one voice slot and nothing else, for tests and generated scenarios.
    pub fn named(name: &str) -> Self {
        AgentSetup {
            name: name.to_owned(),
            tenant: default_tenant(),
            skills: BTreeMap::new(),
            attributes: BTreeMap::new(),
            slots: default_slots(),
            queues: Vec::new(),
            sip: None,
            stay_on_line: StayOnLine::Never,
        }
    }

    /// Checks ranges; `at` is this agent's path, e.g. `agents[4]`.
    pub fn validate(&self, at: &str) -> Result<(), SetupError> {
        check_name(format!("{at}.name"), &self.name)?;
        check_name(format!("{at}.tenant"), &self.tenant)?;
        for (name, value) in &self.attributes {
            attribute_keys(name, value)
                .map_err(|message| SetupError::new(format!("{at}.attributes.{name}"), message))?;
        }
        for (media, count) in &self.slots {
            if *count > 100 {
                return Err(SetupError::new(
                    format!("{at}.slots.{media}"),
                    format!("{count} slots is more than the 100 an agent can have"),
                ));
            }
        }
        Ok(())
    }
}

/// A contact as an API or scenario describes it, before resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSetup {
    /// Queue name.
    pub queue: String,
    /// Media type.
    #[serde(default = "default_media")]
    pub media: MediaType,
    /// Priority: higher is served first.
    #[serde(default)]
    pub priority: Priority,
    /// Attribute values, e.g. `language = "es"`, `customer = "C-991"`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Explicit criteria in addition to the queue's rules.
    #[serde(default)]
    pub criteria: Vec<CriterionSetup>,
}

fn default_media() -> MediaType {
    MediaType::Voice
}

/// An explicit criterion: a key (`mortgage`, `language=es`) with modifier and level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSetup {
    /// The agent key to match.
    pub key: String,
    /// Required or preferred.
    pub modifier: ModifierSetup,
    /// Score for a preferred criterion.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Minimum level.
    #[serde(default = "default_min_level")]
    pub min_level: Level,
}

/// The attribute a contact's customer reference is read from, for history and affinity.
pub const CUSTOMER_ATTRIBUTE: &str = "customer";

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(toml_text: &str) -> QueueSetup {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_minimal_queue_gets_documented_defaults() {
        let q = queue("name = \"sales\"");
        assert_eq!(q, QueueSetup::named("sales"));
        q.validate("queues[0]").unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = toml::from_str::<QueueSetup>("name = \"s\"\nstrategy_name = \"x\"").unwrap_err();
        assert!(err.to_string().contains("strategy_name"), "{err}");
    }

    #[test]
    fn negative_durations_name_the_key() {
        let mut q = QueueSetup::named("s");
        q.offer_timeout_s = -1.0;
        let err = q.validate("queues[3]").unwrap_err();
        assert_eq!(err.path, "queues[3].offer_timeout_s");
    }

    #[test]
    fn relaxation_must_name_a_known_criterion_and_come_in_order() {
        let q = queue(
            r#"
            name = "s"
            [[attributes]]
            name = "language"
            modifier = "required"
            min_level = 5
            [[relax]]
            after_s = 30
            name = "language"
            min_level = 3
            [[relax]]
            after_s = 10
            name = "language"
            drop = true
            "#,
        );
        assert_eq!(q.validate("q").unwrap_err().path, "q.relax[1].after_s");
        let q = queue(
            r#"
            name = "s"
            [[relax]]
            after_s = 30
            name = "product"
            min_level = 3
            "#,
        );
        assert_eq!(q.validate("q").unwrap_err().path, "q.relax[0].name");
    }

    #[test]
    fn attribute_values_grant_keys() {
        let agent: AgentSetup = toml::from_str(
            r#"
            name = "1001"
            attributes = { language = ["es", "en"], site = "berlin", vip = true, seniority = 4, product = { mortgage = 7 } }
            "#,
        )
        .unwrap();
        let mut keys: Vec<(String, u8)> = agent
            .attributes
            .iter()
            .flat_map(|(n, v)| attribute_keys(n, v).unwrap())
            .map(|(k, l)| (k, l.get()))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("language=en".to_owned(), 10),
                ("language=es".to_owned(), 10),
                ("product=mortgage".to_owned(), 7),
                ("seniority".to_owned(), 4),
                ("site=berlin".to_owned(), 10),
                ("vip=true".to_owned(), 10),
            ]
        );
    }

    #[test]
    fn numeric_attributes_outside_levels_are_refused() {
        let mut agent = AgentSetup::named("a");
        agent
            .attributes
            .insert("seniority".into(), AttributeValue::Number(12));
        assert_eq!(
            agent.validate("agents[0]").unwrap_err().path,
            "agents[0].attributes.seniority"
        );
    }

    #[test]
    fn skill_levels_outside_one_to_ten_are_refused_when_parsed() {
        let err =
            toml::from_str::<AgentSetup>("name = \"a\"\nskills = { sales = 11 }").unwrap_err();
        assert!(err.to_string().contains("outside 1 to 10"), "{err}");
    }
}
