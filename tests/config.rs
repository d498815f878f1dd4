//! The configuration file and environment: what loads, what is refused, and what an
//! administrator reads when it is refused.
//!
//! Environment variables are passed to `Config::load_with` / `load_from_str`, never set on the
//! process: tests run in parallel threads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard::agents::{AgentTimers, StayOnLine};
use switchboard::config::{
    AdmissionConfig, AgentStatesConfig, CallsConfig, ClientConfig, Config, ConfigError,
    HandlerConfig, HandlerKindSetup, LogConfig, NumberConfig, Origin, RecordFormatSetup,
    ServerConfig, StoreConfig,
};
use switchboard::flow::Step;
use switchboard::logging::LogFormat;
use switchboard::media::{HandlerId, HandlerKind, OriginateTarget, RecordFormat};
use switchboard::model::{Level, MediaType};
use switchboard::routing::setup::{
    AttributeRule, AttributeValue, MembershipSetup, ModifierSetup, OverflowSetup, RelaxSetup,
    TierRulesSetup, TierSetup,
};
use switchboard::routing::{AgentSetup, Fairness, QueueSetup, RoutingSettings, Strategy};

const SHIPPED: &str = "switchboard.toml";
const GOOD: &str = "tests/data/config/good";
const BAD: &str = "tests/data/config/bad";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no *.{extension} in {dir}");
    paths
}

fn level(n: i64) -> Level {
    Level::new(n).unwrap()
}

// --- the shipped example -------------------------------------------------------------------

#[test]
fn the_shipped_switchboard_toml_loads_and_resolves() {
    let config = Config::load_with(Some(Path::new(SHIPPED)), no_env()).unwrap();
    let resolved = config.resolve().unwrap();
    assert_eq!(resolved.queues.len(), 1);
    assert_eq!(resolved.agents.len(), 2);
    let sales = resolved.catalog.queue_id("sales").unwrap();
    assert_eq!(resolved.queues[0].id, sales);
    for agent in &resolved.agents {
        assert_eq!(agent.memberships.len(), 1);
        assert_eq!(agent.memberships[0].queue, sales);
    }
    assert_eq!(resolved.agents[1].memberships[0].level, 2);
    // The example shows attribute rules, relax steps and tier rules.
    let queue = &config.queues[0];
    assert_eq!(queue.attributes.len(), 2);
    assert_eq!(queue.relax.len(), 2);
    assert!(queue.tier_rules.is_some());
    assert!(resolved.queues[0].tier_step.is_some());
}

#[test]
fn the_shipped_sections_show_the_defaults() {
    let config = Config::load_with(Some(Path::new(SHIPPED)), no_env()).unwrap();
    let defaults = Config::default();
    assert_eq!(config.server, defaults.server);
    assert_eq!(config.store, defaults.store);
    assert_eq!(config.log, defaults.log);
    assert_eq!(config.routing, defaults.routing);
    assert_eq!(config.calls, defaults.calls);
    assert_eq!(config.agent_states, defaults.agent_states);
    assert_eq!(config.admission, defaults.admission);
}

/// Keys whose children are the administrator's own names (skills, media types, attribute
/// names) or alternative forms, not keys of the schema.
const OPEN_KEYS: [&str; 6] = [
    "routing.blending",
    "queues.skills",
    "queues.overflow",
    "agents.skills",
    "agents.attributes",
    "agents.slots",
];

/// Every key path (`queues.relax.after_s`; list elements share their list's path).
fn key_paths(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                if !OPEN_KEYS.contains(&path.as_str()) {
                    key_paths(child, &path, out);
                }
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                key_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

/// A config with every key of every type set, written as struct literals so that a new
/// field does not compile until it is added here (and then to `switchboard.toml`).
fn fully_populated() -> Config {
    let queue = QueueSetup {
        name: "q".into(),
        tenant: "t".into(),
        strategy: Strategy::RingAll,
        offer_timeout_s: 1.0,
        max_wait_s: Some(1.0),
        overflow: OverflowSetup::Queue("other".into()),
        service_level_s: 1.0,
        weight: 1,
        wait_factor: 1.0,
        affinity_s: 1.0,
        ring_progressively_delay_s: 1.0,
        default_handle_s: 1.0,
        skills: BTreeMap::from([("s".to_owned(), level(1))]),
        attributes: vec![AttributeRule {
            name: "a".into(),
            modifier: ModifierSetup::Preferred,
            weight: 1,
            min_level: level(1),
        }],
        relax: vec![RelaxSetup {
            after_s: 1.0,
            name: Some("a".into()),
            min_level: Some(level(1)),
            drop: true,
            max_tier_level: Some(1),
        }],
        tier_rules: Some(TierRulesSetup {
            wait_per_level_s: 1.0,
        }),
        max_tier_level: Some(1),
        flow: Some("f.toml".into()),
    };
    let agent = AgentSetup {
        name: "a".into(),
        tenant: "t".into(),
        skills: BTreeMap::from([("s".to_owned(), level(1))]),
        attributes: BTreeMap::from([("x".to_owned(), AttributeValue::Flag(true))]),
        slots: BTreeMap::from([(MediaType::Voice, 1)]),
        queues: vec![MembershipSetup::Tier(TierSetup {
            queue: "q".into(),
            level: 1,
            position: Some(1),
        })],
        sip: Some("1000".into()),
        stay_on_line: StayOnLine::Always,
    };
    let freeswitch = HandlerConfig {
        name: "fs".into(),
        kind: HandlerKindSetup::FreeSwitch,
        address: Some("x".into()),
        password: Some("x".into()),
        password_env: None,
        capacity: 1,
        weight: 1.0,
        url: None,
        user: None,
        app: None,
        outbound_listen: Some("x".into()),
    };
    let asterisk = HandlerConfig {
        name: "ast".into(),
        kind: HandlerKindSetup::Asterisk,
        address: None,
        password: None,
        password_env: Some("X".into()),
        capacity: 1,
        weight: 1.0,
        url: Some("x".into()),
        user: Some("x".into()),
        app: Some("x".into()),
        outbound_listen: None,
    };
    Config {
        server: ServerConfig {
            listen: "x".into(),
            shutdown_grace_s: 1,
        },
        store: StoreConfig {
            url: "x".into(),
            max_connections: 1,
        },
        log: LogConfig {
            format: LogFormat::Json,
            level: "x".into(),
        },
        routing: RoutingSettings {
            fairness: Fairness::QueueWeightFirst,
            seed: 1,
            history_capacity: 1,
            blending: BTreeMap::from([(MediaType::Voice, vec![MediaType::Chat])]),
            startup_grace_s: 1.0,
        },
        queues: vec![queue],
        agents: vec![agent],
        calls: CallsConfig {
            recordings: "x".into(),
            record_format: RecordFormatSetup::Mp3,
            ring_timeout_s: 1,
            agent_hold_music: "x".into(),
        },
        agent_states: AgentStatesConfig {
            heartbeat_interval_s: 1,
            session_timeout_s: 2,
            lost_connection_limit_s: 1,
            max_break_s: 1,
            wrap_up_s: 1,
        },
        admission: AdmissionConfig {
            pool: 1,
            window_s: 1,
            rate_window_s: 1,
            likely: 1.0,
        },
        clients: vec![ClientConfig {
            name: "t".into(),
            trunk_ratio: 1.0,
            after_hours_trunks: 1,
        }],
        handlers: vec![freeswitch, asterisk],
        numbers: vec![NumberConfig {
            number: "1".into(),
            queue: "q".into(),
        }],
        base_dir: None,
    }
}

/// Keys the shipped file shows commented out (as `# key = …` lines) because setting them
/// needs more than the file: `password_env` names a variable that `check` would require.
const COMMENTED_KEYS: [&str; 1] = ["handlers.password_env"];

#[test]
fn every_config_key_is_documented_in_switchboard_toml() {
    let mut schema = BTreeSet::new();
    key_paths(
        &toml::Value::try_from(fully_populated()).unwrap(),
        "",
        &mut schema,
    );
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let mut documented = BTreeSet::new();
    key_paths(
        &toml::Value::Table(text.parse().unwrap()),
        "",
        &mut documented,
    );
    for key in COMMENTED_KEYS {
        let (_, last) = key.rsplit_once('.').unwrap();
        assert!(
            text.lines().any(|l| l.starts_with(&format!("# {last} = "))),
            "{SHIPPED} does not show `{key}`, even commented out"
        );
        documented.insert(key.to_owned());
    }
    let missing: Vec<&String> = schema.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "{SHIPPED} does not show these keys: {missing:?}"
    );
    assert!(schema.contains("handlers.outbound_listen"));
    assert!(schema.contains("agents.stay_on_line"));
    // Sanity: the walk saw the nested keys too.
    assert!(schema.contains("queues.relax.max_tier_level"));
    assert!(schema.contains("agents.queues.position"));
}

#[test]
fn every_key_in_switchboard_toml_has_a_comment_above_its_first_use() {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let mut table = String::new();
    let mut seen = BTreeSet::new();
    let mut previous = "";
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = trimmed.trim_matches(|c| c == '[' || c == ']').to_owned();
        } else if !trimmed.starts_with('#') {
            let key = trimmed.split_once(" =").map(|(key, _)| key);
            if let Some(key) = key.filter(|key| seen.insert(format!("{table}.{key}"))) {
                assert!(
                    previous.trim_start().starts_with('#'),
                    "{SHIPPED}:{}: `{key}` in [{table}] has no comment above it",
                    number + 1
                );
            }
        }
        previous = line;
    }
    assert!(seen.len() >= 40, "only {} keys seen", seen.len());
}

// --- defaults and good files ---------------------------------------------------------------

#[test]
fn an_empty_config_gives_the_documented_defaults() {
    let from_empty = Config::load_from_str("", "empty.toml", no_env()).unwrap();
    let without_file = Config::load_with(None, no_env()).unwrap();
    assert_eq!(from_empty, Config::default());
    assert_eq!(without_file, Config::default());

    let c = from_empty;
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.server.listen_addr().unwrap().port(), 8080);
    assert_eq!(c.server.shutdown_grace_s, 10);
    assert_eq!(c.store.url, "sqlite://switchboard.db");
    assert_eq!(c.store.max_connections, 8);
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.routing.fairness, Fairness::PriorityThenWait);
    assert_eq!(c.routing.seed, 1);
    assert_eq!(c.routing.history_capacity, 100_000);
    assert_eq!(
        c.routing.blending.get(&MediaType::Voice),
        Some(&vec![
            MediaType::Voice,
            MediaType::Video,
            MediaType::Callback
        ])
    );
    assert!(c.queues.is_empty() && c.agents.is_empty());
    let resolved = c.resolve().unwrap();
    assert_eq!(resolved.settings.seed, 1);
    assert_eq!(resolved.catalog.queue_count(), 0);
}

#[test]
fn every_good_file_loads_and_resolves() {
    for path in files(GOOD, "toml") {
        let config = Config::load_with(Some(&path), no_env())
            .unwrap_or_else(|e| panic!("{} was refused:\n{e}", path.display()));
        config.resolve().unwrap();
    }
}

#[test]
fn queues_and_agents_resolve_with_overflow_and_tiers() {
    let path = Path::new(GOOD).join("multi_tenant.toml");
    let config = Config::load_with(Some(&path), no_env()).unwrap();
    assert_eq!(config.log.format, LogFormat::Json);
    let resolved = config.resolve().unwrap();
    let catalog = &resolved.catalog;
    let overflow = catalog.queue_id("acme-overflow").unwrap();
    assert_eq!(
        resolved.queues[0].overflow,
        switchboard::routing::OverflowTarget::Queue(overflow)
    );
    assert_ne!(resolved.queues[0].tenant, resolved.queues[2].tenant);
    assert_eq!(resolved.agents[0].memberships[1].level, 2);
    assert_eq!(resolved.settings.fairness, Fairness::QueueWeightFirst);
    assert!(
        resolved
            .settings
            .blocks
            .get(MediaType::Voice)
            .contains(MediaType::Chat),
        "voice blocks chat as the file says"
    );
}

// --- bad files -----------------------------------------------------------------------------

#[test]
fn every_bad_file_is_refused_with_file_key_and_expectation() {
    let mut failures = Vec::new();
    for path in files(BAD, "toml") {
        let expect_path = path.with_extension("expect");
        let expected = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|_| panic!("{} has no .expect file", path.display()));
        let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        let message = match Config::load_with(Some(&path), no_env()) {
            Ok(_) => {
                failures.push(format!("{}: was accepted", path.display()));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let prefix = format!("{BAD}/");
        let lines: Vec<&str> = message.lines().collect();
        let ok = lines.len() == expected.len()
            && lines.iter().zip(&expected).all(|(line, want)| {
                line.strip_prefix(&prefix)
                    .is_some_and(|line| line.starts_with(want))
            });
        if !ok {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                path.display(),
                expected.join("\n    "),
                lines.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn problems_carry_origin_line_and_key() {
    let path = Path::new(BAD).join("two_problems.toml");
    let err = Config::load_with(Some(&path), no_env()).unwrap_err();
    let problems = err.problems();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].origin, Origin::File(path.display().to_string()));
    assert_eq!(problems[0].line, Some(2));
    assert_eq!(problems[0].key, "server.listen");
    assert_eq!(problems[1].line, Some(6));
    assert_eq!(problems[1].key, "queues[0].offer_timeout_s");
}

#[test]
fn a_config_file_that_does_not_exist_is_named() {
    let path = Path::new(GOOD).join("no-such-file.toml");
    let err = Config::load_with(Some(&path), no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: no such config file", path.display())
    );
}

#[test]
fn load_from_str_names_the_given_source() {
    let err = Config::load_from_str(
        "[routing]\nfairness = \"fifo\"\n",
        "/etc/switchboard/switchboard.toml",
        no_env(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/switchboard/switchboard.toml:2: routing.fairness: unknown fairness rule \"fifo\"; \
         expected one of priority-then-wait, queue-weight-first"
    );
}

#[test]
fn resolve_reports_every_bad_entry_not_just_the_first() {
    let mut config = Config::default();
    let mut a = QueueSetup::named("a");
    a.offer_timeout_s = -1.0;
    let mut b = QueueSetup::named("b");
    b.wait_factor = 0.0;
    config.queues = vec![a, b, QueueSetup::named("a")];
    let err = config.resolve().unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "queues[0].offer_timeout_s",
            "queues[1].wait_factor",
            "queues[2].name"
        ]
    );
    // A config built in code has no file to name.
    assert!(err.problems().iter().all(|p| p.origin == Origin::Unknown));
}

// --- environment ---------------------------------------------------------------------------

#[test]
fn environment_variables_win_over_the_file() {
    let path = Path::new(GOOD).join("multi_tenant.toml");
    let env = vars(&[
        ("SWITCHBOARD_ROUTING_SEED", "99"),
        ("SWITCHBOARD_ROUTING_HISTORY_CAPACITY", "5"),
        ("SWITCHBOARD_STORE_URL", "sqlite:/var/lib/switchboard/sb.db"),
        ("SWITCHBOARD_STORE_MAX_CONNECTIONS", "4"),
        ("SWITCHBOARD_SERVER_LISTEN", "0.0.0.0:9090"),
        ("SWITCHBOARD_LOG_FORMAT", "human"),
        ("SWITCHBOARD_LOG_LEVEL", "debug"),
        ("SWITCHBOARD_ROUTING_FAIRNESS", "priority-then-wait"),
        ("SWITCHBOARD_ROUTING_BLENDING", r#"{ voice = ["voice"] }"#),
    ]);
    let c = Config::load_with(Some(&path), env).unwrap();
    assert_eq!(c.routing.seed, 99);
    assert_eq!(c.routing.history_capacity, 5);
    assert_eq!(c.store.url, "sqlite:/var/lib/switchboard/sb.db");
    assert_eq!(c.store.max_connections, 4);
    assert_eq!(c.server.listen, "0.0.0.0:9090");
    assert_eq!(
        c.server.shutdown_grace_s, 30,
        "keys not overridden keep the file's value"
    );
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.routing.fairness, Fairness::PriorityThenWait);
    assert_eq!(
        c.routing.blending.get(&MediaType::Voice),
        Some(&vec![MediaType::Voice])
    );
    assert_eq!(c.queues.len(), 3, "queues still come from the file");
}

#[test]
fn environment_variables_work_without_a_file() {
    let c = Config::load_with(None, vars(&[("SWITCHBOARD_SERVER_SHUTDOWN_GRACE_S", "3")])).unwrap();
    assert_eq!(c.server.shutdown_grace_s, 3);
}

#[test]
fn text_keys_take_the_variable_as_text() {
    // A store path made of digits stays a path; it is not read as a number.
    let c = Config::load_with(None, vars(&[("SWITCHBOARD_STORE_URL", "2024")])).unwrap();
    assert_eq!(c.store.url, "2024");
}

#[test]
fn a_good_variable_rescues_a_bad_file_value() {
    let c = Config::load_from_str(
        "[server]\nlisten = \"localhost:8080\"\n",
        "sb.toml",
        vars(&[("SWITCHBOARD_SERVER_LISTEN", "127.0.0.1:8081")]),
    )
    .unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8081");
}

fn env_error(file: &str, env: &[(&str, &str)]) -> String {
    Config::load_from_str(file, "sb.toml", vars(env))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_variable_of_the_wrong_type_is_named() {
    assert_eq!(
        env_error(
            "[routing]\nseed = 5\n",
            &[("SWITCHBOARD_ROUTING_SEED", "abc")]
        ),
        "environment variable SWITCHBOARD_ROUTING_SEED: routing.seed: \
         expected an integer ≥ 0, found a string (\"abc\")"
    );
    assert_eq!(
        env_error("", &[("SWITCHBOARD_SERVER_SHUTDOWN_GRACE_S", "-1")]),
        "environment variable SWITCHBOARD_SERVER_SHUTDOWN_GRACE_S: server.shutdown_grace_s: \
         expected an integer ≥ 0, found -1"
    );
}

#[test]
fn a_variable_out_of_range_is_named_not_the_file() {
    assert_eq!(
        env_error(
            "[routing]\nhistory_capacity = 10\n",
            &[("SWITCHBOARD_ROUTING_HISTORY_CAPACITY", "0")]
        ),
        "environment variable SWITCHBOARD_ROUTING_HISTORY_CAPACITY: routing.history_capacity: \
         0 is out of range; expected 1 to 10000000"
    );
    assert_eq!(
        env_error("", &[("SWITCHBOARD_SERVER_LISTEN", "switchboard.local:80")]),
        "environment variable SWITCHBOARD_SERVER_LISTEN: server.listen: \
         \"switchboard.local:80\" is not an IP address and port; expected e.g. \"127.0.0.1:8080\", \
         \"0.0.0.0:8080\" or \"[::]:8080\" (host names are not accepted)"
    );
    assert_eq!(
        env_error(
            "",
            &[("SWITCHBOARD_ROUTING_BLENDING", r#"{ voice = ["telex"] }"#)]
        ),
        "environment variable SWITCHBOARD_ROUTING_BLENDING: routing.blending.voice[0]: \
         unknown media type \"telex\"; expected one of voice, chat, email, fax, video, voicemail, callback"
    );
}

#[test]
fn unknown_variables_are_refused_like_unknown_keys() {
    assert_eq!(
        env_error("", &[("SWITCHBOARD_ROUTING_SEEDS", "1")]),
        "environment variable SWITCHBOARD_ROUTING_SEEDS: routing.seeds: unknown key `seeds` in \
         [routing]; expected one of: blending, fairness, history_capacity, seed, startup_grace_s"
    );
    assert_eq!(
        env_error("", &[("SWITCHBOARD_DATABASE_URL", "x")]),
        "environment variable SWITCHBOARD_DATABASE_URL: database.url: unknown section \
         `database`; expected one of: admission, agent_states, calls, log, routing, server, store"
    );
    assert_eq!(
        env_error("", &[("SWITCHBOARD_PORT", "80")]),
        "environment variable SWITCHBOARD_PORT: expected SWITCHBOARD_<SECTION>_<KEY> with \
         SECTION one of ADMISSION, AGENT_STATES, CALLS, LOG, ROUTING, SERVER, STORE"
    );
    let handlers = env_error("", &[("SWITCHBOARD_HANDLERS_PASSWORD", "x")]);
    assert!(
        handlers.contains("`handlers` is a list of tables ([[handlers]])"),
        "{handlers}"
    );
    // A section whose name holds '_' is still found, and its keys are listed.
    assert_eq!(
        env_error("", &[("SWITCHBOARD_AGENT_STATES_WRAPUP_S", "1")]),
        "environment variable SWITCHBOARD_AGENT_STATES_WRAPUP_S: agent_states.wrapup_s: unknown \
         key `wrapup_s` in [agent_states]; expected one of: heartbeat_interval_s, \
         lost_connection_limit_s, max_break_s, session_timeout_s, wrap_up_s"
    );
    let queues = env_error("", &[("SWITCHBOARD_QUEUES_NAME", "x")]);
    assert!(
        queues.starts_with(
            "environment variable SWITCHBOARD_QUEUES_NAME: queues.name: `queues` is a list of \
             tables ([[queues]]) and is set in the config file only"
        ),
        "{queues}"
    );
    // All bad variables at once, one line each.
    let all = env_error(
        "",
        &[("SWITCHBOARD_A_B", "1"), ("SWITCHBOARD_SERVER_PORT", "80")],
    );
    assert_eq!(all.lines().count(), 2, "{all}");
}

#[test]
fn reserved_and_foreign_variables_are_ignored() {
    let env = vars(&[
        ("SWITCHBOARD_CONFIG", "/etc/switchboard/switchboard.toml"),
        (
            "SWITCHBOARD_TEST_POSTGRES_URL",
            "postgres://test@localhost/test",
        ),
        ("SWITCHBOARD_TEST_ANYTHING_AT_ALL", "x"),
        ("PATH", "/usr/bin"),
        ("RUST_LOG", "debug"),
    ]);
    assert_eq!(Config::load_with(None, env).unwrap(), Config::default());
}

// --- logging -------------------------------------------------------------------------------

#[test]
fn log_formats_parse_from_the_command_line_and_the_file() {
    use clap::ValueEnum;
    assert_eq!(LogFormat::from_str("json", false), Ok(LogFormat::Json));
    assert_eq!(LogFormat::from_str("human", false), Ok(LogFormat::Human));
    assert!(LogFormat::from_str("xml", false).is_err());
    let c = Config::load_from_str("[log]\nformat = \"json\"\n", "sb.toml", no_env()).unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn initialising_logging_twice_is_an_error_not_a_panic() {
    use switchboard::logging::{LoggingError, init};
    // "off" keeps this test binary quiet (unless RUST_LOG is set, which wins by design).
    let first = init(LogFormat::Human, "off");
    assert!(
        first.is_ok() || matches!(first, Err(LoggingError::Filter { .. })),
        "{first:?}"
    );
    if first.is_ok() {
        assert!(matches!(
            init(LogFormat::Json, "off"),
            Err(LoggingError::AlreadyInitialised(_))
        ));
    }
}

#[test]
fn load_reads_the_process_environment_too() {
    // Whatever SWITCHBOARD_* variables this process has must be valid or reserved ones.
    let config = Config::load(Some(Path::new(SHIPPED))).unwrap();
    assert_eq!(config.queues.len(), 1);
}

// --- issue 5: calls, agent states, admission, clients, handlers, numbers, flows --------------

fn inbound() -> Config {
    Config::load_with(Some(&Path::new(GOOD).join("inbound.toml")), no_env()).unwrap()
}

#[test]
fn the_shipped_config_has_handlers_numbers_flows_and_lines() {
    let config = Config::load_with(Some(Path::new(SHIPPED)), no_env()).unwrap();
    let r = config.resolve().unwrap();
    let kinds: Vec<(HandlerId, &str, HandlerKind)> = r
        .handlers
        .iter()
        .map(|h| (h.id, h.name.as_str(), h.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (HandlerId(1), "fs1", HandlerKind::FreeSwitch),
            (HandlerId(2), "ast1", HandlerKind::Asterisk)
        ]
    );
    assert_eq!(r.handlers[0].password.expose(), "ClueCon");
    assert_eq!(
        r.numbers.get("+498001234").map(String::as_str),
        Some("sales")
    );
    assert_eq!(r.numbers.get("*").map(String::as_str), Some("sales"));
    assert_eq!(
        r.queue_flows.get("sales").map(String::as_str),
        Some("sales")
    );
    assert_eq!(r.flows.len(), 1);
    assert!(
        r.flows[0].hours.is_some(),
        "the example flow has business hours"
    );
    let default = r.catalog.tenant_id("default").unwrap();
    assert_eq!(r.clients.len(), 1);
    assert_eq!(r.clients[0].0, default);
    assert_eq!(r.agent_lines.len(), 2);
    assert_eq!(
        r.calls,
        switchboard::controller::calls::CallSettings::default()
    );
    assert_eq!(r.agent_timers, AgentTimers::default());
    assert_eq!(
        r.admission,
        switchboard::admission::AdmissionSettings::default()
    );
}

#[test]
fn sections_resolve_into_the_settings_the_controller_uses() {
    let r = inbound().resolve().unwrap();
    assert_eq!(r.calls.ring_timeout, Duration::from_secs(25));
    assert_eq!(r.calls.recordings.as_deref(), Some("/srv/recordings"));
    assert_eq!(r.calls.record_format, RecordFormat::Mp3);
    assert_eq!(
        r.calls.agent_hold_music.as_deref(),
        Some("local_stream://moh")
    );
    assert_eq!(
        r.agent_timers,
        AgentTimers {
            heartbeat_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(20),
            lost_connection_limit: Duration::ZERO,
            max_break: Duration::from_secs(1800),
            wrap_up: Duration::ZERO,
        }
    );
    assert_eq!(r.admission.pool, 40);
    assert_eq!(r.admission.window, Duration::from_secs(20));
    assert_eq!(r.admission.rate_window, Duration::from_secs(600));
    assert_eq!(r.admission.likely, 1.0);
}

#[test]
fn every_tenant_gets_trunk_rules_listed_or_default() {
    let r = inbound().resolve().unwrap();
    let acme = r.catalog.tenant_id("acme").unwrap();
    let globex = r.catalog.tenant_id("globex").unwrap();
    let rules: BTreeMap<_, _> = r
        .clients
        .iter()
        .map(|(t, c)| (*t, (c.ratio, c.after_hours)))
        .collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[&acme], (2.0, 4));
    assert_eq!(rules[&globex], (1.5, 2), "not listed: the defaults");
}

#[test]
fn handlers_resolve_by_kind_with_ids_in_file_order() {
    let r = inbound().resolve().unwrap();
    let fs1 = &r.handlers[0];
    assert_eq!(fs1.id, HandlerId(1));
    assert_eq!(fs1.kind, HandlerKind::FreeSwitch);
    assert_eq!(fs1.address, "fs1.example.com:8021");
    assert_eq!((fs1.capacity, fs1.weight), (300, 2.5));
    assert_eq!(fs1.outbound_listen, Some("0.0.0.0:8040".parse().unwrap()));
    assert_eq!((fs1.user.as_deref(), fs1.app.as_deref()), (None, None));
    let fs2 = &r.handlers[1];
    assert_eq!(
        (fs2.address.as_str(), fs2.capacity, fs2.weight),
        ("[::1]:8021", 200, 1.0)
    );
    assert_eq!(fs2.outbound_listen, None);
    let ast1 = &r.handlers[2];
    assert_eq!(ast1.id, HandlerId(3));
    assert_eq!(ast1.kind, HandlerKind::Asterisk);
    assert_eq!(ast1.address, "https://ast1.example.com:8089/ari");
    assert_eq!(ast1.user.as_deref(), Some("switchboard"));
    assert_eq!(ast1.app.as_deref(), Some("switchboard"), "the default app");
    assert_eq!(ast1.password.expose(), "secret");
}

#[test]
fn passwords_never_show_in_debug_output() {
    let r = inbound().resolve().unwrap();
    let debug = format!("{r:?}");
    assert!(
        !debug.contains("ClueCon") && !debug.contains("secret\""),
        "{debug}"
    );
}

const PASSWORD_ENV: &str = r#"
[[handlers]]
name = "fs1"
kind = "freeswitch"
address = "127.0.0.1:8021"
password_env = "FS1_PASSWORD"
"#;

#[test]
fn a_password_can_come_from_the_variable_password_env_names() {
    let config = Config::load_from_str(PASSWORD_ENV, "sb.toml", no_env());
    // The loader checks against the process environment, where no test sets FS1_PASSWORD.
    if std::env::var_os("FS1_PASSWORD").is_none() {
        let err = config.unwrap_err().to_string();
        assert_eq!(
            err,
            "sb.toml:6: handlers[0].password_env: environment variable FS1_PASSWORD is not set; \
             expected it to hold the handler's password"
        );
    }
    let config: Config = toml::from_str(PASSWORD_ENV).unwrap();
    let r = config
        .resolve_with_env(|name| (name == "FS1_PASSWORD").then(|| "from-env".to_owned()))
        .unwrap();
    assert_eq!(r.handlers[0].password.expose(), "from-env");
    let err = config
        .resolve_with_env(|name| (name == "FS1_PASSWORD").then(String::new))
        .unwrap_err();
    assert_eq!(err.problems()[0].key, "handlers[0].password_env");
    assert!(err.problems()[0].message.contains("is empty"), "{err}");
}

#[test]
fn numbers_map_to_queue_names_with_a_catch_all() {
    let r = inbound().resolve().unwrap();
    let numbers: Vec<(&str, &str)> = r
        .numbers
        .iter()
        .map(|(n, q)| (n.as_str(), q.as_str()))
        .collect();
    assert_eq!(
        numbers,
        [
            ("*", "globex"),
            ("+498001234", "acme-sales"),
            ("+498005678", "acme-support")
        ]
    );
}

#[test]
fn a_flow_file_shared_by_queues_is_loaded_once_and_others_get_the_built_in_flow() {
    let r = inbound().resolve().unwrap();
    let names: Vec<&str> = r.flows.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["acme", "built-in:globex"]);
    assert_eq!(r.queue_flows["acme-sales"], "acme");
    assert_eq!(r.queue_flows["acme-support"], "acme");
    assert_eq!(r.queue_flows["globex"], "built-in:globex");
    // Built-in: wait in the queue with the default music, no prompts; then the flow's end.
    let builtin = &r.flows[1];
    assert!(builtin.hours.is_none());
    match &builtin.steps[0] {
        Step::Queue {
            queue,
            music,
            announce_every,
            position_prompt,
            wait_prompt,
            on_voicemail,
            ..
        } => {
            assert_eq!(queue, "globex");
            assert_eq!(music.as_deref(), Some("default"));
            assert!(announce_every.is_none() && position_prompt.is_none());
            assert!(wait_prompt.is_none() && on_voicemail.is_none());
        }
        other => panic!("expected a queue step, got {other:?}"),
    }
    assert!(matches!(builtin.steps[1], Step::Hangup { prompt: None }));
}

#[test]
fn flow_paths_are_relative_to_the_config_files_directory() {
    // Read from another directory's point of view, the same file still finds its flows.
    let text = std::fs::read_to_string(Path::new(GOOD).join("inbound.toml")).unwrap();
    let elsewhere = Config::load_from_str(&text, "/nonexistent/inbound.toml", no_env())
        .unwrap_err()
        .to_string();
    assert!(
        elsewhere.contains("/nonexistent/flows/acme.toml: no such flow file"),
        "{elsewhere}"
    );
    let mut config = inbound();
    assert_eq!(config.base_dir.as_deref(), Some(Path::new(GOOD)));
    config.base_dir = None;
    assert!(
        config.resolve().is_err(),
        "flows/acme.toml is not in the current directory"
    );
}

#[test]
fn agent_lines_follow_the_catalogs_agent_ids() {
    let r = inbound().resolve().unwrap();
    let lines: Vec<(&str, Option<(OriginateTarget, StayOnLine)>)> = r
        .agent_lines
        .iter()
        .map(|(id, line)| {
            (
                r.catalog.agent_name(*id),
                line.as_ref().map(|l| (l.target.clone(), l.stay_on_line)),
            )
        })
        .collect();
    let sip = |user: &str, domain: Option<&str>| OriginateTarget::SipUser {
        user: user.to_owned(),
        domain: domain.map(str::to_owned),
    };
    assert_eq!(
        lines,
        [
            (
                "1001",
                Some((sip("1001", Some("pbx.acme.example")), StayOnLine::Always))
            ),
            ("chat-1", None),
            (
                "2001",
                Some((sip("2001", None), StayOnLine::WhenWorkWaiting))
            ),
        ]
    );
    for ((id, _), spec) in r.agent_lines.iter().zip(&r.agents) {
        assert_eq!(*id, spec.id);
    }
}

#[test]
fn the_new_sections_take_environment_variables() {
    let env = vars(&[
        ("SWITCHBOARD_CALLS_RECORDINGS", ""),
        ("SWITCHBOARD_CALLS_RECORD_FORMAT", "mp3"),
        ("SWITCHBOARD_CALLS_AGENT_HOLD_MUSIC", "default"),
        ("SWITCHBOARD_AGENT_STATES_WRAP_UP_S", "0"),
        ("SWITCHBOARD_AGENT_STATES_SESSION_TIMEOUT_S", "90"),
        ("SWITCHBOARD_ADMISSION_POOL", "12"),
        ("SWITCHBOARD_ADMISSION_LIKELY", "0.9"),
    ]);
    let c = Config::load_with(None, env).unwrap();
    let r = c.resolve().unwrap();
    assert_eq!(r.calls.recordings, None, "\"\" records nothing");
    assert_eq!(r.calls.record_format, RecordFormat::Mp3);
    assert_eq!(r.calls.agent_hold_music.as_deref(), Some("default"));
    assert_eq!(r.agent_timers.wrap_up, Duration::ZERO);
    assert_eq!(r.agent_timers.session_timeout, Duration::from_secs(90));
    assert_eq!(r.admission.pool, 12);
    assert_eq!(r.admission.likely, 0.9);
}

#[test]
fn a_bad_variable_of_a_new_section_is_named() {
    assert_eq!(
        env_error(
            "[agent_states]\nheartbeat_interval_s = 10\n",
            &[("SWITCHBOARD_AGENT_STATES_SESSION_TIMEOUT_S", "10")]
        ),
        "environment variable SWITCHBOARD_AGENT_STATES_SESSION_TIMEOUT_S: \
         agent_states.session_timeout_s: 10 is not more than heartbeat_interval_s (10); \
         expected a longer timeout, or every agent would lose the connection between two heartbeats"
    );
    assert_eq!(
        env_error("", &[("SWITCHBOARD_CALLS_RECORD_FORMAT", "flac")]),
        "environment variable SWITCHBOARD_CALLS_RECORD_FORMAT: calls.record_format: unknown \
         record format \"flac\"; expected one of wav, mp3"
    );
}

#[test]
fn the_example_support_flow_resolves_for_a_support_queue() {
    // The shipped config uses examples/flows/sales.toml; the support flow must keep parsing.
    let text = "[[queues]]\nname = \"support\"\nflow = \"examples/flows/support.toml\"\n";
    let r = Config::load_from_str(text, "sb.toml", no_env())
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(r.queue_flows["support"], "support");
}
