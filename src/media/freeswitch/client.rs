//! The inbound ESL client (tokio): one authenticated connection to FreeSWITCH's event socket.
//!
//! - [`EslClient::connect`] opens the socket, answers `auth/request`, and subscribes with
//!   `event <format> <names…>`. A wrong password is [`ClientError::AuthFailed`], an ACL refusal
//!   [`ClientError::Rejected`] (fixtures `auth_bad_password`, `acl_rude_rejection`); the caller
//!   backs off (the handler does, with jitter).
//! - Replies are matched by order among reply frames (`command/reply`, `api/response`), never
//!   by "the next frame": events may arrive between a command and its reply (README, "Events
//!   interleave with replies"). One writer task writes each command right after queueing its
//!   reply slot, so the order of slots is the order on the wire.
//! - `bgapi` sends a `Job-UUID` Switchboard chooses (FreeSWITCH honours it), so the result, a
//!   BACKGROUND_JOB event, is matched by id. Every future ends: reply, timeout or disconnect.
//! - Events go to an [`EventStream`] through a bounded channel; the reader waits for room
//!   (backpressure) and never drops one. [`EventStream::lag`] says how far the consumer is
//!   behind.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

use super::codec::{
    CodecError, Command, ContentType, Decoder, Event, EventFormat, Frame, JobUuid, Limits, Reply,
};

/// How to reach one FreeSWITCH event socket and what to subscribe to.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the event socket (mod_event_socket's `listen-ip:listen-port`).
    pub address: String,
    /// The event socket password (`auth <password>`).
    pub password: String,
    /// Deadline of the TCP connect and the auth exchange.
    pub connect_timeout: Duration,
    /// Deadline of each `api` reply and each `bgapi` acceptance.
    pub api_timeout: Duration,
    /// The event format to subscribe with.
    pub format: EventFormat,
    /// Event names (and `CUSTOM <subclass…>`) to subscribe to; empty: no `event` command.
    pub events: Vec<String>,
    /// Events read but not yet consumed before the reader waits (backpressure).
    pub events_queue: usize,
    /// Frame size limits.
    pub limits: Limits,
}

impl ClientConfig {
    /// A configuration with the usual defaults: 5 s deadlines, JSON events, no subscription,
    /// a queue of [`crate::media::EVENT_QUEUE`] events.
    pub fn new(address: &str, password: &str) -> Self {
        ClientConfig {
            address: address.to_owned(),
            password: password.to_owned(),
            connect_timeout: Duration::from_secs(5),
            api_timeout: Duration::from_secs(5),
            format: EventFormat::Json,
            events: Vec::new(),
            events_queue: crate::media::EVENT_QUEUE,
            limits: Limits::default(),
        }
    }
}

/// What failed on an ESL connection, with the input that made it fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to the FreeSWITCH event socket at {address}: {reason}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        reason: String,
    },
    /// No connection or no auth exchange within the deadline.
    #[error("the FreeSWITCH event socket at {address} did not {step} within {after_ms} ms")]
    ConnectTimeout {
        /// `host:port`.
        address: String,
        /// What did not happen (`connect`, `greet`, `answer auth`).
        step: &'static str,
        /// The deadline.
        after_ms: u64,
    },
    /// The ACL refused the connection (`text/rude-rejection`).
    #[error("FreeSWITCH at {address} refused the connection (apply-inbound-acl): {reason}")]
    Rejected {
        /// `host:port`.
        address: String,
        /// FreeSWITCH's words (`Access Denied, go away.`).
        reason: String,
    },
    /// `auth` was answered with `-ERR` (wrong password: `-ERR invalid`).
    #[error(
        "FreeSWITCH at {address} refused the event socket password: {reply} (check event_socket.conf.xml)"
    )]
    AuthFailed {
        /// `host:port`.
        address: String,
        /// The reply text.
        reply: String,
    },
    /// The server said something the protocol does not allow at this point.
    #[error("unexpected {got} from FreeSWITCH at {address} while {during}")]
    Unexpected {
        /// `host:port`.
        address: String,
        /// What arrived.
        got: String,
        /// What the client was doing.
        during: &'static str,
    },
    /// A command was answered with `-ERR` (a `command/reply`; api errors are body text).
    #[error("FreeSWITCH refused `{command}`: -ERR {reply}")]
    Refused {
        /// The command line.
        command: String,
        /// The text after `-ERR`.
        reply: String,
    },
    /// No reply (or no BACKGROUND_JOB result) within the deadline.
    #[error("FreeSWITCH did not answer `{command}` within {after_ms} ms")]
    Timeout {
        /// The command line.
        command: String,
        /// The deadline.
        after_ms: u64,
    },
    /// The connection ended before the reply.
    #[error("the FreeSWITCH connection ended before answering `{command}`")]
    Disconnected {
        /// The command line.
        command: String,
    },
    /// The command cannot be written without breaking the framing.
    #[error("cannot send `{command}`: {reason}")]
    Unencodable {
        /// The command line (cut).
        command: String,
        /// Why.
        reason: String,
    },
    /// Bytes from FreeSWITCH that are not ESL; the connection closes after too many in a row.
    #[error("bad frame from FreeSWITCH at {address}: {error}")]
    Protocol {
        /// `host:port`.
        address: String,
        /// The codec's words (what and at which stream offset).
        error: CodecError,
    },
    /// The connection ended (the reason of an [`EventStream`]'s end).
    #[error("the FreeSWITCH connection at {address} ended: {reason}")]
    Closed {
        /// `host:port`.
        address: String,
        /// Why.
        reason: String,
    },
}

/// How far the consumer of an [`EventStream`] is behind the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Events read from the socket and not yet consumed.
    pub events: u64,
    /// How long the last consumed event waited in the queue (zero when the queue is empty).
    pub behind: Duration,
    /// Events read since the connection opened.
    pub read: u64,
    /// Malformed frames skipped since the connection opened.
    pub malformed: u64,
}

#[derive(Debug, Default)]
struct Stats {
    read: AtomicU64,
    consumed: AtomicU64,
    behind_us: AtomicU64,
    malformed: AtomicU64,
}

impl Stats {
    fn lag(&self) -> Lag {
        let read = self.read.load(Ordering::Relaxed);
        let events = read.saturating_sub(self.consumed.load(Ordering::Relaxed));
        Lag {
            events,
            behind: if events == 0 {
                Duration::ZERO
            } else {
                Duration::from_micros(self.behind_us.load(Ordering::Relaxed))
            },
            read,
            malformed: self.malformed.load(Ordering::Relaxed),
        }
    }
}

/// One event delivered to the consumer, with when the reader took it off the socket.
#[derive(Debug, Clone)]
pub struct Received {
    /// The event.
    pub event: Event,
    /// When it was read.
    pub at: Instant,
}

/// The events of one connection, in order. Ends (with the reason) when the connection does.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Received>,
    stats: Arc<Stats>,
    end: Arc<Mutex<Option<ClientError>>>,
}

impl EventStream {
    /// The next event, or why the connection ended ([`ClientError::Closed`] and friends).
    pub async fn recv(&mut self) -> Result<Event, ClientError> {
        self.recv_timed().await.map(|r| r.event)
    }

    /// The next event with its read time.
    pub async fn recv_timed(&mut self) -> Result<Received, ClientError> {
        match self.rx.recv().await {
            Some(r) => {
                self.note(&r);
                Ok(r)
            }
            None => Err(self.end_reason()),
        }
    }

    /// An event if one is queued now (never waits).
    pub fn try_recv(&mut self) -> Option<Received> {
        let r = self.rx.try_recv().ok()?;
        self.note(&r);
        Some(r)
    }

    fn note(&self, r: &Received) {
        self.stats.consumed.fetch_add(1, Ordering::Relaxed);
        let behind = r.at.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.stats.behind_us.store(behind, Ordering::Relaxed);
    }

    fn end_reason(&self) -> ClientError {
        lock(&self.end).clone().unwrap_or(ClientError::Closed {
            address: String::new(),
            reason: "connection closed".into(),
        })
    }

    /// How far this consumer is behind the reader.
    pub fn lag(&self) -> Lag {
        self.stats.lag()
    }
}

/// A reply slot: the reader fills it with the matching `command/reply` or `api/response`.
type Slot = oneshot::Sender<Frame>;

struct Outgoing {
    bytes: Vec<u8>,
    slot: Slot,
}

struct Inner {
    address: String,
    api_timeout: Duration,
    writer: mpsc::Sender<Outgoing>,
    pending: Mutex<VecDeque<Slot>>,
    jobs: Mutex<HashMap<JobUuid, oneshot::Sender<String>>>,
    stats: Arc<Stats>,
    closed: AtomicBool,
    /// Turns true when the reader ends, so that the writer closes the socket too.
    ended: watch::Sender<bool>,
    end: Arc<Mutex<Option<ClientError>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere must not poison the connection.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connected, authenticated ESL client; cheap to clone (all clones share the connection).
/// When the last clone is dropped the connection closes (pending jobs end as disconnected).
#[derive(Clone)]
pub struct EslClient {
    inner: Arc<Inner>,
    _alive: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for EslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EslClient")
            .field("address", &self.inner.address)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A `bgapi` accepted by FreeSWITCH; its result comes as a BACKGROUND_JOB event.
pub struct Job {
    uuid: JobUuid,
    command: String,
    rx: oneshot::Receiver<String>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("uuid", &self.uuid)
            .field("command", &self.command)
            .finish()
    }
}

impl Job {
    /// The job id (chosen by Switchboard, honoured by FreeSWITCH).
    pub fn uuid(&self) -> &JobUuid {
        &self.uuid
    }

    /// The job's result text (the BACKGROUND_JOB body: `+OK <uuid>\n`, `-ERR USER_BUSY\n`),
    /// within `timeout`; a disconnect ends the wait with [`ClientError::Disconnected`].
    pub async fn result(mut self, timeout: Duration) -> Result<String, ClientError> {
        match tokio::time::timeout(timeout, &mut self.rx).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(_)) => Err(ClientError::Disconnected {
                command: self.command.clone(),
            }),
            Err(_) => Err(ClientError::Timeout {
                command: self.command.clone(),
                after_ms: millis(timeout),
            }),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // A job nobody waits for must not stay in the table (bounded memory).
        lock(&self.inner.jobs).remove(&self.uuid);
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// A random RFC 4122 version 4 UUID, as FreeSWITCH writes them.
pub fn new_uuid() -> String {
    let mut b = rand::random::<u128>().to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Consecutive undecodable frames after which the connection is closed (and the caller
/// reconnects and resyncs) rather than resynced in place.
const MAX_BAD_FRAMES: u32 = 3;

/// Reads one frame during the handshake (before the reader task runs).
async fn read_frame(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    address: &str,
) -> Result<Frame, ClientError> {
    loop {
        match decoder.decode() {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(error) => {
                return Err(ClientError::Protocol {
                    address: address.to_owned(),
                    error,
                });
            }
        }
        let n = stream
            .read_buf(&mut decoder.read_buf())
            .await
            .map_err(|e| ClientError::Closed {
                address: address.to_owned(),
                reason: e.to_string(),
            })?;
        if n == 0 {
            return Err(ClientError::Closed {
                address: address.to_owned(),
                reason: "closed during the handshake".into(),
            });
        }
    }
}

async fn handshake(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    config: &ClientConfig,
) -> Result<(), ClientError> {
    let address = config.address.as_str();
    let greeting = read_frame(stream, decoder, address).await?;
    match greeting.content_type() {
        ContentType::AuthRequest => {}
        ContentType::RudeRejection => {
            return Err(ClientError::Rejected {
                address: address.to_owned(),
                reason: String::from_utf8_lossy(greeting.body()).trim().to_owned(),
            });
        }
        _ => {
            return Err(ClientError::Unexpected {
                address: address.to_owned(),
                got: greeting.content_type_str().to_owned(),
                during: "waiting for auth/request",
            });
        }
    }
    let auth = Command::Auth {
        password: config.password.clone(),
    }
    .to_bytes()
    .map_err(|e| ClientError::Unencodable {
        command: "auth".into(),
        reason: e.to_string(),
    })?;
    stream
        .write_all(&auth)
        .await
        .map_err(|e| ClientError::Closed {
            address: address.to_owned(),
            reason: e.to_string(),
        })?;
    loop {
        let frame = read_frame(stream, decoder, address).await?;
        match frame.content_type() {
            ContentType::CommandReply => {
                return match frame.reply() {
                    Some(Reply::Ok(_)) => Ok(()),
                    other => Err(ClientError::AuthFailed {
                        address: address.to_owned(),
                        reply: other.map(|r| r.text().to_owned()).unwrap_or_default(),
                    }),
                };
            }
            // Nothing else is sent before the auth reply; tolerate logs and notices only.
            ContentType::LogData => continue,
            _ => {
                return Err(ClientError::Unexpected {
                    address: address.to_owned(),
                    got: frame.content_type_str().to_owned(),
                    during: "waiting for the auth reply",
                });
            }
        }
    }
}

impl EslClient {
    /// Connects, authenticates and subscribes. Returns the client and its events.
    pub async fn connect(config: &ClientConfig) -> Result<(EslClient, EventStream), ClientError> {
        let address = config.address.clone();
        let deadline = config.connect_timeout;
        let mut stream = match tokio::time::timeout(deadline, TcpStream::connect(&address)).await {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    address,
                    step: "connect",
                    after_ms: millis(deadline),
                });
            }
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    address,
                    reason: e.to_string(),
                });
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let mut decoder = Decoder::new(config.limits);
        match tokio::time::timeout(deadline, handshake(&mut stream, &mut decoder, config)).await {
            Err(_) => {
                return Err(ClientError::ConnectTimeout {
                    address,
                    step: "answer auth",
                    after_ms: millis(deadline),
                });
            }
            Ok(r) => r?,
        }
        let (client, events) = Self::spawn(stream, decoder, config);
        if !config.events.is_empty() {
            client
                .command(&Command::Event {
                    format: config.format,
                    events: config.events.clone(),
                })
                .await?;
        }
        Ok((client, events))
    }

    fn spawn(
        stream: TcpStream,
        decoder: Decoder,
        config: &ClientConfig,
    ) -> (EslClient, EventStream) {
        let (read, write) = stream.into_split();
        let (writer, outgoing) = mpsc::channel(256);
        let (events_tx, events_rx) = mpsc::channel(config.events_queue.max(1));
        let stats = Arc::new(Stats::default());
        let end = Arc::new(Mutex::new(None));
        let inner = Arc::new(Inner {
            address: config.address.clone(),
            api_timeout: config.api_timeout,
            writer,
            pending: Mutex::new(VecDeque::new()),
            jobs: Mutex::new(HashMap::new()),
            stats: stats.clone(),
            closed: AtomicBool::new(false),
            ended: watch::channel(false).0,
            end: end.clone(),
        });
        let (alive, handles) = watch::channel(());
        tokio::spawn(write_loop(inner.clone(), write, outgoing));
        tokio::spawn(read_loop(inner.clone(), read, decoder, events_tx, handles));
        (
            EslClient {
                inner,
                _alive: Arc::new(alive),
            },
            EventStream {
                rx: events_rx,
                stats,
                end,
            },
        )
    }

    /// `host:port` this client is connected to.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// How far the event consumer is behind the reader (a metric).
    pub fn lag(&self) -> Lag {
        self.inner.stats.lag()
    }

    /// How many replies are awaited now.
    pub fn pending_replies(&self) -> usize {
        lock(&self.inner.pending).len()
    }

    /// How many bgapi jobs are awaited now.
    pub fn pending_jobs(&self) -> usize {
        lock(&self.inner.jobs).len()
    }

    /// Sends a command and waits for its reply frame (within the api deadline).
    pub async fn send(&self, command: &Command) -> Result<Frame, ClientError> {
        let shown = shown(command);
        let bytes = command.to_bytes().map_err(|e| ClientError::Unencodable {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
        self.send_raw(bytes, shown, self.inner.api_timeout).await
    }

    async fn send_raw(
        &self,
        bytes: Vec<u8>,
        shown: String,
        timeout: Duration,
    ) -> Result<Frame, ClientError> {
        if self.is_closed() {
            return Err(ClientError::Disconnected { command: shown });
        }
        let (slot, rx) = oneshot::channel();
        let out = Outgoing { bytes, slot };
        let wait = async {
            self.inner
                .writer
                .send(out)
                .await
                .map_err(|_| ClientError::Disconnected {
                    command: shown.clone(),
                })?;
            rx.await.map_err(|_| ClientError::Disconnected {
                command: shown.clone(),
            })
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            // The slot stays queued: when the late reply comes it is matched to it and dropped,
            // which keeps every later reply matched to its own command.
            Err(_) => Err(ClientError::Timeout {
                command: shown,
                after_ms: millis(timeout),
            }),
        }
    }

    /// A command answered by `command/reply`: its `Reply-Text`; `-ERR` becomes
    /// [`ClientError::Refused`].
    pub async fn command(&self, command: &Command) -> Result<String, ClientError> {
        let frame = self.send(command).await?;
        match frame.reply() {
            Some(Reply::Err(text)) => Err(ClientError::Refused {
                command: shown(command),
                reply: text.into_owned(),
            }),
            Some(r) => Ok(r.text().to_owned()),
            None => Ok(String::new()),
        }
    }

    /// `api <command>`: the `api/response` body as text. FreeSWITCH reports errors in the body
    /// (`-ERR no such channel!`); the caller reads it ([`Reply::classify`]).
    pub async fn api(&self, command: &str) -> Result<String, ClientError> {
        let frame = self
            .send(&Command::Api {
                command: command.to_owned(),
            })
            .await?;
        if frame.content_type() != ContentType::ApiResponse {
            return Err(ClientError::Unexpected {
                address: self.inner.address.clone(),
                got: format!(
                    "{} ({})",
                    frame.content_type_str(),
                    frame.header("Reply-Text").unwrap_or_default()
                ),
                during: "waiting for api/response",
            });
        }
        Ok(String::from_utf8_lossy(frame.body()).into_owned())
    }

    /// `bgapi <command>` with a `Job-UUID` of Switchboard's choosing; returns once FreeSWITCH
    /// accepted it. The result comes with [`Job::result`] (the session must be subscribed to
    /// BACKGROUND_JOB).
    pub async fn bgapi(&self, command: &str) -> Result<Job, ClientError> {
        let uuid = JobUuid::new(new_uuid());
        let (tx, rx) = oneshot::channel();
        // Registered before sending: the result may come right after the acceptance.
        lock(&self.inner.jobs).insert(uuid.clone(), tx);
        let job = Job {
            uuid: uuid.clone(),
            command: format!("bgapi {command}"),
            rx,
            inner: self.inner.clone(),
        };
        let text = self
            .command(&Command::BgApi {
                command: command.to_owned(),
                job_uuid: Some(uuid),
            })
            .await?;
        if !text.contains(job.uuid.as_str()) {
            tracing::warn!(reply = %text, job = %job.uuid, "bgapi accepted under another Job-UUID");
        }
        Ok(job)
    }

    /// Sends `exit` and waits for `+OK bye`.
    pub async fn exit(&self) -> Result<(), ClientError> {
        self.command(&Command::Exit).await.map(|_| ())
    }
}

/// A command as shown in errors: its first line, cut to 120 characters, and never a password.
fn shown(command: &Command) -> String {
    match command {
        Command::Auth { .. } => "auth <password>".into(),
        Command::Api { command } => format!("api {command}").chars().take(120).collect(),
        Command::BgApi { command, .. } => format!("bgapi {command}").chars().take(120).collect(),
        other => {
            let bytes = other.to_bytes().unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            text.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect()
        }
    }
}

async fn write_loop(
    inner: Arc<Inner>,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut ended = inner.ended.subscribe();
    loop {
        let out = tokio::select! {
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
            _ = ended.wait_for(|e| *e) => break,
        };
        if inner.closed.load(Ordering::Acquire) {
            break;
        }
        lock(&inner.pending).push_back(out.slot);
        if let Err(e) = write.write_all(&out.bytes).await {
            tracing::warn!(error = %e, address = %inner.address, "ESL write failed");
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(
    inner: Arc<Inner>,
    mut read: OwnedReadHalf,
    mut decoder: Decoder,
    events: mpsc::Sender<Received>,
    mut handles: watch::Receiver<()>,
) {
    let reason = tokio::select! {
        r = read_frames(&inner, &mut read, &mut decoder, &events) => r,
        // Every EslClient clone was dropped: nobody can send or wait any more.
        _ = async { while handles.changed().await.is_ok() {} } => ClientError::Closed {
            address: inner.address.clone(),
            reason: "every client handle was dropped".into(),
        },
    };
    tracing::info!(address = %inner.address, reason = %reason, "ESL connection ended");
    *lock(&inner.end) = Some(reason);
    inner.closed.store(true, Ordering::Release);
    // Every waiter learns of the disconnect: dropping the slots ends their futures.
    lock(&inner.pending).clear();
    lock(&inner.jobs).clear();
    inner.ended.send_replace(true);
}

async fn read_frames(
    inner: &Inner,
    read: &mut OwnedReadHalf,
    decoder: &mut Decoder,
    events: &mpsc::Sender<Received>,
) -> ClientError {
    let address = inner.address.clone();
    let closed = |reason: String| ClientError::Closed {
        address: address.clone(),
        reason,
    };
    let mut bad_in_a_row = 0u32;
    let mut notice: Option<String> = None;
    loop {
        let frame = match decoder.decode() {
            Ok(Some(frame)) => {
                bad_in_a_row = 0;
                frame
            }
            Ok(None) => match read.read_buf(&mut decoder.read_buf()).await {
                Ok(0) => {
                    let why = notice.take().unwrap_or_else(|| {
                        if decoder.buffered() > 0 {
                            format!(
                                "closed in the middle of a frame ({} bytes unread)",
                                decoder.buffered()
                            )
                        } else {
                            "closed by FreeSWITCH".into()
                        }
                    });
                    return closed(why);
                }
                Ok(_) => continue,
                Err(e) => return closed(e.to_string()),
            },
            Err(error) => {
                inner.stats.malformed.fetch_add(1, Ordering::Relaxed);
                bad_in_a_row += 1;
                tracing::warn!(address = %address, error = %error, "bad ESL frame");
                if bad_in_a_row >= MAX_BAD_FRAMES || !decoder.resync() {
                    return ClientError::Protocol { address, error };
                }
                continue;
            }
        };
        match frame.content_type() {
            ContentType::CommandReply | ContentType::ApiResponse => {
                let slot = lock(&inner.pending).pop_front();
                match slot {
                    Some(slot) => {
                        let _ = slot.send(frame);
                    }
                    None => {
                        tracing::warn!(address = %address, frame = ?frame, "ESL reply with no command waiting");
                    }
                }
            }
            ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml => {
                let event = match frame.event() {
                    Ok(e) => e,
                    Err(error) => {
                        // The frame was whole; only its event is bad: skip it, say so.
                        inner.stats.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(address = %address, error = %error, "bad ESL event skipped");
                        continue;
                    }
                };
                if event.name() == Some("BACKGROUND_JOB")
                    && let Some(job) = event.job_uuid()
                {
                    let waiter = lock(&inner.jobs).remove(&job);
                    if let Some(waiter) = waiter {
                        let body = event
                            .body()
                            .map(String::from_utf8_lossy)
                            .unwrap_or_default();
                        let _ = waiter.send(body.into_owned());
                        continue;
                    }
                }
                inner.stats.read.fetch_add(1, Ordering::Relaxed);
                let received = Received {
                    event,
                    at: Instant::now(),
                };
                if events.send(received).await.is_err() {
                    // The consumer is gone: keep serving replies, events have nowhere to go.
                    inner.stats.read.fetch_sub(1, Ordering::Relaxed);
                }
            }
            ContentType::DisconnectNotice => {
                let body = String::from_utf8_lossy(frame.body());
                let disposition = frame.header("Content-Disposition").unwrap_or("disconnect");
                if disposition != "linger" {
                    notice = Some(format!(
                        "disconnect notice: {}",
                        body.lines().next().unwrap_or("goodbye")
                    ));
                }
            }
            ContentType::RudeRejection => {
                return closed(format!(
                    "rude rejection: {}",
                    String::from_utf8_lossy(frame.body()).trim()
                ));
            }
            _ => {}
        }
    }
}
