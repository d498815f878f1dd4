//! Configuration: built-in defaults ← `switchboard.toml` ← `SWITCHBOARD_<SECTION>_<KEY>`
//! environment variables, checked and resolved at load time.
//!
//! A bad config is refused with one line per problem, each naming where the value came from
//! (the file and line, or the environment variable), the key (`queues[2].strategy`) and what
//! was expected. The commented `switchboard.toml` at the repository root documents every key;
//! a test keeps it complete.
//!
//! figment merges the sources and records which one every value came from; the providers here
//! are Switchboard's own (not figment's `Toml`/`Env`) so that the file is parsed once with its
//! line numbers kept, and so that tests can pass environment variables without touching the
//! process environment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{AddrParseError, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::value::{Dict, Map, Value as FValue};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

use crate::admission::{AdmissionSettings, ClientTrunks};
use crate::agents::{AgentTimers, StayOnLine};
use crate::controller::calls::{AgentLine, CallSettings};
use crate::flow::{Flow, FlowFile, Step, StepSetup};
use crate::logging::{self, LogFormat};
use crate::media::{HandlerId, HandlerKind, OriginateTarget, RecordFormat};
use crate::model::{AgentId, TenantId};
use crate::routing::{
    AgentSetup, AgentSpec, Catalog, QueueSetup, QueueSpec, RouterSettings, RoutingSettings,
    SetupError,
};

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";
/// The variable the CLI reads the config file's path from; not a config key.
pub const CONFIG_PATH_VAR: &str = "SWITCHBOARD_CONFIG";
/// Variables starting with this are test-harness settings, not config keys.
pub const TEST_VAR_PREFIX: &str = "SWITCHBOARD_TEST_";

/// Default `server.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `server.shutdown_grace_s`.
pub const DEFAULT_SHUTDOWN_GRACE_S: u64 = 10;
/// Default `store.url`.
pub const DEFAULT_STORE_URL: &str = "sqlite://switchboard.db";
/// Default `store.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Default `log.level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Largest `store.max_connections`.
pub const MAX_CONNECTIONS_LIMIT: u32 = 1000;
/// Largest `routing.history_capacity`.
pub const HISTORY_CAPACITY_LIMIT: usize = 10_000_000;
/// Default `calls.recordings`.
pub const DEFAULT_RECORDINGS: &str = "/var/lib/switchboard/recordings";
/// Default `calls.ring_timeout_s`.
pub const DEFAULT_RING_TIMEOUT_S: u64 = 30;
/// Largest `calls.ring_timeout_s`.
pub const RING_TIMEOUT_LIMIT_S: u64 = 600;
/// Largest value of the `[agent_states]` and `[admission]` durations: a day.
pub const TIMER_LIMIT_S: u64 = 86_400;
/// Default `clients[].trunk_ratio` (R), also for tenants not listed in `[[clients]]`.
pub const DEFAULT_TRUNK_RATIO: f64 = 1.5;
/// Default `clients[].after_hours_trunks` (T), also for tenants not listed in `[[clients]]`.
pub const DEFAULT_AFTER_HOURS_TRUNKS: u32 = 2;
/// Largest `clients[].trunk_ratio`.
pub const TRUNK_RATIO_LIMIT: f64 = 1000.0;
/// Default `handlers[].capacity`.
pub const DEFAULT_HANDLER_CAPACITY: u32 = 200;
/// Largest `handlers[].capacity`.
pub const HANDLER_CAPACITY_LIMIT: u32 = 100_000;
/// Largest `handlers[].weight`.
pub const HANDLER_WEIGHT_LIMIT: f64 = 1000.0;
/// Default `handlers[].app` of an Asterisk handler (the Stasis application).
pub const DEFAULT_ARI_APP: &str = "switchboard";
/// The `numbers[].number` that matches every called number not listed.
pub const ANY_NUMBER: &str = "*";
/// Music class of the built-in flow of a queue without `flow` (each switch's default music).
pub const BUILTIN_FLOW_MUSIC: &str = "default";
/// Prefix of the name of a queue's built-in flow (`built-in:<queue>`).
pub const BUILTIN_FLOW_PREFIX: &str = "built-in:";

/// The whole configuration, as read from `switchboard.toml` and the environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the HTTP listener.
    pub server: ServerConfig,
    /// `[store]`: the database.
    pub store: StoreConfig,
    /// `[log]`: log format and filter.
    pub log: LogConfig,
    /// `[routing]`: router-wide settings.
    pub routing: RoutingSettings,
    /// `[[queues]]`: the queues.
    pub queues: Vec<QueueSetup>,
    /// `[[agents]]`: the agents.
    pub agents: Vec<AgentSetup>,
    /// `[calls]`: recording, ringing and hold music of voice contacts.
    pub calls: CallsConfig,
    /// `[agent_states]`: heartbeats, breaks and after-call work.
    pub agent_states: AgentStatesConfig,
    /// `[admission]`: the shared trunk pool and how far admission looks ahead and back.
    pub admission: AdmissionConfig,
    /// `[[clients]]`: trunk rules per client (tenant).
    pub clients: Vec<ClientConfig>,
    /// `[[handlers]]`: the media handlers (FreeSWITCH and Asterisk servers).
    pub handlers: Vec<HandlerConfig>,
    /// `[[numbers]]`: which queue each called number reaches.
    pub numbers: Vec<NumberConfig>,
    /// The directory relative paths (queues' `flow`) are read from: the config file's
    /// directory; `None` is the current directory. Not a key: set by the loader.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// `[server]`: where the web UI and REST API listen, and how they stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// IP address and port of the HTTP listener, e.g. `127.0.0.1:8080` or `[::]:8080`.
    pub listen: String,
    /// Seconds that in-flight requests and contacts get to finish at shutdown.
    pub shutdown_grace_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            shutdown_grace_s: DEFAULT_SHUTDOWN_GRACE_S,
        }
    }
}

impl ServerConfig {
    /// The listen address, parsed (a loaded config has already been checked to parse).
    pub fn listen_addr(&self) -> Result<SocketAddr, AddrParseError> {
        self.listen.trim().parse()
    }
}

/// `[store]`: the database holding contacts, agents and campaigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite:<path>`, `postgres://…`/`postgresql://…`, or a plain path to a SQLite file.
    pub url: String,
    /// Most database connections held open at once.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_STORE_URL.to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `[log]`: how and how much Switchboard logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (compact lines) or `json` (one object per line).
    pub format: LogFormat,
    /// A level or EnvFilter directives, e.g. `info` or `info,switchboard::routing=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

/// `[calls]`: how voice contacts are recorded and rung.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Directory on the media handler that recordings are written to; empty: no recording.
    pub recordings: String,
    /// File format of recordings.
    pub record_format: RecordFormatSetup,
    /// Seconds an agent's phone rings before the originate gives up.
    pub ring_timeout_s: u64,
    /// Music a stay-on-line agent hears between contacts; empty: the handler's default.
    pub agent_hold_music: String,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            recordings: DEFAULT_RECORDINGS.to_owned(),
            record_format: RecordFormatSetup::Wav,
            ring_timeout_s: DEFAULT_RING_TIMEOUT_S,
            agent_hold_music: String::new(),
        }
    }
}

/// `calls.record_format` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormatSetup {
    /// PCM WAV.
    #[default]
    Wav,
    /// MP3, where the handler supports it.
    Mp3,
}

impl From<RecordFormatSetup> for RecordFormat {
    fn from(format: RecordFormatSetup) -> Self {
        match format {
            RecordFormatSetup::Wav => RecordFormat::Wav,
            RecordFormatSetup::Mp3 => RecordFormat::Mp3,
        }
    }
}

/// `[agent_states]`: the agent manager's timers, in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentStatesConfig {
    /// How often the agent portal sends a heartbeat.
    pub heartbeat_interval_s: u64,
    /// A heartbeat older than this moves the agent to lost connection.
    pub session_timeout_s: u64,
    /// Lost connection for longer than this logs the agent out.
    pub lost_connection_limit_s: u64,
    /// A break longer than this logs the agent out.
    pub max_break_s: u64,
    /// After-call work ends on its own after this; 0: no after-call work.
    pub wrap_up_s: u64,
}

impl Default for AgentStatesConfig {
    fn default() -> Self {
        let timers = AgentTimers::default();
        Self {
            heartbeat_interval_s: timers.heartbeat_interval.as_secs(),
            session_timeout_s: timers.session_timeout.as_secs(),
            lost_connection_limit_s: timers.lost_connection_limit.as_secs(),
            max_break_s: timers.max_break.as_secs(),
            wrap_up_s: timers.wrap_up.as_secs(),
        }
    }
}

/// `[admission]`: settings shared by every client's admission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Trunks shared by all clients; 0: no pool limit.
    pub pool: u32,
    /// Seconds ahead that "soon" looks (likely arrivals, likely ends).
    pub window_s: u64,
    /// Seconds back that arrival rates look.
    pub rate_window_s: u64,
    /// Probability from which an arrival or an end counts as likely.
    pub likely: f64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        let settings = AdmissionSettings::default();
        Self {
            pool: settings.pool,
            window_s: settings.window.as_secs(),
            rate_window_s: settings.rate_window.as_secs(),
            likely: settings.likely,
        }
    }
}

/// One `[[clients]]` table: a client's (tenant's) trunk entitlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The tenant, as queues and agents name it.
    pub name: String,
    /// R: trunks per available agent.
    #[serde(default = "default_trunk_ratio")]
    pub trunk_ratio: f64,
    /// T: trunks the client keeps when few agents are available.
    #[serde(default = "default_after_hours_trunks")]
    pub after_hours_trunks: u32,
}

fn default_trunk_ratio() -> f64 {
    DEFAULT_TRUNK_RATIO
}
fn default_after_hours_trunks() -> u32 {
    DEFAULT_AFTER_HOURS_TRUNKS
}

/// `handlers[].kind` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandlerKindSetup {
    /// FreeSWITCH over the Event Socket.
    #[serde(rename = "freeswitch")]
    FreeSwitch,
    /// Asterisk over ARI.
    Asterisk,
}

impl From<HandlerKindSetup> for HandlerKind {
    fn from(kind: HandlerKindSetup) -> Self {
        match kind {
            HandlerKindSetup::FreeSwitch => HandlerKind::FreeSwitch,
            HandlerKindSetup::Asterisk => HandlerKind::Asterisk,
        }
    }
}

/// One `[[handlers]]` table, as written: which keys apply depends on `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// Unique name of the handler, for logs and the UI.
    pub name: String,
    /// `freeswitch` or `asterisk`.
    pub kind: HandlerKindSetup,
    /// FreeSWITCH only: the Event Socket's `host:port`.
    #[serde(default)]
    pub address: Option<String>,
    /// The ESL password (FreeSWITCH) or the ari.conf user's password (Asterisk).
    #[serde(default)]
    pub password: Option<String>,
    /// Instead of `password`: the environment variable holding it, read at start-up.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Legs the handler is configured to carry.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Share of new calls relative to the other handlers.
    #[serde(default = "default_handler_weight")]
    pub weight: f64,
    /// Asterisk only: the ARI base URL, e.g. `http://127.0.0.1:8088/ari`.
    #[serde(default)]
    pub url: Option<String>,
    /// Asterisk only: the ari.conf user.
    #[serde(default)]
    pub user: Option<String>,
    /// Asterisk only: the Stasis application the dialplan sends calls to.
    #[serde(default)]
    pub app: Option<String>,
    /// FreeSWITCH only: the IP address and port Switchboard listens on for the dialplan's
    /// `socket` application (outbound Event Socket); absent: no outbound socket server.
    #[serde(default)]
    pub outbound_listen: Option<String>,
}

fn default_capacity() -> u32 {
    DEFAULT_HANDLER_CAPACITY
}
fn default_handler_weight() -> f64 {
    1.0
}

/// One `[[numbers]]` table: the queue a called number reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// The called number as the handler reports it, or `*` for any number not listed.
    pub number: String,
    /// The queue it reaches.
    pub queue: String,
}

/// A secret read from the config or the environment; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A media handler, resolved: what the handler pool connects to.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerSetup {
    /// The handler's id: 1-based, in file order.
    pub id: HandlerId,
    /// Its unique name.
    pub name: String,
    /// FreeSWITCH or Asterisk.
    pub kind: HandlerKind,
    /// Where to connect: the ESL `host:port` (FreeSWITCH) or the ARI base URL (Asterisk).
    pub address: String,
    /// The ari.conf user (Asterisk); `None` for FreeSWITCH.
    pub user: Option<String>,
    /// The ESL or ARI password.
    pub password: Secret,
    /// The Stasis application (Asterisk); `None` for FreeSWITCH.
    pub app: Option<String>,
    /// Legs it is configured to carry (≥ 1).
    pub capacity: u32,
    /// Share of new calls relative to the other handlers (> 0).
    pub weight: f64,
    /// Where Switchboard listens for this FreeSWITCH's outbound socket connections.
    pub outbound_listen: Option<SocketAddr>,
}

/// A config resolved into what the router works on.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Names of tenants, queues, agents and skills, with their ids.
    pub catalog: Catalog,
    /// Router-wide settings.
    pub settings: RouterSettings,
    /// The queues, in file order.
    pub queues: Vec<QueueSpec>,
    /// The agents, in file order.
    pub agents: Vec<AgentSpec>,
    /// Recording, ringing and hold music of voice contacts.
    pub calls: CallSettings,
    /// The agent manager's timers.
    pub agent_timers: AgentTimers,
    /// Admission settings shared by every client.
    pub admission: AdmissionSettings,
    /// Trunk rules of every tenant that owns a queue or an agent, in tenant id order
    /// (the defaults for tenants not listed in `[[clients]]`).
    pub clients: Vec<(TenantId, ClientTrunks)>,
    /// The media handlers, in file order.
    pub handlers: Vec<HandlerSetup>,
    /// Called number (or `*`) → the name of the queue it reaches.
    pub numbers: BTreeMap<String, String>,
    /// Every flow: one per flow file named by queues, and a built-in one per queue without.
    pub flows: Vec<Flow>,
    /// Queue name → the name of its flow (in `flows`).
    pub queue_flows: BTreeMap<String, String>,
    /// Each agent's phone line, in file order; `None` for agents without `sip`.
    pub agent_lines: Vec<(AgentId, Option<AgentLine>)>,
}

/// Where a refused value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The config file, as named by the caller (path or label).
    File(String),
    /// An environment variable, by name.
    Env(String),
    /// Not known: a built-in default, or a `Config` built in code.
    Unknown,
}

/// One refused value: where it came from, its key, and what was wrong and expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file or environment variable the value came from.
    pub origin: Origin,
    /// The 1-based line in the file, when the value came from the file and the key is in it.
    pub line: Option<usize>,
    /// The key path, e.g. `queues[2].strategy` or `routing.seed`.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.origin, self.line) {
            (Origin::File(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Origin::File(file), None) => write!(f, "{file}: ")?,
            (Origin::Env(var), _) => write!(f, "environment variable {var}: ")?,
            (Origin::Unknown, _) => {}
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file given could not be read (it does not exist, or is not readable).
    #[error("{}", read_message(path, source))]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{file}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        /// The file, as named by the caller.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// Values that are unknown, of the wrong type, out of range or refer to nothing; one
    /// line each when displayed.
    #[error("{}", render_problems(problems))]
    Invalid {
        /// Every problem found (at least one).
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual problems of an [`ConfigError::Invalid`]; empty for the other variants.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn read_message(path: &Path, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::NotFound {
        format!("{}: no such config file", path.display())
    } else {
        format!("{}: cannot read the config file: {source}", path.display())
    }
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Loads defaults ← the file at `path` (if given) ← `SWITCHBOARD_*` variables of the
    /// process environment, then checks and resolves the result.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        let mut problems = Vec::new();
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(value) => env.push((name, value)),
                Err(_) => problems.push(Problem {
                    origin: Origin::Env(name),
                    line: None,
                    key: String::new(),
                    message: "the value is not valid UTF-8".to_owned(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        Config::load_with(path, env)
    }

    /// As [`Config::load`], with the environment variables given instead of read from the
    /// process (variables without the `SWITCHBOARD_` prefix are ignored).
    pub fn load_with(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Some(FileText {
                    label: path.display().to_string(),
                    path: path.to_owned(),
                    text,
                })
            }
            None => None,
        };
        load(file, env)
    }

    /// Loads a config from `text` (TOML), naming it `name` in errors, with the environment
    /// variables `env` (variables without the `SWITCHBOARD_` prefix are ignored).
    pub fn load_from_str(
        text: &str,
        name: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file = FileText {
            label: name.to_owned(),
            path: PathBuf::from(name),
            text: text.to_owned(),
        };
        load(Some(file), env)
    }

    /// Checks every value and resolves queues and agents into the router's specs: queue names
    /// are declared first (so overflow targets may point forward), then queues, then agents.
    /// Flow files are read relative to [`Config::base_dir`]; `password_env` variables are read
    /// from the process environment.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with_env(|name| std::env::var(name).ok())
    }

    /// As [`Config::resolve`], with `password_env` variables looked up by `lookup` instead of
    /// in the process environment.
    pub fn resolve_with_env(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, ConfigError> {
        self.resolve_inner(&lookup)
            .map_err(|errors| ConfigError::Invalid {
                problems: errors
                    .into_iter()
                    .map(|e| Problem {
                        origin: Origin::Unknown,
                        line: None,
                        key: e.path,
                        message: e.message,
                    })
                    .collect(),
            })
    }

    fn resolve_inner(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, Vec<SetupError>> {
        let mut errors = self.check_sections();
        for (i, queue) in self.queues.iter().enumerate() {
            if let Err(e) = queue.validate(&format!("queues[{i}]")) {
                errors.push(e);
            }
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if let Err(e) = agent.validate(&format!("agents[{i}]")) {
                errors.push(e);
            }
        }
        errors.extend(duplicates(
            "queues",
            "queue",
            self.queues.iter().map(|q| q.name.as_str()),
        ));
        errors.extend(duplicates(
            "agents",
            "agent",
            self.agents.iter().map(|a| a.name.as_str()),
        ));
        // What needs no catalog is checked together with the queues and agents, so that one
        // run reports all of it.
        let handlers = self.resolve_handlers(lookup, &mut errors);
        let numbers = self.resolve_numbers(&mut errors);
        let trunks = self.resolve_clients(&mut errors);
        let lines = self.resolve_agent_lines(&mut errors);
        let (flows, queue_flows) = self.resolve_flows(&mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut catalog = Catalog::new();
        catalog.declare_queues(self.queues.iter().map(|q| q.name.as_str()));
        let mut queues = Vec::with_capacity(self.queues.len());
        for (i, queue) in self.queues.iter().enumerate() {
            match catalog.resolve_queue(queue, &format!("queues[{i}]")) {
                Ok(spec) => queues.push(spec),
                Err(e) => errors.push(e),
            }
        }
        // An agent of a queue that failed would only repeat that queue's error.
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut agents = Vec::with_capacity(self.agents.len());
        for (i, agent) in self.agents.iter().enumerate() {
            match catalog.resolve_agent(agent, &format!("agents[{i}]")) {
                Ok(spec) => agents.push(spec),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let tenants: BTreeSet<TenantId> = queues
            .iter()
            .map(|q| q.tenant)
            .chain(agents.iter().map(|a| a.tenant))
            .collect();
        let clients = tenants
            .into_iter()
            .map(|tenant| {
                let rules =
                    trunks
                        .get(catalog.tenant_name(tenant))
                        .copied()
                        .unwrap_or(ClientTrunks {
                            ratio: DEFAULT_TRUNK_RATIO,
                            after_hours: DEFAULT_AFTER_HOURS_TRUNKS,
                        });
                (tenant, rules)
            })
            .collect();
        let agent_lines = agents.iter().map(|a| a.id).zip(lines).collect();
        Ok(Resolved {
            catalog,
            settings: RouterSettings::from_setup(&self.routing),
            queues,
            agents,
            calls: self.calls.settings(),
            agent_timers: self.agent_states.timers(),
            admission: self.admission.settings(),
            clients,
            handlers,
            numbers,
            flows,
            queue_flows,
            agent_lines,
        })
    }

    /// Checks `[[handlers]]` and resolves them, reading `password_env` variables.
    fn resolve_handlers(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<SetupError>,
    ) -> Vec<HandlerSetup> {
        let mut handlers = Vec::with_capacity(self.handlers.len());
        for (i, h) in self.handlers.iter().enumerate() {
            let at = format!("handlers[{i}]");
            let before = errors.len();
            if let Err(e) = check_text_name(format!("{at}.name"), &h.name) {
                errors.push(e);
            }
            let (address, user, app, outbound_listen) = match h.kind {
                HandlerKindSetup::FreeSwitch => {
                    for (key, given) in [
                        ("url", h.url.is_some()),
                        ("user", h.user.is_some()),
                        ("app", h.app.is_some()),
                    ] {
                        if given {
                            errors.push(SetupError::new(
                                format!("{at}.{key}"),
                                format!("`{key}` is for asterisk handlers; expected it left out of a freeswitch handler (which is reached at `address`)"),
                            ));
                        }
                    }
                    let address = match &h.address {
                        Some(address) => {
                            if let Err(message) = check_host_port(address) {
                                errors.push(SetupError::new(format!("{at}.address"), message));
                            }
                            address.trim().to_owned()
                        }
                        None => {
                            errors.push(SetupError::new(
                                at.clone(),
                                "required key `address` is missing: a freeswitch handler needs the Event Socket's host:port, e.g. \"127.0.0.1:8021\"",
                            ));
                            String::new()
                        }
                    };
                    let outbound = h.outbound_listen.as_ref().and_then(|listen| {
                        let parsed = listen.trim().parse::<SocketAddr>();
                        if parsed.is_err() {
                            errors.push(SetupError::new(
                                format!("{at}.outbound_listen"),
                                format!("{listen:?} is not an IP address and port; expected e.g. \"127.0.0.1:8040\" (host names are not accepted)"),
                            ));
                        }
                        parsed.ok()
                    });
                    (address, None, None, outbound)
                }
                HandlerKindSetup::Asterisk => {
                    for (key, given) in [
                        ("address", h.address.is_some()),
                        ("outbound_listen", h.outbound_listen.is_some()),
                    ] {
                        if given {
                            errors.push(SetupError::new(
                                format!("{at}.{key}"),
                                format!("`{key}` is for freeswitch handlers; expected it left out of an asterisk handler (which is reached at `url`)"),
                            ));
                        }
                    }
                    let url = match &h.url {
                        Some(url) => {
                            if let Err(message) = check_ari_url(url) {
                                errors.push(SetupError::new(format!("{at}.url"), message));
                            }
                            url.trim().to_owned()
                        }
                        None => {
                            errors.push(SetupError::new(
                                at.clone(),
                                "required key `url` is missing: an asterisk handler needs the ARI base URL, e.g. \"http://127.0.0.1:8088/ari\"",
                            ));
                            String::new()
                        }
                    };
                    let user = match &h.user {
                        Some(user) => {
                            if let Err(e) =
                                check_word(format!("{at}.user"), user, "an ari.conf user name")
                            {
                                errors.push(e);
                            }
                            Some(user.clone())
                        }
                        None => {
                            errors.push(SetupError::new(
                                at.clone(),
                                "required key `user` is missing: an asterisk handler needs the ari.conf user",
                            ));
                            None
                        }
                    };
                    let app = h.app.clone().unwrap_or_else(|| DEFAULT_ARI_APP.to_owned());
                    if let Err(e) =
                        check_word(format!("{at}.app"), &app, "a Stasis application name")
                    {
                        errors.push(e);
                    }
                    (url, user, Some(app), None)
                }
            };
            let password = handler_password(&at, h, lookup).unwrap_or_else(|e| {
                errors.push(e);
                Secret::new(String::new())
            });
            if !(1..=HANDLER_CAPACITY_LIMIT).contains(&h.capacity) {
                errors.push(SetupError::new(
                    format!("{at}.capacity"),
                    format!(
                        "{} is out of range; expected a number of legs from 1 to {HANDLER_CAPACITY_LIMIT}",
                        h.capacity
                    ),
                ));
            }
            if !h.weight.is_finite() || h.weight <= 0.0 || h.weight > HANDLER_WEIGHT_LIMIT {
                errors.push(SetupError::new(
                    format!("{at}.weight"),
                    format!(
                        "{} is out of range; expected a number above 0, at most {HANDLER_WEIGHT_LIMIT}",
                        h.weight
                    ),
                ));
            }
            if errors.len() == before {
                handlers.push(HandlerSetup {
                    id: HandlerId(u32::try_from(i + 1).unwrap_or(u32::MAX)),
                    name: h.name.clone(),
                    kind: h.kind.into(),
                    address,
                    user,
                    password,
                    app,
                    capacity: h.capacity,
                    weight: h.weight,
                    outbound_listen,
                });
            }
        }
        errors.extend(duplicates(
            "handlers",
            "handler",
            self.handlers.iter().map(|h| h.name.as_str()),
        ));
        // Two listeners on one address: the second bind would fail at start-up.
        let server = self.server.listen_addr().ok();
        let mut listeners: BTreeMap<SocketAddr, usize> = BTreeMap::new();
        for (i, handler) in handlers.iter().enumerate() {
            let Some(listen) = handler.outbound_listen else {
                continue;
            };
            let key = format!("handlers[{i}].outbound_listen");
            if Some(listen) == server {
                errors.push(SetupError::new(
                    key,
                    format!("{listen} is also server.listen; expected another port"),
                ));
            } else if let Some(j) = listeners.insert(listen, i) {
                errors.push(SetupError::new(
                    key,
                    format!("{listen} is also handlers[{j}].outbound_listen; expected one listener per address"),
                ));
            }
        }
        handlers
    }

    /// Checks `[[numbers]]`: well-formed, unique, and reaching a queue.
    fn resolve_numbers(&self, errors: &mut Vec<SetupError>) -> BTreeMap<String, String> {
        let queues: BTreeSet<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
        let mut numbers = BTreeMap::new();
        for (i, entry) in self.numbers.iter().enumerate() {
            if let Err(message) = check_number(&entry.number) {
                errors.push(SetupError::new(format!("numbers[{i}].number"), message));
            }
            if !queues.contains(entry.queue.as_str()) {
                errors.push(SetupError::new(
                    format!("numbers[{i}].queue"),
                    format!(
                        "no queue is named {:?}; expected the name of a [[queues]] table",
                        entry.queue
                    ),
                ));
            }
            numbers
                .entry(entry.number.clone())
                .or_insert_with(|| entry.queue.clone());
        }
        errors.extend(duplicates_of(
            "numbers",
            "number",
            "number",
            self.numbers.iter().map(|n| n.number.as_str()),
        ));
        numbers
    }

    /// Checks `[[clients]]`; returns each listed client's trunk rules by tenant name.
    fn resolve_clients(&self, errors: &mut Vec<SetupError>) -> BTreeMap<String, ClientTrunks> {
        let tenants: BTreeSet<&str> = self
            .queues
            .iter()
            .map(|q| q.tenant.as_str())
            .chain(self.agents.iter().map(|a| a.tenant.as_str()))
            .collect();
        for (i, queue) in self.queues.iter().enumerate() {
            if queue.tenant == crate::web::OPERATOR_TENANT {
                errors.push(operator_tenant(format!("queues[{i}].tenant")));
            }
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if agent.tenant == crate::web::OPERATOR_TENANT {
                errors.push(operator_tenant(format!("agents[{i}].tenant")));
            }
        }
        let mut trunks = BTreeMap::new();
        for (i, client) in self.clients.iter().enumerate() {
            let at = format!("clients[{i}]");
            if let Err(e) = check_text_name(format!("{at}.name"), &client.name) {
                errors.push(e);
            } else if !tenants.contains(client.name.as_str()) {
                // A client that owns nothing is most likely a misspelt tenant.
                errors.push(SetupError::new(
                    format!("{at}.name"),
                    format!(
                        "no queue or agent belongs to client {:?}; expected the `tenant` of a queue or an agent",
                        client.name
                    ),
                ));
            }
            let ratio = client.trunk_ratio;
            if !ratio.is_finite() || ratio <= 0.0 || ratio > TRUNK_RATIO_LIMIT {
                errors.push(SetupError::new(
                    format!("{at}.trunk_ratio"),
                    format!(
                        "{ratio} is out of range; expected a number of trunks per agent above 0, at most {TRUNK_RATIO_LIMIT}"
                    ),
                ));
            }
            trunks.entry(client.name.clone()).or_insert(ClientTrunks {
                ratio,
                after_hours: client.after_hours_trunks,
            });
        }
        errors.extend(duplicates(
            "clients",
            "client",
            self.clients.iter().map(|c| c.name.as_str()),
        ));
        trunks
    }

    /// Each agent's line (file order): its `sip` user with its `stay_on_line`.
    fn resolve_agent_lines(&self, errors: &mut Vec<SetupError>) -> Vec<Option<AgentLine>> {
        let mut lines = Vec::with_capacity(self.agents.len());
        for (i, agent) in self.agents.iter().enumerate() {
            let line = match &agent.sip {
                Some(sip) => match parse_sip_user(sip) {
                    Ok(target) => Some(AgentLine {
                        target,
                        stay_on_line: agent.stay_on_line,
                    }),
                    Err(message) => {
                        errors.push(SetupError::new(format!("agents[{i}].sip"), message));
                        None
                    }
                },
                None => {
                    if agent.stay_on_line != StayOnLine::Never {
                        errors.push(SetupError::new(
                            format!("agents[{i}].stay_on_line"),
                            "an agent without `sip` has no phone line to keep up; expected `sip` too, or stay_on_line = \"never\"",
                        ));
                    }
                    None
                }
            };
            lines.push(line);
        }
        lines
    }

    /// Reads each queue's flow file (once per file) or builds its built-in flow, and checks
    /// that the queues the flows send callers to exist and belong to the queue's client.
    fn resolve_flows(&self, errors: &mut Vec<SetupError>) -> (Vec<Flow>, BTreeMap<String, String>) {
        let tenants: BTreeMap<&str, &str> = self
            .queues
            .iter()
            .rev()
            .map(|q| (q.name.as_str(), q.tenant.as_str()))
            .collect();
        let mut flows: Vec<Flow> = Vec::new();
        let mut queue_flows = BTreeMap::new();
        // Flow name → where it came from, for unique names.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        // Flow file → the loaded flow's index and its queue references (None: refused).
        let mut files: BTreeMap<PathBuf, Option<(usize, Vec<QueueRef>)>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (i, queue) in self.queues.iter().enumerate() {
            // A queue named twice is reported as such; its flow would only repeat it.
            if !seen.insert(queue.name.as_str()) {
                continue;
            }
            let at = format!("queues[{i}].flow");
            let Some(relative) = &queue.flow else {
                let name = format!("{BUILTIN_FLOW_PREFIX}{}", queue.name);
                if let Some(other) = names.get(&name) {
                    errors.push(SetupError::new(
                        format!("queues[{i}].name"),
                        format!("the built-in flow's name {name:?} is also the name of the flow in {other}; expected unique flow names"),
                    ));
                    continue;
                }
                match builtin_flow(&queue.name) {
                    Ok(flow) => {
                        names.insert(
                            name.clone(),
                            format!("the built-in flow of queue {:?}", queue.name),
                        );
                        queue_flows.insert(queue.name.clone(), name);
                        flows.push(flow);
                    }
                    Err(message) => {
                        errors.push(SetupError::new(format!("queues[{i}].name"), message))
                    }
                }
                continue;
            };
            if relative.trim().is_empty() {
                errors.push(SetupError::new(
                    at,
                    "expected a path to a flow file, relative to the config file's directory",
                ));
                continue;
            }
            let path = match &self.base_dir {
                Some(dir) => dir.join(relative),
                None => PathBuf::from(relative),
            };
            if !files.contains_key(&path) {
                let loaded = match load_flow(&path) {
                    Ok((flow, refs)) => {
                        let mut ok = true;
                        for r in &refs {
                            if !tenants.contains_key(r.queue.as_str()) {
                                ok = false;
                                errors.push(SetupError::new(
                                    at.clone(),
                                    format!(
                                        "{}: no queue is named {:?}; expected the name of a [[queues]] table",
                                        r.at, r.queue
                                    ),
                                ));
                            }
                        }
                        let label = format!("{}", path.display());
                        match names.get(&flow.name) {
                            Some(other) => {
                                ok = false;
                                errors.push(SetupError::new(
                                    at.clone(),
                                    format!(
                                        "{label}: flow name {:?} is also the name of the flow in {other}; expected unique flow names",
                                        flow.name
                                    ),
                                ));
                            }
                            None => {
                                names.insert(flow.name.clone(), label);
                            }
                        }
                        ok.then(|| {
                            flows.push(flow);
                            (flows.len() - 1, refs)
                        })
                    }
                    Err(message) => {
                        errors.push(SetupError::new(at.clone(), message));
                        None
                    }
                };
                files.insert(path.clone(), loaded);
            }
            let Some(Some((index, refs))) = files.get(&path) else {
                continue;
            };
            // One flow file may serve several queues, but never send one client's callers
            // to another client's queue.
            for r in refs {
                if let Some(&tenant) = tenants.get(r.queue.as_str())
                    && tenant != queue.tenant
                {
                    errors.push(SetupError::new(
                            at.clone(),
                            format!(
                                "{}: queue {:?} belongs to client {tenant:?}, not to {:?} (the client of queue {:?}); expected the flow to use its own client's queues only",
                                r.at, r.queue, queue.tenant, queue.name
                            ),
                        ));
                }
            }
            if let Some(flow) = flows.get(*index) {
                queue_flows.insert(queue.name.clone(), flow.name.clone());
            }
        }
        (flows, queue_flows)
    }

    /// Range checks of `[server]`, `[store]`, `[log]` and `[routing]`.
    fn check_sections(&self) -> Vec<SetupError> {
        let mut errors = Vec::new();
        if self.server.listen_addr().is_err() {
            errors.push(SetupError::new(
                "server.listen",
                format!(
                    "{:?} is not an IP address and port; expected e.g. \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::]:8080\" (host names are not accepted)",
                    self.server.listen
                ),
            ));
        }
        if self.server.shutdown_grace_s == 0 {
            errors.push(SetupError::new(
                "server.shutdown_grace_s",
                "0 is out of range; expected a number of seconds ≥ 1",
            ));
        }
        if let Err(message) = check_store_url(&self.store.url) {
            errors.push(SetupError::new("store.url", message));
        }
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&self.store.max_connections) {
            errors.push(SetupError::new(
                "store.max_connections",
                format!(
                    "{} is out of range; expected 1 to {MAX_CONNECTIONS_LIMIT}",
                    self.store.max_connections
                ),
            ));
        }
        if let Err(message) = logging::check_level(&self.log.level) {
            errors.push(SetupError::new("log.level", message));
        }
        let grace = self.routing.startup_grace_s;
        if !grace.is_finite() || !(0.0..=86_400.0).contains(&grace) {
            errors.push(SetupError::new(
                "routing.startup_grace_s",
                format!("{grace} is out of range; expected a number of seconds from 0 to 86400"),
            ));
        }
        if !(1..=HISTORY_CAPACITY_LIMIT).contains(&self.routing.history_capacity) {
            errors.push(SetupError::new(
                "routing.history_capacity",
                format!(
                    "{} is out of range; expected 1 to {HISTORY_CAPACITY_LIMIT}",
                    self.routing.history_capacity
                ),
            ));
        }
        errors.extend(self.calls.check());
        errors.extend(self.agent_states.check());
        errors.extend(self.admission.check());
        errors
    }
}

impl CallsConfig {
    /// Range checks of `[calls]`.
    fn check(&self) -> Vec<SetupError> {
        let mut errors = Vec::new();
        let recordings = &self.recordings;
        if !recordings.is_empty() {
            if !recordings.starts_with('/') {
                errors.push(SetupError::new(
                    "calls.recordings",
                    format!("{recordings:?} is not an absolute directory path; expected e.g. \"{DEFAULT_RECORDINGS}\", or \"\" for no recording"),
                ));
            } else if has_space_or_control(recordings) {
                errors.push(SetupError::new(
                    "calls.recordings",
                    format!("{recordings:?} contains white space or control characters, which the handlers' commands cannot carry; expected a path without them"),
                ));
            }
        }
        if !(1..=RING_TIMEOUT_LIMIT_S).contains(&self.ring_timeout_s) {
            errors.push(SetupError::new(
                "calls.ring_timeout_s",
                format!(
                    "{} is out of range; expected a number of seconds from 1 to {RING_TIMEOUT_LIMIT_S}",
                    self.ring_timeout_s
                ),
            ));
        }
        if has_space_or_control(&self.agent_hold_music) {
            errors.push(SetupError::new(
                "calls.agent_hold_music",
                format!(
                    "{:?} contains white space or control characters; expected a music class or stream such as \"local_stream://moh\", or \"\" for the default",
                    self.agent_hold_music
                ),
            ));
        }
        errors
    }

    /// The controller's call settings.
    pub fn settings(&self) -> CallSettings {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        CallSettings {
            ring_timeout: Duration::from_secs(self.ring_timeout_s),
            recordings: text(&self.recordings),
            record_format: self.record_format.into(),
            agent_hold_music: text(&self.agent_hold_music),
        }
    }
}

/// Pushes a problem when `value` is outside `min..=max` seconds.
fn check_seconds_range(errors: &mut Vec<SetupError>, key: &str, value: u64, min: u64, max: u64) {
    if !(min..=max).contains(&value) {
        errors.push(SetupError::new(
            key,
            format!("{value} is out of range; expected a number of seconds from {min} to {max}"),
        ));
    }
}

impl AgentStatesConfig {
    /// Range checks of `[agent_states]`.
    fn check(&self) -> Vec<SetupError> {
        let mut errors = Vec::new();
        let heartbeat = self.heartbeat_interval_s;
        check_seconds_range(
            &mut errors,
            "agent_states.heartbeat_interval_s",
            heartbeat,
            1,
            3600,
        );
        if self.session_timeout_s <= heartbeat {
            errors.push(SetupError::new(
                "agent_states.session_timeout_s",
                format!(
                    "{} is not more than heartbeat_interval_s ({heartbeat}); expected a longer timeout, or every agent would lose the connection between two heartbeats",
                    self.session_timeout_s
                ),
            ));
        } else {
            check_seconds_range(
                &mut errors,
                "agent_states.session_timeout_s",
                self.session_timeout_s,
                2,
                TIMER_LIMIT_S,
            );
        }
        check_seconds_range(
            &mut errors,
            "agent_states.lost_connection_limit_s",
            self.lost_connection_limit_s,
            0,
            TIMER_LIMIT_S,
        );
        check_seconds_range(
            &mut errors,
            "agent_states.max_break_s",
            self.max_break_s,
            1,
            TIMER_LIMIT_S,
        );
        check_seconds_range(
            &mut errors,
            "agent_states.wrap_up_s",
            self.wrap_up_s,
            0,
            TIMER_LIMIT_S,
        );
        errors
    }

    /// The agent manager's timers.
    pub fn timers(&self) -> AgentTimers {
        AgentTimers {
            heartbeat_interval: Duration::from_secs(self.heartbeat_interval_s),
            session_timeout: Duration::from_secs(self.session_timeout_s),
            lost_connection_limit: Duration::from_secs(self.lost_connection_limit_s),
            max_break: Duration::from_secs(self.max_break_s),
            wrap_up: Duration::from_secs(self.wrap_up_s),
        }
    }
}

impl AdmissionConfig {
    /// Range checks of `[admission]`.
    fn check(&self) -> Vec<SetupError> {
        let mut errors = Vec::new();
        check_seconds_range(
            &mut errors,
            "admission.window_s",
            self.window_s,
            1,
            TIMER_LIMIT_S,
        );
        check_seconds_range(
            &mut errors,
            "admission.rate_window_s",
            self.rate_window_s,
            1,
            TIMER_LIMIT_S,
        );
        if !self.likely.is_finite() || self.likely <= 0.0 || self.likely > 1.0 {
            errors.push(SetupError::new(
                "admission.likely",
                format!(
                    "{} is out of range; expected a probability above 0, at most 1",
                    self.likely
                ),
            ));
        }
        errors
    }

    /// Admission's settings.
    pub fn settings(&self) -> AdmissionSettings {
        AdmissionSettings {
            pool: self.pool,
            window: Duration::from_secs(self.window_s),
            rate_window: Duration::from_secs(self.rate_window_s),
            likely: self.likely,
        }
    }
}

fn has_space_or_control(text: &str) -> bool {
    text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A name of a handler or client: as queue and agent names.
fn check_text_name(path: String, name: &str) -> Result<(), SetupError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(SetupError::new(
            path,
            "expected a non-empty name of at most 200 characters",
        ));
    }
    Ok(())
}

/// A word that goes into a URL or a command as it is: letters, digits, `-`, `_` and `.`.
fn check_word(path: String, value: &str, what: &str) -> Result<(), SetupError> {
    let ok = !value.is_empty()
        && value.len() <= 200
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SetupError::new(
            path,
            format!("{value:?} is not {what}; expected letters, digits, '-', '_' and '.' only"),
        ))
    }
}

/// `host:port` of an Event Socket: an IP address and port, or a host name and port.
fn check_host_port(address: &str) -> Result<(), String> {
    let address = address.trim();
    if address.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let expected =
        "expected host:port, e.g. \"127.0.0.1:8021\", \"fs1.example.com:8021\" or \"[::1]:8021\"";
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{address:?} has no port; {expected}"));
    };
    if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
        return Err(format!(
            "{port:?} is not a port from 1 to 65535; {expected}"
        ));
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if host_ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not an IP address or host name; {expected}"
        ))
    }
}

/// An ARI base URL: http(s), a host, no white space.
fn check_ari_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    let expected = "expected an http:// or https:// URL such as \"http://127.0.0.1:8088/ari\"";
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !has_space_or_control(rest) => {
            Ok(())
        }
        _ => Err(format!("{url:?} is not an ARI URL; {expected}")),
    }
}

/// The handler's password, from `password` or from the variable `password_env` names.
fn handler_password(
    at: &str,
    handler: &HandlerConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, SetupError> {
    match (&handler.password, &handler.password_env) {
        (Some(_), Some(_)) => Err(SetupError::new(
            format!("{at}.password_env"),
            "both `password` and `password_env` are given; expected exactly one of them",
        )),
        (None, None) => Err(SetupError::new(
            at,
            "required key `password` is missing; expected `password`, or `password_env` naming the environment variable that holds it",
        )),
        (Some(password), None) if password.is_empty() => Err(SetupError::new(
            format!("{at}.password"),
            "expected a non-empty password",
        )),
        (Some(password), None) => Ok(Secret::new(password.clone())),
        (None, Some(var)) => {
            let key = format!("{at}.password_env");
            let valid =
                !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(SetupError::new(
                    key,
                    format!(
                        "{var:?} is not an environment variable name; expected letters, digits and '_', e.g. \"FS1_PASSWORD\""
                    ),
                ));
            }
            // Such a variable would be read as a config key and refused as unknown.
            if var.starts_with(ENV_PREFIX) && !var.starts_with(TEST_VAR_PREFIX) {
                return Err(SetupError::new(
                    key,
                    format!(
                        "{var} starts with {ENV_PREFIX}, which names config keys; expected another name, e.g. \"FS1_PASSWORD\""
                    ),
                ));
            }
            match lookup(var) {
                Some(password) if !password.is_empty() => Ok(Secret::new(password)),
                Some(_) => Err(SetupError::new(
                    key,
                    format!(
                        "environment variable {var} is empty; expected it to hold the handler's password"
                    ),
                )),
                None => Err(SetupError::new(
                    key,
                    format!(
                        "environment variable {var} is not set; expected it to hold the handler's password"
                    ),
                )),
            }
        }
    }
}

/// The error for a client named as the operator's own keys are stored.
fn operator_tenant(path: String) -> SetupError {
    SetupError::new(
        path,
        format!(
            "{:?} is the operator's own name, not a client's; choose another",
            crate::web::OPERATOR_TENANT
        ),
    )
}

/// A called number: `*`, or the number as the handler reports it (digits, an optional
/// leading `+`, and the letters and signs of SIP user parts).
/// Whether `number` may be a `[[numbers]]` entry: `Err` says what is wrong.
pub(crate) fn check_number(number: &str) -> Result<(), String> {
    if number == ANY_NUMBER {
        return Ok(());
    }
    let body = number.strip_prefix('+').unwrap_or(number);
    let ok = !body.is_empty()
        && number.len() <= 64
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '#'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{number:?} is not a called number; expected e.g. \"+498001234\" or \"1000\" (letters, digits, '+' first, '-', '_', '.', '*', '#'; at most 64), or \"*\" for any number not listed"
        ))
    }
}

/// An agent's `sip`: `user` or `user@domain`.
fn parse_sip_user(sip: &str) -> Result<OriginateTarget, String> {
    const EXPECTED: &str = "expected a SIP user such as \"1000\" or \"1000@pbx.example.com\"";
    if sip.contains('/') {
        return Err(format!(
            "{sip:?} is a dial string, which is not supported here; {EXPECTED}"
        ));
    }
    let (user, domain) = match sip.split_once('@') {
        Some((user, domain)) => (user, Some(domain)),
        None => (sip, None),
    };
    // Characters that dial strings use as separators (`,` `|` `;` `{`…) would let a user
    // ring someone else; SIP users in contact centers are extensions and logins anyway.
    let user_ok = !user.is_empty()
        && user.len() <= 100
        && user.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '+' | '*' | '#' | '~' | '!' | '%')
        });
    if !user_ok {
        return Err(format!("{sip:?} is not a SIP user; {EXPECTED}"));
    }
    if let Some(domain) = domain {
        if domain.is_empty() {
            return Err(format!("{sip:?} has no domain after '@'; {EXPECTED}"));
        }
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !domain_ok {
            return Err(format!(
                "{domain:?} is not a domain; {EXPECTED} (a host name or IPv4 address after '@')"
            ));
        }
    }
    Ok(OriginateTarget::SipUser {
        user: user.to_owned(),
        domain: domain.map(str::to_owned),
    })
}

/// A queue a flow step sends callers to, and where in the flow file.
struct QueueRef {
    /// `file:line: steps[2].queue.name`.
    at: String,
    /// The queue's name.
    queue: String,
}

/// Reads and validates a flow file; problems name the file, the line and the key.
fn load_flow(path: &Path) -> Result<(Flow, Vec<QueueRef>), String> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{label}: no such flow file (paths are relative to the config file's directory)"
            )
        } else {
            format!("{label}: cannot read the flow file: {e}")
        }
    })?;
    let setup: FlowFile = toml::from_str(&text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(&text, span.start))
            .unwrap_or((1, 1));
        format!("{label}:{line}:{column}: {}", e.message().trim())
    })?;
    let located = |key: &str| match line_of(&text, &parse_path(key)) {
        Some(line) => format!("{label}:{line}: {key}"),
        None => format!("{label}: {key}"),
    };
    let flow = Flow::from_setup(&setup, &label)
        .map_err(|e| format!("{}: {}", located(&e.path), e.message))?;
    let refs = flow
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match step {
            Step::Queue { queue, .. } => Some((format!("steps[{i}].queue.name"), queue)),
            Step::Voicemail { queue, .. } => Some((format!("steps[{i}].voicemail.queue"), queue)),
            _ => None,
        })
        .map(|(key, queue)| QueueRef {
            at: located(&key),
            queue: queue.clone(),
        })
        .collect();
    Ok((flow, refs))
}

/// The flow of a queue without `flow`: wait in the queue with music, no prompts.
fn builtin_flow(queue: &str) -> Result<Flow, String> {
    let mut wait = toml::Table::new();
    wait.insert("name".to_owned(), toml::Value::from(queue));
    wait.insert("music".to_owned(), toml::Value::from(BUILTIN_FLOW_MUSIC));
    let mut step = toml::Table::new();
    step.insert("queue".to_owned(), toml::Value::Table(wait));
    let step: StepSetup = toml::Value::Table(step)
        .try_into()
        .map_err(|e: toml::de::Error| format!("cannot build the built-in flow: {}", e.message()))?;
    let setup = FlowFile {
        name: format!("{BUILTIN_FLOW_PREFIX}{queue}"),
        hours: None,
        closed: None,
        steps: vec![step],
    };
    Flow::from_setup(&setup, "built-in flow")
        .map_err(|e| format!("cannot build the built-in flow: {}: {}", e.path, e.message))
}

fn check_store_url(url: &str) -> Result<(), String> {
    const EXPECTED: &str =
        "expected sqlite:<path>, postgres://…, postgresql://…, or a path to a SQLite file";
    let url = url.trim();
    if url.is_empty() {
        return Err(format!("{EXPECTED}, found an empty string"));
    }
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|prefix| url.starts_with(prefix))
    {
        return Ok(());
    }
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .or_else(|| url.strip_suffix(':'))
        .or_else(|| {
            ["postgres:", "postgresql:"]
                .iter()
                .find_map(|p| url.strip_prefix(p).map(|_| p.trim_end_matches(':')))
        });
    match scheme {
        Some(scheme) => Err(format!("unsupported store {scheme:?}; {EXPECTED}")),
        None => Ok(()),
    }
}

fn duplicates<'a>(list: &str, what: &str, names: impl Iterator<Item = &'a str>) -> Vec<SetupError> {
    duplicates_of(list, "name", what, names)
}

/// Problems for entries of `list` whose `field` repeats an earlier entry's.
fn duplicates_of<'a>(
    list: &str,
    field: &str,
    what: &str,
    names: impl Iterator<Item = &'a str>,
) -> Vec<SetupError> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    let unique = if what == field {
        format!("unique {field}s")
    } else {
        format!("unique {what} {field}s")
    };
    for (i, name) in names.enumerate() {
        match first.get(name) {
            Some(&j) => errors.push(SetupError::new(
                format!("{list}[{i}].{field}"),
                format!("{what} {name:?} is already defined at {list}[{j}]; expected {unique}"),
            )),
            None => {
                first.insert(name, i);
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------------
// Loading: sources, providers, and the rendering of figment's errors.

/// The config file's text and how to name it.
struct FileText {
    label: String,
    path: PathBuf,
    text: String,
}

/// The source name of the environment provider's metadata.
const ENV_SOURCE: &str = "environment";

/// The parsed file, as a figment provider that names the file in errors.
struct FileProvider {
    label: String,
    path: PathBuf,
    dict: Dict,
}

impl Provider for FileProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.label.clone()).source(Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

/// `SWITCHBOARD_<SECTION>_<KEY>` variables, as a provider whose metadata maps a key path back
/// to the variable that set it.
struct EnvProvider {
    dict: Dict,
    names: Arc<BTreeMap<String, String>>,
}

impl Provider for EnvProvider {
    fn metadata(&self) -> Metadata {
        let names = Arc::clone(&self.names);
        Metadata::named("environment variable")
            .source(Source::Custom(ENV_SOURCE.to_owned()))
            .interpolater(move |_: &Profile, keys: &[&str]| {
                let key = keys.iter().take(2).copied().collect::<Vec<_>>().join(".");
                names.get(&key).cloned().unwrap_or_else(|| {
                    let upper: Vec<String> = keys
                        .iter()
                        .take(2)
                        .map(|k| k.to_ascii_uppercase())
                        .collect();
                    format!("{ENV_PREFIX}{}", upper.join("_"))
                })
            })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

fn load(
    file: Option<FileText>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = &file {
        let table = parse_file(file)?;
        figment = figment.merge(FileProvider {
            label: file.label.clone(),
            path: file.path.clone(),
            dict: to_dict(&table),
        });
    }
    let env = env_provider(env)?;
    figment = figment.merge(env);
    let loader = Loader {
        file: file.as_ref(),
        figment: &figment,
    };
    let problems = loader.names_given_as_numbers();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid { problems });
    }
    let mut config: Config = figment.extract().map_err(|error| ConfigError::Invalid {
        problems: error.into_iter().map(|e| loader.problem(e)).collect(),
    })?;
    config.base_dir = file
        .as_ref()
        .and_then(|f| f.path.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(Path::to_path_buf);
    config
        .resolve_inner(&|name| std::env::var(name).ok())
        .map_err(|errors| ConfigError::Invalid {
            problems: errors
                .into_iter()
                .map(|e| loader.setup_problem(e))
                .collect(),
        })?;
    Ok(config)
}

fn parse_file(file: &FileText) -> Result<toml::Table, ConfigError> {
    file.text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(&file.text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            file: file.label.clone(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |last| last.chars().count() + 1);
    (line, column)
}

fn to_figment(value: &toml::Value) -> FValue {
    match value {
        toml::Value::String(s) => FValue::from(s.clone()),
        toml::Value::Integer(i) => FValue::from(*i),
        toml::Value::Float(f) => FValue::from(*f),
        toml::Value::Boolean(b) => FValue::from(*b),
        toml::Value::Datetime(d) => FValue::from(d.to_string()),
        toml::Value::Array(items) => FValue::from(items.iter().map(to_figment).collect::<Vec<_>>()),
        toml::Value::Table(table) => FValue::from(to_dict(table)),
    }
}

fn to_dict(table: &toml::Table) -> Dict {
    table
        .iter()
        .map(|(k, v)| (k.clone(), to_figment(v)))
        .collect()
}

/// Turns `SWITCHBOARD_<SECTION>_<KEY>=value` into `section.key = value`, refusing variables
/// that name no section or key (like unknown keys in the file).
fn env_provider(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<EnvProvider, ConfigError> {
    let defaults = match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(table)) => table,
        _ => toml::Table::new(),
    };
    let sections: Vec<&str> = defaults
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with(ENV_PREFIX)
                && name != CONFIG_PATH_VAR
                && !name.starts_with(TEST_VAR_PREFIX)
        })
        .collect();
    vars.sort();
    let mut dict = Dict::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut refuse = |var: &str, key: String, message: String| {
        problems.push(Problem {
            origin: Origin::Env(var.to_owned()),
            line: None,
            key,
            message,
        })
    };
    for (var, raw) in vars {
        let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        // Section names may hold '_' themselves (`agent_states`): the longest known section
        // that prefixes the name wins, else the part before the first '_' is the section.
        let known = defaults
            .keys()
            .filter(|name| {
                rest.strip_prefix(name.as_str())
                    .and_then(|r| r.strip_prefix('_'))
                    .is_some_and(|key| !key.is_empty())
            })
            .max_by_key(|name| name.len())
            .map(|name| (name.as_str(), &rest[name.len() + 1..]));
        let Some((section, key)) = known.or_else(|| {
            rest.split_once('_')
                .filter(|(s, k)| !s.is_empty() && !k.is_empty())
        }) else {
            refuse(
                &var,
                String::new(),
                format!(
                    "expected {ENV_PREFIX}<SECTION>_<KEY> with SECTION one of {}",
                    upper_list(&sections)
                ),
            );
            continue;
        };
        let (section, key) = (section.to_owned(), key.to_owned());
        let path = format!("{section}.{key}");
        let Some(section_default) = defaults.get(&section) else {
            refuse(
                &var,
                path,
                format!(
                    "unknown section `{section}`; expected one of: {}",
                    sections.join(", ")
                ),
            );
            continue;
        };
        let Some(section_table) = section_default.as_table() else {
            refuse(
                &var,
                path,
                format!(
                    "`{section}` is a list of tables ([[{section}]]) and is set in the config file only; \
                     variables can set keys of {}",
                    sections.join(", ")
                ),
            );
            continue;
        };
        let Some(default) = section_table.get(&key) else {
            let keys: Vec<&str> = section_table.keys().map(String::as_str).collect();
            refuse(
                &var,
                path,
                format!(
                    "unknown key `{key}` in [{section}]; expected one of: {}",
                    keys.join(", ")
                ),
            );
            continue;
        };
        if let Some(other) = names.get(&path) {
            refuse(
                &var,
                path.clone(),
                format!("also set by {other}; expected one variable per key"),
            );
            continue;
        }
        let value = env_value(default, &raw);
        names.insert(path, var);
        if let FValue::Dict(_, section_dict) = dict
            .entry(section)
            .or_insert_with(|| FValue::from(Dict::new()))
        {
            section_dict.insert(key, value);
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid { problems });
    }
    Ok(EnvProvider {
        dict,
        names: Arc::new(names),
    })
}

fn upper_list(sections: &[&str]) -> String {
    sections
        .iter()
        .map(|s| s.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A variable's value: text for keys whose value is text; otherwise a TOML value where the
/// text is one (`5`, `true`, `2.5`, `["chat"]`, `{ voice = ["chat"] }`), else the text (which
/// extraction then refuses with the type expected).
fn env_value(default: &toml::Value, raw: &str) -> FValue {
    if default.is_str() {
        return FValue::from(raw.to_owned());
    }
    match raw.trim().parse::<toml::Value>() {
        Ok(value) if !value.is_datetime() => to_figment(&value),
        _ => FValue::from(raw.to_owned()),
    }
}

/// Renders figment errors and setup errors as problems, finding each value's source.
struct Loader<'a> {
    file: Option<&'a FileText>,
    figment: &'a Figment,
}

/// Keys whose values are names (enum variants) that figment would also accept as a variant
/// *index* if given a number (`strategy = 3`); such numbers are refused before extraction.
/// `*` matches any table key, `#` any list index.
const NAME_KEYS: [(&[&str], &str); 9] = [
    (&["log", "format"], "\"human\" or \"json\""),
    (&["calls", "record_format"], "\"wav\" or \"mp3\""),
    (&["handlers", "#", "kind"], "\"freeswitch\" or \"asterisk\""),
    (
        &["agents", "#", "stay_on_line"],
        "\"never\", \"when-work-waiting\" or \"always\"",
    ),
    (
        &["routing", "fairness"],
        "\"priority-then-wait\" or \"queue-weight-first\"",
    ),
    (
        &["routing", "blending", "*", "#"],
        "a media type (voice, chat, email, fax, video, voicemail or callback)",
    ),
    (
        &["queues", "#", "strategy"],
        "a strategy name such as \"longest-idle-agent\" or \"ring-all\"",
    ),
    (
        &["queues", "#", "overflow"],
        "\"none\", \"voicemail\", \"callback\", \"disconnect\" or { queue = \"<name>\" }",
    ),
    (
        &["queues", "#", "attributes", "#", "modifier"],
        "\"required\" or \"preferred\"",
    ),
];

impl Loader<'_> {
    fn names_given_as_numbers(&self) -> Vec<Problem> {
        let Ok(root) = self.figment.find_value("") else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (pattern, expected) in NAME_KEYS {
            let mut found = Vec::new();
            find_numbers(&root, pattern, &mut Vec::new(), &mut found);
            for (path, value) in found {
                let metadata = self.figment.get_metadata(value.tag());
                let (origin, line) = self.origin(metadata, &path);
                problems.push(Problem {
                    origin,
                    line,
                    key: render_path(&path),
                    message: format!("expected {expected}, found {}", describe_value(&value)),
                });
            }
        }
        problems
    }

    /// The origin (and line) of a value with `metadata` at `path`.
    fn origin(&self, metadata: Option<&Metadata>, path: &[String]) -> (Origin, Option<usize>) {
        match metadata {
            Some(md) if md.source == Some(Source::Custom(ENV_SOURCE.to_owned())) => {
                (Origin::Env(md.interpolate(&Profile::Default, path)), None)
            }
            Some(md) if matches!(md.source, Some(Source::File(_))) => (
                Origin::File(md.name.to_string()),
                self.file.and_then(|f| line_of(&f.text, path)),
            ),
            _ => (Origin::Unknown, None),
        }
    }

    fn problem(&self, error: figment::Error) -> Problem {
        use figment::error::Kind;
        let mut path = error.path.clone();
        let message = match &error.kind {
            Kind::UnknownField(field, expected) => {
                let section = path.len() == 1
                    && matches!(self.figment.find_value(field), Ok(FValue::Dict(..)));
                let mut message = format!(
                    "unknown {} `{field}`; expected one of: {}",
                    if section { "section" } else { "key" },
                    expected.join(", ")
                );
                if path.len() == 1
                    && let Some(home) = section_of(field)
                {
                    message.push_str(&format!(" (`{field}` belongs in [{home}])"));
                }
                message
            }
            Kind::UnknownVariant(variant, expected) => unknown_name(variant, expected),
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                let expected = KEY_EXPECTATIONS
                    .iter()
                    .find(|(pattern, _)| path_matches(pattern, &path))
                    .map_or_else(|| describe_expected(expected), |(_, e)| (*e).to_owned());
                format!("expected {expected}, found {}", describe_actual(actual))
            }
            Kind::InvalidLength(length, expected) => {
                format!("expected {expected}, found {length} elements")
            }
            Kind::MissingField(field) => {
                path.push(field.to_string());
                format!("required key `{field}` is missing")
            }
            Kind::DuplicateField(field) => format!("key `{field}` is given twice"),
            Kind::Message(message) => rewrite_message(&path, message),
            other => other.to_string(),
        };
        // For a missing key, the source is the table that lacks it.
        let source_path = match &error.kind {
            Kind::MissingField(_) => &error.path,
            _ => &path,
        };
        let (origin, line) = self.origin(error.metadata.as_ref(), source_path);
        Problem {
            origin,
            line,
            key: render_path(&path),
            message,
        }
    }

    fn setup_problem(&self, error: SetupError) -> Problem {
        let path = parse_path(&error.path);
        let (origin, line) = match path.first().map(String::as_str) {
            // Lists of tables come from the file only.
            Some("queues" | "agents" | "handlers" | "clients" | "numbers") => match self.file {
                Some(file) => (Origin::File(file.label.clone()), line_of(&file.text, &path)),
                None => (Origin::Unknown, None),
            },
            _ => {
                let dotted = path.iter().take(2).cloned().collect::<Vec<_>>().join(".");
                self.origin(self.figment.find_metadata(&dotted), &path)
            }
        };
        Problem {
            origin,
            line,
            key: error.path,
            message: error.message,
        }
    }
}

/// The section that has a key named `key`, for a key written outside its section.
fn section_of(key: &str) -> Option<String> {
    let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Config::default()) else {
        return None;
    };
    defaults
        .iter()
        .find(|(_, section)| section.as_table().is_some_and(|t| t.contains_key(key)))
        .map(|(name, _)| name.clone())
}

/// Keys whose expected value says more than its Rust type (`u8`, `Level`'s `i64`).
const KEY_EXPECTATIONS: [(&[&str], &str); 5] = [
    (
        &["agents", "#", "slots", "*"],
        "a number of slots from 0 to 100",
    ),
    (
        &["agents", "#", "skills", "*"],
        "a skill level from 1 to 10",
    ),
    (
        &["queues", "#", "skills", "*"],
        "a skill level from 1 to 10",
    ),
    (
        &["queues", "#", "attributes", "#", "min_level"],
        "a level from 1 to 10",
    ),
    (
        &["queues", "#", "relax", "#", "min_level"],
        "a level from 1 to 10",
    ),
];

/// Whether `path` matches `pattern`, where `*` matches any key and `#` any list index.
fn path_matches(pattern: &[&str], path: &[String]) -> bool {
    pattern.len() == path.len()
        && pattern.iter().zip(path).all(|(want, got)| match *want {
            "*" => true,
            "#" => !got.is_empty() && got.bytes().all(|b| b.is_ascii_digit()),
            key => key == got,
        })
}

fn find_numbers(
    value: &FValue,
    pattern: &[&str],
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, FValue)>,
) {
    let Some((first, rest)) = pattern.split_first() else {
        if matches!(value, FValue::Num(..)) {
            found.push((path.clone(), value.clone()));
        }
        return;
    };
    let mut visit = |key: String, child: &FValue, path: &mut Vec<String>| {
        path.push(key);
        find_numbers(child, rest, path, found);
        path.pop();
    };
    match (value, *first) {
        (FValue::Dict(_, dict), "*") => {
            for (key, child) in dict {
                visit(key.clone(), child, path);
            }
        }
        (FValue::Dict(_, dict), key) => {
            if let Some(child) = dict.get(key) {
                visit(key.to_owned(), child, path);
            }
        }
        (FValue::Array(_, items), "#") => {
            for (i, child) in items.iter().enumerate() {
                visit(i.to_string(), child, path);
            }
        }
        _ => {}
    }
}

/// `["queues", "2", "strategy"]` → `queues[2].strategy`.
fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// `queues[2].relax[0].name` → `["queues", "2", "relax", "0", "name"]`.
fn parse_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            out.push(name.to_owned());
        }
        for index in pieces {
            out.push(index.trim_end_matches(']').to_owned());
        }
    }
    out
}

/// The line of the key at `path` in `text`, or of the deepest part of it that is present.
fn line_of(text: &str, path: &[String]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let mut offset = None;
    let mut table: Option<&DeTable> = Some(document.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue>]> = None;
    for segment in path {
        let next = if let Some(t) = table {
            t.iter()
                .find(|(key, _)| key.get_ref().as_ref() == segment.as_str())
                .map(|(key, value)| (key.span().start, value))
        } else if let Some(items) = array {
            segment
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|item| (item.span().start, item))
        } else {
            None
        };
        let Some((start, value)) = next else { break };
        offset = Some(start);
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(items) => array = Some(&items[..]),
            _ => {}
        }
    }
    offset.map(|o| line_col(text, o).0)
}

fn unknown_name(found: &str, expected: &[&str]) -> String {
    let has = |name: &str| expected.contains(&name);
    let (what, names): (&str, Vec<String>) = if has("longest-idle-agent") {
        ("strategy", expected.iter().map(|s| s.to_string()).collect())
    } else if has("voice") && has("chat") {
        (
            "media type",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("priority-then-wait") {
        (
            "fairness rule",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("human") && has("json") {
        (
            "log format",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("wav") && has("mp3") {
        (
            "record format",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("freeswitch") && has("asterisk") {
        (
            "handler kind",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("when-work-waiting") {
        (
            "stay_on_line",
            expected.iter().map(|s| s.to_string()).collect(),
        )
    } else if has("required") && has("preferred") {
        ("modifier", expected.iter().map(|s| s.to_string()).collect())
    } else if has("disconnect") {
        (
            "overflow",
            expected
                .iter()
                .map(|s| match *s {
                    "queue" => "{ queue = \"<name>\" }".to_owned(),
                    other => other.to_owned(),
                })
                .collect(),
        )
    } else {
        ("value", expected.iter().map(|s| s.to_string()).collect())
    };
    format!(
        "unknown {what} {found:?}; expected one of {}",
        names.join(", ")
    )
}

/// serde's names for expected types, in an administrator's words.
fn describe_expected(expected: &str) -> String {
    match expected {
        "u8" => "an integer from 0 to 255".to_owned(),
        "u16" => "an integer from 0 to 65535".to_owned(),
        "u32" => "an integer from 0 to 4294967295".to_owned(),
        "u64" | "usize" | "u128" => "an integer ≥ 0".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a table".to_owned(),
        "enum Strategy" => "a strategy name such as \"longest-idle-agent\"".to_owned(),
        "enum MediaType" => {
            "a media type (voice, chat, email, fax, video, voicemail or callback)".to_owned()
        }
        "enum Fairness" => "\"priority-then-wait\" or \"queue-weight-first\"".to_owned(),
        "enum LogFormat" => "\"human\" or \"json\"".to_owned(),
        "enum RecordFormatSetup" => "\"wav\" or \"mp3\"".to_owned(),
        "enum HandlerKindSetup" => "\"freeswitch\" or \"asterisk\"".to_owned(),
        "enum StayOnLine" => "\"never\", \"when-work-waiting\" or \"always\"".to_owned(),
        "enum ModifierSetup" => "\"required\" or \"preferred\"".to_owned(),
        "enum OverflowSetup" => {
            "\"none\", \"voicemail\", \"callback\", \"disconnect\" or { queue = \"<name>\" }"
                .to_owned()
        }
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}

fn describe_actual(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => format!("the boolean {b}"),
        Actual::Unsigned(n) => format!("{n}"),
        Actual::Signed(n) => format!("{n}"),
        Actual::Float(f) => format!("{f}"),
        Actual::Char(c) => format!("the string {:?}", c.to_string()),
        Actual::Str(s) => format!("a string ({s:?})"),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        Actual::Unit | Actual::Option => "nothing".to_owned(),
        other => other.to_string(),
    }
}

fn describe_value(value: &FValue) -> String {
    match value {
        FValue::Num(_, n) => match (n.to_i128(), n.to_f64()) {
            (Some(i), _) => format!("the number {i}"),
            (None, Some(f)) => format!("the number {f}"),
            _ => "a number".to_owned(),
        },
        FValue::String(_, s) => format!("a string ({s:?})"),
        FValue::Bool(_, b) => format!("the boolean {b}"),
        FValue::Array(..) => "a list".to_owned(),
        FValue::Dict(..) => "a table".to_owned(),
        _ => "another kind of value".to_owned(),
    }
}

/// serde's messages for untagged enums say nothing about what was expected; say it.
fn rewrite_message(path: &[String], message: &str) -> String {
    if !message.starts_with("data did not match any variant of untagged enum") {
        return message.to_owned();
    }
    if message.ends_with("MembershipSetup") {
        return "expected a queue name, or a table { queue = \"<name>\", level = <tier level>, position = <n> } with no other keys".to_owned();
    }
    if message.ends_with("AttributeValue") {
        let name = path.last().map_or("name", String::as_str);
        return format!(
            "expected true/false, a level 1 to 10, a text, a list of texts, or a table of text = level (1 to 10), e.g. {name} = {{ es = 10, en = 6 }}"
        );
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_and_parse_back() {
        let path = parse_path("queues[2].relax[0].name");
        assert_eq!(path, ["queues", "2", "relax", "0", "name"]);
        assert_eq!(render_path(&path), "queues[2].relax[0].name");
        assert_eq!(parse_path("routing.seed"), ["routing", "seed"]);
    }

    #[test]
    fn lines_are_found_for_nested_keys() {
        let text = "[server]\nlisten = \"x\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nname = \"b\"\nstrategy = \"x\"\n";
        let path = parse_path("queues[1].strategy");
        assert_eq!(line_of(text, &path), Some(9));
        assert_eq!(line_of(text, &parse_path("server.listen")), Some(2));
        // A key that is not in the file points at its table's header.
        assert_eq!(line_of(text, &parse_path("queues[1].missing")), Some(7));
    }

    #[test]
    fn store_urls() {
        for ok in [
            "sqlite://x.db",
            "sqlite::memory:",
            "postgres://u@h/db",
            "postgresql://h/db",
            "/var/lib/sb.db",
            "sb.db",
        ] {
            assert_eq!(check_store_url(ok), Ok(()), "{ok}");
        }
        for bad in ["", "mysql://h/db", "postgres:h"] {
            assert!(check_store_url(bad).is_err(), "{bad}");
        }
    }
}
