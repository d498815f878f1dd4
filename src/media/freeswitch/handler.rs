//! [`FreeswitchHandler`]: the [`MediaHandler`] for FreeSWITCH. One background task owns the
//! inbound ESL connection: it connects, authenticates, subscribes (`event json …`), resyncs
//! (`show channels as json`, then `uuid_getvar <uuid> switchboard_contact_id` per channel;
//! re-adopts legs that carry a contact, reports the rest), reports [`MediaEvent::HandlerUp`],
//! then feeds events through the sans-IO [`FsState`] into the controller's bounded channel
//! (backpressure: it waits, never drops). When the connection ends it reports
//! [`MediaEvent::HandlerDown`], backs off with jitter (a wrong password too: never a tight
//! loop) and starts over. Commands are planned by the same state (a std mutex, never held
//! across an await) and sent as `api`/`bgapi` on the current connection, each within its
//! deadline.
//!
//! With [`FreeswitchConfig::outbound_listen`] it also runs the [`OutboundServer`] the dialplan's
//! `socket` application connects to; each call becomes a new leg.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::media::asterisk::{Backoff, BackoffPolicy};
use crate::media::{
    CONTACT_VARIABLE, CommandOutcome, EventSender, HandlerEvent, HandlerId, HandlerKind,
    HandlerLoad, LegId, LegSnapshot, MediaCommand, MediaError, MediaEvent, MediaFuture,
    MediaHandler,
};

use super::client::{ClientConfig, ClientError, EslClient, EventStream, Lag};
use super::codec::{EventFormat, Limits};
use super::mapping::{
    ChannelRow, FsState, PlanKind, ReplyFailure, SUBSCRIBED_EVENTS, check_reply, parse_channels,
    parse_conference_list, parse_contact, parse_leg,
};
use super::outbound::{OutboundCall, OutboundConfig, OutboundError, OutboundServer};

/// How to reach one FreeSWITCH and what it may carry.
#[derive(Debug, Clone)]
pub struct FreeswitchConfig {
    /// `host:port` of the event socket (event_socket.conf.xml `listen-ip:listen-port`).
    pub address: String,
    /// The event socket password.
    pub password: String,
    /// Legs this FreeSWITCH is configured to carry (for the handler pool).
    pub capacity: u32,
    /// Its weight in the handler pool.
    pub weight: u32,
    /// Events read but not yet handed on before the reader waits (backpressure).
    pub events_queue: usize,
    /// Deadline of each api reply (and of a bgapi's acceptance).
    pub api_timeout: Duration,
    /// Deadline of the TCP connect and auth.
    pub connect_timeout: Duration,
    /// How long an originate's BACKGROUND_JOB result may take after the ring timeout.
    pub originate_grace: Duration,
    /// Reconnect backoff (exponential, with jitter).
    pub backoff: BackoffPolicy,
    /// Where to listen for the dialplan's `socket` application, if at all (`127.0.0.1:8084`).
    pub outbound_listen: Option<String>,
    /// Frame size limits.
    pub limits: Limits,
}

impl FreeswitchConfig {
    /// A configuration with the usual defaults (5 s deadlines, capacity 500, no outbound).
    pub fn new(address: &str, password: &str) -> Self {
        FreeswitchConfig {
            address: address.to_owned(),
            password: password.to_owned(),
            capacity: 500,
            weight: 1,
            events_queue: crate::media::EVENT_QUEUE,
            api_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            originate_grace: Duration::from_secs(30),
            backoff: BackoffPolicy::default(),
            outbound_listen: None,
            limits: Limits::default(),
        }
    }

    fn client(&self) -> ClientConfig {
        ClientConfig {
            address: self.address.clone(),
            password: self.password.clone(),
            connect_timeout: self.connect_timeout,
            api_timeout: self.api_timeout,
            format: EventFormat::Json,
            events: SUBSCRIBED_EVENTS.iter().map(|s| (*s).to_owned()).collect(),
            events_queue: self.events_queue,
            limits: self.limits,
        }
    }
}

/// The handler could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The outbound server could not listen.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

struct Shared {
    id: HandlerId,
    client: Mutex<Option<EslClient>>,
    state: Mutex<FsState>,
    connected: AtomicBool,
    capacity: u32,
    api_timeout: Duration,
    originate_grace: Duration,
    events: EventSender,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FsState> {
        // Plain data: a panic elsewhere must not take the handler down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn client(&self) -> Option<EslClient> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_client(&self, client: Option<EslClient>) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
    }

    /// Emits without waiting, from a command's future or a side task: the controller may be
    /// the one awaiting, so waiting for room could deadlock ([`EventSender`] keeps the order).
    fn emit_nowait(&self, events: Vec<MediaEvent>) {
        self.events.emit_nowait(events);
    }

    async fn emit(&self, events: Vec<MediaEvent>) -> bool {
        self.events.emit(events).await
    }
}

/// Owns the background tasks; stopping is explicit ([`FreeswitchHandler::shutdown`]) and
/// dropping the handler aborts them.
struct TaskGuard {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// The FreeSWITCH media handler.
pub struct FreeswitchHandler {
    shared: Arc<Shared>,
    guard: TaskGuard,
    outbound: Option<SocketAddr>,
    weight: u32,
}

impl std::fmt::Debug for FreeswitchHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreeswitchHandler")
            .field("id", &self.shared.id)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl FreeswitchHandler {
    /// Starts the handler: its connection task connects, resyncs and reports
    /// [`MediaEvent::HandlerUp`] on `events`; until then commands fail with `NotConnected`.
    /// Must be called inside a tokio runtime.
    pub fn start(
        id: HandlerId,
        config: FreeswitchConfig,
        events: mpsc::Sender<HandlerEvent>,
    ) -> Result<Self, HandlerError> {
        let shared = Arc::new(Shared {
            id,
            client: Mutex::new(None),
            state: Mutex::new(FsState::new()),
            connected: AtomicBool::new(false),
            capacity: config.capacity,
            api_timeout: config.api_timeout,
            originate_grace: config.originate_grace,
            events: EventSender::new(id, events),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut outbound = None;
        if let Some(listen) = &config.outbound_listen {
            let server = OutboundServer::bind(listen, OutboundConfig::default())?;
            outbound = Some(server.local_addr());
            let (calls_tx, calls_rx) = mpsc::channel(256);
            tasks.push(tokio::spawn(server.run(calls_tx, stopped.clone())));
            tasks.push(tokio::spawn(adopt_outbound(shared.clone(), calls_rx)));
        }
        let weight = config.weight;
        tasks.push(tokio::spawn(run_connection(
            shared.clone(),
            config,
            stopped,
        )));
        Ok(FreeswitchHandler {
            shared,
            guard: TaskGuard { stop, tasks },
            outbound,
            weight,
        })
    }

    /// Stops the background tasks and waits for them to end.
    pub async fn shutdown(mut self) {
        let _ = self.guard.stop.send(true);
        for task in self.guard.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Whether the connection is up and resynced.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// The current ESL client, for api commands the [`MediaCommand`]s do not cover.
    pub fn client(&self) -> Option<EslClient> {
        self.shared.client()
    }

    /// How far event handling is behind the socket (a metric; zero when disconnected).
    pub fn lag(&self) -> Lag {
        self.shared.client().map(|c| c.lag()).unwrap_or_default()
    }

    /// The outbound server's address, when one runs.
    pub fn outbound_addr(&self) -> Option<SocketAddr> {
        self.outbound
    }

    /// Its weight in the handler pool.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    async fn run_plan(&self, command: MediaCommand) -> Result<CommandOutcome, MediaError> {
        let shared = &self.shared;
        let handler = shared.id;
        let client = match shared.client() {
            Some(c) if shared.connected.load(Ordering::Acquire) => c,
            _ => return Err(MediaError::NotConnected { handler }),
        };
        let plan = shared
            .state()
            .plan(&command)
            .map_err(|e| MediaError::Refused {
                handler,
                command: command_name(&command).into(),
                reply: e.to_string(),
            })?;
        let mut listing = None;
        for call in &plan.calls {
            if call.background {
                let PlanKind::Originate(leg) = &plan.kind else {
                    continue;
                };
                let job = match client.bgapi(&call.command).await {
                    Ok(job) => job,
                    Err(e) => {
                        shared
                            .state()
                            .on_originate_failed(leg, "NORMAL_TEMPORARY_FAILURE");
                        return Err(media_error(handler, e));
                    }
                };
                // The result comes when the far end answers or fails: watch it on the side.
                let ring = match &command {
                    MediaCommand::Originate(r) => r.timeout,
                    _ => Duration::ZERO,
                };
                let wait = ring + shared.originate_grace;
                let side = shared.clone();
                let leg = leg.clone();
                tokio::spawn(async move {
                    let events = match job.result(wait).await {
                        Ok(text) => side.state().on_originate_result(&leg, &text),
                        Err(ClientError::Timeout { .. }) => {
                            tracing::warn!(leg = %leg, "originate result did not come");
                            Vec::new()
                        }
                        // Disconnected: the resync after the reconnect settles the leg.
                        Err(_) => Vec::new(),
                    };
                    side.emit_nowait(events);
                });
                continue;
            }
            let body = client
                .api(&call.command)
                .await
                .map_err(|e| media_error(handler, e))?;
            if let Err(failure) = check_reply(call, &body) {
                return Err(match failure {
                    ReplyFailure::NoSuchChannel(_) => MediaError::NoSuchLeg {
                        handler,
                        leg: call
                            .command
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or_default()
                            .to_owned(),
                    },
                    ReplyFailure::Refused(reply) => MediaError::Refused {
                        handler,
                        command: call.command.clone(),
                        reply,
                    },
                });
            }
            listing = Some(body);
        }
        Ok(match plan.kind {
            PlanKind::Plain => CommandOutcome::Done,
            PlanKind::Originate(leg) => CommandOutcome::Originated { leg },
            PlanKind::ListConference(_) => CommandOutcome::Members(
                listing
                    .map(|b| parse_conference_list(&b))
                    .unwrap_or_default(),
            ),
        })
    }
}

fn command_name(command: &MediaCommand) -> &'static str {
    match command {
        MediaCommand::Originate(_) => "originate",
        MediaCommand::Answer { .. } => "uuid_answer",
        MediaCommand::Hangup { .. } => "uuid_kill",
        MediaCommand::Park { .. } => "uuid_park",
        MediaCommand::Play { .. } => "uuid_broadcast",
        MediaCommand::StopPlayback { .. } => "uuid_break",
        MediaCommand::StartRecording { .. } | MediaCommand::StopRecording { .. } => "uuid_record",
        MediaCommand::Bridge { .. } => "uuid_bridge",
        MediaCommand::Unbridge { .. } => "uuid_park",
        MediaCommand::Conference { .. } => "conference",
        MediaCommand::Transfer { .. } => "uuid_transfer",
        MediaCommand::SendDtmf { .. } => "uuid_send_dtmf",
        MediaCommand::SetVariable { .. } => "uuid_setvar",
    }
}

/// A client failure as the controller sees it.
fn media_error(handler: HandlerId, e: ClientError) -> MediaError {
    match e {
        ClientError::Timeout { command, after_ms } => MediaError::Timeout {
            handler,
            command,
            timeout_ms: after_ms,
        },
        ClientError::Disconnected { command } => MediaError::Disconnected { handler, command },
        ClientError::Refused { command, reply } => MediaError::Refused {
            handler,
            command,
            reply: format!("-ERR {reply}"),
        },
        other => MediaError::Refused {
            handler,
            command: "esl".into(),
            reply: other.to_string(),
        },
    }
}

impl MediaHandler for FreeswitchHandler {
    fn id(&self) -> HandlerId {
        self.shared.id
    }

    fn kind(&self) -> HandlerKind {
        HandlerKind::FreeSwitch
    }

    fn execute(&self, command: MediaCommand) -> MediaFuture<'_, CommandOutcome> {
        Box::pin(self.run_plan(command))
    }

    fn legs(&self) -> MediaFuture<'_, Vec<LegSnapshot>> {
        Box::pin(async move {
            let shared = &self.shared;
            let Some(client) = shared.client() else {
                return Err(MediaError::NotConnected { handler: shared.id });
            };
            let rows = list_channels(&client)
                .await
                .map_err(|e| media_error(shared.id, e))?;
            let mut probe = shared.state().clone();
            probe.resync(&rows);
            Ok(probe.snapshot())
        })
    }

    fn load(&self) -> HandlerLoad {
        HandlerLoad {
            active_legs: self.shared.state().leg_count().min(u32::MAX as usize) as u32,
            capacity: self.shared.capacity,
            healthy: self.shared.connected.load(Ordering::Acquire),
        }
    }
}

/// Lists channels with the contact each carries (`uuid_getvar <uuid> switchboard_contact_id`,
/// `_undef_` when untagged) and, for tagged ones, the leg each is bridged to (`bridge_uuid`).
async fn list_channels(client: &EslClient) -> Result<Vec<ChannelRow>, ClientError> {
    let body = client.api("show channels as json").await?;
    let mut rows = parse_channels(&body).map_err(|e| ClientError::Unexpected {
        address: client.address().to_owned(),
        got: e.to_string(),
        during: "resync",
    })?;
    for row in &mut rows {
        let contact = client
            .api(&format!("uuid_getvar {} {CONTACT_VARIABLE}", row.leg))
            .await?;
        row.contact = parse_contact(&contact);
        if row.contact.is_some() {
            let bridged = client
                .api(&format!("uuid_getvar {} bridge_uuid", row.leg))
                .await?;
            row.bridged_to = parse_leg(&bridged);
        }
    }
    Ok(rows)
}

/// Calls from the outbound server become legs (unless the inbound connection reported them).
async fn adopt_outbound(shared: Arc<Shared>, mut calls: mpsc::Receiver<OutboundCall>) {
    while let Some(call) = calls.recv().await {
        let events = shared.state().on_outbound_call(&call.channel);
        if !shared.emit(events).await {
            return;
        }
    }
}

/// Why a session ended.
enum Ended {
    Stopped,
    ControllerGone,
    Lost(String),
}

async fn run_connection(
    shared: Arc<Shared>,
    config: FreeswitchConfig,
    mut stop: watch::Receiver<bool>,
) {
    let client_config = config.client();
    let mut backoff = Backoff::new(config.backoff);
    let mut was_up = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let attempt = tokio::select! {
            r = EslClient::connect(&client_config) => r,
            _ = stop.changed() => return,
        };
        let ended = match attempt {
            Ok((client, events)) => {
                session(
                    &shared,
                    client,
                    events,
                    &mut stop,
                    &mut was_up,
                    &mut backoff,
                )
                .await
            }
            Err(e) => {
                if matches!(
                    e,
                    ClientError::AuthFailed { .. } | ClientError::Rejected { .. }
                ) {
                    tracing::error!(handler = %shared.id, error = %e, "FreeSWITCH refused Switchboard");
                } else {
                    tracing::warn!(handler = %shared.id, error = %e, "FreeSWITCH event socket");
                }
                Ended::Lost(e.to_string())
            }
        };
        shared.connected.store(false, Ordering::Release);
        shared.set_client(None);
        match ended {
            Ended::Stopped | Ended::ControllerGone => return,
            Ended::Lost(reason) => {
                if was_up {
                    was_up = false;
                    if !shared.emit(vec![MediaEvent::HandlerDown { reason }]).await {
                        return;
                    }
                }
            }
        }
        let delay = backoff.next_delay(rand::random::<f64>());
        tracing::info!(
            handler = %shared.id,
            delay_ms = delay.as_millis() as u64,
            attempt = backoff.attempts(),
            "reconnecting to FreeSWITCH"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn session(
    shared: &Arc<Shared>,
    client: EslClient,
    mut events: EventStream,
    stop: &mut watch::Receiver<bool>,
    was_up: &mut bool,
    backoff: &mut Backoff,
) -> Ended {
    // Subscribed first, listed second: nothing that happens while we list is missed (events
    // queue meanwhile, up to the queue's bound).
    let listing = tokio::select! {
        r = list_channels(&client) => r,
        _ = stop.changed() => return Ended::Stopped,
    };
    let rows = match listing {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(handler = %shared.id, error = %e, "FreeSWITCH resync failed");
            return Ended::Lost(format!("resync failed: {e}"));
        }
    };
    let (mut out, untagged) = shared.state().resync(&rows);
    if !untagged.is_empty() {
        // Channels Switchboard did not create or adopt: counted for load, left alone.
        let shown: Vec<&str> = untagged.iter().take(20).map(LegId::as_str).collect();
        tracing::warn!(
            handler = %shared.id,
            count = untagged.len(),
            legs = ?shown,
            "FreeSWITCH channels without {CONTACT_VARIABLE}"
        );
    }
    out.push(MediaEvent::HandlerUp);
    shared.set_client(Some(client.clone()));
    shared.connected.store(true, Ordering::Release);
    *was_up = true;
    // Only a session that got this far counts as working: a server that accepts and then
    // fails keeps backing off.
    backoff.reset();
    tracing::info!(
        handler = %shared.id,
        legs = shared.state().leg_count(),
        "FreeSWITCH connected and resynced"
    );
    if !shared.emit(out).await {
        return Ended::ControllerGone;
    }
    loop {
        let next = tokio::select! {
            e = events.recv() => e,
            _ = stop.changed() => {
                let _ = tokio::time::timeout(shared.api_timeout, client.exit()).await;
                return Ended::Stopped;
            }
        };
        let event = match next {
            Ok(e) => e,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let out = shared.state().on_event(&event);
        if !out.is_empty() && !shared.emit(out).await {
            return Ended::ControllerGone;
        }
    }
}
