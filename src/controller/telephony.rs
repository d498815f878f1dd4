//! The calls side of the controller task: it feeds the call core ([`Calls`]) with the
//! handlers' events and the router's outputs, and carries out what the core decides —
//! commands to handlers (in order per leg, so that "answer, then tag, then play" stays in that
//! order), steps of the durable router, records and agent states in the store.
//!
//! Everything here runs on the controller task; only the handlers' commands run beside it, on
//! one worker per handler, which reports failures and resync snapshots back as [`Feedback`].
//! A worker keeps several commands in flight: each waits only for the earlier ones on the same
//! legs (one caller's "answer, tag, park" does not wait for another caller's bridge), and a
//! command that may act on legs it does not name waits for, and holds back, every other.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rustc_hash::FxHashSet;
use smallvec::SmallVec;
use tokio::sync::{broadcast, mpsc};

use crate::media::{
    HandlerEvent, HandlerId, HandlerPool, HangupCause, LegDirection, LegId, LegSnapshot,
    MediaCommand, MediaError, MediaEvent, MediaHandler, RecordTarget,
};
use crate::model::{AgentId, ContactId, ContactState, MediaType, Timestamp};
use crate::routing::{ContactSetup, Output};
use crate::store::{AgentStateChange, NewCdr};

use super::DurableRouter;
use super::calls::{
    AGENT_LEG_PREFIX, Adoption, AgentStep, CallAction, CallRecord, Calls, InboundCall, RouterStep,
};
use super::record_writer::RecordWriter;

/// Commands waiting for one handler before the controller waits (backpressure).
pub const HANDLER_QUEUE: usize = 4096;

/// Commands one handler's worker holds at once, running or waiting for an earlier one on the
/// same legs; the rest wait in its queue.
pub const HANDLER_IN_FLIGHT: usize = 64;

/// Notices kept for slow portal readers; a reader that falls further behind is told it lagged.
pub const NOTICE_BACKLOG: usize = 1024;

/// A notice for an agent's portal (screen pop), with names resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentNotice {
    /// The agent's name.
    pub agent: String,
    /// `offered`, `connected`, `withdrawn`, `ended`.
    pub event: &'static str,
    /// The contact.
    pub contact: u64,
    /// Its queue.
    pub queue: String,
    /// The calling number.
    pub caller: Option<String>,
    /// When, in microseconds since the Unix epoch.
    pub at_us: i64,
}

/// The calls side as the binary (or a test) sets it up.
pub struct TelephonySetup {
    /// The call core, with flows, agents (and their lines) and admission configured.
    pub calls: Calls,
    /// The started handlers and their pool weights.
    pub handlers: Vec<(Arc<dyn MediaHandler>, f64)>,
    /// Called number → queue (`"*"`: any other number).
    pub numbers: BTreeMap<String, String>,
    /// Queue → the flow its callers hear.
    pub queue_flows: BTreeMap<String, String>,
    /// The channel every handler reports on.
    pub events: mpsc::Receiver<HandlerEvent>,
}

/// What a handler's worker reports back.
#[derive(Debug)]
pub enum Feedback {
    /// A command failed.
    Failed {
        /// The handler.
        handler: HandlerId,
        /// The command.
        command: MediaCommand,
        /// Why.
        error: MediaError,
    },
    /// What exists on a handler that came back.
    Legs {
        /// The handler.
        handler: HandlerId,
        /// Its legs.
        legs: Vec<LegSnapshot>,
        /// When the handler was asked (calls that arrived later may be missing).
        listed: Timestamp,
    },
}

// Nearly every job is a command; boxing it would allocate once per command to shrink the rare
// Resync.
#[allow(clippy::large_enum_variant)]
enum Job {
    Command { command: MediaCommand, lanes: Lanes },
    Resync,
}

impl Job {
    fn lanes(&self) -> &Lanes {
        match self {
            Job::Command { lanes, .. } => lanes,
            Job::Resync => &Lanes::All,
        }
    }
}

/// The commands a job must not overtake, nor be overtaken by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lanes {
    /// Those on any of these legs.
    Legs(SmallVec<[LegId; 2]>),
    /// Every one: the job may act on legs it does not name.
    All,
}

/// The lanes of `command`, as far as `calls` knows its legs.
fn lanes(calls: &Calls, command: &MediaCommand) -> Lanes {
    let one = |leg: &LegId| Lanes::Legs(SmallVec::from_iter([leg.clone()]));
    match command {
        MediaCommand::Originate(request) => one(&request.leg),
        MediaCommand::Answer { leg }
        | MediaCommand::Hangup { leg, .. }
        | MediaCommand::Play { leg, .. }
        | MediaCommand::StopPlayback { leg, .. }
        | MediaCommand::Transfer { leg, .. }
        | MediaCommand::SendDtmf { leg, .. }
        | MediaCommand::SetVariable { leg, .. } => one(leg),
        MediaCommand::StartRecording { target, .. }
        | MediaCommand::StopRecording { target, .. } => match target {
            RecordTarget::Leg(leg) | RecordTarget::Bridge { leg } => one(leg),
        },
        MediaCommand::Bridge { a, b } => Lanes::Legs(SmallVec::from_iter([a.clone(), b.clone()])),
        MediaCommand::Park { leg, .. } | MediaCommand::Unbridge { leg }
            if calls.leg_is_unbridged(leg) =>
        {
            one(leg)
        }
        // Parking or unbridging a bridged leg also keeps its partner up (a variable on the
        // partner, which only the handler knows); a room's operations act on its members.
        MediaCommand::Park { .. }
        | MediaCommand::Unbridge { .. }
        | MediaCommand::Conference { .. } => Lanes::All,
    }
}

/// The calls side, owned by the controller task.
pub struct Telephony {
    calls: Calls,
    workers: BTreeMap<HandlerId, mpsc::Sender<Job>>,
    /// The handlers themselves, asked for their load when one must be chosen.
    handlers: BTreeMap<HandlerId, Arc<dyn MediaHandler>>,
    pool: HandlerPool,
    numbers: BTreeMap<String, String>,
    queue_flows: BTreeMap<String, String>,
    /// Agents' state changes of the current drain, not yet handed to the writer.
    agent_changes: Vec<AgentStateChange>,
    /// Writes call records and agent state changes off the controller's path.
    records: RecordWriter,
    notices: broadcast::Sender<AgentNotice>,
    /// Handlers that reported what exists on them since the start.
    resynced: std::collections::BTreeSet<HandlerId>,
    /// Whether voice contacts without a call were ended after every handler reported.
    swept: bool,
}

impl Telephony {
    /// Starts one worker per handler; returns the side and the two channels the controller
    /// listens on (handler events, worker feedback).
    pub fn start(
        setup: TelephonySetup,
        records: RecordWriter,
    ) -> (
        Telephony,
        mpsc::Receiver<HandlerEvent>,
        mpsc::Receiver<Feedback>,
    ) {
        let (feedback, feedback_rx) = mpsc::channel(HANDLER_QUEUE);
        let mut workers = BTreeMap::new();
        let mut handlers = BTreeMap::new();
        let mut pool = HandlerPool::new();
        for (handler, weight) in setup.handlers {
            let id = handler.id();
            pool.add(id, weight);
            pool.report(id, handler.load());
            handlers.insert(id, Arc::clone(&handler));
            let (jobs, inbox) = mpsc::channel(HANDLER_QUEUE);
            tokio::spawn(work(handler, inbox, feedback.clone()));
            workers.insert(id, jobs);
        }
        let telephony = Telephony {
            calls: setup.calls,
            workers,
            handlers,
            pool,
            numbers: setup.numbers,
            queue_flows: setup.queue_flows,
            agent_changes: Vec::new(),
            records,
            notices: broadcast::channel(NOTICE_BACKLOG).0,
            resynced: Default::default(),
            swept: false,
        };
        (telephony, setup.events, feedback_rx)
    }

    /// Waits until the records and agent states this side handed over are in the store.
    pub(crate) async fn records_written(&mut self) {
        self.records.written().await;
    }

    /// Portal notices from now on.
    pub fn notices(&self) -> broadcast::Sender<AgentNotice> {
        self.notices.clone()
    }

    /// The call core (agent states, admission counters).
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The handler pool (health and load).
    pub fn pool(&self) -> &HandlerPool {
        &self.pool
    }

    /// The next deadline of the call core.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.calls.poll_timeout()
    }

    /// Deadlines due at `now`.
    pub async fn tick(&mut self, router: &mut DurableRouter, now: Timestamp) {
        self.calls.handle_timeout(now);
        self.drain(router, now).await;
    }

    /// Outputs the router produced for something else (the API, its own timers).
    pub async fn router_outputs(
        &mut self,
        router: &mut DurableRouter,
        now: Timestamp,
        outputs: &[Output],
    ) {
        for output in outputs {
            self.calls.on_router(now, output);
        }
        self.drain(router, now).await;
    }

    /// An event from a handler.
    pub async fn handler_event(&mut self, router: &mut DurableRouter, event: HandlerEvent) {
        let now = Timestamp::now();
        let HandlerEvent { handler, event, .. } = event;
        match &event {
            MediaEvent::HandlerUp => {
                tracing::info!(%handler, "handler up; asking what exists on it");
                // Healthy again with the capacity it reported at the start (a default load
                // would say capacity 0: never chosen again).
                self.pool.mark_up(handler);
                self.send(handler, Job::Resync).await;
            }
            MediaEvent::HandlerDown { reason } => {
                tracing::warn!(%handler, reason, "handler down: no new contacts go to it");
                self.pool.mark_down(handler);
            }
            MediaEvent::LegCreated {
                leg,
                contact: None,
                direction: LegDirection::Inbound,
                caller,
                destination,
            } if !self.calls.knows_leg(leg) => {
                self.inbound(
                    router,
                    now,
                    handler,
                    leg.clone(),
                    caller.clone(),
                    destination.clone(),
                )
                .await;
            }
            _ => {}
        }
        self.calls.on_media(now, &handler, &event);
        self.drain(router, now).await;
    }

    /// What a handler's worker reported.
    pub async fn feedback(&mut self, router: &mut DurableRouter, feedback: Feedback) {
        let now = Timestamp::now();
        match feedback {
            Feedback::Legs {
                handler,
                legs,
                listed,
            } => {
                tracing::info!(%handler, legs = legs.len(), "resynced");
                self.calls.on_resync(now, &handler, &legs, listed);
                for contact in self.adopt(router, now, handler, &legs) {
                    self.router_step(router, now, contact, RouterStep::Release)
                        .await;
                }
                self.resynced.insert(handler);
                if !self.swept && self.resynced.len() == self.workers.len() {
                    self.swept = true;
                    self.sweep(router, now).await;
                }
            }
            Feedback::Failed {
                handler,
                command,
                error,
            } => {
                tracing::warn!(%handler, %error, ?command, "command failed");
                // An agent's phone that could not be rung is a ring that ended.
                if let MediaCommand::Originate(request) = command {
                    self.calls.on_media(
                        now,
                        &handler,
                        &MediaEvent::HungUp {
                            leg: request.leg,
                            cause: HangupCause(format!("ORIGINATE_FAILED: {error}")),
                        },
                    );
                }
            }
        }
        self.drain(router, now).await;
    }

    /// Calls found alive on a handler that the core does not know (after a restart): those
    /// the router still holds are taken back; the others are reported.
    /// Returns the waiting callers it took back (held since the start, to be released).
    fn adopt(
        &mut self,
        router: &mut DurableRouter,
        now: Timestamp,
        handler: HandlerId,
        legs: &[LegSnapshot],
    ) -> Vec<ContactId> {
        let mut waiting = Vec::new();
        for snapshot in legs {
            let Some(contact) = snapshot.contact else {
                continue;
            };
            if snapshot.leg.as_str().starts_with(AGENT_LEG_PREFIX)
                || self.calls.knows_leg(&snapshot.leg)
            {
                continue;
            }
            let Some((queue, media, phase)) = router.router().contact_status(contact) else {
                tracing::warn!(%handler, leg = %snapshot.leg, contact = contact.0, "a leg of a contact that is over; left alone");
                continue;
            };
            if media != MediaType::Voice {
                continue;
            }
            let queue_name = router.catalog().queue_name(queue).to_owned();
            let Ok(tenant) = router.router().queue_spec(queue).map(|q| q.tenant) else {
                continue;
            };
            let flow = self
                .queue_flows
                .get(&queue_name)
                .cloned()
                .unwrap_or_else(|| queue_name.clone());
            let held = phase == "held";
            let adoption = if phase == "connected" {
                let agent = router.router().contact_agents(contact).first().copied();
                match agent {
                    Some(agent) => Adoption::Connected {
                        agent,
                        agent_leg: legs
                            .iter()
                            .find(|l| {
                                l.contact == Some(contact)
                                    && l.leg.as_str().starts_with(AGENT_LEG_PREFIX)
                            })
                            .map(|l| l.leg.clone()),
                        flow,
                    },
                    None => Adoption::Waiting { flow },
                }
            } else {
                Adoption::Waiting { flow }
            };
            let attributes = router
                .contact_attributes(contact)
                .cloned()
                .unwrap_or_default();
            match self.calls.adopt(
                now,
                handler,
                snapshot.leg.clone(),
                contact,
                tenant,
                queue_name,
                adoption,
                attributes,
            ) {
                Ok(()) => {
                    tracing::info!(%handler, contact = contact.0, phase, "call re-adopted");
                    if held {
                        waiting.push(contact);
                    }
                }
                Err(error) => {
                    tracing::warn!(%handler, contact = contact.0, %error, "not re-adopted")
                }
            }
        }
        waiting
    }

    /// At the start: the voice callers the router rebuilt from the store are held (at their
    /// places, never offered) until their calls are found on a switch, then released; those
    /// no switch has are ended once every handler has said what exists. Until then no agent
    /// is offered a call that may be gone, or that lives on a switch not reachable yet.
    pub async fn hold_restored(&mut self, router: &mut DurableRouter) {
        let now = Timestamp::now();
        let restored: Vec<ContactId> = router
            .router()
            .live_contact_ids()
            .filter(|c| !self.calls.knows_contact(*c))
            .filter(|c| {
                router
                    .router()
                    .contact_status(*c)
                    .is_some_and(|(_, media, phase)| {
                        media == MediaType::Voice && phase != "connected"
                    })
            })
            .collect();
        if !restored.is_empty() {
            tracing::info!(
                callers = restored.len(),
                "callers from before the restart held until their calls are found"
            );
        }
        for contact in restored {
            self.router_step(router, now, contact, RouterStep::Hold)
                .await;
        }
        self.drain(router, now).await;
    }

    /// Once every handler has said what exists: voice contacts the router holds without a
    /// call died while Switchboard was away; they end as failed, with a record.
    async fn sweep(&mut self, router: &mut DurableRouter, now: Timestamp) {
        let orphans: Vec<ContactId> = router
            .router()
            .live_contact_ids()
            .filter(|c| !self.calls.knows_contact(*c))
            .filter(|c| {
                router
                    .router()
                    .contact_status(*c)
                    .is_some_and(|(_, media, _)| media == MediaType::Voice)
            })
            .collect();
        for contact in orphans {
            let Some((queue, _, phase)) = router.router().contact_status(contact) else {
                continue;
            };
            let queue_name = router.catalog().queue_name(queue).to_owned();
            let tenant = router
                .router()
                .queue_spec(queue)
                .map(|q| router.catalog().tenant_name(q.tenant).to_owned())
                .unwrap_or_default();
            let agent = router
                .router()
                .contact_agents(contact)
                .first()
                .map(|a| router.catalog().agent_name(*a).to_owned());
            let attributes = router
                .contact_attributes(contact)
                .cloned()
                .unwrap_or_default();
            let result = if phase == "connected" {
                router.complete(now, contact).await
            } else {
                router.abandon(now, contact).await
            };
            if let Err(error) = result {
                tracing::warn!(contact = contact.0, %error, "could not end a lost call");
                continue;
            }
            let cdr = NewCdr {
                tenant,
                contact,
                media: MediaType::Voice,
                queue: queue_name,
                caller: String::new(),
                called: String::new(),
                agent,
                handler: None,
                arrived_at: now,
                answered_at: None,
                ended_at: now,
                wait_ms: 0,
                talk_ms: 0,
                wrap_up_ms: 0,
                recording: None,
                disposition: crate::model::Disposition::Failed,
                cause: Some("the call was gone when Switchboard came back".to_owned()),
                attributes,
            };
            tracing::warn!(
                contact = contact.0,
                "a call was lost while Switchboard was away"
            );
            self.records.cdr(cdr).await;
        }
    }

    /// The least-loaded healthy handler, from the loads the handlers report now (the first
    /// handler when none is healthy: its command fails and says why).
    fn choose_handler(&mut self) -> HandlerId {
        for (id, handler) in &self.handlers {
            self.pool.report(*id, handler.load());
        }
        self.pool
            .choose()
            .or_else(|| self.handlers.keys().next().copied())
            .unwrap_or(HandlerId(0))
    }

    /// The agent logs in (a stay-on-line agent's leg is rung on the least-loaded handler).
    pub async fn log_in(
        &mut self,
        router: &mut DurableRouter,
        agent: AgentId,
    ) -> Result<(), super::CommandError> {
        let now = Timestamp::now();
        let handler = self.choose_handler();
        let result = self
            .calls
            .log_in(now, agent, &handler)
            .map_err(|e| super::CommandError::Conflict(e.to_string()));
        self.drain(router, now).await;
        result
    }

    /// Another agent action (log out, ready, break, heartbeat).
    pub async fn agent(
        &mut self,
        router: &mut DurableRouter,
        agent: AgentId,
        action: super::AgentAction,
    ) -> Result<(), super::CommandError> {
        let now = Timestamp::now();
        let result = match action {
            super::AgentAction::LogIn => return self.log_in(router, agent).await,
            super::AgentAction::LogOut => self.calls.log_out(now, agent),
            super::AgentAction::Ready(_) => self.calls.ready(now, agent),
            super::AgentAction::NotReady(_) => self.calls.start_break(now, agent, "not ready"),
            super::AgentAction::Break(reason) => {
                let reason = reason.as_deref().unwrap_or(super::DEFAULT_BREAK_REASON);
                self.calls.start_break(now, agent, reason)
            }
            super::AgentAction::Heartbeat => self.calls.heartbeat(now, agent),
        }
        .map_err(|e| super::CommandError::Conflict(e.to_string()));
        self.drain(router, now).await;
        result
    }

    /// The agent hangs up its call with `contact`: the caller's leg is hung up on its handler
    /// and the call ends when the switch reports it gone (router, after-call work, record).
    /// `Ok(false)`: the contact has no call (chat, email): nothing to hang up.
    pub async fn hang_up(
        &mut self,
        router: &mut DurableRouter,
        contact: ContactId,
        agent: AgentId,
    ) -> Result<bool, super::CommandError> {
        let now = Timestamp::now();
        let why = format!("hung up by agent {}", router.catalog().agent_name(agent));
        let result = self
            .calls
            .hang_up(contact, agent, &why)
            .map_err(|e| super::CommandError::Conflict(e.to_string()));
        self.drain(router, now).await;
        result
    }

    /// The call core, to change (an administrator's agents, lines, flows and clients); call
    /// [`settle`](Self::settle) after.
    pub(crate) fn calls_mut(&mut self) -> &mut Calls {
        &mut self.calls
    }

    /// Queue → the flow its callers hear, to change (an administrator's flows).
    /// Called number → queue, as administrators change it.
    pub(crate) fn numbers_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.numbers
    }

    pub(crate) fn queue_flows_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.queue_flows
    }

    /// Carries out what the call core decided after a change made through
    /// [`calls_mut`](Self::calls_mut).
    pub(crate) async fn settle(&mut self, router: &mut DurableRouter) {
        self.drain(router, Timestamp::now()).await;
    }

    /// A new call: its number leads to a queue and a flow; its contact is stored before
    /// anything else happens to it, then the core admits it or refuses it.
    async fn inbound(
        &mut self,
        router: &mut DurableRouter,
        now: Timestamp,
        handler: HandlerId,
        leg: crate::media::LegId,
        caller: Option<String>,
        destination: Option<String>,
    ) {
        let number = destination.clone().unwrap_or_default();
        let Some(queue) = self
            .numbers
            .get(&number)
            .or_else(|| self.numbers.get("*"))
            .cloned()
        else {
            tracing::warn!(%handler, %leg, number, "no queue for this number: refused");
            self.command(
                handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause("UNALLOCATED_NUMBER".to_owned()),
                },
            )
            .await;
            return;
        };
        let flow = self
            .queue_flows
            .get(&queue)
            .cloned()
            .unwrap_or_else(|| queue.clone());
        let mut attributes = BTreeMap::new();
        if let Some(caller) = &caller {
            attributes.insert("caller".to_owned(), caller.clone());
        }
        let setup = ContactSetup {
            queue: queue.clone(),
            media: MediaType::Voice,
            priority: Default::default(),
            attributes,
            criteria: Vec::new(),
        };
        let tenant = match router.catalog().resolve_contact(&setup, ContactId(0), now) {
            Ok(spec) => spec.tenant,
            Err(error) => {
                tracing::error!(%handler, %leg, queue, %error, "the number's queue is unusable");
                return;
            }
        };
        let contact = match router.register(now, &setup).await {
            Ok(contact) => contact,
            Err(error) => {
                // Without a stored contact the call cannot be carried safely: busy.
                tracing::error!(%handler, %leg, %error, "could not store the new call");
                self.command(
                    handler,
                    MediaCommand::Hangup {
                        leg,
                        cause: HangupCause::no_circuit(),
                    },
                )
                .await;
                return;
            }
        };
        let call = InboundCall {
            handler,
            leg,
            contact,
            tenant,
            queue,
            flow,
            caller,
            destination,
        };
        match self.calls.inbound(now, call) {
            Ok(decision) if decision.admitted() => {}
            Ok(decision) => {
                let detail = format!("refused at the door: {decision}");
                if let Err(error) = router
                    .end_registered(now, contact, ContactState::Overflowed, &detail)
                    .await
                {
                    tracing::error!(contact = contact.0, %error, "could not end a refused contact");
                }
            }
            Err(error) => tracing::error!(contact = contact.0, %error, "call not started"),
        }
    }

    async fn send(&mut self, handler: HandlerId, job: Job) {
        let Some(worker) = self.workers.get(&handler) else {
            tracing::warn!(%handler, "no such handler");
            return;
        };
        if worker.send(job).await.is_err() {
            tracing::error!(%handler, "the handler's worker stopped");
        }
    }

    async fn command(&mut self, handler: HandlerId, command: MediaCommand) {
        let lanes = lanes(&self.calls, &command);
        self.send(handler, Job::Command { command, lanes }).await;
    }

    /// Carries out everything the core decided, until it has nothing left.
    async fn drain(&mut self, router: &mut DurableRouter, now: Timestamp) {
        while let Some(action) = self.calls.poll_action() {
            match action {
                CallAction::Media { handler, command } => self.command(handler, command).await,
                CallAction::Enqueue {
                    contact,
                    queue,
                    priority,
                    attributes,
                } => {
                    let setup = ContactSetup {
                        queue,
                        media: MediaType::Voice,
                        priority,
                        attributes,
                        criteria: Vec::new(),
                    };
                    match router.enqueue(now, contact, &setup).await {
                        Ok(outputs) => self.feed(now, &outputs),
                        Err(error) => {
                            tracing::error!(contact = contact.0, %error, "could not queue")
                        }
                    }
                }
                CallAction::Router { contact, step } => {
                    self.router_step(router, now, contact, step).await
                }
                CallAction::Agent { agent, step } => {
                    let name = router.catalog().agent_name(agent).to_owned();
                    let result = match step {
                        AgentStep::LogIn => router.log_in(now, &name).await,
                        AgentStep::LogOut => router.log_out(now, &name).await,
                        AgentStep::Available(yes) => {
                            router.set_available(now, &name, None, yes).await
                        }
                    };
                    match result {
                        Ok(outputs) => self.feed(now, &outputs),
                        Err(error) => tracing::warn!(agent = name, %error, ?step, "agent step"),
                    }
                }
                CallAction::QueueStatusWanted { contact } => {
                    let position = router.router().queue_position(contact);
                    let wait = router.router().expected_wait(now, contact).ok().flatten();
                    if let Some(position) = position {
                        self.calls.on_queue_status(now, contact, position, wait);
                    }
                }
                CallAction::Voicemail {
                    contact,
                    queue,
                    path,
                    mut attributes,
                } => {
                    attributes.insert("voicemail".to_owned(), path);
                    attributes.insert("caller_contact".to_owned(), contact.0.to_string());
                    let setup = ContactSetup {
                        queue,
                        media: MediaType::Voicemail,
                        priority: Default::default(),
                        attributes,
                        criteria: Vec::new(),
                    };
                    match router.arrive(now, &setup).await {
                        Ok((id, outputs)) => {
                            tracing::info!(
                                caller = contact.0,
                                voicemail = id.0,
                                "voicemail queued"
                            );
                            self.calls.message_queued(contact, Some(id));
                            self.feed(now, &outputs);
                        }
                        Err(error) => {
                            self.calls.message_queued(contact, None);
                            tracing::error!(contact = contact.0, %error, "voicemail not queued")
                        }
                    }
                }
                CallAction::AgentState(change) => {
                    let name = router.catalog().agent_name(change.agent).to_owned();
                    // The directory still knows an agent the call core has just forgotten (an
                    // administrator deleted it): its last change is stored under its client.
                    let tenant = router
                        .directory()
                        .agent(change.agent)
                        .map(|a| a.tenant.clone())
                        .or_else(|| {
                            self.calls
                                .agent_tenant(change.agent)
                                .map(|t| router.catalog().tenant_name(t).to_owned())
                        })
                        .unwrap_or_default();
                    tracing::info!(
                        agent = name,
                        from = change.from.code(),
                        to = change.to.code(),
                        reason = change.reason.as_deref().unwrap_or(""),
                        "agent state"
                    );
                    self.agent_changes.push(AgentStateChange {
                        tenant,
                        agent: name,
                        state: change.to,
                        reason: change.reason,
                        at: change.at,
                    });
                }
                CallAction::Admission(decision) => {
                    tracing::info!(decision = %decision, "admission");
                }
                CallAction::Record(record) => {
                    let cdr = call_record(router, record);
                    self.records.cdr(cdr).await;
                }
                CallAction::Notice(notice) => {
                    // Nobody listening is fine: the portal is optional.
                    let _ = self.notices.send(AgentNotice {
                        agent: router.catalog().agent_name(notice.agent).to_owned(),
                        event: notice.kind.code(),
                        contact: notice.contact.0,
                        queue: notice.queue,
                        caller: notice.caller,
                        at_us: notice.at.as_micros(),
                    });
                }
            }
        }
        let changes = std::mem::take(&mut self.agent_changes);
        self.records.agent_states(changes).await;
    }

    fn feed(&mut self, now: Timestamp, outputs: &[Output]) {
        for output in outputs {
            self.calls.on_router(now, output);
        }
    }

    async fn router_step(
        &mut self,
        router: &mut DurableRouter,
        now: Timestamp,
        contact: ContactId,
        step: RouterStep,
    ) {
        if !router.is_routed(contact) {
            // The caller left (or was refused) before its flow queued it.
            if step == RouterStep::Abandon {
                let detail = "the caller left during the flow";
                if let Err(error) = router
                    .end_registered(now, contact, ContactState::Abandoned, detail)
                    .await
                {
                    tracing::error!(contact = contact.0, %error, "could not end the contact");
                }
            }
            return;
        }
        let name = |agent: AgentId| router.catalog().agent_name(agent).to_owned();
        let result = match &step {
            RouterStep::Accept(agent) => {
                let agent = name(*agent);
                router.accept(now, contact, &agent).await
            }
            RouterStep::Reject(agent) => {
                let agent = name(*agent);
                router.reject(now, contact, &agent).await
            }
            RouterStep::Abandon => router.abandon(now, contact).await,
            RouterStep::Complete => router.complete(now, contact).await,
            RouterStep::BackToQueue => router.back_to_queue(now, contact).await,
            RouterStep::Hold => router.hold(now, contact).await,
            RouterStep::Release => router.release(now, contact).await,
        };
        match result {
            Ok(outputs) => self.feed(now, &outputs),
            Err(error) => tracing::warn!(contact = contact.0, %error, ?step, "router step"),
        }
    }
}

/// The stored form of a call's record, with names resolved.
fn call_record(router: &DurableRouter, r: CallRecord) -> NewCdr {
    let tenant = router.catalog().tenant_name(r.tenant).to_owned();
    let agent = r.agent.map(|a| router.catalog().agent_name(a).to_owned());
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    NewCdr {
        tenant,
        contact: r.contact,
        media: r.media,
        queue: r.queue,
        caller: r.caller.unwrap_or_default(),
        called: r.destination.unwrap_or_default(),
        agent,
        handler: Some(r.handler),
        arrived_at: r.arrived,
        answered_at: r.answered,
        ended_at: r.ended,
        wait_ms: ms(r.wait),
        talk_ms: ms(r.talk),
        wrap_up_ms: ms(r.wrap_up),
        recording: r.recording,
        disposition: r.disposition,
        cause: Some(r.cause),
        attributes: r.attributes,
    }
}

/// One handler's worker: up to [`HANDLER_IN_FLIGHT`] jobs at once, each started once no
/// earlier unfinished job shares a lane with it ([`Order`]).
async fn work(
    handler: Arc<dyn MediaHandler>,
    mut inbox: mpsc::Receiver<Job>,
    feedback: mpsc::Sender<Feedback>,
) {
    let mut order = Order::default();
    let mut running = FuturesUnordered::new();
    let mut open = true;
    while open || !order.is_empty() {
        for (seq, job) in order.startable() {
            let handler = handler.as_ref();
            running.push(async move { (seq, run_job(handler, job).await) });
        }
        tokio::select! {
            Some((seq, report)) = running.next(), if !running.is_empty() => {
                order.finish(seq);
                if let Some(report) = report
                    && feedback.send(report).await.is_err() {
                        return;
                    }
            }
            job = inbox.recv(), if open && order.len() < HANDLER_IN_FLIGHT => match job {
                Some(job) => order.push(job),
                None => open = false,
            },
            else => return,
        }
    }
}

/// Runs one job; what to report back, if anything.
async fn run_job(handler: &dyn MediaHandler, job: Job) -> Option<Feedback> {
    let id = handler.id();
    match job {
        Job::Command { command, .. } => match execute(handler, &command).await {
            Ok(()) => None,
            // Hanging up a leg that is already gone is what was wanted.
            Err(MediaError::NoSuchLeg { .. }) if matches!(command, MediaCommand::Hangup { .. }) => {
                None
            }
            Err(error) => Some(Feedback::Failed {
                handler: id,
                command,
                error,
            }),
        },
        Job::Resync => {
            let listed = Timestamp::now();
            match handler.legs().await {
                Ok(legs) => Some(Feedback::Legs {
                    handler: id,
                    legs,
                    listed,
                }),
                Err(error) => {
                    tracing::warn!(handler = %id, %error, "could not list legs for resync");
                    None
                }
            }
        }
    }
}

/// A worker's jobs taken from its queue and not finished, in the order they came.
#[derive(Default)]
struct Order {
    next: u64,
    /// (sequence number, lanes, the job until it starts).
    held: VecDeque<(u64, Lanes, Option<Job>)>,
}

impl Order {
    fn push(&mut self, job: Job) {
        self.next += 1;
        self.held
            .push_back((self.next, job.lanes().clone(), Some(job)));
    }

    fn len(&self) -> usize {
        self.held.len()
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    fn finish(&mut self, seq: u64) {
        if let Some(i) = self.held.iter().position(|(s, _, _)| *s == seq) {
            self.held.remove(i);
        }
    }

    /// The jobs that may start now: those no earlier unfinished job shares a lane with.
    fn startable(&mut self) -> Vec<(u64, Job)> {
        let mut start = Vec::new();
        let mut claimed: FxHashSet<&LegId> = FxHashSet::default();
        for (i, (_, lanes, job)) in self.held.iter().enumerate() {
            match lanes {
                Lanes::All => {
                    if i == 0 && job.is_some() {
                        start.push(i);
                    }
                    // Nothing after it starts before it is done.
                    break;
                }
                Lanes::Legs(legs) => {
                    if job.is_some() && !legs.iter().any(|l| claimed.contains(l)) {
                        start.push(i);
                    }
                    claimed.extend(legs.iter());
                }
            }
        }
        start
            .into_iter()
            .filter_map(|i| {
                let (seq, _, job) = self.held.get_mut(i)?;
                Some((*seq, job.take()?))
            })
            .collect()
    }
}

/// How long a command waits for its handler to reconnect before it counts as failed.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(5);

/// Carries out one command; a handler that is reconnecting (the command was not sent) gets it
/// again until [`RECONNECT_PATIENCE`] has passed, so a short outage does not lose a recording
/// or a bridge.
async fn execute(handler: &dyn MediaHandler, command: &MediaCommand) -> Result<(), MediaError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match handler.execute(command.clone()).await {
            Ok(_) => return Ok(()),
            Err(MediaError::NotConnected { .. }) if started.elapsed() < RECONNECT_PATIENCE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(error) => return Err(error),
        }
    }
}

/// The calls side could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A FreeSWITCH handler could not start.
    #[error("handler {name}: {source}")]
    Freeswitch {
        /// The handler's name.
        name: String,
        /// Why.
        source: crate::media::freeswitch::HandlerError,
    },
    /// An Asterisk handler could not start.
    #[error("handler {name}: {source}")]
    Asterisk {
        /// The handler's name.
        name: String,
        /// Why.
        source: crate::media::asterisk::HandlerError,
    },
}

impl TelephonySetup {
    /// Starts the configured handlers and builds the call core from a resolved
    /// configuration: what `switchboard serve` runs.
    pub fn from_config(resolved: &crate::config::Resolved) -> Result<TelephonySetup, SetupError> {
        use crate::media::HandlerKind;
        use crate::media::asterisk::{AsteriskConfig, AsteriskHandler, Credentials};
        use crate::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};

        let mut flows = crate::flow::FlowEngine::new();
        for flow in &resolved.flows {
            flows.add_flow(flow.clone());
        }
        let mut admission = crate::admission::Admission::new(resolved.admission);
        for (tenant, trunks) in &resolved.clients {
            admission.set_client(*tenant, *trunks);
        }
        let mut calls = Calls::new(
            resolved.calls.clone(),
            flows,
            crate::agents::AgentManager::new(resolved.agent_timers),
            admission,
        );
        for (agent, line) in &resolved.agent_lines {
            let Some(line) = line else { continue };
            let Some(spec) = resolved.agents.iter().find(|a| a.id == *agent) else {
                continue;
            };
            calls.add_agent(*agent, spec.tenant, line.clone());
        }
        let (events_tx, events) = mpsc::channel(crate::media::EVENT_QUEUE);
        let mut handlers: Vec<(Arc<dyn MediaHandler>, f64)> = Vec::new();
        for h in &resolved.handlers {
            let handler: Arc<dyn MediaHandler> = match h.kind {
                HandlerKind::FreeSwitch => {
                    let mut config = FreeswitchConfig::new(&h.address, h.password.expose());
                    config.capacity = h.capacity;
                    config.outbound_listen = h.outbound_listen.map(|a| a.to_string());
                    let handler = FreeswitchHandler::start(h.id, config, events_tx.clone())
                        .map_err(|source| SetupError::Freeswitch {
                            name: h.name.clone(),
                            source,
                        })?;
                    Arc::new(handler)
                }
                HandlerKind::Asterisk => {
                    let credentials = Credentials::Basic {
                        user: h.user.clone().unwrap_or_else(|| "switchboard".to_owned()),
                        password: h.password.expose().to_owned(),
                    };
                    let app = h.app.clone().unwrap_or_else(|| "switchboard".to_owned());
                    let mut config = AsteriskConfig::new(h.id, &h.address, &app, credentials);
                    config.capacity = h.capacity;
                    let handler =
                        AsteriskHandler::start(config, events_tx.clone()).map_err(|source| {
                            SetupError::Asterisk {
                                name: h.name.clone(),
                                source,
                            }
                        })?;
                    Arc::new(handler)
                }
            };
            handlers.push((handler, h.weight));
        }
        Ok(TelephonySetup {
            calls,
            handlers,
            numbers: resolved.numbers.clone(),
            queue_flows: resolved.queue_flows.clone(),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(legs: &[&str]) -> Job {
        let leg = LegId::new(legs[0]);
        Job::Command {
            command: MediaCommand::Answer { leg },
            lanes: Lanes::Legs(legs.iter().map(|l| LegId::new(*l)).collect()),
        }
    }

    fn started(order: &mut Order) -> Vec<u64> {
        order.startable().into_iter().map(|(seq, _)| seq).collect()
    }

    #[test]
    fn commands_on_other_legs_overtake_and_the_same_leg_waits() {
        let mut order = Order::default();
        order.push(on(&["a"]));
        order.push(on(&["b"]));
        order.push(on(&["a"]));
        order.push(on(&["b", "c"]));
        order.push(on(&["c"]));
        assert_eq!(started(&mut order), vec![1, 2]);
        // Started jobs are not handed out twice.
        assert_eq!(started(&mut order), Vec::<u64>::new());
        order.finish(1);
        assert_eq!(started(&mut order), vec![3]);
        order.finish(2);
        assert_eq!(started(&mut order), vec![4]);
        order.finish(4);
        assert_eq!(started(&mut order), vec![5]);
    }

    #[test]
    fn a_job_on_every_lane_waits_for_all_before_it_and_holds_back_all_after_it() {
        let mut order = Order::default();
        order.push(on(&["a"]));
        order.push(Job::Resync);
        order.push(on(&["b"]));
        assert_eq!(started(&mut order), vec![1]);
        order.finish(1);
        assert_eq!(started(&mut order), vec![2]);
        order.finish(2);
        assert_eq!(started(&mut order), vec![3]);
        order.finish(3);
        assert!(order.is_empty());
    }
}
