//! Call handling, sans-IO: what happens to each call's legs between the switch, the flow, the
//! router and the agent manager. A call arrives on a handler, is admitted (or refused busy),
//! hears its flow, waits in its queue; when the router offers it, the agent's phone is rung on
//! the same handler (or, for an agent who stays on line, the parked leg is used at once); the
//! agent's answer connects the contact, the two legs are bridged and recorded; the first
//! hang-up ends both, and the agent's after-call work closes the record.
//!
//! The controller's IO layer feeds it switch events, router outputs, agent actions and `now`,
//! and carries out the [`CallAction`]s it returns: commands to a handler, steps of the durable
//! router, and records for the store.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::admission::{Admission, AdmissionDecision};
use crate::agents::{AgentManager, AgentState, StateChange, StayOnLine};
use crate::flow::{FlowAction, FlowEngine};
use crate::media::{
    CONTACT_VARIABLE, HandlerId, HangupCause, LegId, LegSnapshot, MediaCommand, MediaEvent,
    OriginateRequest, OriginateTarget, RecordFormat, RecordTarget,
};
use crate::model::{
    AgentId, ContactId, Disposition, MediaType, Outcome, Priority, TenantId, Timestamp,
};
use crate::routing::{Output, OverflowTarget};

/// Legs the core creates (agents' phones and lines) have ids that start with this, so that
/// after a restart a leg tagged with a contact can be told apart from the caller's own leg.
pub const AGENT_LEG_PREFIX: &str = "sb-";

/// What the router knew of a contact whose call is found alive after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Waiting (or ringing) in its queue: it waits again, with its flow's hold music.
    Waiting {
        /// The flow of its queue.
        flow: String,
    },
    /// Connected to an agent: the call goes on; its agent leg, if still there, stays bridged.
    Connected {
        /// The agent.
        agent: AgentId,
        /// The agent's leg, if it survived.
        agent_leg: Option<LegId>,
        /// The flow of its queue (to wait again if the agent's leg is gone).
        flow: String,
    },
}

/// How calls are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// How long an agent's phone rings before the originate gives up (the router's offer
    /// timeout usually ends the offer first).
    pub ring_timeout: Duration,
    /// Directory recordings are written to, on the handler (`None`: calls are not recorded).
    pub recordings: Option<String>,
    /// Format of recordings.
    pub record_format: RecordFormat,
    /// Music a stay-on-line agent hears while parked between contacts.
    pub agent_hold_music: Option<String>,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            ring_timeout: Duration::from_secs(30),
            recordings: Some("/var/lib/switchboard/recordings".to_owned()),
            record_format: RecordFormat::Wav,
            agent_hold_music: None,
        }
    }
}

/// Where an agent's phone is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLine {
    /// The agent's SIP target (a user on the handlers).
    pub target: OriginateTarget,
    /// Whether the agent's leg stays up between contacts.
    pub stay_on_line: StayOnLine,
}

/// A call that arrived on a handler and was given a contact id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    /// The handler it arrived on.
    pub handler: HandlerId,
    /// The customer's leg.
    pub leg: LegId,
    /// Its contact (already stored).
    pub contact: ContactId,
    /// The client whose number was called.
    pub tenant: TenantId,
    /// The queue the number leads to.
    pub queue: String,
    /// The flow the caller hears.
    pub flow: String,
    /// Calling number.
    pub caller: Option<String>,
    /// Called number.
    pub destination: Option<String>,
}

/// What is written down when a contact's call is over (after the agent's wrap-up, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The contact.
    pub contact: ContactId,
    /// Voice for a call; voicemail for a message an agent handled.
    pub media: MediaType,
    /// Its client.
    pub tenant: TenantId,
    /// The queue it was last in.
    pub queue: String,
    /// Calling number.
    pub caller: Option<String>,
    /// Called number.
    pub destination: Option<String>,
    /// The handler it ran on.
    pub handler: HandlerId,
    /// The agent who served it.
    pub agent: Option<AgentId>,
    /// When it arrived.
    pub arrived: Timestamp,
    /// When the agent answered.
    pub answered: Option<Timestamp>,
    /// When the call ended.
    pub ended: Timestamp,
    /// From arrival to the agent's answer (or to the end).
    pub wait: Duration,
    /// From the agent's answer to the end.
    pub talk: Duration,
    /// The agent's after-call work for it.
    pub wrap_up: Duration,
    /// The recording, named after the contact.
    pub recording: Option<String>,
    /// How it ended.
    pub disposition: Disposition,
    /// Why, in words (a hang-up cause, an admission decision).
    pub cause: String,
    /// Its attributes: the caller's number and what its flow's menus set.
    pub attributes: BTreeMap<String, String>,
}

/// A step of the durable router the core asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterStep {
    /// The agent answered the offer.
    Accept(AgentId),
    /// The agent's phone refused or failed: a missed offer.
    Reject(AgentId),
    /// The caller left while waiting or ringing.
    Abandon,
    /// The call with the agent is over.
    Complete,
    /// Connected but never bridged: back to its place.
    BackToQueue,
    /// Its handler is down: set it aside, keeping its place.
    Hold,
    /// Its handler is back: it waits at its place again.
    Release,
}

/// An agent change the router must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStep {
    /// Logged in (the router takes the agent's memberships into account).
    LogIn,
    /// Logged out.
    LogOut,
    /// Available for every media type, or not.
    Available(bool),
}

/// What the core asks the IO layer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// A command to one handler.
    Media {
        /// The handler.
        handler: HandlerId,
        /// The command.
        command: MediaCommand,
    },
    /// Queue the contact (the router's arrival), with what its flow collected.
    Enqueue {
        /// The contact.
        contact: ContactId,
        /// The queue.
        queue: String,
        /// Its priority.
        priority: Priority,
        /// Attributes collected.
        attributes: BTreeMap<String, String>,
    },
    /// A step of the router for a contact.
    Router {
        /// The contact.
        contact: ContactId,
        /// The step.
        step: RouterStep,
    },
    /// An agent step of the router.
    Agent {
        /// The agent.
        agent: AgentId,
        /// The step.
        step: AgentStep,
    },
    /// The contact's position and expected wait are wanted (answer with
    /// [`Calls::on_queue_status`]).
    QueueStatusWanted {
        /// The contact.
        contact: ContactId,
    },
    /// A voicemail was left: make it a voicemail contact in `queue`.
    Voicemail {
        /// The caller's contact.
        contact: ContactId,
        /// The queue.
        queue: String,
        /// The recording.
        path: String,
        /// Attributes collected.
        attributes: BTreeMap<String, String>,
    },
    /// An agent's state changed (for the store and the portal).
    AgentState(StateChange),
    /// An admission decision (for the log and the counters).
    Admission(AdmissionDecision),
    /// A contact's call is over: write its record.
    Record(CallRecord),
    /// Something the agent's portal shows (screen pop).
    Notice(Notice),
}

/// What an agent's portal is told about its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The agent.
    pub agent: AgentId,
    /// The contact.
    pub contact: ContactId,
    /// What happened.
    pub kind: NoticeKind,
    /// The contact's queue.
    pub queue: String,
    /// The calling number.
    pub caller: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// What happened, for a [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The contact is offered to the agent (the phone rings or the line is about to connect).
    Offered,
    /// The agent is connected to the contact.
    Connected,
    /// The offer ended without the agent taking it.
    Withdrawn,
    /// The call with the agent ended.
    Ended,
}

impl NoticeKind {
    /// Stable name for the portal.
    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::Offered => "offered",
            NoticeKind::Connected => "connected",
            NoticeKind::Withdrawn => "withdrawn",
            NoticeKind::Ended => "ended",
        }
    }
}

/// An input the core refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The contact already has a call.
    #[error("contact {0} already has a call")]
    DuplicateContact(ContactId),
    /// No line is configured for the agent.
    #[error("{0} has no phone line configured")]
    NoLine(AgentId),
    /// The contact's call is not connected to this agent.
    #[error("{contact} is not connected to {agent}")]
    NotConnected {
        /// The contact.
        contact: ContactId,
        /// The agent.
        agent: AgentId,
    },
    /// An agent input the agent manager refused.
    #[error(transparent)]
    Agent(#[from] crate::agents::AgentError),
    /// The flow could not start.
    #[error(transparent)]
    Flow(#[from] crate::flow::FlowRunError),
}

/// What a leg is to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LegRole {
    /// The caller's leg of a contact.
    Customer(ContactId),
    /// An agent's phone ringing for an offer.
    Ringing { contact: ContactId, agent: AgentId },
    /// An agent's leg that stays up (stay on line), serving `contact` when set.
    Line {
        agent: AgentId,
        contact: Option<ContactId>,
    },
    /// An agent's leg connected to a contact (ends with it).
    Serving { contact: ContactId, agent: AgentId },
}

#[derive(Debug, Clone)]
struct Call {
    handler: HandlerId,
    leg: LegId,
    tenant: TenantId,
    queue: String,
    caller: Option<String>,
    destination: Option<String>,
    arrived: Timestamp,
    /// Agent legs ringing for this contact.
    ringing: Vec<(AgentId, LegId)>,
    /// The agent connected and its leg, while the leg is on the call.
    agent: Option<(AgentId, LegId)>,
    /// The agent who took the contact (kept for the record).
    served_by: Option<AgentId>,
    answered: Option<Timestamp>,
    bridged: bool,
    recording: Option<String>,
    ended: Option<(Timestamp, Disposition, String)>,
    /// Its attributes as last queued (for the record).
    attributes: BTreeMap<String, String>,
    /// Why the customer's leg is being hung up on request (the record's cause when it goes).
    hangup_by: Option<String>,
}

/// A finished call waiting for the agent's wrap-up to end before its record is written.
#[derive(Debug, Clone)]
struct Wrapping {
    record: CallRecord,
    since: Timestamp,
}

/// The call-handling core.
/// A message a caller left, followed from its voicemail contact to its record.
#[derive(Debug, Clone)]
struct Message {
    tenant: TenantId,
    queue: String,
    caller: Option<String>,
    destination: Option<String>,
    handler: HandlerId,
    /// When the caller left it.
    left: Timestamp,
    path: String,
    attributes: BTreeMap<String, String>,
    /// When an agent took it, and who.
    taken: Option<(Timestamp, AgentId)>,
}

pub struct Calls {
    settings: CallSettings,
    flows: FlowEngine,
    agents: AgentManager,
    admission: Admission,
    lines: FxHashMap<AgentId, AgentLine>,
    tenants: FxHashMap<AgentId, TenantId>,
    calls: FxHashMap<ContactId, Call>,
    legs: FxHashMap<LegId, (HandlerId, LegRole)>,
    /// A stay-on-line agent's leg, once up.
    line_legs: FxHashMap<AgentId, (HandlerId, LegId)>,
    wrapping: FxHashMap<AgentId, Wrapping>,
    /// When each handler last went down (for the records of calls that died with it).
    down_since: FxHashMap<HandlerId, Timestamp>,
    /// Messages left, by their caller's contact, until their voicemail contact is queued.
    messages_left: FxHashMap<ContactId, Message>,
    /// Messages by their voicemail contact, until an agent has handled them.
    messages: FxHashMap<ContactId, Message>,
    actions: VecDeque<CallAction>,
    next_leg: u64,
}

impl Calls {
    /// A core with flows, agents and admission set up by the caller.
    pub fn new(
        settings: CallSettings,
        flows: FlowEngine,
        agents: AgentManager,
        admission: Admission,
    ) -> Self {
        Calls {
            settings,
            flows,
            agents,
            admission,
            lines: FxHashMap::default(),
            tenants: FxHashMap::default(),
            calls: FxHashMap::default(),
            legs: FxHashMap::default(),
            line_legs: FxHashMap::default(),
            wrapping: FxHashMap::default(),
            down_since: FxHashMap::default(),
            messages_left: FxHashMap::default(),
            messages: FxHashMap::default(),
            actions: VecDeque::new(),
            next_leg: 1,
        }
    }

    /// Adds an agent of `tenant` with its phone line.
    pub fn add_agent(&mut self, agent: AgentId, tenant: TenantId, line: AgentLine) {
        self.agents.add_agent(agent, line.stay_on_line);
        self.lines.insert(agent, line);
        self.tenants.insert(agent, tenant);
    }

    /// The agent manager (states, for the portal).
    pub fn agents(&self) -> &AgentManager {
        &self.agents
    }

    /// The admission core (counters, explanations).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The client an agent belongs to.
    pub fn agent_tenant(&self, agent: AgentId) -> Option<TenantId> {
        self.tenants.get(&agent).copied()
    }

    /// Whether the contact has a call the core handles.
    pub fn knows_contact(&self, contact: ContactId) -> bool {
        self.calls.contains_key(&contact)
    }

    /// Whether a leg belongs to a call the core handles.
    pub fn knows_leg(&self, leg: &LegId) -> bool {
        self.legs.contains_key(leg)
    }

    /// Whether a leg is known to be in no bridge, now or by any command issued so far: a
    /// caller's leg whose call has no agent and was never bridged. Parking or unbridging such
    /// a leg touches no other leg (a bridged leg's partner is kept up by the handler).
    pub fn leg_is_unbridged(&self, leg: &LegId) -> bool {
        match self.legs.get(leg) {
            Some((_, LegRole::Customer(contact))) => self
                .calls
                .get(contact)
                .is_some_and(|c| !c.bridged && c.agent.is_none()),
            _ => false,
        }
    }

    /// Contacts with a call in progress.
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// Every pending action, in order.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = CallAction> + '_ {
        self.actions.drain(..)
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.flows.poll_timeout(), self.agents.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Deadlines due at `now`: flow steps, agent timers.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.flows.handle_timeout(now);
        self.agents.handle_timeout(now);
        self.settle(now);
    }

    // ----- calls -------------------------------------------------------------------------------

    /// A new call: admitted into its flow (answered, tagged with its contact), or refused busy.
    /// Returns the admission decision.
    pub fn inbound(
        &mut self,
        now: Timestamp,
        call: InboundCall,
    ) -> Result<AdmissionDecision, CallError> {
        if self.calls.contains_key(&call.contact) {
            return Err(CallError::DuplicateContact(call.contact));
        }
        let decision = self.admission.admit(now, call.tenant);
        self.actions
            .push_back(CallAction::Admission(decision.clone()));
        let InboundCall {
            handler,
            leg,
            contact,
            tenant,
            queue,
            flow,
            caller,
            destination,
        } = call;
        if !decision.admitted() {
            self.media(
                &handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause::user_busy(),
                },
            );
            let attributes = caller_attributes(caller.as_ref());
            self.actions.push_back(CallAction::Record(CallRecord {
                contact,
                media: MediaType::Voice,
                tenant,
                queue,
                caller,
                destination,
                handler,
                agent: None,
                arrived: now,
                answered: None,
                ended: now,
                wait: Duration::ZERO,
                talk: Duration::ZERO,
                wrap_up: Duration::ZERO,
                recording: None,
                disposition: Disposition::Rejected,
                cause: format!("admission: {decision}"),
                attributes,
            }));
            return Ok(decision);
        }
        let attributes = caller_attributes(caller.as_ref());
        if let Err(error) = self
            .flows
            .start(now, contact, leg.clone(), &flow, attributes.clone())
        {
            self.admission.release(now, tenant, now);
            return Err(error.into());
        }
        self.legs
            .insert(leg.clone(), (handler, LegRole::Customer(contact)));
        self.media(&handler, MediaCommand::Answer { leg: leg.clone() });
        self.media(
            &handler,
            MediaCommand::SetVariable {
                leg: leg.clone(),
                name: CONTACT_VARIABLE.to_owned(),
                value: contact.0.to_string(),
            },
        );
        self.calls.insert(
            contact,
            Call {
                handler,
                leg,
                tenant,
                queue,
                caller,
                destination,
                arrived: now,
                ringing: Vec::new(),
                agent: None,
                served_by: None,
                answered: None,
                bridged: false,
                recording: None,
                ended: None,
                attributes,
                hangup_by: None,
            },
        );
        self.settle(now);
        Ok(decision)
    }

    /// Something happened on a handler.
    pub fn on_media(&mut self, now: Timestamp, handler: &HandlerId, event: &MediaEvent) {
        match event {
            MediaEvent::HandlerDown { reason } => self.handler_lost(now, handler, reason),
            MediaEvent::HandlerUp => {}
            _ => {
                if let Some(leg) = event_leg(event) {
                    self.leg_event(now, leg, event);
                }
                if let MediaEvent::Bridged { b, .. } = event {
                    // The second leg of a bridge hears of it too.
                    self.leg_event(now, b, event);
                }
            }
        }
        self.settle(now);
    }

    /// A handler came back: what existed on it at `listed` (when it was asked). Legs of known
    /// calls are kept; known calls from before `listed` whose customer leg is gone ended with
    /// the handler (calls that arrived since may be missing from the list and are kept).
    pub fn on_resync(
        &mut self,
        now: Timestamp,
        handler: &HandlerId,
        legs: &[LegSnapshot],
        listed: Timestamp,
    ) {
        let present: std::collections::HashSet<&LegId> = legs.iter().map(|l| &l.leg).collect();
        let lost: Vec<ContactId> = self
            .calls
            .iter()
            .filter(|(_, c)| &c.handler == handler && c.arrived < listed)
            .filter(|(_, c)| !present.contains(&c.leg))
            .map(|(id, _)| *id)
            .collect();
        for contact in lost {
            self.lost_with_switch(now, contact, handler);
        }
        // The callers that are still there wait at their places again.
        let held: Vec<ContactId> = self
            .calls
            .iter()
            .filter(|(_, c)| &c.handler == handler && c.agent.is_none())
            .map(|(id, _)| *id)
            .collect();
        for contact in held {
            self.actions.push_back(CallAction::Router {
                contact,
                step: RouterStep::Release,
            });
        }
        self.settle(now);
    }

    /// Takes back a call found alive on `handler` after a restart: the caller's leg `leg`
    /// carries `contact`, which the router still holds as `adoption` says, with the
    /// `attributes` stored for it (its caller's number among them). The call counts against
    /// its client's trunks again whatever admission would say now (it exists).
    #[allow(clippy::too_many_arguments)]
    pub fn adopt(
        &mut self,
        now: Timestamp,
        handler: HandlerId,
        leg: LegId,
        contact: ContactId,
        tenant: TenantId,
        queue: String,
        adoption: Adoption,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), CallError> {
        if self.calls.contains_key(&contact) {
            return Err(CallError::DuplicateContact(contact));
        }
        let _ = self.admission.admit(now, tenant);
        let mut call = Call {
            handler,
            leg: leg.clone(),
            tenant,
            queue,
            caller: attributes.get(CALLER_ATTRIBUTE).cloned(),
            destination: None,
            arrived: now,
            ringing: Vec::new(),
            agent: None,
            served_by: None,
            answered: None,
            bridged: false,
            recording: None,
            ended: None,
            attributes: attributes.clone(),
            hangup_by: None,
        };
        self.legs
            .insert(leg.clone(), (handler, LegRole::Customer(contact)));
        match adoption {
            Adoption::Waiting { flow } => {
                self.flows
                    .resume_queued(now, contact, leg, &flow, attributes)?;
                self.calls.insert(contact, call);
            }
            Adoption::Connected {
                agent,
                agent_leg: Some(agent_leg),
                ..
            } => {
                call.agent = Some((agent, agent_leg.clone()));
                call.served_by = Some(agent);
                call.answered = Some(now);
                call.bridged = true;
                self.legs
                    .insert(agent_leg, (handler, LegRole::Serving { contact, agent }));
                self.calls.insert(contact, call);
            }
            Adoption::Connected {
                agent_leg: None,
                flow,
                ..
            } => {
                // The agent's side is gone: the caller waits again at its place.
                self.flows
                    .resume_queued(now, contact, leg, &flow, attributes)?;
                self.calls.insert(contact, call);
                self.actions.push_back(CallAction::Router {
                    contact,
                    step: RouterStep::BackToQueue,
                });
            }
        }
        self.settle(now);
        Ok(())
    }

    fn handler_lost(&mut self, now: Timestamp, handler: &HandlerId, reason: &str) {
        self.down_since.insert(*handler, now);
        // Its callers cannot be reached: they keep their places, but no agent is offered them
        // (nor rung for them) until the handler is back. Their rings end with the offers the
        // router withdraws, which cost the agents nothing.
        let held: Vec<ContactId> = self
            .calls
            .iter()
            .filter(|(_, c)| &c.handler == handler && c.agent.is_none())
            .map(|(id, _)| *id)
            .collect();
        for contact in held {
            self.actions.push_back(CallAction::Router {
                contact,
                step: RouterStep::Hold,
            });
        }
        // Calls stay until the handler comes back and says what survived (a reconnect keeps
        // the switch's calls); the rings on it are over. The agents did not miss anything: they
        // are free again at once.
        let ringing: Vec<(ContactId, AgentId, LegId)> = self
            .calls
            .iter()
            .filter(|(_, c)| &c.handler == handler)
            .flat_map(|(id, c)| c.ringing.iter().map(move |(a, l)| (*id, *a, l.clone())))
            .collect();
        for (contact, agent, leg) in ringing {
            tracing::warn!(%handler, reason, contact = contact.0, "handler down while ringing");
            self.legs.remove(&leg);
            self.line_legs.retain(|_, (_, l)| *l != leg);
            if let Some(call) = self.calls.get_mut(&contact) {
                call.ringing.retain(|(_, l)| *l != leg);
            }
            let _ = self.agents.offer_ended(now, agent, contact, None);
        }
    }

    fn leg_event(&mut self, now: Timestamp, leg: &LegId, event: &MediaEvent) {
        let Some((_, role)) = self.legs.get(leg).cloned() else {
            return;
        };
        match role {
            LegRole::Customer(contact) => self.customer_event(now, contact, event),
            LegRole::Ringing { contact, agent } => match event {
                MediaEvent::Answered { .. } => self.ring_answered(now, contact, agent, leg),
                MediaEvent::HungUp { cause, .. } => {
                    self.ring_failed(now, contact, agent, leg, cause.as_str())
                }
                _ => {}
            },
            LegRole::Serving { contact, agent } => match event {
                MediaEvent::HungUp { cause, .. } => {
                    self.legs.remove(leg);
                    self.agent_left(now, contact, agent, cause);
                }
                MediaEvent::Bridged { .. } => self.customer_event(now, contact, event),
                _ => {}
            },
            LegRole::Line { agent, contact } => match event {
                MediaEvent::Answered { .. } if contact.is_none() => {
                    // A stay-on-line leg came up: it waits parked.
                    let music = self.settings.agent_hold_music.clone();
                    if let Some((handler, _)) = self.legs.get(leg).cloned() {
                        self.media(
                            &handler,
                            MediaCommand::Park {
                                leg: leg.clone(),
                                music,
                            },
                        );
                    }
                }
                MediaEvent::HungUp { cause, .. } => {
                    self.legs.remove(leg);
                    self.line_legs.remove(&agent);
                    if let Some(contact) = contact {
                        self.agent_left(now, contact, agent, cause);
                    }
                }
                MediaEvent::Bridged { .. } => {
                    if let Some(contact) = contact {
                        self.customer_event(now, contact, event);
                    }
                }
                _ => {}
            },
        }
    }

    fn customer_event(&mut self, now: Timestamp, contact: ContactId, event: &MediaEvent) {
        if let MediaEvent::Bridged { .. } = event
            && let Some(call) = self.calls.get_mut(&contact)
            && !call.bridged
        {
            call.bridged = true;
            self.start_recording(contact);
        }
        let recording = self.flows.is_recording_voicemail(contact);
        let _ = self.flows.on_media(now, contact, event);
        if let MediaEvent::HungUp { cause, .. } = event {
            if recording {
                // The message is left: the flow ends the call as a voicemail.
                self.settle(now);
            }
            self.customer_left(now, contact, cause);
        }
    }

    fn start_recording(&mut self, contact: ContactId) {
        let Some(dir) = self.settings.recordings.clone() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        let extension = match self.settings.record_format {
            RecordFormat::Wav => "wav",
            RecordFormat::Mp3 => "mp3",
        };
        let path = format!("{}/{}.{extension}", dir.trim_end_matches('/'), contact.0);
        call.recording = Some(path.clone());
        let command = MediaCommand::StartRecording {
            target: RecordTarget::Bridge {
                leg: call.leg.clone(),
            },
            path,
            format: self.settings.record_format,
        };
        let handler = call.handler;
        self.media(&handler, command);
    }

    fn customer_left(&mut self, now: Timestamp, contact: ContactId, cause: &HangupCause) {
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        if cause.is_switch_lost() {
            let handler = call.handler;
            self.lost_with_switch(now, contact, &handler);
            return;
        }
        // Overflowed (to voicemail, a callback, a hang-up) before: that is how it ended.
        if let Some((_, disposition, why)) = call.ended.clone() {
            self.end_call(now, contact, disposition, why);
            return;
        }
        let disposition = if call.answered.is_some() {
            Disposition::Answered
        } else {
            Disposition::Abandoned
        };
        // A hang-up asked for (by the agent, over the API) is why, whatever cause the switch gave.
        let cause = call.hangup_by.take().unwrap_or_else(|| cause.to_string());
        self.end_call(now, contact, disposition, cause);
    }

    /// The call was gone when its handler came back: the switch failed to carry it.
    fn lost_with_switch(&mut self, now: Timestamp, contact: ContactId, handler: &HandlerId) {
        let since = self
            .down_since
            .get(handler)
            .map_or_else(String::new, |t| format!(" (down since {t})"));
        let cause = format!(
            "{}: the call was gone when {handler} came back{since}",
            HangupCause::switch_lost()
        );
        self.end_call(now, contact, Disposition::Failed, cause);
    }

    /// The agent's leg hung up while serving: the call is over for the customer too.
    fn agent_left(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: AgentId,
        cause: &HangupCause,
    ) {
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        if cause.is_switch_lost() && call.agent.as_ref().is_some_and(|(a, _)| *a == agent) {
            let handler = call.handler;
            self.lost_with_switch(now, contact, &handler);
            return;
        }
        if call.agent.as_ref().is_some_and(|(a, _)| *a == agent) {
            call.agent = None;
            // The switch may report the agent's leg gone first after a hang-up asked for.
            let cause = call
                .hangup_by
                .take()
                .unwrap_or_else(|| "the agent hung up".to_owned());
            let (handler, leg) = (call.handler, call.leg.clone());
            self.media(
                &handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause::normal_clearing(),
                },
            );
            self.finish_with_agent(now, contact, agent);
            self.end_call(now, contact, Disposition::Answered, cause);
        }
    }

    /// Ends a contact's call: its legs, the router, the agent, admission; the record waits for
    /// the agent's wrap-up.
    fn end_call(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        disposition: Disposition,
        cause: String,
    ) {
        if let Some(agent) = self
            .calls
            .get(&contact)
            .and_then(|c| c.agent.as_ref().map(|(a, _)| *a))
        {
            self.finish_with_agent(now, contact, agent);
        }
        let Some(mut call) = self.calls.remove(&contact) else {
            return;
        };
        self.legs.remove(&call.leg);
        for (agent, leg) in std::mem::take(&mut call.ringing) {
            self.legs.remove(&leg);
            self.media(
                &call.handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause::originator_cancel(),
                },
            );
            let _ = self.agents.offer_ended(now, agent, contact, None);
        }
        // The agent's after-call work reaches the router before the slot it frees, else the
        // router offers the agent its next contact at once.
        while let Some(change) = self.agents.poll_change() {
            self.agent_change(now, change);
        }
        let step = match (disposition, call.answered) {
            (_, Some(_)) => Some(RouterStep::Complete),
            (Disposition::Abandoned, None) | (Disposition::Failed, None) => {
                Some(RouterStep::Abandon)
            }
            // Voicemail, callback, disconnect and rejection already left the router.
            _ => None,
        };
        if let Some(step) = step {
            self.actions.push_back(CallAction::Router { contact, step });
        }
        self.admission.release(now, call.tenant, call.arrived);
        let _ = self.flows.on_media(
            now,
            contact,
            &MediaEvent::Destroyed {
                leg: call.leg.clone(),
            },
        );
        let agent = call.served_by;
        let record = CallRecord {
            contact,
            media: MediaType::Voice,
            tenant: call.tenant,
            queue: call.queue,
            caller: call.caller,
            destination: call.destination,
            handler: call.handler,
            agent,
            arrived: call.arrived,
            answered: call.answered,
            ended: now,
            wait: call.answered.unwrap_or(now).since(call.arrived),
            talk: call.answered.map_or(Duration::ZERO, |a| now.since(a)),
            wrap_up: Duration::ZERO,
            recording: call.recording,
            disposition,
            cause,
            attributes: call.attributes,
        };
        let wraps = agent.is_some_and(|a| {
            self.agents
                .state(a)
                .is_some_and(|(s, _, _)| s == AgentState::AfterCallWork)
        });
        match agent {
            Some(agent) if wraps => {
                self.wrapping.insert(agent, Wrapping { record, since: now });
            }
            _ => self.actions.push_back(CallAction::Record(record)),
        }
    }

    /// The agent is done with the contact: its leg hangs up (or parks, if it stays on line),
    /// and after-call work starts.
    fn finish_with_agent(&mut self, now: Timestamp, contact: ContactId, agent: AgentId) {
        self.notify(now, agent, contact, NoticeKind::Ended);
        let Some(call) = self.calls.get_mut(&contact) else {
            let _ = self.agents.contact_ended(now, agent, contact);
            return;
        };
        let handler = call.handler;
        if let Some((_, leg)) = call.agent.take() {
            match self.legs.get(&leg).map(|(_, r)| r.clone()) {
                Some(LegRole::Line { .. }) => {
                    self.legs.insert(
                        leg.clone(),
                        (
                            handler,
                            LegRole::Line {
                                agent,
                                contact: None,
                            },
                        ),
                    );
                    let music = self.settings.agent_hold_music.clone();
                    self.media(&handler, MediaCommand::Park { leg, music });
                }
                Some(_) => {
                    self.legs.remove(&leg);
                    self.media(
                        &handler,
                        MediaCommand::Hangup {
                            leg,
                            cause: HangupCause::normal_clearing(),
                        },
                    );
                }
                None => {}
            }
        }
        let _ = self.agents.contact_ended(now, agent, contact);
    }

    // ----- offers ------------------------------------------------------------------------------

    /// What the router decided.
    pub fn on_router(&mut self, now: Timestamp, output: &Output) {
        self.flows.on_router(now, output);
        match output {
            Output::Offered {
                contact, agents, ..
            } => {
                for agent in agents.iter() {
                    self.offer(now, *contact, *agent);
                }
            }
            Output::OfferExtended { contact, agent, .. } => self.offer(now, *contact, *agent),
            Output::OfferWithdrawn { contact, agent, .. } => {
                self.notify(now, *agent, *contact, NoticeKind::Withdrawn);
                self.cancel_ring(*contact, *agent);
                let _ = self.agents.offer_ended(now, *agent, *contact, None);
            }
            Output::OfferMissed {
                contact,
                agent,
                reason,
                ..
            } => {
                self.notify(now, *agent, *contact, NoticeKind::Withdrawn);
                self.cancel_ring(*contact, *agent);
                let why = format!("missed offer: {reason:?}");
                let _ = self.agents.offer_ended(now, *agent, *contact, Some(&why));
            }
            Output::Overflowed {
                contact, target, ..
            } => {
                let disposition = match target {
                    OverflowTarget::Callback => Some(Disposition::OverflowedCallback),
                    OverflowTarget::Disconnect => Some(Disposition::OverflowedDisconnect),
                    OverflowTarget::Voicemail => Some(Disposition::OverflowedVoicemail),
                    _ => None,
                };
                if let (Some(disposition), Some(call)) = (disposition, self.calls.get_mut(contact))
                {
                    call.ended = Some((now, disposition, format!("overflow: {target:?}")));
                }
            }
            Output::BecameCallback { contact, .. } => {
                if let Some(call) = self.calls.get_mut(contact) {
                    call.ended =
                        Some((now, Disposition::OverflowedCallback, "callback".to_owned()));
                }
            }
            // Not a call (a voicemail, a chat): the agent took it in the portal.
            Output::Connected { contact, agent, .. } if !self.calls.contains_key(contact) => {
                let _ = self.agents.connected(now, *agent, *contact);
                if let Some(message) = self.messages.get_mut(contact) {
                    message.taken = Some((now, *agent));
                }
            }
            Output::Ended {
                contact,
                outcome,
                agent,
                ..
            } if !self.calls.contains_key(contact) => {
                if let Some(agent) = agent {
                    self.finish_with_agent(now, *contact, *agent);
                }
                if let Some(message) = self.messages.remove(contact) {
                    self.message_record(now, *contact, message, *outcome);
                }
            }
            _ => {}
        }
        self.settle(now);
    }

    /// The voicemail contact of the message `caller` left is `voicemail` (queued); `None`:
    /// it could not be queued.
    pub fn message_queued(&mut self, caller: ContactId, voicemail: Option<ContactId>) {
        let message = self.messages_left.remove(&caller);
        if let (Some(message), Some(voicemail)) = (message, voicemail) {
            self.messages.insert(voicemail, message);
        }
    }

    /// The record of a message once its voicemail contact ended (handled by an agent, or not).
    fn message_record(&mut self, now: Timestamp, contact: ContactId, m: Message, outcome: Outcome) {
        let (disposition, cause) = match outcome {
            Outcome::Completed => (Disposition::Answered, "voicemail handled".to_owned()),
            Outcome::Abandoned => (Disposition::Abandoned, "voicemail withdrawn".to_owned()),
            Outcome::Overflowed => (Disposition::Failed, "voicemail overflowed".to_owned()),
        };
        let answered = m.taken.map(|(at, _)| at);
        self.actions.push_back(CallAction::Record(CallRecord {
            contact,
            media: MediaType::Voicemail,
            tenant: m.tenant,
            queue: m.queue,
            caller: m.caller,
            destination: m.destination,
            handler: m.handler,
            agent: m.taken.map(|(_, agent)| agent),
            arrived: m.left,
            answered,
            ended: now,
            wait: answered.unwrap_or(now).since(m.left),
            talk: answered.map_or(Duration::ZERO, |a| now.since(a)),
            wrap_up: Duration::ZERO,
            recording: Some(m.path),
            disposition,
            cause,
            attributes: m.attributes,
        }));
    }

    /// The contact's position and expected wait, asked for by [`CallAction::QueueStatusWanted`].
    pub fn on_queue_status(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        position: u32,
        wait: Option<Duration>,
    ) {
        self.flows.on_queue_status(now, contact, position, wait);
        self.settle(now);
    }

    fn offer(&mut self, now: Timestamp, contact: ContactId, agent: AgentId) {
        let _ = self.agents.offered(now, agent, contact);
        self.notify(now, agent, contact, NoticeKind::Offered);
        let Some(call) = self.calls.get(&contact) else {
            // Not a call (chat, email, voicemail): the portal shows the offer.
            return;
        };
        let handler = call.handler;
        if let Some((line_handler, leg)) = self.line_legs.get(&agent).cloned() {
            let idle = matches!(
                self.legs.get(&leg),
                Some((_, LegRole::Line { contact: None, .. }))
            );
            if idle && line_handler == handler {
                // The agent is on line: no ringing, the contact is connected at once.
                self.legs.insert(
                    leg.clone(),
                    (
                        handler,
                        LegRole::Line {
                            agent,
                            contact: Some(contact),
                        },
                    ),
                );
                self.connect(now, contact, agent, leg);
                return;
            }
        }
        let Some(line) = self.lines.get(&agent) else {
            self.actions.push_back(CallAction::Router {
                contact,
                step: RouterStep::Reject(agent),
            });
            return;
        };
        let leg = LegId::new(format!(
            "{AGENT_LEG_PREFIX}{}-{}-{}",
            contact.0, agent.0, self.next_leg
        ));
        self.next_leg += 1;
        let stays = line.stay_on_line == StayOnLine::Always;
        let mut variables = BTreeMap::new();
        variables.insert("switchboard_agent".to_owned(), agent.0.to_string());
        let request = OriginateRequest {
            target: line.target.clone(),
            contact,
            leg: leg.clone(),
            caller_id_number: call.caller.clone(),
            caller_id_name: None,
            variables,
            timeout: self.settings.ring_timeout,
        };
        let role = if stays {
            LegRole::Line {
                agent,
                contact: Some(contact),
            }
        } else {
            LegRole::Ringing { contact, agent }
        };
        self.legs.insert(leg.clone(), (handler, role));
        if let Some(call) = self.calls.get_mut(&contact) {
            call.ringing.push((agent, leg.clone()));
        }
        if stays {
            self.line_legs.insert(agent, (handler, leg.clone()));
        }
        self.media(&handler, MediaCommand::Originate(request));
    }

    fn ring_answered(&mut self, now: Timestamp, contact: ContactId, agent: AgentId, leg: &LegId) {
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        call.ringing.retain(|(_, l)| l != leg);
        let handler = call.handler;
        self.legs
            .insert(leg.clone(), (handler, LegRole::Serving { contact, agent }));
        self.connect(now, contact, agent, leg.clone());
    }

    /// The agent took the contact: tell the router, bridge the legs.
    fn connect(&mut self, now: Timestamp, contact: ContactId, agent: AgentId, agent_leg: LegId) {
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        call.ringing.retain(|(_, l)| *l != agent_leg);
        call.agent = Some((agent, agent_leg.clone()));
        call.served_by = Some(agent);
        call.answered = Some(now);
        let (handler, customer) = (call.handler, call.leg.clone());
        let _ = self.agents.connected(now, agent, contact);
        self.notify(now, agent, contact, NoticeKind::Connected);
        self.actions.push_back(CallAction::Router {
            contact,
            step: RouterStep::Accept(agent),
        });
        self.media(
            &handler,
            MediaCommand::Bridge {
                a: customer,
                b: agent_leg,
            },
        );
    }

    fn ring_failed(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: AgentId,
        leg: &LegId,
        cause: &str,
    ) {
        self.legs.remove(leg);
        self.line_legs.retain(|_, (_, l)| l != leg);
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        let was_ringing = call.ringing.iter().any(|(_, l)| l == leg);
        call.ringing.retain(|(_, l)| l != leg);
        if was_ringing {
            let why = format!("missed offer: {cause}");
            let _ = self.agents.offer_ended(now, agent, contact, Some(&why));
            self.actions.push_back(CallAction::Router {
                contact,
                step: RouterStep::Reject(agent),
            });
        }
    }

    fn cancel_ring(&mut self, contact: ContactId, agent: AgentId) {
        let Some(call) = self.calls.get_mut(&contact) else {
            return;
        };
        let legs: Vec<LegId> = call
            .ringing
            .iter()
            .filter(|(a, _)| *a == agent)
            .map(|(_, l)| l.clone())
            .collect();
        call.ringing.retain(|(a, _)| *a != agent);
        let handler = call.handler;
        for leg in legs {
            self.legs.remove(&leg);
            self.line_legs.retain(|_, (_, l)| *l != leg);
            self.media(
                &handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause::originator_cancel(),
                },
            );
        }
    }

    // ----- agents ------------------------------------------------------------------------------

    /// The agent logs in; an agent who stays on line always gets its leg rung now.
    pub fn log_in(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        handler: &HandlerId,
    ) -> Result<(), CallError> {
        self.agents.log_in(now, agent)?;
        let line = self
            .lines
            .get(&agent)
            .cloned()
            .ok_or(CallError::NoLine(agent))?;
        if line.stay_on_line == StayOnLine::Always && !self.line_legs.contains_key(&agent) {
            let leg = LegId::new(format!(
                "{AGENT_LEG_PREFIX}line-{}-{}",
                agent.0, self.next_leg
            ));
            self.next_leg += 1;
            let mut variables = BTreeMap::new();
            variables.insert("switchboard_agent".to_owned(), agent.0.to_string());
            self.legs.insert(
                leg.clone(),
                (
                    *handler,
                    LegRole::Line {
                        agent,
                        contact: None,
                    },
                ),
            );
            self.line_legs.insert(agent, (*handler, leg.clone()));
            self.media(
                handler,
                MediaCommand::Originate(OriginateRequest {
                    target: line.target,
                    contact: ContactId(0),
                    leg,
                    caller_id_number: None,
                    caller_id_name: Some("Switchboard".to_owned()),
                    variables,
                    timeout: self.settings.ring_timeout,
                }),
            );
        }
        self.settle(now);
        Ok(())
    }

    /// The agent logs out; a stay-on-line leg is hung up.
    pub fn log_out(&mut self, now: Timestamp, agent: AgentId) -> Result<(), CallError> {
        self.agents.log_out(now, agent, None)?;
        if let Some((handler, leg)) = self.line_legs.remove(&agent) {
            let idle = matches!(
                self.legs.get(&leg),
                Some((_, LegRole::Line { contact: None, .. }))
            );
            if idle {
                self.legs.remove(&leg);
                self.media(
                    &handler,
                    MediaCommand::Hangup {
                        leg,
                        cause: HangupCause::normal_clearing(),
                    },
                );
            }
        }
        self.settle(now);
        Ok(())
    }

    /// The agent is ready for contacts.
    pub fn ready(&mut self, now: Timestamp, agent: AgentId) -> Result<(), CallError> {
        self.agents.ready(now, agent)?;
        self.settle(now);
        Ok(())
    }

    /// The agent asks for a break (now, or after its current contact).
    pub fn start_break(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        reason: &str,
    ) -> Result<(), CallError> {
        self.agents.start_break(now, agent, reason)?;
        self.settle(now);
        Ok(())
    }

    /// The agent's portal is alive.
    pub fn heartbeat(&mut self, now: Timestamp, agent: AgentId) -> Result<(), CallError> {
        self.agents.heartbeat(now, agent)?;
        self.settle(now);
        Ok(())
    }

    /// The agent hangs up its call with `contact`: the customer's leg is hung up on the switch,
    /// and when the switch reports it gone the call ends as usual (router, after-call work,
    /// record, with `why` as the record's cause). `Ok(false)`: the contact has no call here
    /// (chat, email), so there is nothing to hang up.
    pub fn hang_up(
        &mut self,
        contact: ContactId,
        agent: AgentId,
        why: &str,
    ) -> Result<bool, CallError> {
        let Some(call) = self.calls.get_mut(&contact) else {
            return Ok(false);
        };
        if call.agent.as_ref().is_none_or(|(a, _)| *a != agent) {
            return Err(CallError::NotConnected { contact, agent });
        }
        call.hangup_by = Some(why.to_owned());
        let (handler, leg) = (call.handler, call.leg.clone());
        self.media(
            &handler,
            MediaCommand::Hangup {
                leg,
                cause: HangupCause::normal_clearing(),
            },
        );
        Ok(true)
    }

    /// Removes an agent that holds no contact (an administrator deleted it): it is logged out
    /// with `reason`, its parked line is hung up, and it is forgotten.
    pub fn remove_agent(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        reason: &str,
    ) -> Result<(), CallError> {
        self.agents.remove_agent(now, agent, reason)?;
        if let Some((handler, leg)) = self.line_legs.remove(&agent) {
            self.legs.remove(&leg);
            self.media(
                &handler,
                MediaCommand::Hangup {
                    leg,
                    cause: HangupCause::normal_clearing(),
                },
            );
        }
        // Settled before the agent is forgotten: its logout still reaches the router and the
        // store, and its client's count of available agents drops.
        self.settle(now);
        self.lines.remove(&agent);
        self.tenants.remove(&agent);
        self.wrapping.remove(&agent);
        Ok(())
    }

    /// The flows (an administrator adds, replaces or removes them).
    pub fn flows_mut(&mut self) -> &mut FlowEngine {
        &mut self.flows
    }

    /// The admission core (an administrator's new client gets its trunk rules).
    pub fn admission_mut(&mut self) -> &mut Admission {
        &mut self.admission
    }

    // ----- plumbing ----------------------------------------------------------------------------

    fn notify(&mut self, now: Timestamp, agent: AgentId, contact: ContactId, kind: NoticeKind) {
        let (queue, caller) = self
            .calls
            .get(&contact)
            .map(|c| (c.queue.clone(), c.caller.clone()))
            .unwrap_or_default();
        self.actions.push_back(CallAction::Notice(Notice {
            agent,
            contact,
            kind,
            queue,
            caller,
            at: now,
        }));
    }

    fn media(&mut self, handler: &HandlerId, command: MediaCommand) {
        self.actions.push_back(CallAction::Media {
            handler: *handler,
            command,
        });
    }

    /// Turns what the flow engine and the agent manager decided into actions.
    fn settle(&mut self, now: Timestamp) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.flows.poll_action() {
                progressed = true;
                self.flow_action(now, action);
            }
            while let Some(change) = self.agents.poll_change() {
                progressed = true;
                self.agent_change(now, change);
            }
            if !progressed {
                break;
            }
        }
    }

    fn flow_action(&mut self, now: Timestamp, action: FlowAction) {
        match action {
            FlowAction::Media(command) => {
                let handler = command_leg(&command)
                    .and_then(|leg| self.legs.get(leg))
                    .map(|(h, _)| *h);
                if let Some(handler) = handler {
                    self.media(&handler, command);
                }
            }
            FlowAction::Enqueue {
                contact,
                queue,
                priority,
                attributes,
            } => {
                if let Some(call) = self.calls.get_mut(&contact) {
                    call.queue = queue.clone();
                    call.attributes = attributes.clone();
                }
                self.actions.push_back(CallAction::Enqueue {
                    contact,
                    queue,
                    priority,
                    attributes,
                });
            }
            FlowAction::Abandon { contact } => {
                // The customer hung up while queued; `customer_left` ends the call and the
                // router hears of it there, once.
                let _ = contact;
            }
            FlowAction::BackToQueue { contact } => {
                if let Some(call) = self.calls.get_mut(&contact) {
                    if let Some((agent, leg)) = call.agent.take() {
                        call.answered = None;
                        call.served_by = None;
                        let handler = call.handler;
                        self.legs.remove(&leg);
                        self.media(
                            &handler,
                            MediaCommand::Hangup {
                                leg,
                                cause: HangupCause::normal_clearing(),
                            },
                        );
                        let _ = self.agents.contact_ended(now, agent, contact);
                    }
                    self.actions.push_back(CallAction::Router {
                        contact,
                        step: RouterStep::BackToQueue,
                    });
                }
            }
            FlowAction::QueueStatusWanted { contact } => {
                self.actions
                    .push_back(CallAction::QueueStatusWanted { contact });
            }
            FlowAction::Voicemail {
                contact,
                queue,
                path,
                attributes,
            } => {
                if let Some(call) = self.calls.get_mut(&contact) {
                    call.ended = Some((
                        now,
                        Disposition::OverflowedVoicemail,
                        format!("voicemail {path}"),
                    ));
                    call.recording = Some(path.clone());
                    let message = Message {
                        tenant: call.tenant,
                        queue: queue.clone(),
                        caller: call.caller.clone(),
                        destination: call.destination.clone(),
                        handler: call.handler,
                        left: now,
                        path: path.clone(),
                        attributes: attributes.clone(),
                        taken: None,
                    };
                    self.messages_left.insert(contact, message);
                }
                self.actions.push_back(CallAction::Voicemail {
                    contact,
                    queue,
                    path,
                    attributes,
                });
            }
            FlowAction::Finished { contact } => {
                // The flow hung up (after voicemail, at overflow, after the agent left).
                if let Some(call) = self.calls.get(&contact) {
                    let (disposition, cause) = match &call.ended {
                        Some((_, d, c)) => (*d, c.clone()),
                        None if call.answered.is_some() => {
                            (Disposition::Answered, "NORMAL_CLEARING".to_owned())
                        }
                        None => (Disposition::Abandoned, "the flow ended".to_owned()),
                    };
                    self.end_call(now, contact, disposition, cause);
                }
            }
        }
    }

    fn agent_change(&mut self, now: Timestamp, change: StateChange) {
        let agent = change.agent;
        let step = match (change.from, change.to) {
            (AgentState::LoggedOut, _) => Some(AgentStep::LogIn),
            (_, AgentState::LoggedOut) => Some(AgentStep::LogOut),
            (_, AgentState::Available) => Some(AgentStep::Available(true)),
            (
                _,
                AgentState::Break
                | AgentState::LostConnection
                | AgentState::AfterCallWork
                | AgentState::Unallocated,
            ) => Some(AgentStep::Available(false)),
            (_, AgentState::Offered | AgentState::Busy) => None,
        };
        if let Some(step) = step {
            self.actions.push_back(CallAction::Agent { agent, step });
        }
        if change.to == AgentState::LoggedOut && change.from == AgentState::LoggedOut {
            return;
        }
        // Leaving after-call work closes the record of the contact it was for.
        if change.from == AgentState::AfterCallWork
            && let Some(wrapping) = self.wrapping.remove(&agent)
        {
            let mut record = wrapping.record;
            record.wrap_up = now.since(wrapping.since);
            self.actions.push_back(CallAction::Record(record));
        }
        // A for admission changes only when an agent starts or stops taking contacts (offered
        // and busy still count): the recount, over every agent, is skipped otherwise.
        let flips = change.from.takes_contacts() != change.to.takes_contacts();
        if flips && let Some(tenant) = self.tenants.get(&agent).copied() {
            let available = self
                .tenants
                .iter()
                .filter(|(_, t)| **t == tenant)
                .filter(|(a, _)| {
                    self.agents
                        .state(**a)
                        .is_some_and(|(s, _, _)| s.takes_contacts())
                })
                .count();
            self.admission
                .set_available_agents(tenant, u32::try_from(available).unwrap_or(u32::MAX));
        }
        self.actions.push_back(CallAction::AgentState(change));
    }
}

/// The attribute that carries the calling number.
pub const CALLER_ATTRIBUTE: &str = "caller";

/// A new call's first attributes: its calling number, when known.
fn caller_attributes(caller: Option<&String>) -> BTreeMap<String, String> {
    caller
        .map(|c| BTreeMap::from([(CALLER_ATTRIBUTE.to_owned(), c.clone())]))
        .unwrap_or_default()
}

/// The leg an event is about (a bridge: its first leg).
fn event_leg(event: &MediaEvent) -> Option<&LegId> {
    match event {
        MediaEvent::LegCreated { leg, .. }
        | MediaEvent::Answered { leg }
        | MediaEvent::Unbridged { leg }
        | MediaEvent::HungUp { leg, .. }
        | MediaEvent::Destroyed { leg }
        | MediaEvent::Dtmf { leg, .. }
        | MediaEvent::PlaybackStarted { leg, .. }
        | MediaEvent::PlaybackFinished { leg, .. }
        | MediaEvent::RecordingStarted { leg, .. }
        | MediaEvent::RecordingFinished { leg, .. }
        | MediaEvent::ConferenceJoined { leg, .. }
        | MediaEvent::ConferenceLeft { leg, .. }
        | MediaEvent::Amd { leg, .. } => Some(leg),
        MediaEvent::Bridged { a, .. } => Some(a),
        MediaEvent::HandlerUp | MediaEvent::HandlerDown { .. } => None,
    }
}

/// The leg a command acts on, to find its handler.
fn command_leg(command: &MediaCommand) -> Option<&LegId> {
    match command {
        MediaCommand::Originate(request) => Some(&request.leg),
        MediaCommand::Answer { leg }
        | MediaCommand::Hangup { leg, .. }
        | MediaCommand::Park { leg, .. }
        | MediaCommand::Play { leg, .. }
        | MediaCommand::StopPlayback { leg, .. }
        | MediaCommand::Unbridge { leg }
        | MediaCommand::Transfer { leg, .. }
        | MediaCommand::SendDtmf { leg, .. }
        | MediaCommand::SetVariable { leg, .. } => Some(leg),
        MediaCommand::StartRecording { target, .. }
        | MediaCommand::StopRecording { target, .. } => match target {
            RecordTarget::Leg(leg) | RecordTarget::Bridge { leg } => Some(leg),
        },
        MediaCommand::Bridge { a, .. } => Some(a),
        MediaCommand::Conference { action, .. } => match action {
            crate::media::ConferenceAction::Join { leg }
            | crate::media::ConferenceAction::Leave { leg }
            | crate::media::ConferenceAction::Mute { leg }
            | crate::media::ConferenceAction::Unmute { leg }
            | crate::media::ConferenceAction::Kick { leg } => Some(leg),
            crate::media::ConferenceAction::List => None,
        },
    }
}

#[cfg(test)]
mod tests;
