//! What administrators write: a flow per queue, as a TOML file, and its validation into a
//! [`Flow`] whose steps refer to each other by index.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Priority;

use super::hours::{BusinessHours, HoursSetup};

/// A flow file that is not valid, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct FlowError {
    /// The file (or name) the flow came from.
    pub file: String,
    /// Dotted path of the offending key.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// A flow file (TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// Unique name of the flow.
    pub name: String,
    /// Business hours; outside them the flow starts at `closed`.
    #[serde(default)]
    pub hours: Option<HoursSetup>,
    /// The step to start at when closed (required with `hours`).
    #[serde(default)]
    pub closed: Option<String>,
    /// The steps, run in order unless a step says where to go.
    pub steps: Vec<StepSetup>,
}

/// One step as written: exactly one of the verb keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSetup {
    /// A label other steps can jump to.
    #[serde(default)]
    pub id: Option<String>,
    /// Play a prompt, then go on.
    #[serde(default)]
    pub play: Option<PlaySetup>,
    /// Play a prompt and collect one digit.
    #[serde(default)]
    pub menu: Option<MenuSetup>,
    /// Set contact attributes.
    #[serde(default)]
    pub set: Option<BTreeMap<String, String>>,
    /// Wait in a queue for an agent.
    #[serde(default)]
    pub queue: Option<QueueSetup>,
    /// Record a voicemail that becomes a contact.
    #[serde(default)]
    pub voicemail: Option<VoicemailSetup>,
    /// Hang up, after an optional prompt.
    #[serde(default)]
    pub hangup: Option<HangupSetup>,
    /// Jump to a step.
    #[serde(default)]
    pub goto: Option<String>,
}

/// `play = { prompt = "…", max_s = 120 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaySetup {
    /// The sound to play.
    pub prompt: String,
    /// Longest the playback may take before the flow stops it and goes on.
    #[serde(default = "default_play_max")]
    pub max_s: f64,
}

fn default_play_max() -> f64 {
    120.0
}

/// A digit menu.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuSetup {
    /// The prompt.
    pub prompt: String,
    /// What each digit does.
    pub options: BTreeMap<String, ChoiceSetup>,
    /// Seconds to wait for a digit after the prompt.
    #[serde(default = "default_digit_timeout")]
    pub timeout_s: f64,
    /// How many times the prompt is repeated after no or a wrong digit.
    #[serde(default = "default_retries")]
    pub retries: u8,
    /// What happens when retries run out (default: go on to the next step).
    #[serde(default)]
    pub default: Option<ChoiceSetup>,
}

fn default_digit_timeout() -> f64 {
    5.0
}
fn default_retries() -> u8 {
    2
}

/// What a menu choice does: set attributes and/or jump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSetup {
    /// Attributes to set on the contact.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// The step to go to (default: the next one).
    #[serde(default)]
    pub goto: Option<String>,
}

/// Waiting in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSetup {
    /// The queue.
    pub name: String,
    /// Music on hold class while waiting.
    #[serde(default)]
    pub music: Option<String>,
    /// Priority of the contact.
    #[serde(default)]
    pub priority: Priority,
    /// Seconds between announcements of position and expected wait (absent: none).
    #[serde(default)]
    pub announce_every_s: Option<f64>,
    /// Prompt before the position ("you are caller number").
    #[serde(default)]
    pub position_prompt: Option<String>,
    /// Prompt before the expected wait in minutes ("your expected wait is").
    #[serde(default)]
    pub wait_prompt: Option<String>,
    /// Step to go to when the queue overflows to voicemail.
    #[serde(default)]
    pub on_voicemail: Option<String>,
    /// Seconds an agent's leg has to be bridged after the router connected the contact.
    #[serde(default = "default_bridge_timeout")]
    pub bridge_timeout_s: f64,
}

fn default_bridge_timeout() -> f64 {
    30.0
}

/// Recording a voicemail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailSetup {
    /// Prompt before the beep.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Longest message, in seconds.
    #[serde(default = "default_voicemail_max")]
    pub max_s: f64,
    /// The queue the voicemail contact goes to.
    pub queue: String,
}

fn default_voicemail_max() -> f64 {
    120.0
}

/// Hanging up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HangupSetup {
    /// Prompt before hanging up.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// Where a step goes: an index into the flow's steps.
pub type StepIndex = usize;

/// A validated menu choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Attributes to set.
    pub set: BTreeMap<String, String>,
    /// Next step.
    pub next: StepIndex,
}

/// A validated step. Every variant knows its successor(s).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Play, then `next`.
    Play {
        /// The prompt.
        prompt: String,
        /// Longest playback.
        max: Duration,
        /// Next step.
        next: StepIndex,
    },
    /// Collect a digit.
    Menu {
        /// The prompt.
        prompt: String,
        /// Digit → choice.
        options: BTreeMap<char, Choice>,
        /// Wait for a digit after the prompt.
        timeout: Duration,
        /// Repeats.
        retries: u8,
        /// After the last retry.
        default: Choice,
    },
    /// Set attributes, then `next`.
    Set {
        /// Attributes.
        set: BTreeMap<String, String>,
        /// Next step.
        next: StepIndex,
    },
    /// Wait in a queue.
    Queue {
        /// The queue.
        queue: String,
        /// Music class.
        music: Option<String>,
        /// Priority.
        priority: Priority,
        /// Announcement interval.
        announce_every: Option<Duration>,
        /// Position prompt.
        position_prompt: Option<String>,
        /// Wait prompt.
        wait_prompt: Option<String>,
        /// Where a voicemail overflow goes.
        on_voicemail: Option<StepIndex>,
        /// Bridge deadline after the router connects.
        bridge_timeout: Duration,
    },
    /// Record a voicemail.
    Voicemail {
        /// Prompt.
        prompt: Option<String>,
        /// Longest message.
        max: Duration,
        /// Its queue.
        queue: String,
    },
    /// Hang up.
    Hangup {
        /// Prompt.
        prompt: Option<String>,
    },
}

/// A validated flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Its name.
    pub name: String,
    /// Business hours.
    pub hours: Option<BusinessHours>,
    /// Where to start when closed.
    pub closed: Option<StepIndex>,
    /// The steps; execution starts at 0.
    pub steps: Vec<Step>,
}

fn seconds(file: &str, path: String, value: f64, min: f64) -> Result<Duration, FlowError> {
    if !value.is_finite() || value < min || value > 86_400.0 {
        return Err(FlowError {
            file: file.to_owned(),
            path,
            message: format!("{value} is not a number of seconds from {min} to 86400"),
        });
    }
    Ok(Duration::from_secs_f64(value))
}

impl Flow {
    /// Parses and validates a flow file's text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Flow, FlowError> {
        let setup: FlowFile = toml::from_str(text).map_err(|e| FlowError {
            file: file.to_owned(),
            path: e
                .span()
                .map(|s| format!("byte {}", s.start))
                .unwrap_or_default(),
            message: e.message().trim().to_owned(),
        })?;
        Flow::from_setup(&setup, file)
    }

    /// Validates a parsed flow file.
    pub fn from_setup(setup: &FlowFile, file: &str) -> Result<Flow, FlowError> {
        let error = |path: String, message: String| FlowError {
            file: file.to_owned(),
            path,
            message,
        };
        if setup.name.trim().is_empty() {
            return Err(error("name".into(), "expected a non-empty name".into()));
        }
        if setup.steps.is_empty() {
            return Err(error(
                "steps".into(),
                "a flow needs at least one step".into(),
            ));
        }
        let mut labels = BTreeMap::new();
        for (i, step) in setup.steps.iter().enumerate() {
            if let Some(id) = &step.id
                && labels.insert(id.clone(), i).is_some()
            {
                return Err(error(
                    format!("steps[{i}].id"),
                    format!("{id:?} labels two steps"),
                ));
            }
        }
        let target = |path: String, label: &str| {
            labels
                .get(label)
                .copied()
                .ok_or_else(|| error(path, format!("no step has id {label:?}")))
        };
        // The step after the last ends the flow with a hang-up.
        let end = setup.steps.len();
        let mut steps = Vec::with_capacity(setup.steps.len() + 1);
        for (i, s) in setup.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            let next = i + 1;
            let verbs = [
                s.play.is_some(),
                s.menu.is_some(),
                s.set.is_some() && s.menu.is_none(),
                s.queue.is_some(),
                s.voicemail.is_some(),
                s.hangup.is_some(),
                s.goto.is_some() && s.set.is_none(),
            ]
            .iter()
            .filter(|v| **v)
            .count();
            if verbs != 1 {
                return Err(error(
                    at,
                    "expected exactly one of play, menu, set, queue, voicemail, hangup, goto (set may come with goto)"
                        .into(),
                ));
            }
            let step = if let Some(play) = &s.play {
                Step::Play {
                    prompt: play.prompt.clone(),
                    max: seconds(file, format!("{at}.play.max_s"), play.max_s, 0.1)?,
                    next,
                }
            } else if let Some(menu) = &s.menu {
                let mut options = BTreeMap::new();
                for (digit, choice) in &menu.options {
                    let path = format!("{at}.menu.options.{digit}");
                    let mut chars = digit.chars();
                    let (Some(d), None) = (chars.next(), chars.next()) else {
                        return Err(error(path, "expected one digit: 0-9, *, # or A-D".into()));
                    };
                    if !matches!(d, '0'..='9' | '*' | '#' | 'A'..='D') {
                        return Err(error(
                            path,
                            format!("{d:?} is not a DTMF digit (0-9, *, #, A-D)"),
                        ));
                    }
                    let next = match &choice.goto {
                        Some(label) => target(format!("{path}.goto"), label)?,
                        None => next,
                    };
                    options.insert(
                        d,
                        Choice {
                            set: choice.set.clone(),
                            next,
                        },
                    );
                }
                let default = match &menu.default {
                    Some(choice) => Choice {
                        set: choice.set.clone(),
                        next: match &choice.goto {
                            Some(label) => target(format!("{at}.menu.default.goto"), label)?,
                            None => next,
                        },
                    },
                    None => Choice {
                        set: BTreeMap::new(),
                        next,
                    },
                };
                Step::Menu {
                    prompt: menu.prompt.clone(),
                    options,
                    timeout: seconds(file, format!("{at}.menu.timeout_s"), menu.timeout_s, 0.5)?,
                    retries: menu.retries,
                    default,
                }
            } else if let Some(set) = &s.set {
                let next = match &s.goto {
                    Some(label) => target(format!("{at}.goto"), label)?,
                    None => next,
                };
                Step::Set {
                    set: set.clone(),
                    next,
                }
            } else if let Some(queue) = &s.queue {
                Step::Queue {
                    queue: queue.name.clone(),
                    music: queue.music.clone(),
                    priority: queue.priority,
                    announce_every: match queue.announce_every_s {
                        Some(v) => Some(seconds(
                            file,
                            format!("{at}.queue.announce_every_s"),
                            v,
                            5.0,
                        )?),
                        None => None,
                    },
                    position_prompt: queue.position_prompt.clone(),
                    wait_prompt: queue.wait_prompt.clone(),
                    on_voicemail: match &queue.on_voicemail {
                        Some(label) => Some(target(format!("{at}.queue.on_voicemail"), label)?),
                        None => None,
                    },
                    bridge_timeout: seconds(
                        file,
                        format!("{at}.queue.bridge_timeout_s"),
                        queue.bridge_timeout_s,
                        1.0,
                    )?,
                }
            } else if let Some(vm) = &s.voicemail {
                Step::Voicemail {
                    prompt: vm.prompt.clone(),
                    max: seconds(file, format!("{at}.voicemail.max_s"), vm.max_s, 1.0)?,
                    queue: vm.queue.clone(),
                }
            } else if let Some(hangup) = &s.hangup {
                Step::Hangup {
                    prompt: hangup.prompt.clone(),
                }
            } else if let Some(label) = &s.goto {
                Step::Set {
                    set: BTreeMap::new(),
                    next: target(format!("{at}.goto"), label)?,
                }
            } else {
                return Err(error(at, "expected a verb".into()));
            };
            steps.push(step);
        }
        steps.push(Step::Hangup { prompt: None });
        let _ = end;
        let hours = match &setup.hours {
            Some(hours) => Some(
                BusinessHours::from_setup(hours)
                    .map_err(|(path, message)| error(format!("hours.{path}"), message))?,
            ),
            None => None,
        };
        let closed = match (&setup.closed, &hours) {
            (Some(label), Some(_)) => Some(target("closed".into(), label)?),
            (None, Some(_)) => {
                return Err(error(
                    "closed".into(),
                    "`hours` needs `closed`: the step to start at when closed".into(),
                ));
            }
            (Some(_), None) => return Err(error("closed".into(), "`closed` needs `hours`".into())),
            (None, None) => None,
        };
        // A loop of set/goto steps with no step that waits would spin forever.
        for start in 0..steps.len() {
            let mut at = start;
            let mut seen = 0;
            while let Step::Set { next, .. } = &steps[at] {
                at = *next;
                seen += 1;
                if seen > steps.len() {
                    return Err(error(
                        format!("steps[{start}]"),
                        "goto/set steps loop without ever waiting".into(),
                    ));
                }
            }
        }
        Ok(Flow {
            name: setup.name.clone(),
            hours,
            closed,
            steps,
        })
    }
}
