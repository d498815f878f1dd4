//! The relay (IO): UDP sockets for agent streams and their sources, driven by
//! [`super::Sequencer`].
//!
//! Two ways to give out ports ([`Sharing`]):
//!
//! - **Per stream** (the default): each agent stream has one UDP socket that faces the agent's
//!   phone, and each of its sources (Asterisk externalMedia channels, FreeSWITCH legs, prompt
//!   players) a socket of its own that the media handler sends to. The agent's address is
//!   configured or, with symmetric RTP (RFC 4961), learned from the first packet the agent
//!   sends; a source's too. Simple and forgiving, but with many streams each packet arrives
//!   on a different socket, so every datagram costs a receive and a send system call of its
//!   own on a cache-cold socket.
//! - **Shared**: each worker binds one agent-facing and one source-facing socket, and every
//!   stream and source of the worker uses them, as SFUs do (mediasoup's WebRtcServer, Janus on
//!   a single port). Packets are told apart by the address they come from, so every agent's
//!   and every source's address must be known up front (SDP gives them; for Asterisk
//!   externalMedia, `UNICASTRTP_LOCAL_ADDRESS`/`PORT`). One recvmmsg takes a batch of many
//!   streams' packets, each is rewritten in place, and one sendmmsg sends the batch, each
//!   datagram to its own agent: 2.5 times the per-stream throughput in `benches/rtp.rs`.
//! - **Shared, through AF_XDP** ([`RelayConfig::xdp`], Linux, root): the same two ports, but
//!   an XDP program hands their datagrams to the worker as raw frames before the kernel's UDP
//!   stack sees them, and the worker sends each back out from the frame it came in, headers
//!   rewritten ([`xdp`]). The kernel's UDP receive and send paths are what a relay spends most
//!   of its time in; this skips them.
//!
//! Either way a packet from the active source is rewritten in place and sent from the
//! agent-facing socket to the agent; what the agent sends back goes from the source-facing
//! socket to the address the active source sends from. RTCP towards the agent shares its RTP
//! port (RFC 5761 multiplexing).
//!
//! Streams are spread over workers, one thread per core, each owning its streams outright (no
//! locks on the fast path): an epoll loop, recvmmsg into preallocated buffers, the rewrite in
//! place, sendmmsg from the same buffers. Nothing is allocated per packet; a shared port finds
//! a packet's stream with one hash lookup of its sender's address.
//!
//! [`Relay`] is the control interface: create and remove streams, add and remove sources,
//! switch the active source, read statistics. Each call returns once the owning worker has
//! applied it, so a switch takes effect with the next packet the worker reads.

mod sys;
mod worker;
pub mod xdp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{RtpError, Sequencer, SourceId, SourceSpec, Ssrc, StreamConfig, StreamId, StreamStats};
use crate::model::Timestamp;
use worker::{Command, Worker};

pub use sys::MAX_DATAGRAM;

/// What the relay refuses or fails at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What the relay was doing.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// No stream with this id (never created, or removed).
    #[error("{0} does not exist")]
    UnknownStream(StreamId),
    /// The rewrite refused the request (unknown source, codec mismatch, bad config, …).
    #[error(transparent)]
    Rtp(#[from] RtpError),
    /// The relay configuration contradicts itself.
    #[error("bad relay configuration: {0}")]
    BadConfig(String),
    /// No free port in the configured range.
    #[error("no free UDP port in {first}..={last} on {ip}")]
    NoFreePort {
        /// The bind address.
        ip: IpAddr,
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The worker that owns the stream has stopped.
    #[error("relay worker {0} has stopped")]
    WorkerGone(usize),
    /// A shared-port relay was asked for a stream whose agent address is to be learned.
    #[error(
        "a shared-port relay needs each agent's address up front (AgentAddr::Fixed, from the \
         agent's SDP): on a port shared by many agents, learning cannot tell whose packets \
         are whose"
    )]
    AgentAddressRequired,
    /// A shared-port relay was asked for a source without the address it sends from.
    #[error(
        "{source_id} of {stream}: a shared-port relay needs the address the source sends from \
         (`remote`: from its SDP, or Asterisk externalMedia's UNICASTRTP_LOCAL_ADDRESS and \
         UNICASTRTP_LOCAL_PORT) to tell its packets from other sources'"
    )]
    SourceAddressRequired {
        /// The stream the source was to join.
        stream: StreamId,
        /// The source refused.
        source_id: SourceId,
    },
    /// On a shared port, another agent or source of the same worker has this address already.
    #[error(
        "{addr} is already {owner} on this worker's shared port: packets from one address \
         cannot be told apart"
    )]
    AddressTaken {
        /// The address asked for.
        addr: SocketAddr,
        /// Who has it.
        owner: Peer,
    },
}

/// Who an address belongs to on a shared port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The agent of a stream.
    Agent(StreamId),
    /// A source of a stream.
    Source(StreamId, SourceId),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Agent(stream) => write!(f, "the agent of {stream}"),
            Peer::Source(stream, source) => write!(f, "{source} of {stream}"),
        }
    }
}

impl RelayError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        RelayError::Io {
            what: what.into(),
            source,
        }
    }
}

/// How the relay runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Address the agent and source sockets bind to.
    pub bind: IpAddr,
    /// Worker threads (one per core is the intent).
    pub workers: usize,
    /// CPUs to pin the workers to (worker i on `cpus[i % len]`); empty: not pinned.
    pub cpus: Vec<usize>,
    /// UDP ports to allocate from (even ports, RFC 3550 §11); `None`: ephemeral ports.
    pub ports: Option<RangeInclusive<u16>>,
    /// SO_RCVBUF for every socket, if set; unset, shared ports take [`SHARED_RECV_BUFFER`]
    /// and per-stream sockets the system's default.
    pub recv_buffer: Option<usize>,
    /// SO_SNDBUF for every socket, if set.
    pub send_buffer: Option<usize>,
    /// Datagrams per recvmmsg/sendmmsg call.
    pub batch: usize,
    /// Sockets per stream and source, or two shared by all of a worker's streams.
    pub sharing: Sharing,
    /// Shared ports: after a read that found datagrams but less than a batch, the worker
    /// waits this long before it looks again, so that the next read takes a batch rather than
    /// a datagram or two, and senders are not made to wake it for every datagram (what a
    /// NIC's interrupt moderation does). Adds up to this much latency; zero (the default):
    /// look again at once. On the bench's machine 20 µs took the worker from about 80% to
    /// 60% of its core at 100,000 packets per second, added 15–40 µs to the median latency,
    /// and did not raise the most it forwards.
    pub coalesce: Duration,
    /// Shared ports only: the network interface whose receive queue 0 the worker reads
    /// through AF_XDP, bypassing the kernel's UDP stack for its two ports (see [`xdp`]). Needs
    /// root (CAP_NET_ADMIN and CAP_BPF), one worker, and `bind` set to the interface's IPv4
    /// address. On a loopback interface the kernel takes frames built this way only with
    /// `net.ipv4.conf.lo.accept_local=1` and `route_localnet=1`. `None` (the default): sockets only.
    pub xdp: Option<String>,
}

/// The receive buffer of a shared port unless [`RelayConfig::recv_buffer`] says otherwise: a
/// shared port carries all of a worker's streams, and the system's default (about 200 KB,
/// a few hundred datagrams) holds under a millisecond of them, less than a pause of the
/// worker's thread.
pub const SHARED_RECV_BUFFER: usize = 4 << 20;

/// How the relay gives out UDP ports (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sharing {
    /// A socket per agent stream and per source; addresses may be learned (symmetric RTP).
    #[default]
    PerStream,
    /// One agent-facing and one source-facing socket per worker, packets told apart by the
    /// sender's address: every agent ([`AgentAddr::Fixed`]) and every source (`remote`) must
    /// have a known address, unique on its worker.
    Shared,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpus: Vec::new(),
            ports: None,
            recv_buffer: None,
            send_buffer: None,
            batch: 32,
            sharing: Sharing::PerStream,
            coalesce: Duration::ZERO,
            xdp: None,
        }
    }
}

/// Where the agent's phone receives RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAddr {
    /// Symmetric RTP (RFC 4961): learn it from the first packet the agent sends to the stream's
    /// port, and latch; a new address takes over only after the latched one has been silent
    /// for [`RELATCH_AFTER`](AgentAddr::RELATCH_AFTER).
    Learn,
    /// A fixed address (from the agent's SDP). Per stream, packets from anywhere are still
    /// accepted on the stream's port; on a shared port only this address's reach the stream.
    Fixed(SocketAddr),
}

impl AgentAddr {
    /// How long a latched agent address must be silent before another one replaces it.
    pub const RELATCH_AFTER: std::time::Duration = std::time::Duration::from_secs(2);
}

/// What [`Relay::create_stream`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// How the stream is rewritten.
    pub config: StreamConfig,
    /// Where the agent receives.
    pub agent: AgentAddr,
    /// The output SSRC; `None`: random (RFC 3550 §8.1).
    pub ssrc: Option<Ssrc>,
}

/// A created stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its id, for every later call.
    pub id: StreamId,
    /// Its output SSRC for life.
    pub ssrc: Ssrc,
    /// The local address the agent's phone exchanges RTP (and muxed RTCP) with: put it in the
    /// SDP the agent gets. Shared: the worker's agent-facing port, the same for its streams.
    pub local: SocketAddr,
}

/// Counters of one stream: the rewrite's and the relay's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStreamStats {
    /// The rewrite's counters, with what the agent's receiver reports say.
    pub stream: StreamStats,
    /// The agent's address, configured or learned.
    pub agent: Option<SocketAddr>,
    /// Datagrams received from the agent (RTP and RTCP).
    pub from_agent: u64,
    /// Datagrams from another address than the latched agent's, ignored (per stream; on a
    /// shared port they cannot be told to be this stream's: see [`SharedPortStats`]).
    pub foreign: u64,
    /// Agent packets relayed to the active source.
    pub reverse_forwarded: u64,
    /// Agent packets dropped: no active source, or its address is not known yet.
    pub reverse_dropped: u64,
    /// Datagrams sent to the agent (rewritten, filler and RTCP).
    pub sent: u64,
    /// Rewritten packets dropped because the agent's address is not known yet.
    pub no_agent_address: u64,
    /// Datagrams the kernel refused to send (full buffer, unreachable).
    pub send_errors: u64,
    /// RTCP from sources (not relayed: the agent gets the bridge's own reports).
    pub source_rtcp: u64,
}

/// Counters of one worker's shared ports ([`Sharing::Shared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedPortStats {
    /// The worker.
    pub worker: usize,
    /// Its agent-facing address: every stream's [`StreamInfo::local`] on this worker.
    pub agent_port: SocketAddr,
    /// Its source-facing address: what [`Relay::add_source`] returns on this worker.
    pub source_port: SocketAddr,
    /// Datagrams on the agent-facing port from an address no stream's agent has: dropped.
    pub unknown_agents: u64,
    /// Datagrams on the source-facing port from an address no source has: dropped.
    pub unknown_sources: u64,
    /// The AF_XDP path's counters, when [`RelayConfig::xdp`] is set.
    pub xdp: Option<XdpStats>,
}

/// Counters of a worker's AF_XDP path ([`RelayConfig::xdp`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// Frames forwarded through the XDP socket.
    pub forwarded: u64,
    /// Datagrams sent through the UDP socket instead, their next hop's Ethernet address not
    /// yet learned.
    pub via_socket: u64,
    /// Frames the kernel dropped on the way in (no free frame or a full receive ring).
    pub dropped_in: u64,
    /// Frames the kernel refused to send (invalid descriptors).
    pub not_sent: u64,
    /// Frames still on the send ring when a batch was flushed: they leave with a later one.
    pub deferred: u64,
}

/// The relay's clock: monotonic, expressed as wall-clock microseconds from a fixed origin.
/// Every worker shares one, so a stream's time never jumps with NTP adjustments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall: Timestamp,
    mono: Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Timestamp::now(),
            mono: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.wall.plus(self.mono.elapsed())
    }
}

struct WorkerHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<sys::EventFd>,
    thread: Option<JoinHandle<()>>,
    /// The worker's agent-facing and source-facing addresses in shared mode.
    shared: Option<(SocketAddr, SocketAddr)>,
}

/// The running relay and its control interface. Dropping it stops the workers and closes
/// every socket.
pub struct Relay {
    config: RelayConfig,
    clock: Clock,
    workers: Vec<WorkerHandle>,
    next_stream: AtomicU32,
    next_port: AtomicU32,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Relay {
    /// Starts the workers.
    pub fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        if config.workers == 0 || config.workers > 256 {
            return Err(RelayError::BadConfig(format!(
                "workers = {} is outside 1..=256",
                config.workers
            )));
        }
        if config.coalesce > Duration::from_millis(10) {
            return Err(RelayError::BadConfig(format!(
                "coalesce = {:?} is above 10 ms: it would delay every packet by up to that much",
                config.coalesce
            )));
        }
        if config.batch == 0 || config.batch > 1024 {
            return Err(RelayError::BadConfig(format!(
                "batch = {} is outside 1..=1024",
                config.batch
            )));
        }
        if let Some(r) = &config.ports
            && (r.is_empty() || *r.start() == 0)
        {
            return Err(RelayError::BadConfig(format!(
                "port range {}..={} is empty or starts at 0",
                r.start(),
                r.end()
            )));
        }
        if let Some(interface) = &config.xdp {
            let bind_v4 = matches!(config.bind, IpAddr::V4(ip) if !ip.is_unspecified());
            if config.sharing != Sharing::Shared || config.workers != 1 || !bind_v4 {
                return Err(RelayError::BadConfig(format!(
                    "xdp on {interface} needs shared ports, one worker and an IPv4 bind address \
                     (have {:?}, {} workers, bind {})",
                    config.sharing, config.workers, config.bind
                )));
            }
        }
        let clock = Clock::start();
        let next_port = AtomicU32::new(0);
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let (tx, rx) = mpsc::channel();
            let wake = Arc::new(sys::EventFd::new().map_err(|e| RelayError::io("eventfd", e))?);
            let cpu = (!config.cpus.is_empty()).then(|| config.cpus[i % config.cpus.len()]);
            let shared = match config.sharing {
                Sharing::PerStream => None,
                Sharing::Shared => Some((
                    bind(&config, &next_port, true)?,
                    bind(&config, &next_port, true)?,
                )),
            };
            let shared_addrs = match &shared {
                Some((agents, sources)) => Some((local_addr(agents)?, local_addr(sources)?)),
                None => None,
            };
            let fast = match (&config.xdp, &shared_addrs) {
                (Some(interface), Some((agents, sources))) => Some(
                    worker::XdpPath::open(interface, *agents, *sources).map_err(|e| {
                        RelayError::io(format!("setting up AF_XDP on {interface}"), e)
                    })?,
                ),
                _ => None,
            };
            let worker = Worker::new(i, rx, Arc::clone(&wake), clock, &config, shared, fast)
                .map_err(|e| RelayError::io("epoll", e))?;
            let thread = std::thread::Builder::new()
                .name(format!("rtp-relay-{i}"))
                .spawn(move || worker.run(cpu))
                .map_err(|e| RelayError::io("spawning a relay worker", e))?;
            workers.push(WorkerHandle {
                commands: tx,
                wake,
                thread: Some(thread),
                shared: shared_addrs,
            });
        }
        Ok(Relay {
            config,
            clock,
            workers,
            next_stream: AtomicU32::new(1),
            next_port,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    fn worker_of(&self, id: StreamId) -> usize {
        id.0 as usize % self.workers.len()
    }

    fn call<T>(
        &self,
        id: StreamId,
        make: impl FnOnce(mpsc::SyncSender<Result<T, RelayError>>) -> Command,
    ) -> Result<T, RelayError> {
        self.call_worker(self.worker_of(id), make)
    }

    fn call_worker<T>(
        &self,
        w: usize,
        make: impl FnOnce(mpsc::SyncSender<Result<T, RelayError>>) -> Command,
    ) -> Result<T, RelayError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = &self.workers[w];
        handle
            .commands
            .send(make(tx))
            .map_err(|_| RelayError::WorkerGone(w))?;
        handle.wake.signal();
        rx.recv().map_err(|_| RelayError::WorkerGone(w))?
    }

    /// A socket of its own for a new stream or source (per stream), or none and the owning
    /// worker's shared address that `pick` chooses (shared).
    fn port(
        &self,
        id: StreamId,
        pick: fn((SocketAddr, SocketAddr)) -> SocketAddr,
    ) -> Result<(Option<UdpSocket>, SocketAddr), RelayError> {
        match self.workers[self.worker_of(id)].shared {
            Some(addrs) => Ok((None, pick(addrs))),
            None => {
                let socket = bind(&self.config, &self.next_port, false)?;
                let local = local_addr(&socket)?;
                Ok((Some(socket), local))
            }
        }
    }

    /// Creates an agent stream and, per stream, its agent-facing socket (shared: the stream
    /// uses its worker's; refused unless the agent's address is [`AgentAddr::Fixed`]).
    pub fn create_stream(&self, spec: StreamSpec) -> Result<StreamInfo, RelayError> {
        spec.config.validate()?;
        if self.config.sharing == Sharing::Shared && spec.agent == AgentAddr::Learn {
            return Err(RelayError::AgentAddressRequired);
        }
        let id = StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed));
        let ssrc = spec.ssrc.unwrap_or_else(|| Ssrc(rand::random()));
        let seq = Sequencer::new(
            spec.config,
            ssrc,
            rand::random(),
            rand::random(),
            self.clock.now(),
        )?;
        let (socket, local) = self.port(id, |(agents, _)| agents)?;
        self.call(id, |reply| Command::CreateStream {
            id,
            seq: Box::new(seq),
            socket,
            agent: spec.agent,
            reply,
        })?;
        Ok(StreamInfo { id, ssrc, local })
    }

    /// Removes a stream, closing its sockets; returns its final counters.
    pub fn remove_stream(&self, id: StreamId) -> Result<RelayStreamStats, RelayError> {
        self.call(id, |reply| Command::RemoveStream { id, reply })
    }

    /// Adds a source to a stream; returns the local address the media handler must send to
    /// (for Asterisk: externalMedia's `external_host`): per stream, a socket of the source's
    /// own; shared, the worker's source-facing port. `remote`, when known, is where the
    /// source sends from and where the agent's audio goes while it is active; per stream it
    /// may be `None` and is then learned from the source's packets, shared it is required.
    pub fn add_source(
        &self,
        id: StreamId,
        source: SourceId,
        spec: SourceSpec,
        remote: Option<SocketAddr>,
    ) -> Result<SocketAddr, RelayError> {
        spec.codec.validate()?;
        if self.config.sharing == Sharing::Shared && remote.is_none() {
            return Err(RelayError::SourceAddressRequired {
                stream: id,
                source_id: source,
            });
        }
        let (socket, local) = self.port(id, |(_, sources)| sources)?;
        self.call(id, |reply| Command::AddSource {
            id,
            source,
            spec,
            socket,
            remote,
            reply,
        })?;
        Ok(local)
    }

    /// Removes a source and closes its socket (if it was active, filler takes over).
    pub fn remove_source(&self, id: StreamId, source: SourceId) -> Result<(), RelayError> {
        self.call(id, |reply| Command::RemoveSource { id, source, reply })
    }

    /// Makes `to` the active source (or none); effective from the next packet the worker reads.
    /// Refused with [`RtpError::CodecMismatch`] when the source's codec differs.
    pub fn switch(&self, id: StreamId, to: Option<SourceId>) -> Result<(), RelayError> {
        self.call(id, |reply| Command::Switch { id, to, reply })
    }

    /// The stream's counters now.
    pub fn stats(&self, id: StreamId) -> Result<RelayStreamStats, RelayError> {
        self.call(id, |reply| Command::Stats { id, reply })
    }

    /// Each worker's shared ports and what they dropped (empty per stream).
    pub fn shared_port_stats(&self) -> Result<Vec<SharedPortStats>, RelayError> {
        let mut all = Vec::new();
        for (w, handle) in self.workers.iter().enumerate() {
            if handle.shared.is_some() {
                all.push(self.call_worker(w, |reply| Command::SharedStats { reply })?);
            }
        }
        Ok(all)
    }
}

/// Binds a UDP socket on the relay's address: from the port range (even ports) or
/// ephemeral; `shared`: a worker's shared port.
fn bind(
    config: &RelayConfig,
    next_port: &AtomicU32,
    shared: bool,
) -> Result<UdpSocket, RelayError> {
    let ip = config.bind;
    let recv_buffer = config.recv_buffer.or(shared.then_some(SHARED_RECV_BUFFER));
    let socket = |port: u16| -> io::Result<UdpSocket> {
        let addr = SocketAddr::new(ip, port);
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_nonblocking(true)?;
        if let Some(n) = recv_buffer {
            sys::set_buffer(s.as_raw_fd(), sys::Buffer::Receive, n)?;
        }
        if let Some(n) = config.send_buffer {
            sys::set_buffer(s.as_raw_fd(), sys::Buffer::Send, n)?;
        }
        if shared && addr.is_ipv4() {
            sys::set_dont_fragment(s.as_raw_fd())?;
        }
        s.bind(&addr.into())?;
        Ok(s.into())
    };
    match &config.ports {
        None => socket(0).map_err(|e| RelayError::io(format!("binding a UDP socket on {ip}"), e)),
        Some(range) => {
            let first = u32::from(*range.start() + (*range.start() & 1));
            let last = u32::from(*range.end());
            let slots = if last >= first {
                (last - first) / 2 + 1
            } else {
                0
            };
            for _ in 0..slots {
                let k = next_port.fetch_add(1, Ordering::Relaxed) % slots.max(1);
                let port = (first + 2 * k) as u16;
                match socket(port) {
                    Ok(s) => return Ok(s),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                    Err(e) => {
                        return Err(RelayError::io(format!("binding UDP {ip}:{port}"), e));
                    }
                }
            }
            Err(RelayError::NoFreePort {
                ip,
                first: *range.start(),
                last: *range.end(),
            })
        }
    }
}

fn local_addr(socket: &UdpSocket) -> Result<SocketAddr, RelayError> {
    socket
        .local_addr()
        .map_err(|e| RelayError::io("reading a socket's address", e))
}

impl Drop for Relay {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.commands.send(Command::Shutdown);
            w.wake.signal();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}
