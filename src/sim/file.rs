//! The simulation keys of a scenario file, as written. Queues and agent groups are the router's
//! own [`QueueSetup`](crate::routing::QueueSetup) and [`AgentSetup`](crate::routing::AgentSetup)
//! plus the keys below; [`super::scenario`] splits each table into the two and checks ranges.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::model::{Level, MediaType};
use crate::routing::RoutingSettings;

/// The top level of a scenario file. Queues, queue sets and agent groups stay tables here:
/// each is split into router keys and simulation keys before it is read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopFile {
    /// A title for the report (default: the file's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Free text for the reader of the file (accepted, not used).
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "a comment that TOML keeps; the simulator has no use for it"
    )]
    pub description: Option<String>,
    /// Seed of every random draw: the same seed gives the same day.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Opening hours: `"08:00-20:00"`, or a number of hours from 00:00.
    pub hours: Span,
    /// The router's settings (`[routing]` of `switchboard.toml`).
    #[serde(default)]
    pub routing: RoutingSettings,
    /// `[[queues]]`.
    #[serde(default)]
    pub queues: Vec<toml::Table>,
    /// `[[queue_sets]]`: `count` queues from one template, `{n}` replaced by 1..=count.
    #[serde(default)]
    pub queue_sets: Vec<toml::Table>,
    /// `[[agent_groups]]`.
    #[serde(default)]
    pub agent_groups: Vec<toml::Table>,
}

fn default_seed() -> u64 {
    1
}

/// Simulation keys of a queue (beside the router's `QueueSetup` keys).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueueSimFile {
    /// Contact streams arriving at the queue, one per media type (or more).
    #[serde(default)]
    pub arrivals: Vec<ArrivalFile>,
    /// Attributes contacts carry, with the probability of each value:
    /// `language = { en = 0.6, es = 0.4 }`. The queue's attribute rules turn them into criteria.
    #[serde(default)]
    pub contact_attributes: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Keys of [`QueueSimFile`].
pub(super) const QUEUE_SIM_KEYS: &[&str] = &["arrivals", "contact_attributes"];

/// One stream of arrivals: a Poisson process whose rate follows a profile over the day.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArrivalFile {
    /// Media type of the contacts.
    #[serde(default = "default_media")]
    pub media: MediaType,
    /// Contacts per hour, multiplied by the profile at each instant.
    pub per_hour: f64,
    /// Multipliers over the day: 24 hourly values, or `[hour, multiplier]` points joined by
    /// straight lines. Absent: 1 all day.
    #[serde(default)]
    pub profile: Option<Vec<ProfileEntry>>,
    /// Time connected to the agent: lognormal with this mean and standard deviation.
    pub handle: HandleFile,
    /// How long a customer waits before leaving. Absent: customers never leave (email).
    #[serde(default)]
    pub patience: Option<PatienceFile>,
    /// Probability that a customer whose patience runs out while waiting asks to be called back
    /// instead of leaving (the contact becomes a callback, keeping its place).
    #[serde(default)]
    pub callback_share: f64,
}

fn default_media() -> MediaType {
    MediaType::Voice
}

/// A lognormal duration given by its mean and standard deviation in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HandleFile {
    /// Mean in seconds.
    pub mean_s: f64,
    /// Standard deviation in seconds (0: always the mean).
    #[serde(default)]
    pub sd_s: f64,
}

/// Customer patience.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatienceFile {
    /// Mean in seconds.
    pub mean_s: f64,
    /// `exponential` (default) or `lognormal` (needs `sd_s`).
    #[serde(default)]
    pub distribution: PatienceKind,
    /// Standard deviation in seconds, for `lognormal`.
    #[serde(default)]
    pub sd_s: Option<f64>,
}

/// The shape of the patience distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum PatienceKind {
    /// Memoryless: the classic Erlang-A assumption.
    #[default]
    Exponential,
    /// Lognormal with `mean_s` and `sd_s`.
    Lognormal,
}

/// Simulation keys of an agent group (beside the router's `AgentSetup` keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupSimFile {
    /// Number of agents in the group.
    pub count: u32,
    /// Shifts (`"08:00-16:00"`); agents are spread over them in turn. Absent: the whole day.
    #[serde(default)]
    pub shifts: Vec<Span>,
    /// Seconds from an offer to the agent's answer.
    #[serde(default = "default_answer_delay")]
    pub answer_delay_s: f64,
    /// After-call work per media type in seconds, e.g. `{ voice = 30 }`: the agent takes nothing
    /// new meanwhile.
    #[serde(default)]
    pub after_call_work_s: BTreeMap<MediaType, f64>,
    /// Probability that the agent lets an offer ring out (the router then makes the agent
    /// unavailable for that media type).
    #[serde(default)]
    pub miss_probability: f64,
    /// Seconds an agent who missed an offer stays not ready for that media type.
    #[serde(default = "default_not_ready")]
    pub not_ready_s: f64,
    /// Skills and queues drawn at random per agent.
    #[serde(default)]
    pub draw: Option<DrawFile>,
}

/// Keys of [`GroupSimFile`].
pub(super) const GROUP_SIM_KEYS: &[&str] = &[
    "count",
    "shifts",
    "answer_delay_s",
    "after_call_work_s",
    "miss_probability",
    "not_ready_s",
    "draw",
];

fn default_answer_delay() -> f64 {
    3.0
}

fn default_not_ready() -> f64 {
    30.0
}

/// Draw `k` distinct numbers from 1..=`n` per agent; each gives a skill and/or a membership.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DrawFile {
    /// Numbers to draw from: 1..=n.
    pub n: u32,
    /// How many per agent.
    pub k: u32,
    /// Skill name with `{n}`, granted at a level drawn from `levels`.
    #[serde(default)]
    pub skill: Option<String>,
    /// Queue name with `{n}`, joined at tier level 1.
    #[serde(default)]
    pub queue: Option<String>,
    /// Lowest and highest level of drawn skills (inclusive).
    #[serde(default = "default_levels")]
    pub levels: [Level; 2],
}

fn default_levels() -> [Level; 2] {
    [Level::MIN, Level::MAX]
}

/// Keys of a queue set beside a queue's keys.
pub(super) const QUEUE_SET_KEYS: &[&str] = &["count"];

/// A span of the day, from `start` to `end` in seconds since 00:00.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span {
    /// Seconds since 00:00.
    pub start_s: f64,
    /// Seconds since 00:00 (after `start_s`).
    pub end_s: f64,
}

impl Span {
    /// Parses `"08:00-20:00"` (also with an en dash); `24:00` is the end of the day.
    pub(super) fn parse(text: &str) -> Result<Span, String> {
        let (start, end) = text
            .split_once('-')
            .or_else(|| text.split_once('–'))
            .ok_or_else(|| format!("{text:?} is not a span of the day like \"08:00-20:00\""))?;
        let start_s = clock(start.trim())?;
        let end_s = clock(end.trim())?;
        if end_s <= start_s {
            return Err(format!("{text:?} ends before it starts"));
        }
        Ok(Span { start_s, end_s })
    }
}

/// `HH:MM` (00:00 to 24:00) in seconds.
fn clock(text: &str) -> Result<f64, String> {
    let bad = || format!("{text:?} is not a time of day like \"08:30\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(f64::from(h * 3600 + m * 60))
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a span like \"08:00-20:00\" or a number of hours from 00:00")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
                if !(v > 0.0 && v <= 24.0) {
                    return Err(E::custom(format!(
                        "{v} hours is not a day; expected more than 0 and at most 24"
                    )));
                }
                Ok(Span {
                    start_s: 0.0,
                    end_s: v * 3600.0,
                })
            }
        }
        deserializer.deserialize_any(SpanVisitor)
    }
}

/// One entry of a profile: an hourly multiplier or an `[hour, multiplier]` point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ProfileEntry {
    /// A multiplier (of a list of 24, one per hour of the clock).
    Multiplier(f64),
    /// A point of a piecewise-linear profile.
    Point(f64, f64),
}

impl<'de> Deserialize<'de> for ProfileEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ProfileEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a multiplier or an [hour, multiplier] pair")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProfileEntry, E> {
                Ok(ProfileEntry::Multiplier(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProfileEntry, E> {
                Ok(ProfileEntry::Multiplier(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProfileEntry, E> {
                Ok(ProfileEntry::Multiplier(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ProfileEntry, A::Error> {
                let pair_expected = || de::Error::custom("expected an [hour, multiplier] pair");
                let hour: f64 = seq.next_element()?.ok_or_else(pair_expected)?;
                let multiplier: f64 = seq.next_element()?.ok_or_else(pair_expected)?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(pair_expected());
                }
                Ok(ProfileEntry::Point(hour, multiplier))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_clock_times_and_refuse_nonsense() {
        let span = Span::parse("08:00-20:30").unwrap();
        assert_eq!((span.start_s, span.end_s), (8.0 * 3600.0, 20.5 * 3600.0));
        assert_eq!(Span::parse("00:00–24:00").unwrap().end_s, 86_400.0);
        assert!(Span::parse("20:00-08:00").is_err());
        assert!(Span::parse("8-20").is_err());
        assert!(Span::parse("08:61-09:00").is_err());
        assert!(Span::parse("24:30-25:00").is_err());
    }
}
