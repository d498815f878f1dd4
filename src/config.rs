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

use std::collections::BTreeMap;
use std::net::{AddrParseError, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::value::{Dict, Map, Value as FValue};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

use crate::logging::{self, LogFormat};
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
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_inner().map_err(|errors| ConfigError::Invalid {
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

    fn resolve_inner(&self) -> Result<Resolved, Vec<SetupError>> {
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
        Ok(Resolved {
            catalog,
            settings: RouterSettings::from_setup(&self.routing),
            queues,
            agents,
        })
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
        errors
    }
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
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, name) in names.enumerate() {
        match first.get(name) {
            Some(&j) => errors.push(SetupError::new(
                format!("{list}[{i}].name"),
                format!(
                    "{what} {name:?} is already defined at {list}[{j}]; expected unique {what} names"
                ),
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
    let config: Config = figment.extract().map_err(|error| ConfigError::Invalid {
        problems: error.into_iter().map(|e| loader.problem(e)).collect(),
    })?;
    config
        .resolve_inner()
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
        let rest = &var[ENV_PREFIX.len()..];
        let Some((section, key)) = rest
            .split_once('_')
            .filter(|(s, k)| !s.is_empty() && !k.is_empty())
        else {
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
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
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
const NAME_KEYS: [(&[&str], &str); 6] = [
    (&["log", "format"], "\"human\" or \"json\""),
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
                if path.len() == 1 {
                    if let Some(home) = section_of(field) {
                        message.push_str(&format!(" (`{field}` belongs in [{home}])"));
                    }
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
            // Queues and agents come from the file only.
            Some("queues" | "agents") => match self.file {
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
