//! Loading a scenario: TOML text → checked plans for queues, arrival streams and agents.
//!
//! Each `[[queues]]` table is split into the router's [`QueueSetup`] keys and the simulation
//! keys ([`QueueSimFile`]); each `[[agent_groups]]` table into [`AgentSetup`] keys and
//! [`GroupSimFile`] keys. The router's halves go through the real [`Catalog`], so a scenario
//! queue means exactly what the same queue means in `switchboard.toml`. Every refusal names the
//! file, the field path and, where it can be found, the line.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp, LogNormal};
use serde::de::DeserializeOwned;

use crate::config::HISTORY_CAPACITY_LIMIT;
use crate::model::{AgentId, ContactId, Level, MediaMap, MediaType, Priority, QueueId, Timestamp};
use crate::routing::setup::MembershipSetup;
use crate::routing::{
    AgentSetup, AgentSpec, Catalog, ContactSetup, Criterion, QueueSetup, QueueSpec, RouterSettings,
    RoutingSettings, SetupError,
};

use super::error::SimError;
use super::file::{
    ArrivalFile, GROUP_SIM_KEYS, GroupSimFile, HandleFile, PatienceFile, PatienceKind,
    ProfileEntry, QUEUE_SET_KEYS, QUEUE_SIM_KEYS, QueueSimFile, Span, TopFile,
};
use super::locate::{line_at, line_of};
use super::rng::derive_seed;

/// A scenario, parsed and checked: a day, the router's settings, queues with their arrival
/// streams, and agents with their behaviour and shifts.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(super) name: String,
    pub(super) file: String,
    pub(super) seed: u64,
    pub(super) open: Timestamp,
    pub(super) close: Timestamp,
    pub(super) settings: RouterSettings,
    pub(super) queues: Vec<QueuePlan>,
    pub(super) streams: Vec<StreamPlan>,
    pub(super) groups: Vec<GroupPlan>,
    pub(super) agents: Vec<AgentPlan>,
}

/// A queue: the router's spec and what the report needs.
#[derive(Debug, Clone)]
pub(super) struct QueuePlan {
    pub spec: QueueSpec,
    pub name: String,
    /// For each attribute contacts carry: cumulative probabilities of its values and the
    /// criteria each value resolves to through the queue's attribute rules.
    pub attributes: Vec<AttributePlan>,
}

/// The distribution of one contact attribute over its values.
#[derive(Debug, Clone)]
pub(super) struct AttributePlan {
    /// (cumulative probability, criteria of the value); a draw above the last has no value.
    pub values: Vec<(f64, Vec<Criterion>)>,
}

/// One arrival stream.
#[derive(Debug, Clone)]
pub(super) struct StreamPlan {
    pub queue: QueueId,
    pub media: MediaType,
    /// Contacts per second before the profile.
    pub per_second: f64,
    pub profile: Profile,
    pub handle: LogNormal<f64>,
    pub patience: Option<Patience>,
    pub callback_share: f64,
}

/// Arrival-rate multipliers over the day.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Profile {
    /// 1 all day.
    Flat,
    /// One multiplier per hour of the clock.
    Hourly([f64; 24]),
    /// Points (hour, multiplier) joined by straight lines; constant beyond the ends.
    Points(Vec<(f64, f64)>),
}

impl Profile {
    /// The multiplier at `hour` (hours since 00:00, fractional).
    pub fn at(&self, hour: f64) -> f64 {
        match self {
            Profile::Flat => 1.0,
            Profile::Hourly(values) => values[(hour.max(0.0) as usize).min(23)],
            Profile::Points(points) => {
                let (Some(first), Some(last)) = (points.first(), points.last()) else {
                    return 1.0;
                };
                if hour <= first.0 {
                    return first.1;
                }
                if hour >= last.0 {
                    return last.1;
                }
                for pair in points.windows(2) {
                    let ((h0, m0), (h1, m1)) = (pair[0], pair[1]);
                    if hour <= h1 {
                        return m0 + (m1 - m0) * (hour - h0) / (h1 - h0);
                    }
                }
                last.1
            }
        }
    }

    /// The highest multiplier of the day (bounds the thinning of the Poisson process).
    pub fn max(&self) -> f64 {
        match self {
            Profile::Flat => 1.0,
            Profile::Hourly(values) => values.iter().copied().fold(0.0, f64::max),
            Profile::Points(points) => points.iter().map(|p| p.1).fold(0.0, f64::max),
        }
    }
}

/// Customer patience.
#[derive(Debug, Clone)]
pub(super) enum Patience {
    Exponential(Exp<f64>),
    Lognormal(LogNormal<f64>),
}

/// Behaviour shared by the agents of a group.
#[derive(Debug, Clone)]
pub(super) struct GroupPlan {
    pub name: String,
    pub answer_delay: Duration,
    pub after_call_work: MediaMap<Duration>,
    pub miss_probability: f64,
    pub not_ready: Duration,
}

/// One agent.
#[derive(Debug, Clone)]
pub(super) struct AgentPlan {
    pub spec: AgentSpec,
    pub group: usize,
    pub shift_start: Timestamp,
    pub shift_end: Timestamp,
}

/// Seconds since 00:00 as a timestamp of the simulated day.
pub(super) fn at_seconds(seconds: f64) -> Timestamp {
    Timestamp((seconds * 1e6).round() as i64)
}

impl Scenario {
    /// Reads, parses and checks a scenario file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            file: file.clone(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        Loader::new(&text, &file).load(&stem)
    }

    /// Parses and checks scenario text; `name` stands for the file in errors and the report.
    pub fn from_str(text: &str, name: &str) -> Result<Scenario, SimError> {
        Loader::new(text, name).load(name)
    }

    /// The same scenario cut to its first `hours` of opening time (for quick looks and tests
    /// in debug builds); arrivals and shifts past the cut are dropped.
    pub fn first_hours(&self, hours: f64) -> Scenario {
        let mut cut = self.clone();
        if hours.is_finite() && hours > 0.0 {
            cut.close = self
                .close
                .min(self.open.plus(Duration::from_secs_f64(hours * 3600.0)));
        }
        cut
    }

    /// The title shown in the report.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file (or name) the scenario came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The seed of the file.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Opening and closing time, in seconds since 00:00.
    pub fn hours(&self) -> (f64, f64) {
        (self.open.0 as f64 / 1e6, self.close.0 as f64 / 1e6)
    }

    /// Number of queues.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Number of agents.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }
}

/// A queue table split into its two halves, with where it came from.
struct QueueDraft {
    /// Path of the table (`queues[2]`, `queue_sets[0]`).
    at: String,
    /// Which instance of a queue set (` (n = 3)`), else empty.
    note: String,
    setup: QueueSetup,
    sim: QueueSimFile,
}

/// The state of one load: the text (for line numbers) and the file's name.
struct Loader<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Loader<'a> {
    fn new(text: &'a str, file: &'a str) -> Self {
        Loader { text, file }
    }

    /// An error about `field`, located in the file when possible.
    fn invalid(&self, field: &str, message: impl Into<String>) -> SimError {
        SimError::Invalid {
            file: self.file.to_owned(),
            line: line_of(self.text, field),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn setup_error(&self, error: SetupError, note: &str) -> SimError {
        self.invalid(&error.path, format!("{}{note}", error.message))
    }

    /// Deserializes `value` as `T`; errors name `at` + the path inside.
    fn read<T: DeserializeOwned>(&self, value: toml::Table, at: &str) -> Result<T, SimError> {
        serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|error| {
            let inner = error.path().to_string();
            let field = match (at.is_empty(), inner.as_str()) {
                (_, ".") => at.to_owned(),
                (true, inner) => inner.to_owned(),
                (false, inner) => format!("{at}.{inner}"),
            };
            self.invalid(&field, error.into_inner().message().trim().to_owned())
        })
    }

    fn load(&self, default_name: &str) -> Result<Scenario, SimError> {
        let root: toml::Table = toml::from_str(self.text).map_err(|error| SimError::Syntax {
            file: self.file.to_owned(),
            line: error
                .span()
                .map_or(1, |span| line_at(self.text, span.start)),
            message: error.message().trim().to_owned(),
        })?;
        let top: TopFile = self.read(root, "")?;
        let settings = self.settings(&top.routing)?;
        let mut catalog = Catalog::new();
        let drafts = self.queue_drafts(&top)?;
        catalog.declare_queues(drafts.iter().map(|d| d.setup.name.as_str()));
        let mut queues = Vec::new();
        let mut streams = Vec::new();
        for draft in &drafts {
            let spec = catalog
                .resolve_queue(&draft.setup, &draft.at)
                .map_err(|e| self.setup_error(e, &draft.note))?;
            if spec.id.index() != queues.len() {
                return Err(self.invalid(&draft.at, "queue ids out of order (internal)"));
            }
            for (i, arrival) in draft.sim.arrivals.iter().enumerate() {
                let at = format!("{}.arrivals[{i}]", draft.at);
                streams.push(self.stream(arrival, spec.id, &at, &draft.note)?);
            }
            queues.push(QueuePlan {
                name: draft.setup.name.clone(),
                spec,
                attributes: Vec::new(),
            });
        }
        let (groups, agents) = self.agents(&top, &mut catalog)?;
        // Contact attributes resolve against the keys agents have, so agents come first.
        for (draft, queue) in drafts.iter().zip(queues.iter_mut()) {
            queue.attributes = self.attributes(&catalog, draft)?;
        }
        Ok(Scenario {
            name: top.name.unwrap_or_else(|| default_name.to_owned()),
            file: self.file.to_owned(),
            seed: top.seed,
            open: at_seconds(top.hours.start_s),
            close: at_seconds(top.hours.end_s),
            settings,
            queues,
            streams,
            groups,
            agents,
        })
    }

    /// The router's settings, with the ranges `switchboard.toml` enforces.
    fn settings(&self, routing: &RoutingSettings) -> Result<RouterSettings, SimError> {
        let grace = routing.startup_grace_s;
        if !grace.is_finite() || !(0.0..=86_400.0).contains(&grace) {
            return Err(self.invalid(
                "routing.startup_grace_s",
                format!("{grace} is out of range; expected a number of seconds from 0 to 86400"),
            ));
        }
        if !(1..=HISTORY_CAPACITY_LIMIT).contains(&routing.history_capacity) {
            return Err(self.invalid(
                "routing.history_capacity",
                format!(
                    "{} is out of range; expected 1 to {HISTORY_CAPACITY_LIMIT}",
                    routing.history_capacity
                ),
            ));
        }
        Ok(RouterSettings::from_setup(routing))
    }

    /// The queues, then every instance of every queue set, each split and read; names unique.
    fn queue_drafts(&self, top: &TopFile) -> Result<Vec<QueueDraft>, SimError> {
        let mut drafts = Vec::new();
        for (i, table) in top.queues.iter().enumerate() {
            drafts.push(self.queue_draft(
                table.clone(),
                format!("queues[{i}]"),
                String::new(),
                QUEUE_SIM_KEYS,
            )?);
        }
        for (i, table) in top.queue_sets.iter().enumerate() {
            let at = format!("queue_sets[{i}]");
            let mut table = table.clone();
            let count = match table.remove("count") {
                Some(toml::Value::Integer(n)) if (1..=i64::from(MAX_COUNT)).contains(&n) => n,
                Some(other) => {
                    return Err(self.invalid(
                        &format!("{at}.count"),
                        format!("{other} is not a number of queues from 1 to {MAX_COUNT}"),
                    ));
                }
                None => return Err(self.invalid(&at, "missing field `count`")),
            };
            for n in 1..=count {
                let instance = substitute_table(&table, &n.to_string());
                drafts.push(self.queue_draft(
                    instance,
                    at.clone(),
                    format!(" (n = {n})"),
                    &[QUEUE_SIM_KEYS, QUEUE_SET_KEYS].concat(),
                )?);
            }
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for draft in &drafts {
            if let Some(first) = seen.insert(&draft.setup.name, &draft.at) {
                return Err(self.invalid(
                    &format!("{}.name", draft.at),
                    format!(
                        "a queue named {:?} is already defined at {first}{}",
                        draft.setup.name, draft.note
                    ),
                ));
            }
        }
        Ok(drafts)
    }

    /// Every agent of every group, resolved through the catalog (queues must be resolved).
    fn agents(
        &self,
        top: &TopFile,
        catalog: &mut Catalog,
    ) -> Result<(Vec<GroupPlan>, Vec<AgentPlan>), SimError> {
        let mut groups = Vec::new();
        let mut agents = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut roster_rng = Xoshiro256PlusPlus::seed_from_u64(derive_seed(top.seed, 0x0570_57E2));
        for (g, table) in top.agent_groups.iter().enumerate() {
            let at = format!("agent_groups[{g}]");
            let (setup, sim) = self.group_parts(table.clone(), &at)?;
            groups.push(self.group_plan(&setup, &sim, &at)?);
            let shifts = self.shifts(&sim, &at, &top.hours)?;
            if let Some(draw) = &sim.draw {
                self.check_draw(draw, catalog, &at)?;
            }
            for (i, shift) in (1..=sim.count).zip(shifts.iter().cycle()) {
                let mut agent = setup.clone();
                agent.name = agent_name(&setup.name, i);
                if let Some(other) = names.insert(agent.name.clone(), g) {
                    return Err(self.invalid(
                        &format!("{at}.name"),
                        format!(
                            "agent {:?} is also made by agent_groups[{other}]; expected unique names",
                            agent.name
                        ),
                    ));
                }
                if let Some(draw) = &sim.draw {
                    apply_draw(&mut agent, draw, &mut roster_rng);
                }
                let spec = catalog
                    .resolve_agent(&agent, &at)
                    .map_err(|e| self.setup_error(e, ""))?;
                if spec.id != AgentId(agents.len() as u32) {
                    return Err(self.invalid(&at, "agent ids out of order (internal)"));
                }
                agents.push(AgentPlan {
                    spec,
                    group: g,
                    shift_start: at_seconds(shift.start_s.max(top.hours.start_s)),
                    shift_end: at_seconds(shift.end_s.min(top.hours.end_s)),
                });
            }
        }
        Ok((groups, agents))
    }

    /// Splits a queue table into the router's setup and the simulation keys, and reads both.
    fn queue_draft(
        &self,
        table: toml::Table,
        at: String,
        note: String,
        expected: &[&str],
    ) -> Result<QueueDraft, SimError> {
        let (sim, router) = split(table, QUEUE_SIM_KEYS);
        let setup: QueueSetup = self
            .read(router, &at)
            .map_err(|e| also_expected(e, expected))?;
        let sim: QueueSimFile = self.read(sim, &at)?;
        Ok(QueueDraft {
            at,
            note,
            setup,
            sim,
        })
    }

    fn stream(
        &self,
        arrival: &ArrivalFile,
        queue: QueueId,
        at: &str,
        note: &str,
    ) -> Result<StreamPlan, SimError> {
        let fail = |field: &str, message: String| {
            self.invalid(&format!("{at}.{field}"), format!("{message}{note}"))
        };
        non_negative(
            arrival.per_hour,
            MAX_PER_HOUR,
            "a rate ≥ 0 contacts per hour",
        )
        .map_err(|message| fail("per_hour", message))?;
        let profile = match &arrival.profile {
            None => Profile::Flat,
            Some(entries) => self.profile(entries, &format!("{at}.profile"))?,
        };
        let handle = self.lognormal(&arrival.handle, &format!("{at}.handle"))?;
        let patience = match &arrival.patience {
            None => None,
            Some(patience) => Some(self.patience(patience, &format!("{at}.patience"))?),
        };
        probability(arrival.callback_share).map_err(|message| fail("callback_share", message))?;
        Ok(StreamPlan {
            queue,
            media: arrival.media,
            per_second: arrival.per_hour / 3600.0,
            profile,
            handle,
            patience,
            callback_share: arrival.callback_share,
        })
    }

    fn profile(&self, entries: &[ProfileEntry], at: &str) -> Result<Profile, SimError> {
        let multiplier = |value: f64, field: String| {
            non_negative(value, MAX_MULTIPLIER, "a multiplier ≥ 0")
                .map(|()| value)
                .map_err(|message| self.invalid(&field, message))
        };
        if entries
            .iter()
            .all(|e| matches!(e, ProfileEntry::Multiplier(_)))
        {
            if entries.len() != 24 {
                return Err(self.invalid(
                    at,
                    format!("{} multipliers; expected 24 (one per hour from 00:00) or [hour, multiplier] points", entries.len()),
                ));
            }
            let mut values = [0.0; 24];
            for (i, entry) in entries.iter().enumerate() {
                if let ProfileEntry::Multiplier(value) = entry {
                    values[i] = multiplier(*value, format!("{at}[{i}]"))?;
                }
            }
            return Ok(Profile::Hourly(values));
        }
        let mut points = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let ProfileEntry::Point(hour, value) = *entry else {
                return Err(self.invalid(
                    &format!("{at}[{i}]"),
                    "a multiplier among [hour, multiplier] points; expected one form for the whole profile",
                ));
            };
            let after = points.last().map_or(-1.0, |p: &(f64, f64)| p.0);
            if !(0.0..=24.0).contains(&hour) || hour <= after {
                return Err(self.invalid(
                    &format!("{at}[{i}]"),
                    format!(
                        "hour {hour} is out of order or outside 0 to 24; expected increasing hours"
                    ),
                ));
            }
            points.push((hour, multiplier(value, format!("{at}[{i}]"))?));
        }
        Ok(Profile::Points(points))
    }

    fn lognormal(&self, handle: &HandleFile, at: &str) -> Result<LogNormal<f64>, SimError> {
        if !handle.mean_s.is_finite() || handle.mean_s <= 0.0 || handle.mean_s > MAX_SECONDS {
            return Err(self.invalid(
                &format!("{at}.mean_s"),
                format!(
                    "{} is not a number of seconds > 0 and ≤ {MAX_SECONDS}",
                    handle.mean_s
                ),
            ));
        }
        non_negative(handle.sd_s, MAX_SECONDS, "seconds ≥ 0")
            .map_err(|message| self.invalid(&format!("{at}.sd_s"), message))?;
        LogNormal::from_mean_cv(handle.mean_s, handle.sd_s / handle.mean_s)
            .map_err(|e| self.invalid(at, format!("not a lognormal distribution: {e}")))
    }

    fn patience(&self, patience: &PatienceFile, at: &str) -> Result<Patience, SimError> {
        match (patience.distribution, patience.sd_s) {
            (PatienceKind::Exponential, None) => {
                if !patience.mean_s.is_finite() || patience.mean_s <= 0.0 || patience.mean_s > MAX_SECONDS {
                    return Err(self.invalid(
                        &format!("{at}.mean_s"),
                        format!("{} is not a number of seconds > 0 and ≤ {MAX_SECONDS}", patience.mean_s),
                    ));
                }
                Exp::new(1.0 / patience.mean_s)
                    .map(Patience::Exponential)
                    .map_err(|e| self.invalid(at, format!("not an exponential distribution: {e}")))
            }
            (PatienceKind::Exponential, Some(_)) => Err(self.invalid(
                &format!("{at}.sd_s"),
                "an exponential patience has no sd_s; write distribution = \"lognormal\" to give one",
            )),
            (PatienceKind::Lognormal, None) => Err(self.invalid(
                &format!("{at}.sd_s"),
                "missing: a lognormal patience needs sd_s",
            )),
            (PatienceKind::Lognormal, Some(sd_s)) => self
                .lognormal(&HandleFile { mean_s: patience.mean_s, sd_s }, at)
                .map(Patience::Lognormal),
        }
    }

    /// Checks the attribute distributions of a queue and resolves each value through the
    /// queue's attribute rules (the catalog's own `resolve_contact`).
    fn attributes(
        &self,
        catalog: &Catalog,
        draft: &QueueDraft,
    ) -> Result<Vec<AttributePlan>, SimError> {
        let mut plans = Vec::new();
        for (name, values) in &draft.sim.contact_attributes {
            let at = format!("{}.contact_attributes.{name}", draft.at);
            if !draft.setup.attributes.iter().any(|rule| &rule.name == name) {
                return Err(self.invalid(
                    &at,
                    format!(
                        "queue {:?} has no attribute rule named {name:?}; add one to `attributes` so that it routes{}",
                        draft.setup.name, draft.note
                    ),
                ));
            }
            let mut cumulative = 0.0;
            let mut plan = AttributePlan { values: Vec::new() };
            for (value, p) in values {
                probability(*p).map_err(|m| {
                    self.invalid(&format!("{at}.{value}"), format!("{m}{}", draft.note))
                })?;
                cumulative += p;
                let contact = ContactSetup {
                    queue: draft.setup.name.clone(),
                    media: MediaType::Voice,
                    priority: Priority::default(),
                    attributes: BTreeMap::from([(name.clone(), value.clone())]),
                    criteria: Vec::new(),
                };
                let spec = catalog
                    .resolve_contact(&contact, ContactId(0), Timestamp::ZERO)
                    .map_err(|e| self.invalid(&format!("{at}.{value}"), e.message))?;
                plan.values.push((cumulative, spec.criteria));
            }
            if cumulative > 1.0 + 1e-9 {
                return Err(self.invalid(
                    &at,
                    format!(
                        "the probabilities add up to {cumulative}; expected at most 1{}",
                        draft.note
                    ),
                ));
            }
            plans.push(plan);
        }
        Ok(plans)
    }

    /// Splits an agent group into the router's agent setup (the template) and the simulation keys.
    fn group_parts(
        &self,
        table: toml::Table,
        at: &str,
    ) -> Result<(AgentSetup, GroupSimFile), SimError> {
        let (sim, router) = split(table, GROUP_SIM_KEYS);
        let setup: AgentSetup = self
            .read(router, at)
            .map_err(|e| also_expected(e, GROUP_SIM_KEYS))?;
        let sim: GroupSimFile = self.read(sim, at)?;
        Ok((setup, sim))
    }

    fn group_plan(
        &self,
        setup: &AgentSetup,
        sim: &GroupSimFile,
        at: &str,
    ) -> Result<GroupPlan, SimError> {
        let seconds = |value: f64, field: &str| {
            non_negative(value, MAX_SECONDS, "seconds ≥ 0")
                .map(|()| Duration::from_secs_f64(value))
                .map_err(|message| self.invalid(&format!("{at}.{field}"), message))
        };
        if sim.count > MAX_COUNT {
            return Err(self.invalid(
                &format!("{at}.count"),
                format!(
                    "{} agents is more than the {MAX_COUNT} a group may have",
                    sim.count
                ),
            ));
        }
        let answer_delay = seconds(sim.answer_delay_s, "answer_delay_s")?;
        let not_ready = seconds(sim.not_ready_s, "not_ready_s")?;
        let mut after_call_work = MediaMap::<Duration>::default();
        for (media, value) in &sim.after_call_work_s {
            *after_call_work.get_mut(*media) =
                seconds(*value, &format!("after_call_work_s.{media}"))?;
        }
        probability(sim.miss_probability)
            .map_err(|m| self.invalid(&format!("{at}.miss_probability"), m))?;
        Ok(GroupPlan {
            name: group_name(&setup.name),
            answer_delay,
            after_call_work,
            miss_probability: sim.miss_probability,
            not_ready,
        })
    }

    fn shifts(&self, sim: &GroupSimFile, at: &str, day: &Span) -> Result<Vec<Span>, SimError> {
        if sim.shifts.is_empty() {
            return Ok(vec![*day]);
        }
        for (i, shift) in sim.shifts.iter().enumerate() {
            if shift.end_s <= day.start_s || shift.start_s >= day.end_s {
                return Err(self.invalid(
                    &format!("{at}.shifts[{i}]"),
                    "the shift lies outside the opening hours; its agents would never work",
                ));
            }
        }
        Ok(sim.shifts.clone())
    }

    fn check_draw(
        &self,
        draw: &super::file::DrawFile,
        catalog: &Catalog,
        at: &str,
    ) -> Result<(), SimError> {
        let at = format!("{at}.draw");
        if draw.n > MAX_COUNT {
            return Err(self.invalid(
                &format!("{at}.n"),
                format!(
                    "{} is more than the {MAX_COUNT} numbers a draw may have",
                    draw.n
                ),
            ));
        }
        if draw.n == 0 || draw.k == 0 || draw.k > draw.n {
            return Err(self.invalid(
                &format!("{at}.k"),
                format!("draws {} of {}; expected 1 ≤ k ≤ n", draw.k, draw.n),
            ));
        }
        if draw.levels[0] > draw.levels[1] {
            return Err(self.invalid(
                &format!("{at}.levels"),
                format!(
                    "[{}, {}] is not [lowest, highest]",
                    draw.levels[0], draw.levels[1]
                ),
            ));
        }
        if draw.skill.is_none() && draw.queue.is_none() {
            return Err(self.invalid(
                &at,
                "expected `skill` or `queue` (or both) with {n} in them",
            ));
        }
        if let Some(queue) = &draw.queue {
            for n in 1..=draw.n {
                let name = queue.replace("{n}", &n.to_string());
                if catalog.queue_id(&name).is_none() {
                    return Err(self.invalid(
                        &format!("{at}.queue"),
                        format!("no queue is named {name:?} (n = {n})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Adds an agent's drawn skills and memberships (a drawn queue already listed is kept as is).
fn apply_draw(agent: &mut AgentSetup, draw: &super::file::DrawFile, rng: &mut Xoshiro256PlusPlus) {
    let picks = rand::seq::index::sample(rng, draw.n as usize, draw.k as usize);
    for pick in picks.iter() {
        let n = (pick + 1).to_string();
        if let Some(skill) = &draw.skill {
            let level = rng.random_range(draw.levels[0].get()..=draw.levels[1].get());
            let level = Level::new(i64::from(level)).unwrap_or(Level::MIN);
            let entry = agent
                .skills
                .entry(skill.replace("{n}", &n))
                .or_insert(level);
            *entry = (*entry).max(level);
        }
        if let Some(queue) = &draw.queue {
            let name = queue.replace("{n}", &n);
            if !agent.queues.iter().any(|m| m.queue() == name) {
                agent.queues.push(MembershipSetup::Name(name));
            }
        }
    }
}

/// A group's name for the report: its agents' name without the `{i}` (`agent-{i}` → `agent`).
fn group_name(template: &str) -> String {
    let name = template
        .replace("{i}", "")
        .trim_matches(|c: char| c == '-' || c == '_' || c == '.' || c.is_whitespace())
        .to_owned();
    if name.is_empty() {
        template.to_owned()
    } else {
        name
    }
}

/// `agent-{i}` → `agent-7`; a name without `{i}` gets `-7` appended.
fn agent_name(template: &str, i: u32) -> String {
    if template.contains("{i}") {
        template.replace("{i}", &i.to_string())
    } else {
        format!("{template}-{i}")
    }
}

/// Moves the keys in `keys` out of `table`: (those keys, the rest).
fn split(mut table: toml::Table, keys: &[&str]) -> (toml::Table, toml::Table) {
    let mut taken = toml::Table::new();
    for key in keys {
        if let Some(value) = table.remove(*key) {
            taken.insert((*key).to_owned(), value);
        }
    }
    (taken, table)
}

/// Adds the simulation keys to serde's list of expected keys in an unknown-key error.
fn also_expected(error: SimError, keys: &[&str]) -> SimError {
    match error {
        SimError::Invalid {
            file,
            line,
            field,
            message,
        } if message.starts_with("unknown field") => {
            let sim: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            SimError::Invalid {
                file,
                line,
                field,
                message: format!("{message}, or a simulation key: {}", sim.join(", ")),
            }
        }
        other => other,
    }
}

/// Largest arrival rate of one stream, per hour (bounds the length of a run).
const MAX_PER_HOUR: f64 = 1_000_000.0;
/// Largest profile multiplier.
const MAX_MULTIPLIER: f64 = 1_000.0;
/// Largest duration in seconds (a year).
const MAX_SECONDS: f64 = 31_536_000.0;
/// Most agents in one group, queues in one set, numbers in one draw.
const MAX_COUNT: u32 = 100_000;

/// A finite number from 0 to `max`; the message says what was `expected` otherwise.
fn non_negative(value: f64, max: f64, expected: &str) -> Result<(), String> {
    if value.is_nan() || value.is_infinite() {
        Err(format!(
            "{value} is not a finite number; expected {expected}"
        ))
    } else if value < 0.0 {
        Err(format!("{value} is negative; expected {expected}"))
    } else if value > max {
        Err(format!(
            "{value} is more than the {max} the simulator accepts"
        ))
    } else {
        Ok(())
    }
}

/// A probability from 0 to 1.
fn probability(value: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{value} is not a probability; expected a number from 0 to 1"
        ))
    }
}

/// A copy of `table` with `{n}` replaced by `n` in every key and string.
fn substitute_table(table: &toml::Table, n: &str) -> toml::Table {
    table
        .iter()
        .map(|(key, value)| (key.replace("{n}", n), substitute(value, n)))
        .collect()
}

fn substitute(value: &toml::Value, n: &str) -> toml::Value {
    match value {
        toml::Value::String(s) => toml::Value::String(s.replace("{n}", n)),
        toml::Value::Array(items) => {
            toml::Value::Array(items.iter().map(|v| substitute(v, n)).collect())
        }
        toml::Value::Table(table) => toml::Value::Table(substitute_table(table, n)),
        other => other.clone(),
    }
}

/// The names of a scenario's queues (for tests of the loader).
#[cfg(test)]
fn queue_names(scenario: &Scenario) -> std::collections::BTreeSet<String> {
    scenario.queues.iter().map(|q| q.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
seed = 7
hours = "08:00-12:00"

[[queues]]
name = "sales"
service_level_s = 20
[[queues.attributes]]
name = "language"
modifier = "required"
[queues.contact_attributes]
language = { en = 0.7, es = 0.3 }
[[queues.arrivals]]
per_hour = 30
profile = [[8, 0.5], [10, 1.5], [12, 1.0]]
handle = { mean_s = 200, sd_s = 100 }
patience = { mean_s = 60 }

[[queue_sets]]
count = 3
name = "product-{n}"
skills = { "product-{n}" = 2 }
[[queue_sets.arrivals]]
per_hour = 5
handle = { mean_s = 100 }

[[agent_groups]]
name = "a"
count = 4
attributes = { language = ["en", "es"] }
queues = ["sales"]
shifts = ["08:00-10:00", "09:00-12:00"]
after_call_work_s = { voice = 10 }
[agent_groups.draw]
n = 3
k = 2
skill = "product-{n}"
queue = "product-{n}"
levels = [2, 5]
"#;

    #[test]
    fn a_scenario_resolves_queues_sets_streams_and_agents() {
        let s = Scenario::from_str(SMALL, "small").unwrap();
        assert_eq!(
            queue_names(&s),
            ["sales", "product-1", "product-2", "product-3"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert_eq!(s.streams.len(), 4);
        assert_eq!(s.agents.len(), 4);
        assert_eq!(s.agents[3].spec.id, AgentId(3));
        // Each agent: sales plus two drawn product queues, with the product skills.
        for agent in &s.agents {
            assert_eq!(agent.spec.memberships.len(), 3);
            assert!(agent.spec.skills.len() >= 4);
        }
        assert_eq!(s.agents[1].shift_start, at_seconds(9.0 * 3600.0));
        assert_eq!(s.queues[0].attributes[0].values.len(), 2);
        assert_eq!(s.queues[0].attributes[0].values[0].1.len(), 1);
    }

    #[test]
    fn profiles_interpolate_between_points_and_step_by_hour() {
        let points = Profile::Points(vec![(8.0, 0.5), (10.0, 1.5)]);
        assert_eq!(points.at(7.0), 0.5);
        assert!((points.at(9.0) - 1.0).abs() < 1e-12);
        assert_eq!(points.at(11.0), 1.5);
        assert_eq!(points.max(), 1.5);
        let mut hourly = [1.0; 24];
        hourly[9] = 2.0;
        let hourly = Profile::Hourly(hourly);
        assert_eq!(hourly.at(9.99), 2.0);
        assert_eq!(hourly.at(10.0), 1.0);
    }

    #[test]
    fn refusals_name_the_field_and_line() {
        let bad = SMALL.replace("per_hour = 30", "per_hour = -3");
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(err.field(), Some("queues[0].arrivals[0].per_hour"));
        assert_eq!(
            err.to_string(),
            "x.toml:14: queues[0].arrivals[0].per_hour: -3 is negative; expected a rate ≥ 0 contacts per hour"
        );

        let bad = SMALL.replace("count = 4", "count = 4\nanswer_delay = 3");
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(err.field(), Some("agent_groups[0].answer_delay"), "{err}");
        assert!(err.to_string().contains("answer_delay_s"), "{err}");

        let bad = SMALL.replace("levels = [2, 5]", "levels = [2, 11]");
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(err.field(), Some("agent_groups[0].draw.levels[1]"), "{err}");

        let bad = SMALL.replace("es = 0.3", "es = 1.5");
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(
            err.field(),
            Some("queues[0].contact_attributes.language.es"),
            "{err}"
        );

        let bad = SMALL.replace("queues = [\"sales\"]", "queues = [\"sails\"]");
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(err.field(), Some("agent_groups[0].queues[0]"), "{err}");

        let bad = SMALL.replace(
            "skills = { \"product-{n}\" = 2 }",
            "skills = { \"product-{n}\" = 0 }",
        );
        let err = Scenario::from_str(&bad, "x.toml").unwrap_err();
        assert_eq!(err.field(), Some("queue_sets[0].skills.product-1"), "{err}");
    }
}
