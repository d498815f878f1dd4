//! The controller: one task owns the live state (the durable router) and is fed by a bounded
//! channel of commands; it also wakes itself for the router's deadlines. Web handlers and
//! adapters hold a [`Controller`] handle and never touch the state directly; they read the
//! catalog's names from a snapshot the task publishes ([`Controller::catalog`]).

pub mod admin;
pub mod calls;
pub mod clients;
pub mod contact_records;
mod durable_router;
pub mod record_writer;
pub mod telephony;

pub use admin::{
    AdminChange, AdminError, AdminOutcome, CatalogView, Definitions, Directory, QueueDefinition,
};
pub use durable_router::{AFFINITY_MEMORY, DurableError, DurableRouter, Rebuilt, Refusal};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::agents::AgentState;
use crate::model::{AgentId, ContactId, MediaType, Priority, Timestamp};
use crate::routing::{ContactSetup, Output};
use crate::store::AgentStateChange;
use record_writer::RecordWriter;

/// Commands queued before senders wait (backpressure, not unbounded memory).
pub const COMMAND_QUEUE: usize = 1024;

/// The controller task has stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the controller has stopped")]
pub struct Stopped;

/// What a command answers: the router's outputs, or why the command failed.
pub type Reply<T> = Result<T, CommandError>;

/// A command the controller refused or could not carry out.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Something named does not exist (contact, agent, queue).
    #[error("{0}")]
    NotFound(String),
    /// The input is invalid (unknown queue in a new contact, bad criterion…).
    #[error("{0}")]
    Invalid(String),
    /// The contact or agent is in a state that does not allow this (not offered, connected…).
    #[error("{0}")]
    Conflict(String),
    /// The store failed: nothing was lost, but the result is not reported yet.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The controller is gone.
    #[error("the controller has stopped")]
    Stopped,
}

impl From<AdminError> for CommandError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid { .. } => CommandError::Invalid(error.to_string()),
            AdminError::NotFound(message) => CommandError::NotFound(message),
            AdminError::Conflict(message) => CommandError::Conflict(message),
            AdminError::Store(e) => CommandError::Store(e.to_string()),
            AdminError::Router(e) => e.into(),
        }
    }
}

impl From<DurableError> for CommandError {
    fn from(error: DurableError) -> Self {
        match error {
            DurableError::Store(e) => CommandError::Store(e.to_string()),
            DurableError::Refused {
                refusal: Refusal::NotFound,
                message,
            }
            | DurableError::UnknownAgent(message) => CommandError::NotFound(message),
            DurableError::Refused {
                refusal: Refusal::Conflict,
                message,
            } => CommandError::Conflict(message),
            other => CommandError::Invalid(other.to_string()),
        }
    }
}

/// Per-queue figures published for readers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueView {
    /// Queue name.
    pub name: String,
    /// Tenant name.
    pub tenant: String,
    /// Strategy name.
    pub strategy: String,
    /// Contacts waiting, per media type (media types with none are left out).
    pub waiting: std::collections::BTreeMap<String, usize>,
    /// Expected wait of a new voice contact, in seconds (`None`: no agent could serve it).
    pub expected_wait_s: Option<f64>,
}

/// A command for the controller task.
enum Command {
    Arrive(
        ContactSetup,
        oneshot::Sender<Reply<(ContactId, Vec<Output>)>>,
    ),
    Contact(
        ContactId,
        ContactAction,
        oneshot::Sender<Reply<Vec<Output>>>,
    ),
    Agent(String, AgentAction, oneshot::Sender<Reply<Vec<Output>>>),
    Explain(ContactId, oneshot::Sender<Reply<String>>),
    Queues(oneshot::Sender<Vec<QueueView>>),
    Agents(oneshot::Sender<Vec<AgentView>>),
    ContactInfo(ContactId, oneshot::Sender<Option<ContactView>>),
    Contacts(String, usize, oneshot::Sender<Vec<ContactView>>),
    Hangup(ContactId, String, oneshot::Sender<Reply<HangupOutcome>>),
    Admin(Box<AdminChange>, oneshot::Sender<Reply<AdminOutcome>>),
    Definitions(String, oneshot::Sender<Definitions>),
    Clients(oneshot::Sender<Vec<clients::ClientView>>),
}

/// What an agent's hang-up did.
#[derive(Debug, Clone, PartialEq)]
pub enum HangupOutcome {
    /// The caller's leg is being hung up on the switch; the call ends (and its record is
    /// written) when the switch reports it gone.
    OnTheSwitch,
    /// The contact has no call (chat, email, or no calls side): it was completed, with these
    /// outputs of the router.
    Completed(Vec<Output>),
}

/// An agent as the controller sees it now, for supervisors' listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentView {
    /// The agent's name.
    pub name: String,
    /// The agent's tenant.
    pub tenant: Option<String>,
    /// Its state code (`available`, `break`…); `None` with the calls side for an agent without
    /// a phone line.
    pub state: Option<&'static str>,
    /// When the agent entered that state, in microseconds since the epoch.
    pub since_us: Option<i64>,
    /// Why, for a break or a logout.
    pub reason: Option<String>,
}

/// A live contact as the router holds it, for tenant checks and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContactView {
    /// The contact's id.
    pub id: u64,
    /// The tenant owning its queue.
    pub tenant: String,
    /// Its current queue.
    pub queue: String,
    /// Its media type code.
    pub media: &'static str,
    /// The router's phase name (waiting, offered, connected…).
    pub phase: &'static str,
    /// Agents it is offered to, or the agent it is connected to.
    pub agents: Vec<String>,
    /// Its attributes, as last stored (what its flow's menus set, for a call).
    pub attributes: BTreeMap<String, String>,
}

/// What can be done to a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactAction {
    /// The named agent accepts the offer.
    Accept(String),
    /// The named agent declines the offer.
    Reject(String),
    /// The customer left.
    Abandon,
    /// The agent finished.
    Complete,
    /// New priority.
    Priority(Priority),
    /// Become a callback, keeping the place.
    Callback,
}

/// The reason of a break asked for without one.
pub const DEFAULT_BREAK_REASON: &str = "break";

/// What can be done to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Log in (available for every media type with slots).
    LogIn,
    /// Log out.
    LogOut,
    /// Available for one media type or all.
    Ready(Option<MediaType>),
    /// Not available for one media type or all.
    NotReady(Option<MediaType>),
    /// A break, with its reason (stored with the state; default [`DEFAULT_BREAK_REASON`]);
    /// with calls, it starts after the current contact.
    Break(Option<String>),
    /// The agent's portal is alive.
    Heartbeat,
}

/// A cheap, cloneable handle to the controller task.
#[derive(Clone)]
pub struct Controller {
    commands: mpsc::Sender<Command>,
    outputs: watch::Receiver<u64>,
    catalog: watch::Receiver<Arc<CatalogView>>,
    notices: Option<tokio::sync::broadcast::Sender<telephony::AgentNotice>>,
}

/// The running task; dropping every [`Controller`] handle stops it.
pub struct ControllerTask {
    handle: JoinHandle<()>,
}

impl ControllerTask {
    /// Waits for the task to finish (after every handle was dropped).
    pub async fn join(self) {
        let _ = self.handle.await;
    }
}

impl Controller {
    /// Starts the task that owns `router`.
    pub fn spawn(router: DurableRouter) -> (Controller, ControllerTask) {
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        let (published, outputs) = watch::channel(0);
        let (names, catalog) = watch::channel(Arc::new(admin::view(&router)));
        let channels = Published { published, names };
        let records = RecordWriter::start(router.store().clone());
        let handle = tokio::spawn(run(router, None, inbox, channels, records));
        (
            Controller {
                commands,
                outputs,
                catalog,
                notices: None,
            },
            ControllerTask { handle },
        )
    }

    /// Starts the controller task with the calls side: handlers, flows, agents, admission.
    /// The calls side is brought in line with what administrators changed over the API first.
    pub fn spawn_with_calls(
        router: DurableRouter,
        mut setup: telephony::TelephonySetup,
    ) -> (Controller, ControllerTask) {
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        let (published, outputs) = watch::channel(0);
        let (names, catalog) = watch::channel(Arc::new(admin::view(&router)));
        let channels = Published { published, names };
        admin::prepare_calls(&router, &mut setup, Timestamp::now());
        let records = RecordWriter::start(router.store().clone());
        let side = telephony::Telephony::start(setup, records.clone());
        let notices = Some(side.0.notices());
        let handle = tokio::spawn(run(router, Some(side), inbox, channels, records));
        (
            Controller {
                commands,
                outputs,
                catalog,
                notices,
            },
            ControllerTask { handle },
        )
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// A new contact.
    pub async fn arrive(&self, setup: ContactSetup) -> Reply<(ContactId, Vec<Output>)> {
        self.ask(|reply| Command::Arrive(setup, reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Does something to a contact.
    pub async fn contact(&self, contact: ContactId, action: ContactAction) -> Reply<Vec<Output>> {
        self.ask(|reply| Command::Contact(contact, action, reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Does something to an agent.
    pub async fn agent(&self, agent: &str, action: AgentAction) -> Reply<Vec<Output>> {
        let agent = agent.to_owned();
        self.ask(|reply| Command::Agent(agent, action, reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// The router's explanation of a live contact, rendered with names.
    pub async fn explain(&self, contact: ContactId) -> Reply<String> {
        self.ask(|reply| Command::Explain(contact, reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Per-queue figures.
    pub async fn queues(&self) -> Result<Vec<QueueView>, Stopped> {
        self.ask(Command::Queues).await
    }

    /// Every configured agent with its live state (states need the calls side).
    pub async fn agents(&self) -> Result<Vec<AgentView>, Stopped> {
        self.ask(Command::Agents).await
    }

    /// A live contact's tenant, queue, phase and agents; `None` if the router does not hold it.
    pub async fn contact_info(&self, contact: ContactId) -> Result<Option<ContactView>, Stopped> {
        self.ask(|reply| Command::ContactInfo(contact, reply)).await
    }

    /// `tenant`'s live contacts, oldest id first, at most `limit`.
    pub async fn contacts(&self, tenant: &str, limit: usize) -> Result<Vec<ContactView>, Stopped> {
        let tenant = tenant.to_owned();
        self.ask(|reply| Command::Contacts(tenant, limit, reply))
            .await
    }

    /// Agent `agent` hangs up its contact: with the calls side, the caller's leg is hung up on
    /// the switch (and the call ends when the switch reports it gone); a contact without a call
    /// is completed.
    pub async fn hang_up(&self, contact: ContactId, agent: &str) -> Reply<HangupOutcome> {
        let agent = agent.to_owned();
        self.ask(|reply| Command::Hangup(contact, agent, reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// An administrator's change of the catalog: checked, stored, applied live.
    pub async fn admin(&self, change: AdminChange) -> Reply<AdminOutcome> {
        self.ask(|reply| Command::Admin(Box::new(change), reply))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Every definition (queues, agents, flows) of `tenant`.
    pub async fn definitions(&self, tenant: &str) -> Result<Definitions, Stopped> {
        let tenant = tenant.to_owned();
        self.ask(|reply| Command::Definitions(tenant, reply)).await
    }

    /// Every client with its trunk rules and, with a calls side, its admission figures now.
    pub async fn clients(&self) -> Result<Vec<clients::ClientView>, Stopped> {
        self.ask(Command::Clients).await
    }

    /// The catalog's names and owners as of the last change.
    pub fn catalog(&self) -> Arc<CatalogView> {
        self.catalog.borrow().clone()
    }

    /// Agents' portal notices (screen pops) from now on; `None` without the calls side.
    pub fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<telephony::AgentNotice>> {
        self.notices.as_ref().map(|n| n.subscribe())
    }

    /// A receiver that changes whenever the controller produced outputs (for live views).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.outputs.clone()
    }
}

/// Longest sleep between deadline checks (wall clocks can jump).
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What the task publishes for readers.
struct Published {
    /// Counts the router's outputs (live views wake on it).
    published: watch::Sender<u64>,
    /// The catalog's names and owners.
    names: watch::Sender<Arc<CatalogView>>,
}

async fn run(
    mut router: DurableRouter,
    mut side: Option<(
        telephony::Telephony,
        mpsc::Receiver<crate::media::HandlerEvent>,
        mpsc::Receiver<telephony::Feedback>,
    )>,
    mut inbox: mpsc::Receiver<Command>,
    channels: Published,
    mut records: RecordWriter,
) {
    let mut produced = 0u64;
    let mut presence = Presence::default();
    if let Some((t, _, _)) = side.as_mut() {
        t.hold_restored(&mut router).await;
    }
    loop {
        let deadline = match (
            router.next_deadline(),
            side.as_ref().and_then(|(t, _, _)| t.next_deadline()),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = match deadline {
            Some(deadline) => {
                let micros = deadline
                    .as_micros()
                    .saturating_sub(Timestamp::now().as_micros())
                    .max(0);
                Duration::from_micros(micros as u64).min(MAX_SLEEP)
            }
            None => MAX_SLEEP,
        };
        let input = match side.as_mut() {
            Some((_, events, feedback)) => tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => Input::Command(command),
                    None => break,
                },
                Some(event) = events.recv() => Input::Handler(event),
                Some(report) = feedback.recv() => Input::Feedback(report),
                _ = tokio::time::sleep(sleep) => Input::Tick,
            },
            None => tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => Input::Command(command),
                    None => break,
                },
                _ = tokio::time::sleep(sleep) => Input::Tick,
            },
        };
        let now = Timestamp::now();
        let telephony = side.as_mut().map(|(t, _, _)| t);
        let outputs = match (input, telephony) {
            (Input::Tick, telephony) => {
                let outputs = router.tick(now).await;
                if let (Ok(outputs), Some(t)) = (&outputs, telephony) {
                    log_outputs(&router, outputs);
                    t.router_outputs(&mut router, now, outputs).await;
                    t.tick(&mut router, now).await;
                }
                outputs.map(|o| o.len())
            }
            (Input::Command(command), telephony) => {
                let mut task = Task {
                    router: &mut router,
                    telephony,
                    presence: &mut presence,
                    names: &channels.names,
                    records: &mut records,
                    replies: Vec::new(),
                };
                let outputs = task.handle(now, command).await;
                task.written().await;
                for reply in task.replies {
                    reply();
                }
                Ok(outputs)
            }
            (Input::Handler(event), Some(t)) => {
                t.handler_event(&mut router, event).await;
                Ok(1)
            }
            (Input::Feedback(report), Some(t)) => {
                t.feedback(&mut router, report).await;
                Ok(1)
            }
            (Input::Handler(_) | Input::Feedback(_), None) => Ok(0),
        };
        for cdr in router.take_ended_records() {
            records.cdr(cdr).await;
        }
        match outputs {
            Ok(0) => {}
            Ok(count) => {
                produced += count as u64;
                channels.published.send_replace(produced);
            }
            Err(error) => {
                tracing::error!(%error, "the controller could not store the router's decisions; retrying")
            }
        }
    }
    // A clean stop loses no record: what was handed over is written before the task ends.
    if let Some((t, _, _)) = side.as_mut() {
        t.records_written().await;
    }
    records.written().await;
    tracing::info!("controller stopped");
}

/// What woke the controller.
enum Input {
    Command(Command),
    Handler(crate::media::HandlerEvent),
    Feedback(telephony::Feedback),
    Tick,
}

/// Agents' states where there is no calls side (its agent manager keeps them otherwise): what
/// the API's agent actions make of them, stamped and handed to the record writer.
#[derive(Default)]
struct Presence {
    states: BTreeMap<AgentId, (AgentState, Timestamp, Option<String>)>,
}

impl Presence {
    /// The state `action` leads to from `current`, with its reason; `None`: no change to record.
    fn next(current: AgentState, action: &AgentAction) -> Option<(AgentState, Option<String>)> {
        let logged_in = current != AgentState::LoggedOut;
        match action {
            // The router makes an agent available for every media type at login.
            AgentAction::LogIn if !logged_in => Some((
                AgentState::Available,
                Some(crate::agents::LOGGED_IN.to_owned()),
            )),
            AgentAction::LogOut if logged_in => Some((
                AgentState::LoggedOut,
                Some(crate::agents::LOGGED_OUT.to_owned()),
            )),
            AgentAction::Ready(media) if logged_in => Some((
                AgentState::Available,
                media.map(|m| format!("ready for {m}")),
            )),
            AgentAction::NotReady(None) if logged_in => {
                Some((AgentState::Break, Some("not ready".to_owned())))
            }
            AgentAction::Break(reason) if logged_in => Some((
                AgentState::Break,
                Some(
                    reason
                        .clone()
                        .unwrap_or_else(|| DEFAULT_BREAK_REASON.to_owned()),
                ),
            )),
            _ => None,
        }
    }

    /// Records `agent`'s move to `state` at `now`, if it is one.
    async fn enter(
        &mut self,
        router: &DurableRouter,
        records: &mut RecordWriter,
        now: Timestamp,
        agent: AgentId,
        state: AgentState,
        reason: Option<String>,
    ) {
        let Some(tenant) = router.directory().agent(agent).map(|a| a.tenant.clone()) else {
            return;
        };
        self.record(router, records, now, (agent, tenant), state, reason)
            .await;
    }

    /// Records `agent` (of client `tenant`) leaving because it was deleted, if it was in.
    async fn deleted(
        &mut self,
        router: &DurableRouter,
        records: &mut RecordWriter,
        now: Timestamp,
        agent: AgentId,
        tenant: String,
    ) {
        let reason = Some(admin::DELETED_REASON.to_owned());
        self.record(
            router,
            records,
            now,
            (agent, tenant),
            AgentState::LoggedOut,
            reason,
        )
        .await;
        self.states.remove(&agent);
    }

    async fn record(
        &mut self,
        router: &DurableRouter,
        records: &mut RecordWriter,
        now: Timestamp,
        (agent, tenant): (AgentId, String),
        state: AgentState,
        reason: Option<String>,
    ) {
        let current = self.states.get(&agent);
        let same = current.map_or(state == AgentState::LoggedOut, |(s, _, r)| {
            *s == state && (*r == reason || state == AgentState::LoggedOut)
        });
        if same {
            return;
        }
        let change = AgentStateChange {
            tenant,
            agent: router.catalog().agent_name(agent).to_owned(),
            state,
            reason: reason.clone(),
            at: now,
        };
        self.states.insert(agent, (state, now, reason));
        records.agent_states(vec![change]).await;
    }
}

/// One command's view of the task's state.
struct Task<'a> {
    router: &'a mut DurableRouter,
    telephony: Option<&'a mut telephony::Telephony>,
    presence: &'a mut Presence,
    names: &'a watch::Sender<Arc<CatalogView>>,
    records: &'a mut RecordWriter,
    /// Replies held until what the command caused is written.
    replies: Vec<Answer>,
}

impl Task<'_> {
    /// Waits until what the command caused is in the store (records, agent states), so that
    /// its caller, answered after this, can read it back.
    async fn written(&mut self) {
        for cdr in self.router.take_ended_records() {
            self.records.cdr(cdr).await;
        }
        if let Some(t) = self.telephony.as_deref_mut() {
            t.records_written().await;
        }
        self.records.written().await;
    }

    async fn handle(&mut self, now: Timestamp, command: Command) -> usize {
        let router = &mut *self.router;
        let outputs = match command {
            Command::Arrive(setup, reply) => {
                let result = router.arrive(now, &setup).await.map_err(CommandError::from);
                let outputs = result
                    .as_ref()
                    .map(|(_, outputs)| outputs.clone())
                    .unwrap_or_default();
                log_outputs(router, &outputs);
                self.replies.push(answer(reply, result));
                outputs
            }
            Command::Contact(contact, action, reply) => {
                let result = match action {
                    ContactAction::Accept(agent) => router.accept(now, contact, &agent).await,
                    ContactAction::Reject(agent) => router.reject(now, contact, &agent).await,
                    ContactAction::Abandon => router.abandon(now, contact).await,
                    ContactAction::Complete => router.complete(now, contact).await,
                    ContactAction::Priority(priority) => {
                        router.set_priority(now, contact, priority).await
                    }
                    ContactAction::Callback => router.request_callback(now, contact).await,
                }
                .map_err(CommandError::from);
                finish(router, result, reply, &mut self.replies)
            }
            Command::Agent(agent, action, reply) => {
                if let Some(t) = self.telephony.as_deref_mut() {
                    // With calls, the agent manager decides; the router follows its changes.
                    let result = match router.catalog().agent_id(&agent) {
                        Some(id) => t.agent(router, id, action).await.map(|()| Vec::new()),
                        None => Err(CommandError::NotFound(format!("no agent named {agent:?}"))),
                    };
                    self.replies.push(answer(reply, result));
                    return 1;
                }
                let result = match &action {
                    AgentAction::LogIn => router.log_in(now, &agent).await,
                    AgentAction::LogOut => router.log_out(now, &agent).await,
                    AgentAction::Ready(media) => {
                        router.set_available(now, &agent, *media, true).await
                    }
                    AgentAction::NotReady(media) => {
                        router.set_available(now, &agent, *media, false).await
                    }
                    AgentAction::Break(_) => router.set_available(now, &agent, None, false).await,
                    AgentAction::Heartbeat => Ok(Vec::new()),
                }
                .map_err(CommandError::from);
                if result.is_ok()
                    && let Some(id) = router.catalog().agent_id(&agent)
                {
                    let current = self
                        .presence
                        .states
                        .get(&id)
                        .map_or(AgentState::LoggedOut, |(s, _, _)| *s);
                    if let Some((state, reason)) = Presence::next(current, &action) {
                        self.presence
                            .enter(router, self.records, now, id, state, reason)
                            .await;
                    }
                }
                finish(router, result, reply, &mut self.replies)
            }
            Command::Hangup(contact, agent, reply) => {
                let on_switch = match (
                    self.telephony.as_deref_mut(),
                    router.catalog().agent_id(&agent),
                ) {
                    (Some(t), Some(id)) => t.hang_up(router, contact, id).await,
                    _ => Ok(false),
                };
                match on_switch {
                    Ok(true) => {
                        self.replies
                            .push(answer(reply, Ok(HangupOutcome::OnTheSwitch)));
                        return 1;
                    }
                    Ok(false) => {
                        // No call to hang up: ending the contact is the hang-up.
                        let result = router
                            .complete(now, contact)
                            .await
                            .map_err(CommandError::from);
                        let outputs = result.as_ref().cloned().unwrap_or_default();
                        log_outputs(router, &outputs);
                        self.replies
                            .push(answer(reply, result.map(HangupOutcome::Completed)));
                        outputs
                    }
                    Err(error) => {
                        self.replies.push(answer(reply, Err(error)));
                        return 0;
                    }
                }
            }
            Command::Admin(change, reply) => {
                let deleted = match &*change {
                    AdminChange::DeleteAgent { name, tenant } => {
                        router.catalog().agent_id(name).map(|a| (a, tenant.clone()))
                    }
                    _ => None,
                };
                let result =
                    admin::apply(router, self.telephony.as_deref_mut(), now, *change).await;
                match result {
                    Ok((outcome, outputs)) => {
                        self.names.send_replace(Arc::new(admin::view(router)));
                        if let (Some((agent, tenant)), None) = (deleted, self.telephony.as_deref())
                        {
                            // Without the calls side, the deleted agent's logout is stored here.
                            self.presence
                                .deleted(router, self.records, now, agent, tenant)
                                .await;
                        }
                        log_outputs(router, &outputs);
                        self.replies.push(answer(reply, Ok(outcome)));
                        outputs
                    }
                    Err(error) => {
                        tracing::warn!(%error, "administrator's change refused");
                        self.replies.push(answer(reply, Err(error.into())));
                        Vec::new()
                    }
                }
            }
            Command::Clients(reply) => {
                let views = clients::list(router, self.telephony.as_deref(), now);
                self.replies.push(answer(reply, views));
                return 0;
            }
            Command::Definitions(tenant, reply) => {
                self.replies
                    .push(answer(reply, admin::definitions(router, &tenant)));
                return 0;
            }
            Command::Explain(contact, reply) => {
                let result = router
                    .router()
                    .explain(now, contact)
                    .map(|e| e.render(router.catalog()))
                    .map_err(|e| CommandError::NotFound(e.render(router.catalog())));
                self.replies.push(answer(reply, result));
                Vec::new()
            }
            Command::Queues(reply) => {
                self.replies.push(answer(reply, queue_views(router, now)));
                Vec::new()
            }
            Command::Agents(reply) => {
                let views = agent_views(router, self.telephony.as_deref(), self.presence);
                self.replies.push(answer(reply, views));
                return 0;
            }
            Command::ContactInfo(contact, reply) => {
                self.replies
                    .push(answer(reply, contact_view(router, contact)));
                return 0;
            }
            Command::Contacts(tenant, limit, reply) => {
                let mut views: Vec<ContactView> = router
                    .router()
                    .live_contact_ids()
                    .filter_map(|c| contact_view(router, c))
                    .filter(|v| v.tenant == tenant)
                    .collect();
                views.sort_by_key(|v| v.id);
                views.truncate(limit);
                self.replies.push(answer(reply, views));
                return 0;
            }
        };
        if let Some(t) = self.telephony.as_deref_mut() {
            t.router_outputs(router, now, &outputs).await;
        }
        outputs.len()
    }
}

fn finish(
    router: &DurableRouter,
    result: Reply<Vec<Output>>,
    reply: oneshot::Sender<Reply<Vec<Output>>>,
    replies: &mut Vec<Answer>,
) -> Vec<Output> {
    let outputs = result.as_ref().cloned().unwrap_or_default();
    log_outputs(router, &outputs);
    replies.push(answer(reply, result));
    outputs
}

/// A reply to send once what its command caused is written.
type Answer = Box<dyn FnOnce() + Send>;

fn answer<T: Send + 'static>(reply: oneshot::Sender<T>, value: T) -> Answer {
    // A caller that stopped waiting is fine.
    Box::new(move || drop(reply.send(value)))
}

fn log_outputs(router: &DurableRouter, outputs: &[Output]) {
    for output in outputs {
        let view = OutputView::of(output, router.catalog());
        tracing::info!(event = view.event, contact = view.contact, agents = ?view.agents, detail = view.detail.as_deref().unwrap_or(""), "router");
        if let Output::Offered { contact, .. } = output
            && tracing::enabled!(tracing::Level::DEBUG)
            && let Ok(explanation) = router.router().explain(Timestamp::now(), *contact)
        {
            tracing::debug!(
                contact = contact.0,
                "why\n{}",
                explanation.render(router.catalog())
            );
        }
    }
}

/// An output with names instead of ids, for logs and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputView {
    /// What happened: queued, offered, offer-extended, offer-withdrawn, offer-missed, requeued,
    /// connected, overflowed, priority-changed, became-callback, ended.
    pub event: &'static str,
    /// The contact's id.
    pub contact: u64,
    /// Agents involved, by name.
    pub agents: Vec<String>,
    /// Reason, target, outcome or new priority, in words.
    pub detail: Option<String>,
    /// When, in microseconds since the epoch.
    pub at_us: i64,
}

impl OutputView {
    /// Describes `output` with the names in `catalog`.
    pub fn of(output: &Output, catalog: &crate::routing::Catalog) -> OutputView {
        let name = |a: &crate::model::AgentId| catalog.agent_name(*a).to_owned();
        let (event, agents, detail, at) = match output {
            Output::Queued { queue, at, .. } => (
                "queued",
                vec![],
                Some(catalog.queue_name(*queue).to_owned()),
                at,
            ),
            Output::Offered { agents, at, .. } => {
                ("offered", agents.iter().map(name).collect(), None, at)
            }
            Output::OfferExtended { agent, at, .. } => {
                ("offer-extended", vec![name(agent)], None, at)
            }
            Output::OfferWithdrawn {
                agent, reason, at, ..
            } => (
                "offer-withdrawn",
                vec![name(agent)],
                Some(format!("{reason:?}")),
                at,
            ),
            Output::OfferMissed {
                agent,
                reason,
                media,
                at,
                ..
            } => (
                "offer-missed",
                vec![name(agent)],
                Some(format!("{reason:?}; not ready for {media}")),
                at,
            ),
            Output::Requeued { at, .. } => ("requeued", vec![], None, at),
            Output::Connected { agent, at, .. } => ("connected", vec![name(agent)], None, at),
            Output::Overflowed {
                from, target, at, ..
            } => {
                let target = match target {
                    crate::routing::OverflowTarget::Queue(q) => {
                        format!("queue {}", catalog.queue_name(*q))
                    }
                    other => format!("{other:?}").to_lowercase(),
                };
                (
                    "overflowed",
                    vec![],
                    Some(format!("from {} to {target}", catalog.queue_name(*from))),
                    at,
                )
            }
            Output::PriorityChanged { priority, at, .. } => {
                ("priority-changed", vec![], Some(priority.0.to_string()), at)
            }
            Output::BecameCallback { at, .. } => ("became-callback", vec![], None, at),
            Output::Ended {
                outcome, agent, at, ..
            } => (
                "ended",
                agent.iter().map(name).collect(),
                Some(format!("{outcome:?}").to_lowercase()),
                at,
            ),
        };
        OutputView {
            event,
            contact: output.contact().0,
            agents,
            detail,
            at_us: at.as_micros(),
        }
    }
}

fn queue_views(router: &DurableRouter, now: Timestamp) -> Vec<QueueView> {
    let r = router.router();
    let catalog = router.catalog();
    let mut views: Vec<QueueView> = r
        .queue_ids()
        .filter(|id| !router.directory().is_closed(*id))
        .filter_map(|id| {
            let spec = r.queue_spec(id).ok()?;
            let waiting = MediaType::ALL
                .into_iter()
                .map(|m| (m.code().to_owned(), r.lane_len(id, m)))
                .filter(|(_, n)| *n > 0)
                .collect();
            let expected = r
                .expected_wait_new(now, id, MediaType::Voice, Priority(0))
                .ok()
                .flatten();
            Some(QueueView {
                name: catalog.queue_name(id).to_owned(),
                tenant: catalog.tenant_name(spec.tenant).to_owned(),
                strategy: spec.strategy.name().to_owned(),
                waiting,
                expected_wait_s: expected.map(|d| d.as_secs_f64()),
            })
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

fn agent_views(
    router: &DurableRouter,
    telephony: Option<&telephony::Telephony>,
    presence: &Presence,
) -> Vec<AgentView> {
    let catalog = router.catalog();
    let mut views: Vec<AgentView> = router
        .router()
        .agent_ids()
        .map(|id| {
            let state = match telephony {
                Some(t) => t
                    .calls()
                    .agents()
                    .state(id)
                    .map(|(s, at, reason)| (s, Some(at), reason.map(str::to_owned))),
                // Without the calls side an agent the API never moved is logged out.
                None => Some(
                    presence
                        .states
                        .get(&id)
                        .map_or((AgentState::LoggedOut, None, None), |(s, at, reason)| {
                            (*s, Some(*at), reason.clone())
                        }),
                ),
            };
            AgentView {
                name: catalog.agent_name(id).to_owned(),
                tenant: router.directory().agent(id).map(|a| a.tenant.clone()),
                state: state.as_ref().map(|(s, _, _)| s.code()),
                since_us: state
                    .as_ref()
                    .and_then(|(_, at, _)| at.map(|t| t.as_micros())),
                reason: state.and_then(|(_, _, reason)| reason),
            }
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

fn contact_view(router: &DurableRouter, contact: ContactId) -> Option<ContactView> {
    let r = router.router();
    let catalog = router.catalog();
    let (queue, media, phase) = r.contact_status(contact)?;
    let tenant = r.queue_spec(queue).ok()?.tenant;
    Some(ContactView {
        id: contact.0,
        tenant: catalog.tenant_name(tenant).to_owned(),
        queue: catalog.queue_name(queue).to_owned(),
        media: media.code(),
        phase,
        agents: r
            .contact_agents(contact)
            .iter()
            .map(|a| catalog.agent_name(*a).to_owned())
            .collect(),
        attributes: router
            .contact_attributes(contact)
            .cloned()
            .unwrap_or_default(),
    })
}
