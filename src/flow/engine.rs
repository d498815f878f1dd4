//! The event handler (the seeds' event handler): for each contact, the state its flow expects
//! next, compared with what the switch and the router report. What matches moves the flow on;
//! a mismatch or a deadline takes the step's defined way out (a playback that never finishes is
//! stopped and the flow goes on; a bridge that never happens sends the contact back to its
//! place in the queue).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::media::{
    HangupCause, LegId, MediaCommand, MediaEvent, PlaySource, RecordFormat, RecordTarget,
};
use crate::model::{ContactId, Outcome, Priority, Timestamp};
use crate::routing::{Output, OverflowTarget};

use super::definition::{Choice, Flow, Step, StepIndex};

/// How long a hang-up may take before the flow counts the contact as gone anyway.
const HANGUP_GRACE: Duration = Duration::from_secs(10);
/// Extra time a recording gets over its maximum before the flow stops it.
const RECORDING_GRACE: Duration = Duration::from_secs(5);

/// What the flow engine asks the controller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowAction {
    /// Send a command to the contact's media handler.
    Media(MediaCommand),
    /// Put the contact in a queue (the router's arrival) with the attributes the flow collected.
    Enqueue {
        /// The contact.
        contact: ContactId,
        /// The queue.
        queue: String,
        /// Its priority.
        priority: Priority,
        /// Attributes collected so far.
        attributes: BTreeMap<String, String>,
    },
    /// The caller left while queued or ringing.
    Abandon {
        /// The contact.
        contact: ContactId,
    },
    /// The agent's leg was never bridged: back to its place in the queue.
    BackToQueue {
        /// The contact.
        contact: ContactId,
    },
    /// Tell the flow the contact's position and expected wait ([`FlowEngine::on_queue_status`]).
    QueueStatusWanted {
        /// The contact.
        contact: ContactId,
    },
    /// A voicemail was recorded: make it a contact of media type voicemail in `queue`.
    Voicemail {
        /// The caller's contact.
        contact: ContactId,
        /// The queue for the voicemail contact.
        queue: String,
        /// The recording.
        path: String,
        /// Attributes collected.
        attributes: BTreeMap<String, String>,
    },
    /// The flow is over for this contact.
    Finished {
        /// The contact.
        contact: ContactId,
    },
}

/// An input the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowRunError {
    /// No flow has this name.
    #[error("no flow is named {0:?}")]
    UnknownFlow(String),
    /// The contact already runs a flow.
    #[error("{0} already runs a flow")]
    AlreadyRunning(ContactId),
    /// The contact runs no flow.
    #[error("{0} runs no flow")]
    NotRunning(ContactId),
    /// The flow has no queue step to resume at.
    #[error("flow {0:?} has no queue step")]
    NoQueueStep(String),
}

/// After a prompt finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterPlay {
    Step(StepIndex),
    AwaitDigit,
    Hangup,
    Record,
    Announcement,
}

/// What the flow expects next for a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Playback { id: String, then: AfterPlay },
    Digit,
    InQueue,
    Announcing { id: String, rest: VecDeque<String> },
    Bridge,
    Talking,
    Recording { path: String },
    HangingUp,
}

#[derive(Debug, Clone)]
struct Run {
    flow: Arc<Flow>,
    leg: LegId,
    step: StepIndex,
    attributes: BTreeMap<String, String>,
    expect: Expect,
    epoch: u32,
    prompts: u32,
    tries: u8,
    queued: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tick {
    Deadline,
    Announce,
}

/// Runs every contact's flow.
#[derive(Debug, Default)]
pub struct FlowEngine {
    flows: BTreeMap<String, Arc<Flow>>,
    runs: FxHashMap<ContactId, Run>,
    timers: BinaryHeap<Reverse<(Timestamp, ContactId, u32, Tick)>>,
    actions: VecDeque<FlowAction>,
}

/// The sound files that say a number (`digits/30`, `digits/4` for 34), as both switches ship them.
pub fn number_prompts(n: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut n = n.min(9_999);
    if n >= 1000 {
        out.push(format!("digits/{}", n / 1000));
        out.push("digits/thousand".to_owned());
        n %= 1000;
    }
    if n >= 100 {
        out.push(format!("digits/{}", n / 100));
        out.push("digits/hundred".to_owned());
        n %= 100;
    }
    if n > 20 && !n.is_multiple_of(10) {
        out.push(format!("digits/{}", n - n % 10));
        out.push(format!("digits/{}", n % 10));
    } else if n > 0 || out.is_empty() {
        out.push(format!("digits/{n}"));
    }
    out
}

impl FlowEngine {
    /// An engine with no flows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a flow. Contacts already running the flow it replaces finish with it.
    pub fn add_flow(&mut self, flow: Flow) {
        self.flows.insert(flow.name.clone(), Arc::new(flow));
    }

    /// Removes a flow; contacts running it finish with it. Whether it existed.
    pub fn remove_flow(&mut self, name: &str) -> bool {
        self.flows.remove(name).is_some()
    }

    /// Whether a flow of this name exists.
    pub fn has_flow(&self, name: &str) -> bool {
        self.flows.contains_key(name)
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    /// Every pending action, in order.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = FlowAction> + '_ {
        self.actions.drain(..)
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// Contacts running a flow.
    pub fn running(&self) -> usize {
        self.runs.len()
    }

    /// Starts `flow` for a new contact whose customer leg is `leg`.
    pub fn start(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        leg: LegId,
        flow: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), FlowRunError> {
        self.advance(now);
        let flow = self
            .flows
            .get(flow)
            .cloned()
            .ok_or_else(|| FlowRunError::UnknownFlow(flow.to_owned()))?;
        if self.runs.contains_key(&contact) {
            return Err(FlowRunError::AlreadyRunning(contact));
        }
        let start = match (&flow.hours, flow.closed) {
            (Some(hours), Some(closed)) if !hours.is_open(now) => closed,
            _ => 0,
        };
        self.runs.insert(
            contact,
            Run {
                flow,
                leg,
                step: start,
                attributes,
                expect: Expect::HangingUp,
                epoch: 0,
                prompts: 0,
                tries: 0,
                queued: false,
            },
        );
        self.enter(now, contact, start);
        Ok(())
    }

    /// Takes back a contact that was already waiting in a queue of `flow` before a restart:
    /// its run resumes at the flow's first queue step (hold music, announcements), without
    /// queueing it again (the router kept its place), with the `attributes` it had collected
    /// (as stored), which a later voicemail carries on.
    pub fn resume_queued(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        leg: LegId,
        flow: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), FlowRunError> {
        self.advance(now);
        let flow = self
            .flows
            .get(flow)
            .cloned()
            .ok_or_else(|| FlowRunError::UnknownFlow(flow.to_owned()))?;
        if self.runs.contains_key(&contact) {
            return Err(FlowRunError::AlreadyRunning(contact));
        }
        let step = flow
            .steps
            .iter()
            .position(|s| matches!(s, Step::Queue { .. }))
            .ok_or_else(|| FlowRunError::NoQueueStep(flow.name.clone()))?;
        self.runs.insert(
            contact,
            Run {
                flow,
                leg,
                step,
                attributes,
                expect: Expect::InQueue,
                epoch: 0,
                prompts: 0,
                tries: 0,
                queued: true,
            },
        );
        self.resume_queue(now, contact);
        Ok(())
    }

    /// Something happened on the contact's customer leg.
    pub fn on_media(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        event: &MediaEvent,
    ) -> Result<(), FlowRunError> {
        self.advance(now);
        let run = self
            .runs
            .get(&contact)
            .ok_or(FlowRunError::NotRunning(contact))?;
        let expect = run.expect.clone();
        match event {
            MediaEvent::HungUp { .. } | MediaEvent::Destroyed { .. } => {
                if let Expect::Recording { .. } = expect {
                    // Hanging up is how callers end a message: it is left (the switch closes
                    // the file, and its recording-finished report comes after the hang-up).
                    self.voicemail_left(contact);
                } else if run.queued && !matches!(expect, Expect::Talking) {
                    self.actions.push_back(FlowAction::Abandon { contact });
                }
                self.finish(contact);
            }
            MediaEvent::PlaybackFinished { playback, .. } => match expect {
                Expect::Playback { id, then } if playback.as_deref().is_none_or(|p| p == id) => {
                    self.after_play(now, contact, then);
                }
                Expect::Announcing { id, rest } if playback.as_deref().is_none_or(|p| p == id) => {
                    self.announce_next(now, contact, rest);
                }
                _ => {}
            },
            MediaEvent::Dtmf { digit, .. } => {
                let in_menu = matches!(
                    expect,
                    Expect::Digit
                        | Expect::Playback {
                            then: AfterPlay::AwaitDigit,
                            ..
                        }
                );
                if in_menu {
                    if let Expect::Playback { id, .. } = &expect {
                        // A digit during the prompt answers it (barge-in).
                        let leg = run.leg.clone();
                        self.actions
                            .push_back(FlowAction::Media(MediaCommand::StopPlayback {
                                leg,
                                playback: id.clone(),
                            }));
                    }
                    self.choose(now, contact, Some(*digit));
                }
            }
            MediaEvent::Bridged { .. } if expect == Expect::Bridge => {
                self.expect(now, contact, Expect::Talking, None);
            }
            // The agent left: the call is over for the customer.
            MediaEvent::Unbridged { .. } if expect == Expect::Talking => {
                self.hang_up(now, contact, None)
            }
            MediaEvent::RecordingFinished { path, .. } => {
                if let Expect::Recording { path: expected } = &expect
                    && path == expected
                {
                    self.voicemail_done(now, contact);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What the router did with the contact.
    pub fn on_router(&mut self, now: Timestamp, output: &Output) {
        self.advance(now);
        let contact = output.contact();
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        match output {
            Output::Connected { .. } => {
                let bridge_timeout = match run.flow.steps.get(run.step) {
                    Some(Step::Queue { bridge_timeout, .. }) => *bridge_timeout,
                    _ => Duration::from_secs(30),
                };
                if let Expect::Announcing { id, .. } = &run.expect {
                    let stop = MediaCommand::StopPlayback {
                        leg: run.leg.clone(),
                        playback: id.clone(),
                    };
                    self.actions.push_back(FlowAction::Media(stop));
                }
                // Connected: a hang-up from now on is the end of a call, not an abandon.
                if let Some(run) = self.runs.get_mut(&contact) {
                    run.queued = false;
                }
                self.expect(now, contact, Expect::Bridge, Some(bridge_timeout));
            }
            Output::Overflowed { target, .. } => match target {
                OverflowTarget::Voicemail => {
                    let next = match run.flow.steps.get(run.step) {
                        Some(Step::Queue {
                            on_voicemail: Some(step),
                            ..
                        }) => Some(*step),
                        _ => None,
                    };
                    if let Some(run) = self.runs.get_mut(&contact) {
                        run.queued = false;
                    }
                    match next {
                        Some(step) => self.enter(now, contact, step),
                        None => self.hang_up(now, contact, None),
                    }
                }
                OverflowTarget::Callback | OverflowTarget::Disconnect => {
                    // A callback stays queued in the router while the caller is off the line.
                    if let Some(run) = self.runs.get_mut(&contact) {
                        run.queued = false;
                    }
                    self.hang_up(now, contact, None);
                }
                OverflowTarget::Queue(_) | OverflowTarget::None => {}
            },
            Output::BecameCallback { .. } => {
                if let Some(run) = self.runs.get_mut(&contact) {
                    run.queued = false;
                }
                self.hang_up(now, contact, None);
            }
            Output::Ended {
                outcome: Outcome::Completed,
                ..
            } if run.expect != Expect::HangingUp => {
                self.hang_up(now, contact, None);
            }
            _ => {}
        }
    }

    /// The contact's position (1 = next) and expected wait, asked for by
    /// [`FlowAction::QueueStatusWanted`]: announced if the contact is still waiting.
    pub fn on_queue_status(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        position: u32,
        wait: Option<Duration>,
    ) {
        self.advance(now);
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        if run.expect != Expect::InQueue {
            return;
        }
        let Some(Step::Queue {
            position_prompt,
            wait_prompt,
            ..
        }) = run.flow.steps.get(run.step)
        else {
            return;
        };
        let mut parts = VecDeque::new();
        if let Some(prompt) = position_prompt {
            parts.push_back(prompt.clone());
            parts.extend(number_prompts(position));
        }
        if let (Some(prompt), Some(wait)) = (wait_prompt, wait) {
            parts.push_back(prompt.clone());
            parts.extend(number_prompts(wait.as_secs().div_ceil(60) as u32));
            parts.push_back("minutes".to_owned());
        }
        self.announce_next(now, contact, parts);
    }

    /// Handles deadlines due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    fn advance(&mut self, now: Timestamp) {
        while let Some(Reverse((at, contact, epoch, tick))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(run) = self.runs.get(&contact) else {
                continue;
            };
            if run.epoch != epoch {
                continue;
            }
            self.fire(at, contact, tick);
        }
    }

    fn fire(&mut self, now: Timestamp, contact: ContactId, tick: Tick) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        let leg = run.leg.clone();
        match (tick, run.expect.clone()) {
            (Tick::Deadline, Expect::Playback { id, then }) => {
                // The playback never finished: stop it and go on.
                self.actions
                    .push_back(FlowAction::Media(MediaCommand::StopPlayback {
                        leg,
                        playback: id,
                    }));
                self.after_play(now, contact, then);
            }
            (Tick::Deadline, Expect::Digit) => self.choose(now, contact, None),
            (Tick::Announce, Expect::InQueue) => {
                self.actions
                    .push_back(FlowAction::QueueStatusWanted { contact });
                self.schedule_announcement(now, contact);
            }
            (Tick::Deadline, Expect::Announcing { id, .. }) => {
                self.actions
                    .push_back(FlowAction::Media(MediaCommand::StopPlayback {
                        leg,
                        playback: id,
                    }));
                self.resume_queue(now, contact);
            }
            (Tick::Deadline, Expect::Bridge) => {
                // No bridge in time: back to the queue at its place.
                self.actions.push_back(FlowAction::BackToQueue { contact });
                if let Some(run) = self.runs.get_mut(&contact) {
                    run.queued = true;
                }
                self.resume_queue(now, contact);
            }
            (Tick::Deadline, Expect::Recording { path }) => {
                self.actions
                    .push_back(FlowAction::Media(MediaCommand::StopRecording {
                        target: RecordTarget::Leg(leg),
                        path,
                    }));
                self.voicemail_done(now, contact);
            }
            (Tick::Deadline, Expect::HangingUp) => self.finish(contact),
            _ => {}
        }
    }

    /// Sets what is expected next, with an optional deadline; earlier timers become stale.
    fn expect(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        expect: Expect,
        within: Option<Duration>,
    ) {
        let Some(run) = self.runs.get_mut(&contact) else {
            return;
        };
        run.expect = expect;
        run.epoch = run.epoch.wrapping_add(1);
        if let Some(within) = within {
            self.timers.push(Reverse((
                now.plus(within),
                contact,
                run.epoch,
                Tick::Deadline,
            )));
        }
    }

    fn play(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        prompt: &str,
        max: Duration,
        then: AfterPlay,
    ) {
        let Some(run) = self.runs.get_mut(&contact) else {
            return;
        };
        run.prompts += 1;
        let id = format!("{contact}-{}", run.prompts);
        self.actions
            .push_back(FlowAction::Media(MediaCommand::Play {
                leg: run.leg.clone(),
                source: PlaySource::File(prompt.to_owned()),
                playback: id.clone(),
            }));
        self.expect(now, contact, Expect::Playback { id, then }, Some(max));
    }

    /// Runs steps from `step` until one waits for something.
    fn enter(&mut self, now: Timestamp, contact: ContactId, step: StepIndex) {
        let mut step = step;
        // Set/goto chains are finite (validated), so this loop ends.
        loop {
            let Some(run) = self.runs.get_mut(&contact) else {
                return;
            };
            run.step = step;
            run.tries = 0;
            let Some(current) = run.flow.steps.get(step).cloned() else {
                self.hang_up(now, contact, None);
                return;
            };
            match current {
                Step::Set { set, next } => {
                    run.attributes.extend(set);
                    step = next;
                }
                Step::Play { prompt, max, next } => {
                    self.play(now, contact, &prompt, max, AfterPlay::Step(next));
                    return;
                }
                Step::Menu {
                    prompt, timeout, ..
                } => {
                    self.play(
                        now,
                        contact,
                        &prompt,
                        timeout + Duration::from_secs(60),
                        AfterPlay::AwaitDigit,
                    );
                    return;
                }
                Step::Queue {
                    queue, priority, ..
                } => {
                    let attributes = run.attributes.clone();
                    run.queued = true;
                    self.actions.push_back(FlowAction::Enqueue {
                        contact,
                        queue,
                        priority,
                        attributes,
                    });
                    self.resume_queue(now, contact);
                    return;
                }
                Step::Voicemail { prompt, .. } => {
                    match prompt {
                        Some(prompt) => self.play(
                            now,
                            contact,
                            &prompt,
                            Duration::from_secs(120),
                            AfterPlay::Record,
                        ),
                        None => self.record(now, contact),
                    }
                    return;
                }
                Step::Hangup { prompt } => {
                    self.hang_up(now, contact, prompt);
                    return;
                }
            }
        }
    }

    fn after_play(&mut self, now: Timestamp, contact: ContactId, then: AfterPlay) {
        match then {
            AfterPlay::Step(next) => self.enter(now, contact, next),
            AfterPlay::AwaitDigit => {
                let timeout = match self
                    .runs
                    .get(&contact)
                    .and_then(|r| r.flow.steps.get(r.step).cloned())
                {
                    Some(Step::Menu { timeout, .. }) => timeout,
                    _ => Duration::from_secs(5),
                };
                self.expect(now, contact, Expect::Digit, Some(timeout));
            }
            AfterPlay::Hangup => self.send_hangup(now, contact),
            AfterPlay::Record => self.record(now, contact),
            AfterPlay::Announcement => self.resume_queue(now, contact),
        }
    }

    /// A menu answer (`None`: no digit in time).
    fn choose(&mut self, now: Timestamp, contact: ContactId, digit: Option<char>) {
        let Some(run) = self.runs.get_mut(&contact) else {
            return;
        };
        let Some(Step::Menu {
            prompt,
            options,
            retries,
            default,
            timeout,
        }) = run.flow.steps.get(run.step).cloned()
        else {
            return;
        };
        let chosen: Option<Choice> = digit.and_then(|d| options.get(&d).cloned());
        match chosen {
            Some(choice) => self.take(now, contact, choice),
            None if run.tries < retries => {
                run.tries += 1;
                self.play(
                    now,
                    contact,
                    &prompt,
                    timeout + Duration::from_secs(60),
                    AfterPlay::AwaitDigit,
                );
            }
            None => self.take(now, contact, default),
        }
    }

    fn take(&mut self, now: Timestamp, contact: ContactId, choice: Choice) {
        if let Some(run) = self.runs.get_mut(&contact) {
            run.attributes.extend(choice.set);
        }
        self.enter(now, contact, choice.next);
    }

    /// Waiting in the queue: music, and the next announcement.
    fn resume_queue(&mut self, now: Timestamp, contact: ContactId) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        let music = match run.flow.steps.get(run.step) {
            Some(Step::Queue { music, .. }) => music.clone(),
            _ => None,
        };
        let leg = run.leg.clone();
        self.actions
            .push_back(FlowAction::Media(MediaCommand::Park { leg, music }));
        self.expect(now, contact, Expect::InQueue, None);
        self.schedule_announcement(now, contact);
    }

    fn schedule_announcement(&mut self, now: Timestamp, contact: ContactId) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        if let Some(Step::Queue {
            announce_every: Some(every),
            ..
        }) = run.flow.steps.get(run.step)
        {
            self.timers.push(Reverse((
                now.plus(*every),
                contact,
                run.epoch,
                Tick::Announce,
            )));
        }
    }

    fn announce_next(&mut self, now: Timestamp, contact: ContactId, mut rest: VecDeque<String>) {
        let Some(prompt) = rest.pop_front() else {
            self.after_play(now, contact, AfterPlay::Announcement);
            return;
        };
        let Some(run) = self.runs.get_mut(&contact) else {
            return;
        };
        run.prompts += 1;
        let id = format!("{contact}-{}", run.prompts);
        self.actions
            .push_back(FlowAction::Media(MediaCommand::Play {
                leg: run.leg.clone(),
                source: PlaySource::File(prompt),
                playback: id.clone(),
            }));
        self.expect(
            now,
            contact,
            Expect::Announcing { id, rest },
            Some(Duration::from_secs(30)),
        );
    }

    fn record(&mut self, now: Timestamp, contact: ContactId) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        let max = match run.flow.steps.get(run.step) {
            Some(Step::Voicemail { max, .. }) => *max,
            _ => Duration::from_secs(120),
        };
        // Recordings are named after the contact.
        let path = format!("voicemail/{}.wav", contact.0);
        self.actions
            .push_back(FlowAction::Media(MediaCommand::StartRecording {
                target: RecordTarget::Leg(run.leg.clone()),
                path: path.clone(),
                format: RecordFormat::Wav,
            }));
        self.expect(
            now,
            contact,
            Expect::Recording { path },
            Some(max + RECORDING_GRACE),
        );
    }

    fn voicemail_done(&mut self, now: Timestamp, contact: ContactId) {
        self.voicemail_left(contact);
        self.hang_up(now, contact, None);
    }

    /// The message being recorded is left: it becomes a voicemail contact.
    fn voicemail_left(&mut self, contact: ContactId) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        if let (Some(Step::Voicemail { queue, .. }), Expect::Recording { path }) =
            (run.flow.steps.get(run.step), &run.expect)
        {
            self.actions.push_back(FlowAction::Voicemail {
                contact,
                queue: queue.clone(),
                path: path.clone(),
                attributes: run.attributes.clone(),
            });
        }
    }

    /// Whether the contact's caller is recording a message now.
    pub fn is_recording_voicemail(&self, contact: ContactId) -> bool {
        self.runs
            .get(&contact)
            .is_some_and(|run| matches!(run.expect, Expect::Recording { .. }))
    }

    fn hang_up(&mut self, now: Timestamp, contact: ContactId, prompt: Option<String>) {
        match prompt {
            Some(prompt) => self.play(
                now,
                contact,
                &prompt,
                Duration::from_secs(60),
                AfterPlay::Hangup,
            ),
            None => self.send_hangup(now, contact),
        }
    }

    fn send_hangup(&mut self, now: Timestamp, contact: ContactId) {
        let Some(run) = self.runs.get(&contact) else {
            return;
        };
        let leg = run.leg.clone();
        self.actions
            .push_back(FlowAction::Media(MediaCommand::Hangup {
                leg,
                cause: HangupCause::normal_clearing(),
            }));
        self.expect(now, contact, Expect::HangingUp, Some(HANGUP_GRACE));
    }

    fn finish(&mut self, contact: ContactId) {
        if self.runs.remove(&contact).is_some() {
            self.actions.push_back(FlowAction::Finished { contact });
        }
    }
}
