//! The FreeSWITCH emulator: an event socket (ESL) server that behaves like FreeSWITCH 1.10.12
//! for everything Switchboard uses — the same greeting, replies (`+OK accepted`, `-ERR
//! invalid`, `+OK Job-UUID: …`), api bodies, event headers and sequences in plain, json and
//! xml, disconnect notices, and outbound sockets (the dialplan's `socket … async full`
//! connects out to a configured server). Channels, bridges, playbacks, recordings and
//! conferences are simulated with durations ([`world`]); scripted callers and faults (drop
//! every connection, refuse or delay commands, kill legs) are on demand.
//!
//! Also:
//! - `log <level>` / `nolog`: the switch's log streamed as `log/data` frames, filtered by
//!   level as FreeSWITCH filters it (channel creation, dialplan, applications, answer,
//!   hangup; [`log`]).
//! - SIP registrations of directory users: scripted softphones register and unregister
//!   ([`Emulator::register`]), firing the CUSTOM `sofia::pre_register`,
//!   `sofia::register_attempt`, `sofia::register`, `sofia::unregister` and MESSAGE_QUERY
//!   events; `sofia status profile internal reg` and `sofia_contact` answer from them, and
//!   `user/<n>` reaches only a registered user (else USER_NOT_REGISTERED; SUBSCRIBER_ABSENT
//!   for a name the directory lacks) ([`registry`]).
//! - Modules Switchboard replaces are not loaded: `api callcenter_config …` answers
//!   `-ERR callcenter_config Command not found!` as a switch without mod_callcenter does.
//!
//! Ground truth: the captures in `fixtures/esl/`. `switchboard emulate freeswitch --listen
//! 127.0.0.1:8021` calls [`run`].

#![warn(missing_docs)]

pub mod dial;
pub mod log;
pub mod registry;
pub mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::media::LegId;
use crate::media::freeswitch::codec::{Command, CommandDecoder, Limits};
use crate::model::Timestamp;

use super::timers::run_timers;

pub use registry::Registration;
pub use world::{App, DialBehaviour, InboundCall, SessionId, WorldConfig};
use world::{Output, Timer, World};

/// How the emulator runs.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// The simulated switch (password, users, gateways, dialplan, playback durations).
    pub world: WorldConfig,
    /// Emulated durations are multiplied by this (1.0: real time; 0.01: a hundred times
    /// faster, for tests).
    pub time_scale: f64,
    /// Connections open at once at most (inbound and outbound together).
    pub max_connections: usize,
}

impl EmulatorOptions {
    /// A switch like the capture machine's with event socket password `password`. Inbound
    /// calls to numbers the dialplan does not name are answered and parked, with
    /// `switchboard_inbound=true`.
    pub fn new(password: &str) -> Self {
        EmulatorOptions {
            world: WorldConfig::capture(password, None),
            time_scale: 1.0,
            max_connections: 256,
        }
    }

    /// As [`EmulatorOptions::new`], but inbound calls (and extension 7202) are handed to the
    /// outbound event socket server at `target` (`host:port`), as the shipped dialplan's
    /// `socket <target> async full` does.
    pub fn with_outbound(password: &str, target: &str) -> Self {
        EmulatorOptions {
            world: WorldConfig::capture(password, Some(target)),
            ..Self::new(password)
        }
    }
}

impl Default for EmulatorOptions {
    /// Password `ClueCon` (FreeSWITCH's default), real time, inbound calls parked.
    fn default() -> Self {
        Self::new("ClueCon")
    }
}

/// The emulator could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A scripted call could not be placed.
    #[error("cannot place the call: {0}")]
    Call(String),
    /// A scripted registration was refused (not a directory user, or unusable headers).
    #[error("cannot register: {0}")]
    Registration(String),
}

/// A command the emulator read from a client, stamped when it was decoded off the socket
/// (before any [`Emulator::delay_replies`] fault): what benches and tests observe with
/// [`Emulator::observe_commands`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCommand {
    /// The connection it came on.
    pub session: SessionId,
    /// When it was decoded (wall clock, the controller's [`Timestamp`] clock).
    pub at: Timestamp,
    /// The command.
    pub command: Command,
}

/// What a connection's writer gets.
#[derive(Debug)]
enum Out {
    Bytes(Vec<u8>),
    Close,
}

/// Frames a connection may have queued before it is dropped as too slow.
const CONNECTION_QUEUE: usize = 65_536;
/// How long an outbound connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Command size limits: FreeSWITCH reads commands line by line; these bound the memory of
/// one connection.
const COMMAND_LIMITS: (usize, usize) = (64 * 1024, 1024 * 1024);

/// What the server tasks share.
struct Hub {
    world: Mutex<World>,
    conns: Mutex<HashMap<SessionId, mpsc::Sender<Out>>>,
    // Unbounded on purpose: timers are produced under the world lock and must not be lost;
    // each is bounded by the work that armed it.
    timers: mpsc::UnboundedSender<(Instant, Timer)>,
    delay: Mutex<Option<Duration>>,
    drop_all: watch::Sender<u64>,
    scale: f64,
    started: Instant,
    start_us: i64,
    slots: Arc<Semaphore>,
    // Set at most once; a full observer loses commands (counted) rather than slow the switch.
    observer: OnceLock<mpsc::Sender<ReceivedCommand>>,
    /// Commands the observer's full channel lost.
    unobserved: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    fn now_us(&self) -> i64 {
        // Emulated time runs `1/scale` times faster than real time.
        let elapsed = self.started.elapsed().as_micros() as f64 / self.scale;
        self.start_us + elapsed as i64
    }

    /// Runs `f` on the world at the current time and carries out what it produced.
    fn with_world<R>(self: &Arc<Self>, f: impl FnOnce(&mut World) -> R) -> R {
        let (result, outputs) = {
            let mut w = lock(&self.world);
            w.set_now(self.now_us());
            let r = f(&mut w);
            (r, w.drain())
        };
        self.apply(outputs);
        result
    }

    fn apply(self: &Arc<Self>, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { session, bytes } => self.deliver(session, Out::Bytes(bytes)),
                Output::Close { session } => self.deliver(session, Out::Close),
                Output::Arm { after, timer } => {
                    let at = Instant::now() + after.mul_f64(self.scale);
                    let _ = self.timers.send((at, timer));
                }
                Output::Connect { session, target } => {
                    tokio::spawn(connect_out(self.clone(), session, target));
                }
            }
        }
    }

    fn deliver(self: &Arc<Self>, session: SessionId, out: Out) {
        let tx = lock(&self.conns).get(&session).cloned();
        if let Some(tx) = tx
            && tx.try_send(out).is_err()
        {
            tracing::warn!(?session, "emulator: connection too slow, dropping it");
            lock(&self.conns).remove(&session);
        }
    }
}

/// Serves one connection: the reader feeds commands to the world; the writer sends what
/// the world produced; either ends the connection.
async fn serve_connection(
    hub: Arc<Hub>,
    stream: TcpStream,
    session: SessionId,
    rx: mpsc::Receiver<Out>,
) {
    let (mut reader, writer) = stream.into_split();
    let mut drop_all = hub.drop_all.subscribe();
    let mut write_task = tokio::spawn(write_loop(writer, rx));
    let (max_head, max_body) = COMMAND_LIMITS;
    let mut decoder = CommandDecoder::new(Limits::new(max_head, max_body));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            _ = drop_all.changed() => break,
            _ = &mut write_task => break,
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut fed = 0;
                while fed < n {
                    let took = decoder.feed(&buf[fed..n]);
                    fed += took;
                    if !handle_commands(&hub, session, &mut decoder).await {
                        break;
                    }
                    if took == 0 {
                        // A command larger than the limits: FreeSWITCH would not read it.
                        break;
                    }
                }
                if fed < n {
                    break;
                }
            }
        }
    }
    write_task.abort();
    lock(&hub.conns).remove(&session);
    hub.with_world(|w| w.closed(session));
}

/// Decodes and runs every whole command buffered. False when the connection must end.
async fn handle_commands(hub: &Arc<Hub>, session: SessionId, decoder: &mut CommandDecoder) -> bool {
    loop {
        match decoder.decode() {
            Ok(Some(frame)) => {
                if let Some(observer) = hub.observer.get() {
                    let at = Timestamp::now();
                    if let Ok(command) = frame.command() {
                        let seen = observer.try_send(ReceivedCommand {
                            session,
                            at,
                            command,
                        });
                        if let Err(mpsc::error::TrySendError::Full(_)) = seen {
                            hub.unobserved
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                let delay = *lock(&hub.delay);
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                match frame.command() {
                    Ok(command) => hub.with_world(|w| w.command(session, command)),
                    Err(_) => hub.with_world(|w| w.unreadable_command(session)),
                }
            }
            Ok(None) => return true,
            Err(e) => {
                // FreeSWITCH answers any line it cannot use with `-ERR command not found`;
                // input the decoder cannot skip past ends the connection.
                tracing::debug!(error = %e, "emulator: unreadable command");
                if !decoder.resync() {
                    return false;
                }
                hub.with_world(|w| w.unreadable_command(session));
            }
        }
    }
}

async fn write_loop(mut writer: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Out>) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Bytes(bytes) => {
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Out::Close => {
                let _ = writer.flush().await;
                let _ = writer.shutdown().await;
                return;
            }
        }
    }
}

/// The `socket` application: connect out, then serve the connection like an inbound one
/// (without the greeting: FreeSWITCH waits for `connect`).
async fn connect_out(hub: Arc<Hub>, session: SessionId, target: String) {
    let Ok(permit) = hub.slots.clone().try_acquire_owned() else {
        hub.with_world(|w| w.outbound_failed(session));
        return;
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(s)) => s,
        _ => {
            tracing::warn!(%target, "emulator: outbound socket target unreachable");
            hub.with_world(|w| w.outbound_failed(session));
            return;
        }
    };
    let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
    lock(&hub.conns).insert(session, tx);
    hub.with_world(|w| w.outbound_connected(session));
    serve_connection(hub, stream, session, rx).await;
    drop(permit);
}

async fn accept_loop(hub: Arc<Hub>, listener: tokio::net::TcpListener) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // Out of file descriptors and the like: wait and go on (mini-redis).
                tracing::warn!(error = %e, "emulator: accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = hub.slots.clone().try_acquire_owned() else {
            // Over the connection cap: close at once.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        let hub2 = hub.clone();
        tokio::spawn(async move {
            let session = {
                let mut w = lock(&hub2.world);
                w.set_now(hub2.now_us());
                let id = w.accept();
                lock(&hub2.conns).insert(id, tx);
                let out = w.drain();
                drop(w);
                hub2.apply(out);
                id
            };
            serve_connection(hub2, stream, session, rx).await;
            drop(permit);
        });
    }
}

/// A running emulator; [`Emulator::shutdown`] stops it (dropping it aborts its tasks).
pub struct Emulator {
    addr: SocketAddr,
    hub: Arc<Hub>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Emulator {
    /// Binds `listen` (port 0 picks one) and starts serving the event socket.
    pub async fn start(
        listen: SocketAddr,
        options: EmulatorOptions,
    ) -> Result<Self, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        let start_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let seed = start_us as u64 ^ u64::from(addr.port()).rotate_left(32);
        let hub = Arc::new(Hub {
            world: Mutex::new(World::new(options.world, seed, start_us)),
            conns: Mutex::new(HashMap::new()),
            timers,
            delay: Mutex::new(None),
            drop_all: watch::channel(0).0,
            scale: if options.time_scale.is_finite() && options.time_scale > 0.0 {
                options.time_scale
            } else {
                1.0
            },
            started: Instant::now(),
            start_us,
            slots: Arc::new(Semaphore::new(options.max_connections.max(1))),
            observer: OnceLock::new(),
            unobserved: std::sync::atomic::AtomicU64::new(0),
        });
        let mut tasks = JoinSet::new();
        let timers_hub = hub.clone();
        tasks.spawn(run_timers(timer_rx, move |timer| {
            timers_hub.with_world(|w| w.fire(timer))
        }));
        tasks.spawn(accept_loop(hub.clone(), listener));
        tracing::info!(%addr, "FreeSWITCH emulator listening (event socket)");
        Ok(Emulator { addr, hub, tasks })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A scripted SIP call arrives now; returns its channel uuid.
    pub fn place_call(&self, call: &InboundCall) -> Result<LegId, EmulatorError> {
        self.hub
            .with_world(|w| w.inbound_call(call))
            .map_err(EmulatorError::Call)
    }

    /// Fault: the far end of a leg hangs up with `cause` (`NORMAL_CLEARING`, `USER_BUSY`,
    /// …). False when there is no such live leg.
    pub fn kill_channel(&self, uuid: &LegId, cause: &str) -> bool {
        self.hub.with_world(|w| w.kill_channel(uuid, cause))
    }

    /// The far end of a leg presses `digits`.
    pub fn caller_dtmf(&self, uuid: &LegId, digits: &str) -> bool {
        self.hub.with_world(|w| w.caller_dtmf(uuid, digits))
    }

    /// A directory user's softphone sends REGISTER now (`expires: 0`: unregisters), and the
    /// switch fires the `sofia::*` events a real registration fires.
    pub fn register(&self, registration: &Registration) -> Result<(), EmulatorError> {
        self.hub
            .with_world(|w| w.register(registration))
            .map_err(EmulatorError::Registration)
    }

    /// Fault: every connection (inbound and outbound) is dropped without a notice.
    pub fn drop_connections(&self) {
        self.hub.drop_all.send_modify(|n| *n += 1);
    }

    /// Fault: answer every command after auth with `-ERR` (`false`: stop refusing).
    pub fn refuse_commands(&self, refuse: bool) {
        self.hub.with_world(|w| w.set_refuse(refuse));
    }

    /// Fault: delay every command by `delay` before running it (real time; `None`: none).
    pub fn delay_replies(&self, delay: Option<Duration>) {
        *lock(&self.hub.delay) = delay;
    }

    /// The channels that exist now.
    pub fn channels(&self) -> Vec<LegId> {
        lock(&self.hub.world).channel_ids()
    }

    /// A channel variable of a live channel.
    pub fn channel_var(&self, uuid: &LegId, name: &str) -> Option<String> {
        lock(&self.hub.world).channel_var(uuid, name)
    }

    /// Conferences that exist now.
    pub fn conferences(&self) -> Vec<String> {
        lock(&self.hub.world).conference_names()
    }

    /// Every command read from now on, stamped on arrival, up to `backlog` not yet received
    /// (more are lost and counted by [`Emulator::unobserved_commands`], so that a slow
    /// observer never slows the switch); `None` when someone already observes (one observer
    /// per emulator).
    pub fn observe_commands(&self, backlog: usize) -> Option<mpsc::Receiver<ReceivedCommand>> {
        let (tx, rx) = mpsc::channel(backlog.max(1));
        self.hub.observer.set(tx).ok().map(|()| rx)
    }

    /// Commands the observer lost because it fell `backlog` behind.
    pub fn unobserved_commands(&self) -> u64 {
        self.hub
            .unobserved
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Event socket connections open now (inbound and outbound).
    pub fn connections(&self) -> usize {
        lock(&self.hub.conns).len()
    }

    /// Stops serving and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.drop_connections();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs the emulator on `listen` until Ctrl-C: what `switchboard emulate freeswitch --listen
/// 127.0.0.1:8021` calls.
pub async fn run(listen: SocketAddr, options: EmulatorOptions) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(listen, options).await?;
    println!(
        "FreeSWITCH emulator: event socket at {} (password as configured; FreeSWITCH's default is ClueCon)",
        emulator.local_addr()
    );
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}
