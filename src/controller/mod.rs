//! The controller: one task owns the live state (the durable router) and is fed by a bounded
//! channel of commands; it also wakes itself for the router's deadlines. Web handlers and
//! adapters hold a [`Controller`] handle and never touch the state directly.

pub mod calls;
mod durable_router;
pub mod telephony;

pub use durable_router::{AFFINITY_MEMORY, DurableError, DurableRouter, Rebuilt, Refusal};

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::model::{ContactId, MediaType, Priority, Timestamp};
use crate::routing::{ContactSetup, Output};

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
}

/// An agent as the controller sees it now, for supervisors' listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentView {
    /// The agent's name.
    pub name: String,
    /// The agent's tenant, where the controller knows it (with the calls side).
    pub tenant: Option<String>,
    /// The agent manager's state code (`available`, `break`…); `None` without the calls side.
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

/// What can be done to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    /// Log in (available for every media type with slots).
    LogIn,
    /// Log out.
    LogOut,
    /// Available for one media type or all.
    Ready(Option<MediaType>),
    /// Not available for one media type or all.
    NotReady(Option<MediaType>),
    /// A break (with calls: after the current contact).
    Break,
    /// The agent's portal is alive.
    Heartbeat,
}

/// A cheap, cloneable handle to the controller task.
#[derive(Clone)]
pub struct Controller {
    commands: mpsc::Sender<Command>,
    outputs: watch::Receiver<u64>,
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
        let handle = tokio::spawn(run(router, None, inbox, published));
        (
            Controller {
                commands,
                outputs,
                notices: None,
            },
            ControllerTask { handle },
        )
    }

    /// Starts the controller task with the calls side: handlers, flows, agents, admission.
    pub fn spawn_with_calls(
        router: DurableRouter,
        setup: telephony::TelephonySetup,
    ) -> (Controller, ControllerTask) {
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        let (published, outputs) = watch::channel(0);
        let side = telephony::Telephony::start(setup);
        let notices = Some(side.0.notices());
        let handle = tokio::spawn(run(router, Some(side), inbox, published));
        (
            Controller {
                commands,
                outputs,
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

async fn run(
    mut router: DurableRouter,
    mut side: Option<(
        telephony::Telephony,
        mpsc::Receiver<crate::media::HandlerEvent>,
        mpsc::Receiver<telephony::Feedback>,
    )>,
    mut inbox: mpsc::Receiver<Command>,
    published: watch::Sender<u64>,
) {
    let mut produced = 0u64;
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
                let outputs = handle(&mut router, telephony, now, command).await;
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
        match outputs {
            Ok(0) => {}
            Ok(count) => {
                produced += count as u64;
                published.send_replace(produced);
            }
            Err(error) => {
                tracing::error!(%error, "the controller could not store the router's decisions; retrying")
            }
        }
    }
    tracing::info!("controller stopped");
}

/// What woke the controller.
enum Input {
    Command(Command),
    Handler(crate::media::HandlerEvent),
    Feedback(telephony::Feedback),
    Tick,
}

async fn handle(
    router: &mut DurableRouter,
    telephony: Option<&mut telephony::Telephony>,
    now: Timestamp,
    command: Command,
) -> usize {
    let outputs = match command {
        Command::Arrive(setup, reply) => {
            let result = router.arrive(now, &setup).await.map_err(CommandError::from);
            let outputs = result
                .as_ref()
                .map(|(_, outputs)| outputs.clone())
                .unwrap_or_default();
            log_outputs(router, &outputs);
            let _ = reply.send(result);
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
            finish(router, result, reply)
        }
        Command::Agent(agent, action, reply) => {
            if let Some(t) = telephony {
                // With calls, the agent manager decides; the router follows its changes.
                let result = match router.catalog().agent_id(&agent) {
                    Some(id) => t.agent(router, id, action).await.map(|()| Vec::new()),
                    None => Err(CommandError::NotFound(format!("no agent named {agent:?}"))),
                };
                let _ = reply.send(result);
                return 1;
            }
            let result = match action {
                AgentAction::LogIn => router.log_in(now, &agent).await,
                AgentAction::LogOut => router.log_out(now, &agent).await,
                AgentAction::Ready(media) => router.set_available(now, &agent, media, true).await,
                AgentAction::NotReady(media) => {
                    router.set_available(now, &agent, media, false).await
                }
                AgentAction::Break => router.set_available(now, &agent, None, false).await,
                AgentAction::Heartbeat => Ok(Vec::new()),
            }
            .map_err(CommandError::from);
            finish(router, result, reply)
        }
        Command::Explain(contact, reply) => {
            let result = router
                .router()
                .explain(now, contact)
                .map(|e| e.render(router.catalog()))
                .map_err(|e| CommandError::NotFound(e.render(router.catalog())));
            let _ = reply.send(result);
            Vec::new()
        }
        Command::Queues(reply) => {
            let _ = reply.send(queue_views(router, now));
            Vec::new()
        }
        Command::Agents(reply) => {
            let _ = reply.send(agent_views(router, telephony.as_deref()));
            return 0;
        }
        Command::ContactInfo(contact, reply) => {
            let _ = reply.send(contact_view(router, contact));
            return 0;
        }
    };
    if let Some(t) = telephony {
        t.router_outputs(router, now, &outputs).await;
    }
    outputs.len()
}

fn finish(
    router: &DurableRouter,
    result: Reply<Vec<Output>>,
    reply: oneshot::Sender<Reply<Vec<Output>>>,
) -> Vec<Output> {
    let outputs = result.as_ref().cloned().unwrap_or_default();
    log_outputs(router, &outputs);
    let _ = reply.send(result);
    outputs
}

fn log_outputs(router: &DurableRouter, outputs: &[Output]) {
    for output in outputs {
        let view = OutputView::of(output, router.catalog());
        tracing::info!(event = view.event, contact = view.contact, agents = ?view.agents, detail = view.detail.as_deref().unwrap_or(""), "router");
        if let Output::Offered { contact, .. } = output {
            if tracing::enabled!(tracing::Level::DEBUG) {
                if let Ok(explanation) = router.router().explain(Timestamp::now(), *contact) {
                    tracing::debug!(
                        contact = contact.0,
                        "why\n{}",
                        explanation.render(router.catalog())
                    );
                }
            }
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

fn agent_views(router: &DurableRouter, telephony: Option<&telephony::Telephony>) -> Vec<AgentView> {
    let catalog = router.catalog();
    let mut views: Vec<AgentView> = router
        .router()
        .agent_ids()
        .map(|id| {
            let calls = telephony.map(telephony::Telephony::calls);
            let state = calls.and_then(|c| c.agents().state(id));
            AgentView {
                name: catalog.agent_name(id).to_owned(),
                tenant: calls
                    .and_then(|c| c.agent_tenant(id))
                    .map(|t| catalog.tenant_name(t).to_owned()),
                state: state.map(|(s, _, _)| s.code()),
                since_us: state.map(|(_, at, _)| at.as_micros()),
                reason: state.and_then(|(_, _, reason)| reason.map(str::to_owned)),
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
    })
}
