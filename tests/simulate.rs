//! The simulator as its users see it: the shipped scenarios load and run, the same seed gives
//! the same day, bad scenarios are refused with the field named, and the figures behave as a
//! contact-center manager expects (more agents answer faster; every contact is accounted for).

use std::path::{Path, PathBuf};

use switchboard::sim::{self, QueueFigures, Report, RunOptions, Scenario, SimError};

/// Never a progress bar in tests.
fn quiet(seed: Option<u64>) -> RunOptions {
    RunOptions {
        progress: false,
        seed,
    }
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn example(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A scenario short enough for debug builds: the big center runs its first two hours.
fn short(scenario: Scenario) -> Scenario {
    if scenario.agent_count() > 500 {
        scenario.first_hours(2.0)
    } else {
        scenario
    }
}

fn run(scenario: &Scenario, seed: Option<u64>) -> Report {
    sim::run(scenario, &quiet(seed)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every arrival has exactly one fate, and ratios are ratios.
fn assert_accounted(q: &QueueFigures, what: &str) {
    assert_eq!(
        q.offered,
        q.handled + q.abandoned + q.overflowed + q.waiting_at_end,
        "{what}: queue {} loses or invents contacts: {q:?}",
        q.name
    );
    assert!(q.answered_in_target <= q.handled, "{what}: {q:?}");
    for (name, value) in [
        ("service level", q.service_level),
        ("occupancy", q.occupancy),
    ] {
        if let Some(v) = value {
            assert!((0.0..=1.0).contains(&v), "{what}: {name} {v} of {}", q.name);
        }
    }
    if let Some(asa) = q.asa_s {
        assert!(asa >= 0.0 && asa <= q.max_wait_s + 1e-9, "{what}: {q:?}");
    }
}

#[test]
fn every_shipped_scenario_loads_and_runs() {
    let files = examples();
    assert!(
        files.len() >= 3,
        "expected three scenarios in examples/: {files:?}"
    );
    for file in files {
        let what = file.display().to_string();
        let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let report = run(&short(scenario), None);
        let figures = &report.figures;
        assert!(figures.overall.offered > 0, "{what}: nobody called");
        assert!(figures.overall.handled > 0, "{what}: nobody was served");
        for q in figures.queues.iter().chain([&figures.overall]) {
            assert_accounted(q, &what);
        }
        let sum: u64 = figures.queues.iter().map(|q| q.offered).sum();
        assert_eq!(sum, figures.overall.offered, "{what}");
        for g in &figures.agent_groups {
            if let Some(occupancy) = g.occupancy {
                assert!((0.0..=1.0).contains(&occupancy), "{what}: group {g:?}");
            }
        }
        let printed = report.to_string();
        if figures.queues.len() <= 20 {
            for q in &figures.queues {
                assert!(
                    printed.contains(&q.name),
                    "{what}: {} missing:\n{printed}",
                    q.name
                );
            }
        }
        assert!(
            printed.contains("\nall "),
            "{what}: no overall line:\n{printed}"
        );
        assert!(printed.contains("decision latency"), "{printed}");
        let json = report.to_json();
        assert_eq!(
            json["overall"]["offered"].as_u64(),
            Some(figures.overall.offered),
            "{what}: {json}"
        );
        assert!(
            json["decision_latency"]["all"]["p99_us"].as_f64().is_some(),
            "{json}"
        );
    }
}

#[test]
fn the_shipped_scenarios_are_neither_idle_nor_hopeless() {
    for name in ["small-inbound.toml", "blended.toml"] {
        let report = run(&example(name), None);
        let overall = &report.figures.overall;
        let level = overall.service_level.unwrap_or_default();
        assert!(
            (0.5..0.99).contains(&level),
            "{name}: service level {level} should show a center under some pressure"
        );
        assert!(overall.abandoned > 0, "{name}: {overall:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_day() {
    let scenario = example("blended.toml");
    let first = run(&scenario, None);
    let second = run(&scenario, None);
    assert_eq!(first.figures, second.figures);
    let explicit = run(&scenario, Some(scenario.seed()));
    assert_eq!(first.figures, explicit.figures);
    assert_eq!(first.seed, scenario.seed());
}

#[test]
fn another_seed_gives_another_day() {
    let scenario = example("small-inbound.toml");
    let first = run(&scenario, Some(1));
    let second = run(&scenario, Some(2));
    assert_ne!(first.figures, second.figures);
    assert_eq!(second.seed, 2);
}

#[test]
fn the_big_center_is_the_same_center_on_every_run() {
    let scenario = short(example("large-2000-agents.toml"));
    assert_eq!(scenario.agent_count(), 2000);
    assert_eq!(scenario.queue_count(), 200);
    let again = short(example("large-2000-agents.toml"));
    assert_eq!(
        run(&scenario, Some(5)).figures,
        run(&again, Some(5)).figures
    );
}

/// The small center with every agent group `factor` times as large.
fn staffed(factor: f64) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/small-inbound.toml");
    let text = std::fs::read_to_string(path).expect("readable example");
    let mut table: toml::Table = toml::from_str(&text).expect("valid example");
    if let Some(toml::Value::Array(groups)) = table.get_mut("agent_groups") {
        for group in groups {
            if let Some(toml::Value::Integer(count)) = group.get_mut("count") {
                *count = (*count as f64 * factor).round() as i64;
            }
        }
    }
    let text = toml::to_string(&table).expect("serializable");
    Scenario::from_str(&text, "small-inbound (restaffed)").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn more_agents_answer_more_calls_sooner_on_the_same_arrivals() {
    let thin = run(&staffed(0.8), None).figures.overall;
    let base = run(&staffed(1.0), None).figures.overall;
    let rich = run(&staffed(1.5), None).figures.overall;
    assert_eq!(thin.offered, base.offered, "the same customers should call");
    assert_eq!(base.offered, rich.offered, "the same customers should call");
    let sl = |q: &QueueFigures| q.service_level.unwrap_or_default();
    let asa = |q: &QueueFigures| q.asa_s.unwrap_or_default();
    assert!(
        sl(&thin) < sl(&base) && sl(&base) < sl(&rich),
        "{thin:?}\n{base:?}\n{rich:?}"
    );
    assert!(
        asa(&thin) > asa(&base) && asa(&base) > asa(&rich),
        "{thin:?}\n{base:?}\n{rich:?}"
    );
    assert!(thin.abandoned > rich.abandoned, "{thin:?}\n{rich:?}");
    let occupancy = |q: &QueueFigures| q.occupancy.unwrap_or_default();
    assert!(occupancy(&thin) > occupancy(&rich), "{thin:?}\n{rich:?}");
}

const OVERFLOWING: &str = r#"
name = "overflows"
seed = 3
hours = "09:00-13:00"

[[queues]]
name = "front"
max_wait_s = 30
overflow = { queue = "back" }

[[queues.arrivals]]
per_hour = 120
handle = { mean_s = 240, sd_s = 120 }
patience = { mean_s = 400 }

[[queues]]
name = "back"
max_wait_s = 60
overflow = "voicemail"

[[queues.arrivals]]
per_hour = 20
handle = { mean_s = 240 }
patience = { mean_s = 600, distribution = "lognormal", sd_s = 300 }
callback_share = 0.5

[[agent_groups]]
name = "front"
count = 4
queues = ["front"]

[[agent_groups]]
name = "back"
count = 3
slots = { voice = 1, callback = 1 }
queues = ["back"]
shifts = ["09:00-12:00"]
"#;

#[test]
fn overflowed_and_rerouted_contacts_are_counted_once_where_they_arrived() {
    let scenario = Scenario::from_str(OVERFLOWING, "overflows").unwrap_or_else(|e| panic!("{e}"));
    let report = run(&scenario, None);
    let figures = &report.figures;
    for q in figures.queues.iter().chain([&figures.overall]) {
        assert_accounted(q, "overflows");
    }
    let front = &figures.queues[0];
    assert!(front.rerouted > 0, "{front:?}");
    let overall = &figures.overall;
    assert!(
        overall.overflowed > 0,
        "voicemail should take some: {overall:?}"
    );
    // The back office leaves at noon: whoever still waits for it then waits until closing.
    assert!(overall.waiting_at_end > 0, "{overall:?}");
}

/// Loads a fixture of tests/data/scenarios and returns its refusal.
fn refusal(name: &str) -> SimError {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scenarios")
        .join(name);
    match Scenario::load(&path) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn bad_scenarios_are_refused_with_the_field_named() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown-key.toml",
            "queues[0].arrivals[0].rate",
            &["unknown field `rate`", "per_hour"],
        ),
        (
            "unknown-queue-key.toml",
            "queues[0].service_level",
            &["unknown field", "service_level_s", "arrivals"],
        ),
        (
            "negative-rate.toml",
            "queues[2].arrivals[0].per_hour",
            &["-3 is negative", "≥ 0"],
        ),
        (
            "level-11.toml",
            "agent_groups[0].skills.sales",
            &["11", "1 to 10"],
        ),
        (
            "probability-1.5.toml",
            "agent_groups[0].miss_probability",
            &["1.5", "0 to 1"],
        ),
        (
            "agent-in-unknown-queue.toml",
            "agent_groups[0].queues[1]",
            &["\"suport\""],
        ),
        (
            "attribute-without-rule.toml",
            "queues[0].contact_attributes.language",
            &["rule"],
        ),
        (
            "short-profile.toml",
            "queues[0].arrivals[0].profile",
            &["24"],
        ),
        (
            "bad-shift.toml",
            "agent_groups[0].shifts[1]",
            &["ends before it starts"],
        ),
        (
            "routing-nan.toml",
            "routing.startup_grace_s",
            &["NaN", "0 to 86400"],
        ),
    ];
    for (file, field, words) in cases {
        let error = refusal(file);
        assert_eq!(error.field(), Some(*field), "{file}: {error}");
        let message = error.to_string();
        assert!(
            message.contains(file),
            "{file}: the message should name the file: {message}"
        );
        assert!(message.contains(field), "{file}: {message}");
        for word in *words {
            assert!(
                message.contains(word),
                "{file}: expected {word:?} in {message}"
            );
        }
    }
}

#[test]
fn refusals_point_at_the_line() {
    let message = refusal("negative-rate.toml").to_string();
    assert!(message.contains("negative-rate.toml:15:"), "{message}");
    let message = refusal("not-toml.toml").to_string();
    assert!(message.contains("not-toml.toml:3:"), "{message}");
    let missing = Scenario::load(Path::new("tests/data/scenarios/nothing-here.toml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(missing.contains("nothing-here.toml"), "{missing}");
}

/// Every number of a shipped scenario replaced, one at a time, by a value a careless or
/// hostile file could hold: the load refuses it or the day runs; nothing panics.
#[test]
fn no_number_in_a_scenario_makes_the_simulator_panic() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/blended.toml");
    let text = std::fs::read_to_string(path).expect("readable example");
    let numbers: Vec<(usize, usize)> = {
        let bytes = text.as_bytes();
        let mut spans = Vec::new();
        let mut i = 0;
        let mut in_comment = false;
        let mut in_string = false;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\n' => in_comment = false,
                b'#' if !in_string => in_comment = true,
                b'"' if !in_comment => in_string = !in_string,
                _ => {}
            }
            let starts = c.is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
            if starts && !in_comment && !in_string {
                let end = (i..bytes.len())
                    .find(|&j| !(bytes[j].is_ascii_digit() || bytes[j] == b'.'))
                    .unwrap_or(bytes.len());
                spans.push((i, end));
                i = end;
                continue;
            }
            i += 1;
        }
        spans
    };
    assert!(numbers.len() > 50, "{}", numbers.len());
    let mut refused = 0;
    for (start, end) in &numbers {
        for replacement in ["-1", "0", "nan", "inf", "1e300", "4294967296"] {
            let mutated = format!("{}{replacement}{}", &text[..*start], &text[*end..]);
            match Scenario::from_str(&mutated, "mutated.toml") {
                Err(error) => {
                    refused += 1;
                    assert!(!error.to_string().is_empty());
                }
                Ok(scenario) => {
                    let _ = sim::run(&scenario.first_hours(0.5), &quiet(None));
                }
            }
        }
    }
    assert!(
        refused > numbers.len(),
        "most mutations should be refused: {refused}"
    );
}
