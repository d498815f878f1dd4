//! [`AsteriskHandler`]: the [`MediaHandler`] for Asterisk. One background task owns the events
//! WebSocket: it connects, resyncs (lists channels and bridges, re-adopts legs tagged with a
//! contact), reports [`MediaEvent::HandlerUp`], then feeds events through the sans-IO
//! [`AdapterState`] into the controller's bounded channel (backpressure: it waits, never drops).
//! When the socket drops it reports [`MediaEvent::HandlerDown`], backs off with jitter and starts
//! over. Commands are planned by the same state (a std mutex, never held across an await) and
//! carried out with the REST client, each within its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::media::{
    CONTACT_VARIABLE, CommandOutcome, ConferenceMember, EventSender, HandlerEvent, HandlerId,
    HandlerKind, HandlerLoad, LegId, LegSnapshot, MediaCommand, MediaError, MediaEvent,
    MediaFuture, MediaHandler,
};
use crate::model::ContactId;

use super::client::{AriClient, AriConfig, AriError, Credentials, ExternalMediaParams};
use super::event::{EventDecoder, EventKind};
use super::mapping::{AdapterState, AriCall, PlanError, PlanKind, parse_contact};
use super::model::{Bridge, Channel, ExternalMediaAddress};
use super::socket::{Backoff, BackoffPolicy, EventSocket, SocketError};

/// How to reach one Asterisk and what to call the Stasis application.
#[derive(Debug, Clone)]
pub struct AsteriskConfig {
    /// This handler's id in the pool.
    pub handler: HandlerId,
    /// ARI base URL, e.g. `http://127.0.0.1:8088/ari`.
    pub base_url: String,
    /// The Stasis application (the dialplan's `Stasis(…)` name).
    pub app: String,
    /// ari.conf user and password.
    pub credentials: Credentials,
    /// Deadline of each REST call and of the WebSocket handshake.
    pub request_timeout: Duration,
    /// Open the socket with `subscribeAll=true` (all channels' events) or `false` (the app's).
    pub subscribe_all: bool,
    /// Legs this Asterisk is configured to carry (for the handler pool).
    pub capacity: u32,
    /// Reconnect backoff.
    pub backoff: BackoffPolicy,
}

impl AsteriskConfig {
    /// A configuration with the usual defaults (5 s deadlines, `subscribeAll=false`).
    pub fn new(handler: HandlerId, base_url: &str, app: &str, credentials: Credentials) -> Self {
        AsteriskConfig {
            handler,
            base_url: base_url.to_owned(),
            app: app.to_owned(),
            credentials,
            request_timeout: Duration::from_secs(5),
            subscribe_all: false,
            capacity: 500,
            backoff: BackoffPolicy::default(),
        }
    }
}

/// The handler could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The ARI configuration is unusable.
    #[error(transparent)]
    Config(#[from] AriError),
}

struct Shared {
    id: HandlerId,
    app: String,
    client: AriClient,
    state: Mutex<AdapterState>,
    connected: AtomicBool,
    capacity: u32,
    events: EventSender,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, AdapterState> {
        // A panic elsewhere must not take the handler down with it: the state is plain data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Emits from a command's future without waiting: the controller may be the one awaiting
    /// the command, so waiting for room in its queue could deadlock ([`EventSender`] keeps the
    /// order).
    fn emit_from_command(&self, events: Vec<MediaEvent>) {
        self.events.emit_nowait(events);
    }

    async fn emit(&self, events: Vec<MediaEvent>) -> bool {
        self.events.emit(events).await
    }
}

/// Owns the connection task; stopping it is explicit ([`AsteriskHandler::shutdown`]) and
/// dropping it aborts the task.
struct TaskGuard {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The Asterisk media handler.
pub struct AsteriskHandler {
    shared: Arc<Shared>,
    guard: TaskGuard,
}

impl std::fmt::Debug for AsteriskHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsteriskHandler")
            .field("id", &self.shared.id)
            .field("app", &self.shared.app)
            .finish()
    }
}

impl AsteriskHandler {
    /// Starts the handler: its connection task connects, resyncs and reports
    /// [`MediaEvent::HandlerUp`] on `events`; until then commands fail with `NotConnected`.
    pub fn start(
        config: AsteriskConfig,
        events: mpsc::Sender<HandlerEvent>,
    ) -> Result<Self, HandlerError> {
        let client = AriClient::new(&AriConfig {
            base_url: config.base_url.clone(),
            credentials: config.credentials.clone(),
            request_timeout: config.request_timeout,
        })?;
        let shared = Arc::new(Shared {
            id: config.handler,
            app: config.app.clone(),
            client,
            state: Mutex::new(AdapterState::new(&config.app)),
            connected: AtomicBool::new(false),
            capacity: config.capacity,
            events: EventSender::new(config.handler, events),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_connection(shared.clone(), config, stopped));
        Ok(AsteriskHandler {
            shared,
            guard: TaskGuard {
                stop,
                task: Some(task),
            },
        })
    }

    /// Stops the connection task and waits for it to end.
    pub async fn shutdown(mut self) {
        let _ = self.guard.stop.send(true);
        if let Some(task) = self.guard.task.take() {
            let _ = task.await;
        }
    }

    /// The REST client, for calls the [`MediaCommand`]s do not cover.
    pub fn client(&self) -> &AriClient {
        &self.shared.client
    }

    /// Whether the events socket is up and resynced.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Creates an externalMedia channel for `contact` whose audio goes to `external_host`
    /// (Switchboard's RTP sequencer bridge) and returns it with the address Asterisk listens on
    /// for audio back. The channel enters the application, carries the contact, and can be
    /// bridged with [`MediaCommand::Bridge`] like any leg.
    pub async fn external_media(
        &self,
        leg: &LegId,
        contact: ContactId,
        external_host: &str,
        format: &str,
    ) -> Result<(Channel, ExternalMediaAddress), MediaError> {
        let mut params = ExternalMediaParams::rtp(&self.shared.app, external_host, format);
        params.channel_id = Some(leg.to_string());
        params
            .variables
            .insert(CONTACT_VARIABLE.to_owned(), contact.0.to_string());
        let channel = self
            .shared
            .client
            .external_media(&params)
            .await
            .map_err(|e| media_error(self.shared.id, e))?;
        let address = channel
            .external_media_address()
            .ok_or_else(|| MediaError::Refused {
                handler: self.shared.id,
                command: "POST /channels/externalMedia".into(),
                reply: "no UNICASTRTP_LOCAL_ADDRESS/PORT in channelvars".into(),
            })?;
        Ok((channel, address))
    }

    async fn run_plan(&self, command: MediaCommand) -> Result<CommandOutcome, MediaError> {
        let shared = &self.shared;
        if !shared.connected.load(Ordering::Acquire) {
            return Err(MediaError::NotConnected { handler: shared.id });
        }
        let plan = shared.state().plan(&command).map_err(|e| match e {
            PlanError::NoSuchLeg(leg) => MediaError::NoSuchLeg {
                handler: shared.id,
                leg,
            },
            other => MediaError::Refused {
                handler: shared.id,
                command: format!("{command:?}").chars().take(80).collect(),
                reply: other.to_string(),
            },
        })?;
        let mut members = None;
        for call in &plan.calls {
            match perform(&shared.client, call).await {
                Ok(Reply::Channel(channel)) => {
                    if let PlanKind::Originate(leg) = &plan.kind {
                        let events = shared.state().on_originated(leg, &channel);
                        shared.emit_from_command(events);
                    }
                }
                Ok(Reply::Bridge(bridge)) => members = Some(bridge),
                Ok(Reply::Done) => {}
                Err(e) => {
                    if let PlanKind::Originate(leg) = &plan.kind {
                        shared.state().on_originate_failed(leg);
                    }
                    return Err(media_error(shared.id, e));
                }
            }
            shared.state().on_call_done(call);
        }
        Ok(match plan.kind {
            PlanKind::Plain => CommandOutcome::Done,
            PlanKind::Originate(leg) => CommandOutcome::Originated { leg },
            PlanKind::ListConference(_) => CommandOutcome::Members(
                members
                    .map(|b| {
                        b.channels
                            .into_iter()
                            .map(|c| ConferenceMember {
                                member: c.clone(),
                                leg: LegId::new(c),
                                muted: false,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        })
    }
}

/// What an ARI call returned that the plan needs.
enum Reply {
    Done,
    Channel(Channel),
    Bridge(Bridge),
}

/// Performs one planned call. 404 on a stop or destroy, and 409 on creating a bridge that
/// exists, leave the switch as the plan wants it: they count as success.
async fn perform(client: &AriClient, call: &AriCall) -> Result<Reply, AriError> {
    let done = |r: Result<(), AriError>| r.map(|()| Reply::Done);
    let gone_is_fine = |r: Result<(), AriError>| match r {
        Err(e) if e.is_not_found() => Ok(Reply::Done),
        other => other.map(|()| Reply::Done),
    };
    match call {
        AriCall::Originate(p) => client.originate(p).await.map(Reply::Channel),
        AriCall::Answer { channel } => done(client.answer(channel).await),
        AriCall::Hangup {
            channel,
            reason_code,
        } => done(client.hangup(channel, *reason_code).await),
        AriCall::StartMoh { channel, class } => {
            done(client.start_moh(channel, class.as_deref()).await)
        }
        AriCall::StopMoh { channel } => done(client.stop_moh(channel).await),
        AriCall::Play {
            channel,
            playback,
            media,
        } => client
            .play(channel, Some(playback), &[media], None)
            .await
            .map(|_| Reply::Done),
        AriCall::StopPlayback { playback } => gone_is_fine(client.stop_playback(playback).await),
        AriCall::RecordChannel { channel, params } => client
            .record_channel(channel, params)
            .await
            .map(|_| Reply::Done),
        AriCall::RecordBridge { bridge, params } => client
            .record_bridge(bridge, params)
            .await
            .map(|_| Reply::Done),
        AriCall::StopRecording { name } => done(client.stop_recording(name).await),
        AriCall::CreateBridge { bridge, name } => {
            match client
                .create_bridge("mixing", Some(bridge), Some(name))
                .await
            {
                Ok(_) => Ok(Reply::Done),
                Err(e) if e.status() == Some(409) => Ok(Reply::Done),
                Err(e) => Err(e),
            }
        }
        AriCall::AddChannels { bridge, channels } => {
            let ids: Vec<&str> = channels.iter().map(String::as_str).collect();
            done(client.add_channels(bridge, &ids).await)
        }
        AriCall::RemoveChannels { bridge, channels } => {
            let ids: Vec<&str> = channels.iter().map(String::as_str).collect();
            done(client.remove_channels(bridge, &ids).await)
        }
        AriCall::DestroyBridge { bridge } => gone_is_fine(client.destroy_bridge(bridge).await),
        AriCall::Continue {
            channel,
            context,
            extension,
        } => done(
            client
                .continue_in_dialplan(channel, Some(context), Some(extension), Some(1))
                .await,
        ),
        AriCall::SendDtmf { channel, digits } => {
            done(client.send_dtmf(channel, digits, None, None).await)
        }
        AriCall::SetVariable {
            channel,
            name,
            value,
        } => done(client.set_variable(channel, name, value).await),
        AriCall::Mute { channel } => done(client.mute(channel, "in").await),
        AriCall::Unmute { channel } => done(client.unmute(channel, "in").await),
        AriCall::ListBridge { bridge } => match client.get_bridge(bridge).await {
            Ok(b) => Ok(Reply::Bridge(b)),
            Err(e) if e.is_not_found() => Ok(Reply::Done),
            Err(e) => Err(e),
        },
    }
}

/// An ARI failure as the controller sees it.
fn media_error(handler: HandlerId, e: AriError) -> MediaError {
    match e {
        AriError::Timeout {
            operation,
            after_ms,
        } => MediaError::Timeout {
            handler,
            command: operation,
            timeout_ms: after_ms,
        },
        AriError::Connect { operation, .. } => MediaError::Disconnected {
            handler,
            command: operation,
        },
        AriError::Status {
            ref operation,
            status: 404,
            ref message,
            ..
        } if message == "Channel not found" => MediaError::NoSuchLeg {
            handler,
            leg: operation.split('/').nth(2).unwrap_or_default().to_owned(),
        },
        other => MediaError::Refused {
            handler,
            command: other.operation().to_owned(),
            reply: other.to_string(),
        },
    }
}

impl MediaHandler for AsteriskHandler {
    fn id(&self) -> HandlerId {
        self.shared.id
    }

    fn kind(&self) -> HandlerKind {
        HandlerKind::Asterisk
    }

    fn execute(&self, command: MediaCommand) -> MediaFuture<'_, CommandOutcome> {
        Box::pin(self.run_plan(command))
    }

    fn legs(&self) -> MediaFuture<'_, Vec<LegSnapshot>> {
        Box::pin(async move {
            let shared = &self.shared;
            let (channels, bridges) = list_switch(&shared.client)
                .await
                .map_err(|e| media_error(shared.id, e))?;
            let mut probe = shared.state().clone();
            probe.resync(&channels, &bridges);
            Ok(probe.snapshot())
        })
    }

    fn load(&self) -> HandlerLoad {
        HandlerLoad {
            active_legs: self.shared.state().leg_count() as u32,
            capacity: self.shared.capacity,
            healthy: self.shared.connected.load(Ordering::Acquire),
        }
    }
}

/// Lists channels (with the contact each carries) and bridges. The contact comes from
/// `channelvars` when ari.conf names [`CONTACT_VARIABLE`] there, else from one variable query
/// per channel (404: untagged).
async fn list_switch(
    client: &AriClient,
) -> Result<(Vec<(Channel, Option<ContactId>)>, Vec<Bridge>), AriError> {
    let channels = client.list_channels().await?;
    let bridges = client.list_bridges().await?;
    let mut tagged = Vec::with_capacity(channels.len());
    for channel in channels {
        let from_vars = channel
            .channelvars
            .as_ref()
            .and_then(|v| v.get(CONTACT_VARIABLE))
            .map(|t| parse_contact(t));
        let contact = match from_vars {
            Some(c) => c,
            None => match client.get_variable(&channel.id, CONTACT_VARIABLE).await {
                Ok(text) => parse_contact(&text),
                // Unset (404) or the channel vanished meanwhile.
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
        };
        tagged.push((channel, contact));
    }
    Ok((tagged, bridges))
}

/// Why a connection ended.
enum Ended {
    Stopped,
    ControllerGone,
    Lost(String),
    /// Another client registered the application: back off before taking it back, so that
    /// two Switchboards sharing an application name do not steal it from each other in a loop.
    Replaced,
}

async fn run_connection(
    shared: Arc<Shared>,
    config: AsteriskConfig,
    mut stop: watch::Receiver<bool>,
) {
    let url = shared.client.events_url(&config.app, config.subscribe_all);
    let mut backoff = Backoff::new(config.backoff);
    let mut was_up = false;
    let mut replaced = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let ended = match EventSocket::connect(&url, config.request_timeout).await {
            Ok(socket) => {
                if !replaced {
                    backoff.reset();
                }
                session(&shared, socket, &mut stop, &mut was_up).await
            }
            Err(e) => {
                if let SocketError::Refused { status: 401, .. } = e {
                    tracing::error!(error = %e, "check ari.conf user and password");
                } else {
                    tracing::warn!(error = %e, "ARI events socket");
                }
                Ended::Lost(e.to_string())
            }
        };
        shared.connected.store(false, Ordering::Release);
        replaced = matches!(ended, Ended::Replaced);
        let ended = match ended {
            Ended::Replaced => Ended::Lost("application replaced by another client".into()),
            other => other,
        };
        match ended {
            Ended::Stopped | Ended::ControllerGone | Ended::Replaced => return,
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
        tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting to ARI");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn session(
    shared: &Arc<Shared>,
    mut socket: EventSocket,
    stop: &mut watch::Receiver<bool>,
    was_up: &mut bool,
) -> Ended {
    // Resync on every (re)connect: the socket is open first, so nothing that happens while we
    // list is missed (events are buffered by the socket meanwhile).
    let listing = tokio::select! {
        r = list_switch(&shared.client) => r,
        _ = stop.changed() => return Ended::Stopped,
    };
    let (channels, bridges) = match listing {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "ARI resync failed");
            socket.close().await;
            return Ended::Lost(format!("resync failed: {e}"));
        }
    };
    let mut events = shared.state().resync(&channels, &bridges);
    events.push(MediaEvent::HandlerUp);
    shared.connected.store(true, Ordering::Release);
    *was_up = true;
    tracing::info!(
        handler = %shared.id,
        adopted = shared.state().leg_count(),
        "ARI connected and resynced"
    );
    if !shared.emit(events).await {
        return Ended::ControllerGone;
    }
    let mut decoder = EventDecoder::new();
    loop {
        let message = tokio::select! {
            m = socket.next_text() => m,
            _ = stop.changed() => {
                socket.close().await;
                return Ended::Stopped;
            }
        };
        let payload = match message {
            None => return Ended::Lost("socket closed".into()),
            Some(Err(e)) => return Ended::Lost(e.to_string()),
            Some(Ok(p)) => p,
        };
        let Some(event) = decoder.decode(&payload) else {
            continue;
        };
        if let EventKind::ApplicationReplaced = event.kind {
            // Another client took the application: this socket gets nothing further.
            tracing::error!(app = %shared.app, "another ARI client registered this application");
            socket.close().await;
            return Ended::Replaced;
        }
        let out = shared.state().on_event(&event);
        if !out.is_empty() && !shared.emit(out).await {
            return Ended::ControllerGone;
        }
    }
}
