//! One relay worker: an epoll loop that owns its streams, their sockets and their timers.
//!
//! Both ways of giving out ports ([`super::Sharing`]) run the same per-datagram logic
//! ([`Stream::source_datagram`], [`Stream::agent_datagram`]) and the same send path (a
//! [`Batch`] whose datagrams each carry their destination and their stream, flushed with one
//! sendmmsg). They differ only in how a datagram finds its stream: per stream by the socket it
//! arrived on (the epoll token), shared by its sender's address (a hash lookup).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::sys::{self, Batch, Dest, Epoll, EventFd, PeerKey};
use super::xdp::{self, Steering, XdpSocket};
use super::{
    AgentAddr, Clock, Peer, RelayConfig, RelayError, RelayStreamStats, SharedPortStats, XdpStats,
};
use crate::model::Timestamp;
use crate::rtp::{
    MAX_SOURCES, RtpError, Sequencer, SourceId, SourceSpec, StreamId, Verdict, is_rtcp,
};

/// Requests from the control interface; each carries the channel its answer goes back on.
/// A `socket` is the stream's or source's own (per stream), or `None` on shared ports.
pub(crate) enum Command {
    CreateStream {
        id: StreamId,
        seq: Box<Sequencer>,
        socket: Option<UdpSocket>,
        agent: AgentAddr,
        reply: mpsc::SyncSender<Result<(), RelayError>>,
    },
    RemoveStream {
        id: StreamId,
        reply: mpsc::SyncSender<Result<RelayStreamStats, RelayError>>,
    },
    AddSource {
        id: StreamId,
        source: SourceId,
        spec: SourceSpec,
        socket: Option<UdpSocket>,
        remote: Option<SocketAddr>,
        reply: mpsc::SyncSender<Result<(), RelayError>>,
    },
    RemoveSource {
        id: StreamId,
        source: SourceId,
        reply: mpsc::SyncSender<Result<(), RelayError>>,
    },
    Switch {
        id: StreamId,
        to: Option<SourceId>,
        reply: mpsc::SyncSender<Result<(), RelayError>>,
    },
    Stats {
        id: StreamId,
        reply: mpsc::SyncSender<Result<RelayStreamStats, RelayError>>,
    },
    SharedStats {
        reply: mpsc::SyncSender<Result<SharedPortStats, RelayError>>,
    },
    Shutdown,
}

/// epoll token of the wake-up eventfd; stream tokens are `slot << 8 | role`.
const WAKE: u64 = u64::MAX;
/// epoll token of the shared agent-facing socket.
const SHARED_AGENTS: u64 = u64::MAX - 1;
/// epoll token of the shared source-facing socket.
const SHARED_SOURCES: u64 = u64::MAX - 2;
/// epoll token of the XDP socket that reads both shared ports.
const SHARED_XDP: u64 = u64::MAX - 3;
/// Frames in an XDP socket's UMEM (16 MiB): room for bursts while the worker is away.
const XDP_FRAMES: u32 = 8192;
/// Role 0 is the agent socket; role `1 + i` is source slot `i`.
const AGENT: u64 = 0;
/// Batches a shared socket is read for per readiness event before timers and commands get
/// their turn (epoll is level-triggered: what is left is reported again at once).
const BATCHES_PER_EVENT: usize = 16;

/// The socket a stream or a source is reached on.
enum Port {
    /// Its own (per stream), closed with it.
    Own(UdpSocket),
    /// The worker's shared socket, which outlives it.
    Shared(RawFd),
}

impl Port {
    fn fd(&self) -> RawFd {
        match self {
            Port::Own(s) => s.as_raw_fd(),
            Port::Shared(fd) => *fd,
        }
    }
}

struct SourceSock {
    id: SourceId,
    port: Port,
    /// Where the source sends from, and where the agent's audio goes while it is active.
    remote: Option<SocketAddr>,
    remote_key: Option<PeerKey>,
    remote_dest: Option<Dest>,
    /// Configured (not learned) remote.
    fixed: bool,
}

impl SourceSock {
    /// Per stream: learns the source's address from datagram `i` (unless configured). The
    /// common case, the same sender as before, compares keys and parses nothing.
    #[inline]
    fn learn(&mut self, from: PeerKey, batch: &Batch, i: usize) {
        if self.fixed || self.remote_key == Some(from) {
            return;
        }
        if let Some(addr) = batch.sender(i) {
            self.remote = Some(addr);
            self.remote_key = Some(from);
            self.remote_dest = Some(sys::std_to_sockaddr(addr));
        }
    }
}

struct Stream {
    id: StreamId,
    seq: Sequencer,
    port: Port,
    agent: AgentAddr,
    agent_addr: Option<SocketAddr>,
    agent_key: Option<PeerKey>,
    agent_dest: Option<Dest>,
    agent_seen: Timestamp,
    sources: [Option<SourceSock>; MAX_SOURCES],
    scheduled: Option<Timestamp>,
    counters: RelayStreamStats,
}

impl Stream {
    fn snapshot(&self) -> RelayStreamStats {
        let mut s = self.counters;
        s.stream = self.seq.stats();
        s.agent = self.agent_addr;
        s
    }

    fn latch(&mut self, addr: SocketAddr) {
        self.agent_addr = Some(addr);
        self.agent_key = Some(PeerKey::of(addr));
        self.agent_dest = Some(sys::std_to_sockaddr(addr));
    }

    /// A datagram from source slot `k`: its RTCP is counted (the agent gets the bridge's own
    /// reports), its RTP rewritten in place. Returns where it goes: the agent, if known.
    #[inline]
    fn source_datagram(&mut self, now: Timestamp, k: usize, data: &mut [u8]) -> Option<&Dest> {
        let source = self.sources.get(k)?.as_ref()?.id;
        if is_rtcp(data) {
            self.counters.source_rtcp += 1;
            return None;
        }
        if self.seq.rewrite(now, source, data) != Verdict::Forward {
            return None;
        }
        if self.agent_dest.is_none() {
            self.counters.no_agent_address += 1;
        }
        self.agent_dest.as_ref()
    }

    /// A datagram from the agent's address: its RTCP (receiver reports) is read, its RTP goes
    /// to the active source. Returns where it goes: the active source's address, if known.
    #[inline]
    fn agent_datagram(&mut self, now: Timestamp, data: &[u8]) -> Option<&Dest> {
        if is_rtcp(data) {
            let _ = self.seq.handle_rtcp(now, data);
            return None;
        }
        let active = self.seq.active();
        let dest = self
            .sources
            .iter()
            .flatten()
            .find(|s| Some(s.id) == active)
            .and_then(|s| s.remote_dest.as_ref());
        if dest.is_none() {
            self.counters.reverse_dropped += 1;
        }
        dest
    }

    /// The socket of the active source, which the agent's audio leaves from (per stream).
    fn active_port(&self) -> Option<RawFd> {
        let active = self.seq.active()?;
        self.sources
            .iter()
            .flatten()
            .find(|s| s.id == active)
            .map(|s| s.port.fd())
    }
}

/// Which way a flushed send list went, for the counters.
#[derive(Debug, Clone, Copy)]
enum Direction {
    ToAgents,
    ToSources,
}

/// Shared mode: the worker's two sockets, the routes from a sender's address to its stream,
/// and the AF_XDP path if it has one.
struct SharedPorts {
    agents: UdpSocket,
    sources: UdpSocket,
    routes: Routes,
    xdp: Option<XdpPath>,
}

/// On the shared ports a datagram finds its stream (and source) by its sender's address.
#[derive(Default)]
struct Routes {
    /// Agent address → stream slot.
    agents: FxHashMap<PeerKey, usize>,
    /// Source address → (stream slot, source slot).
    sources: FxHashMap<PeerKey, (usize, usize)>,
    unknown_agents: u64,
    unknown_sources: u64,
}

impl Routes {
    /// The stream slot, and the source slot for a source, of a datagram from `from` on the
    /// source-facing port (`from_source`) or the agent-facing one; strangers are counted.
    fn route(
        &mut self,
        from_source: bool,
        from: Option<PeerKey>,
    ) -> Option<(usize, Option<usize>)> {
        let found = if from_source {
            from.and_then(|key| self.sources.get(&key))
                .map(|&(slot, k)| (slot, Some(k)))
        } else {
            from.and_then(|key| self.agents.get(&key))
                .map(|&slot| (slot, None))
        };
        if found.is_none() {
            if from_source {
                self.unknown_sources += 1;
            } else {
                self.unknown_agents += 1;
            }
        }
        found
    }
}

/// The shared ports read and written through AF_XDP ([`super::xdp`]): both ports' datagrams
/// arrive as frames on one XDP socket and leave rewritten from the same frames.
pub(crate) struct XdpPath {
    socket: XdpSocket,
    _steering: Steering,
    /// The worker's agent-facing and source-facing addresses: frames leave from them.
    agents: SocketAddrV4,
    sources: SocketAddrV4,
    local_mac: [u8; 6],
    /// Every next hop is all zeros (a loopback interface).
    loopback: bool,
    /// Next hops learned from the frames of known peers, forgotten with them (so bounded by
    /// the worker's peers).
    macs: FxHashMap<PeerKey, [u8; 6]>,
    frames: Vec<(u64, u32)>,
    stats: XdpStats,
}

impl XdpPath {
    /// Attaches the steering program for `agents` and `sources` to `interface` and opens the
    /// XDP socket for its queue 0.
    pub(crate) fn open(
        interface: &str,
        agents: SocketAddr,
        sources: SocketAddr,
    ) -> std::io::Result<XdpPath> {
        let (SocketAddr::V4(agents), SocketAddr::V4(sources)) = (agents, sources) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "AF_XDP needs IPv4 ports",
            ));
        };
        let (index, local_mac, loopback) = xdp::interface(interface)?;
        let steering = Steering::attach(index, &[agents.port(), sources.port()])?;
        let socket = XdpSocket::open(index, 0, XDP_FRAMES)?;
        steering.bind(0, &socket)?;
        Ok(XdpPath {
            socket,
            _steering: steering,
            agents,
            sources,
            local_mac,
            loopback,
            macs: FxHashMap::default(),
            frames: Vec::new(),
            stats: XdpStats::default(),
        })
    }

    fn next_hop(&self, to: SocketAddrV4) -> Option<[u8; 6]> {
        if self.loopback {
            return Some([0; 6]);
        }
        self.macs.get(&PeerKey::of(SocketAddr::V4(to))).copied()
    }

    fn learn(&mut self, from: PeerKey, mac: [u8; 6]) {
        if !self.loopback && self.macs.get(&from) != Some(&mac) {
            self.macs.insert(from, mac);
        }
    }
}

pub(crate) struct Worker {
    index: usize,
    epoll: Epoll,
    wake: Arc<EventFd>,
    commands: mpsc::Receiver<Command>,
    clock: Clock,
    streams: Vec<Option<Stream>>,
    free: Vec<usize>,
    by_id: FxHashMap<StreamId, usize>,
    timers: BinaryHeap<Reverse<(Timestamp, usize)>>,
    batch: Batch,
    out: Vec<u8>,
    shared: Option<SharedPorts>,
    coalesce: Duration,
}

impl Worker {
    /// A worker; `shared` holds its agent-facing and source-facing sockets in shared mode.
    pub(crate) fn new(
        index: usize,
        commands: mpsc::Receiver<Command>,
        wake: Arc<EventFd>,
        clock: Clock,
        config: &RelayConfig,
        shared: Option<(UdpSocket, UdpSocket)>,
        xdp: Option<XdpPath>,
    ) -> std::io::Result<Worker> {
        let epoll = Epoll::new()?;
        epoll.add(wake.raw(), WAKE)?;
        let shared = match shared {
            Some((agents, sources)) => {
                epoll.add(agents.as_raw_fd(), SHARED_AGENTS)?;
                epoll.add(sources.as_raw_fd(), SHARED_SOURCES)?;
                if let Some(x) = &xdp {
                    epoll.add(x.socket.raw(), SHARED_XDP)?;
                }
                Some(SharedPorts {
                    agents,
                    sources,
                    routes: Routes::default(),
                    xdp,
                })
            }
            None => None,
        };
        Ok(Worker {
            index,
            epoll,
            wake,
            commands,
            clock,
            streams: Vec::new(),
            free: Vec::new(),
            by_id: FxHashMap::default(),
            timers: BinaryHeap::new(),
            batch: Batch::new(config.batch),
            out: vec![0u8; Sequencer::MIN_TRANSMIT_BUFFER.max(sys::MAX_DATAGRAM)],
            shared,
            coalesce: config.coalesce,
        })
    }

    /// The loop: timers, then readiness, then commands, until shutdown.
    ///
    /// On shared ports a worker that sleeps in epoll as soon as its socket is empty is woken
    /// for nearly every datagram: each wake-up costs the sender's core (on a virtual machine,
    /// an inter-processor interrupt and an exit to the hypervisor) and the worker's more than
    /// relaying the datagram. So after a read that found a partial batch the worker naps for
    /// [`RelayConfig::coalesce`], on a timer of its own, and the datagrams that arrive
    /// meanwhile queue up for one batched read. An idle socket (a read that found nothing)
    /// sleeps in epoll as always, and a full batch is followed by another read at once.
    pub(crate) fn run(mut self, cpu: Option<usize>) {
        if let Some(cpu) = cpu
            && let Err(e) = sys::pin_to_cpu(cpu)
        {
            tracing::warn!(worker = self.index, cpu, "cannot pin relay worker: {e}");
        }
        if self.shared.is_some() && !self.coalesce.is_zero() {
            // Linux stretches a sleep by the thread's timer slack (50 µs by default).
            sys::set_timer_slack(Duration::from_micros(1));
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        loop {
            let now = self.clock.now();
            self.run_timers(now);
            let timeout = self.timeout_ms(now);
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(worker = self.index, "epoll_wait failed, worker stops: {e}");
                    return;
                }
            };
            // One clock read per round for the shared ports' first batch (a read of the
            // clock costs as much as rewriting a packet or two).
            let now = if n > 0 { self.clock.now() } else { now };
            let mut nap = false;
            for ev in &events[..n] {
                match ev.u64 {
                    WAKE => {
                        self.wake.drain();
                        if !self.commands() {
                            return;
                        }
                    }
                    SHARED_SOURCES => nap |= self.shared_readable(now, true),
                    SHARED_AGENTS => nap |= self.shared_readable(now, false),
                    SHARED_XDP => nap |= self.shared_xdp_readable(now),
                    token => {
                        let slot = (token >> 8) as usize;
                        match token & 0xFF {
                            AGENT => self.agent_readable(slot),
                            role => self.source_readable(slot, (role - 1) as usize),
                        }
                    }
                }
            }
            if nap && !self.coalesce.is_zero() {
                std::thread::sleep(self.coalesce);
            }
        }
    }

    fn timeout_ms(&self, now: Timestamp) -> i32 {
        match self.timers.peek() {
            None => 100,
            Some(Reverse((t, _))) => {
                let micros = t.0.saturating_sub(now.0);
                if micros <= 0 {
                    0
                } else {
                    ((micros + 999) / 1000).min(100) as i32
                }
            }
        }
    }

    fn schedule(&mut self, slot: usize) {
        if let Some(Some(s)) = self.streams.get_mut(slot) {
            schedule(&mut self.timers, slot, s);
        }
    }

    fn run_timers(&mut self, now: Timestamp) {
        while let Some(Reverse((t, slot))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(Some(s)) = self.streams.get_mut(slot) else {
                continue;
            };
            if s.scheduled != Some(t) {
                continue; // superseded by an earlier entry
            }
            s.scheduled = None;
            loop {
                match s.seq.poll_transmit(now, &mut self.out) {
                    Ok(Some(tx)) => match &s.agent_dest {
                        Some(dest) => match sys::send_one(s.port.fd(), &self.out[..tx.len], dest) {
                            Ok(()) => s.counters.sent += 1,
                            Err(_) => s.counters.send_errors += 1,
                        },
                        None => s.counters.no_agent_address += 1,
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(stream = %s.id, "filler/report not written: {e}");
                        break;
                    }
                }
            }
            self.schedule(slot);
        }
    }

    /// Per stream: datagrams on a source's own socket. Rewritten in place, sent to the agent
    /// from the stream's socket.
    fn source_readable(&mut self, slot: usize, src_slot: usize) {
        let Worker {
            streams,
            batch,
            clock,
            ..
        } = self;
        let Some(Some(stream)) = streams.get_mut(slot) else {
            return;
        };
        let Some(Some(src)) = stream.sources.get(src_slot) else {
            return;
        };
        let (fd, agent_fd) = (src.port.fd(), stream.port.fd());
        loop {
            let n = match batch.recv(fd) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = clock.now();
            let Some(Some(stream)) = streams.get_mut(slot) else {
                return;
            };
            for i in 0..n {
                let (data, from) = batch.datagram(i);
                let len = data.len();
                if let Some(dest) = stream.source_datagram(now, src_slot, data) {
                    batch.push(i, len, dest, slot);
                }
                if let (Some(from), Some(Some(src))) = (from, stream.sources.get_mut(src_slot)) {
                    src.learn(from, batch, i);
                }
            }
            flush(batch, agent_fd, streams, Direction::ToAgents);
            if n < batch.capacity() {
                break;
            }
        }
        self.schedule(slot);
    }

    /// Per stream: datagrams on the stream's own socket. The agent's address is latched
    /// (symmetric RTP) and anyone else ignored; its RTCP is read, its RTP relayed from the
    /// active source's socket.
    fn agent_readable(&mut self, slot: usize) {
        let Worker {
            streams,
            batch,
            clock,
            ..
        } = self;
        let Some(Some(stream)) = streams.get_mut(slot) else {
            return;
        };
        let fd = stream.port.fd();
        loop {
            let n = match batch.recv(fd) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = clock.now();
            let Some(Some(stream)) = streams.get_mut(slot) else {
                return;
            };
            let reverse_fd = stream.active_port();
            for i in 0..n {
                stream.counters.from_agent += 1;
                let (_, from) = batch.datagram(i);
                let Some(from) = from else { continue };
                if stream.agent_key != Some(from) {
                    let silent = now.since(stream.agent_seen) >= AgentAddr::RELATCH_AFTER;
                    let learn = stream.agent == AgentAddr::Learn;
                    match batch.sender(i) {
                        Some(addr) if learn && (stream.agent_addr.is_none() || silent) => {
                            stream.latch(addr);
                        }
                        _ if learn => {
                            stream.counters.foreign += 1;
                            continue;
                        }
                        // A fixed agent: packets from anywhere are accepted on its own port.
                        _ => {}
                    }
                }
                if stream.agent_key == Some(from) {
                    stream.agent_seen = now;
                }
                let (data, _) = batch.datagram(i);
                let len = data.len();
                if let Some(dest) = stream.agent_datagram(now, data) {
                    batch.push(i, len, dest, slot);
                }
            }
            if let Some(reverse_fd) = reverse_fd {
                flush(batch, reverse_fd, streams, Direction::ToSources);
            }
            if n < batch.capacity() {
                break;
            }
        }
        // An agent address just learned lets queued filler and reports go out.
        self.schedule(slot);
    }

    /// Shared: datagrams from every source (`from_sources`) or every agent of the worker on
    /// one socket. Each finds its stream by its sender's address and is rewritten in place;
    /// the batch leaves in one sendmmsg from the other shared socket, each datagram to its own
    /// agent (or its stream's active source; RTCP from agents is read, not sent on). Returns
    /// whether the last read found a partial batch (see [`run`](Self::run)).
    fn shared_readable(&mut self, mut now: Timestamp, from_sources: bool) -> bool {
        let Worker {
            streams,
            batch,
            clock,
            timers,
            shared: Some(shared),
            ..
        } = self
        else {
            return false;
        };
        let (agents_fd, sources_fd) = (shared.agents.as_raw_fd(), shared.sources.as_raw_fd());
        let (fd, out_fd, direction) = if from_sources {
            (sources_fd, agents_fd, Direction::ToAgents)
        } else {
            (agents_fd, sources_fd, Direction::ToSources)
        };
        for round in 0..BATCHES_PER_EVENT {
            let n = match batch.recv(fd) {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if round > 0 {
                now = clock.now();
            }
            for i in 0..n {
                let (data, from) = batch.datagram(i);
                let Some((slot, k)) = shared.routes.route(from_sources, from) else {
                    continue;
                };
                let Some(Some(stream)) = streams.get_mut(slot) else {
                    continue;
                };
                let len = data.len();
                if let Some(dest) = shared_datagram(timers, slot, stream, now, k, data) {
                    batch.push(i, len, &dest, slot);
                }
            }
            flush(batch, out_fd, streams, direction);
            if n < batch.capacity() {
                return true;
            }
        }
        false
    }

    /// Shared, through AF_XDP: frames for both ports from one XDP socket. Each finds its
    /// stream by its sender's address like a datagram on the sockets, and leaves from the
    /// frame it came in, its headers rewritten towards the new peer; a peer whose next hop is
    /// not yet known gets it through the UDP socket. Returns whether the last read found a
    /// partial batch.
    fn shared_xdp_readable(&mut self, mut now: Timestamp) -> bool {
        let cap = self.batch.capacity();
        let Worker {
            streams,
            clock,
            timers,
            shared: Some(shared),
            ..
        } = self
        else {
            return false;
        };
        let SharedPorts {
            agents,
            sources,
            routes,
            xdp: Some(x),
        } = shared
        else {
            return false;
        };
        let (agents_fd, sources_fd) = (agents.as_raw_fd(), sources.as_raw_fd());
        for round in 0..BATCHES_PER_EVENT {
            x.frames.clear();
            x.socket.recv(&mut x.frames, cap);
            let n = x.frames.len();
            if n == 0 {
                return false;
            }
            if round > 0 {
                now = clock.now();
            }
            for i in 0..n {
                let (addr, len) = x.frames[i];
                let frame = x.socket.frame(addr, len as usize);
                let Some(h) = xdp::parse_udp4(frame) else {
                    x.socket.give_back(addr);
                    continue;
                };
                let from = PeerKey::of(SocketAddr::V4(h.src));
                let payload = &mut frame[xdp::HEADERS..xdp::HEADERS + h.len];
                let to_agent = h.dst.port() == x.sources.port();
                if !to_agent && h.dst.port() != x.agents.port() {
                    x.socket.give_back(addr); // not one of ours (the program takes only ours)
                    continue;
                }
                let Some((slot, k)) = routes.route(to_agent, Some(from)) else {
                    x.socket.give_back(addr);
                    continue;
                };
                let Some(Some(stream)) = streams.get_mut(slot) else {
                    x.socket.give_back(addr);
                    continue;
                };
                let dest = shared_datagram(timers, slot, stream, now, k, payload);
                x.learn(from, h.src_mac);
                let to = dest.and_then(|d| match sys::sockaddr_to_std(&d.0, d.1) {
                    Some(SocketAddr::V4(a)) => Some(a),
                    _ => None,
                });
                let (Some(dest), Some(to)) = (dest, to) else {
                    x.socket.give_back(addr);
                    continue;
                };
                let out = if to_agent { x.agents } else { x.sources };
                let hop = x.next_hop(to);
                let frame = x.socket.frame(addr, xdp::FRAME);
                let written =
                    hop.and_then(|mac| xdp::write_udp4(frame, mac, x.local_mac, out, to, h.len));
                let delivered = match written {
                    Some(n) => {
                        x.socket.send(addr, n as u32);
                        x.stats.forwarded += 1;
                        true
                    }
                    None => {
                        let fd = if to_agent { agents_fd } else { sources_fd };
                        let payload = &frame[xdp::HEADERS..xdp::HEADERS + h.len];
                        x.stats.via_socket += 1;
                        let ok = sys::send_one(fd, payload, &dest).is_ok();
                        x.socket.give_back(addr);
                        ok
                    }
                };
                match (delivered, to_agent) {
                    (true, true) => stream.counters.sent += 1,
                    (true, false) => stream.counters.reverse_forwarded += 1,
                    (false, _) => stream.counters.send_errors += 1,
                }
            }
            x.stats.deferred += u64::from(x.socket.flush());
            if n < cap {
                return true;
            }
        }
        false
    }

    /// Applies queued commands; false on shutdown.
    fn commands(&mut self) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Shutdown => return false,
                Command::CreateStream {
                    id,
                    seq,
                    socket,
                    agent,
                    reply,
                } => {
                    let r = self.create(id, *seq, socket, agent);
                    let _ = reply.send(r);
                }
                Command::RemoveStream { id, reply } => {
                    let _ = reply.send(self.remove(id));
                }
                Command::AddSource {
                    id,
                    source,
                    spec,
                    socket,
                    remote,
                    reply,
                } => {
                    let _ = reply.send(self.add_source(id, source, spec, socket, remote));
                }
                Command::RemoveSource { id, source, reply } => {
                    let _ = reply.send(self.remove_source(id, source));
                }
                Command::Switch { id, to, reply } => {
                    let now = self.clock.now();
                    let r = self
                        .stream_mut(id)
                        .and_then(|(_, s)| s.seq.switch_to(now, to).map_err(RelayError::from));
                    if let Ok(slot) = self.slot(id) {
                        self.schedule(slot);
                    }
                    let _ = reply.send(r);
                }
                Command::Stats { id, reply } => {
                    let r = self.stream_mut(id).map(|(_, s)| s.snapshot());
                    let _ = reply.send(r);
                }
                Command::SharedStats { reply } => {
                    let _ = reply.send(self.shared_stats());
                }
            }
        }
        true
    }

    fn shared_stats(&self) -> Result<SharedPortStats, RelayError> {
        let Some(shared) = &self.shared else {
            return Err(RelayError::BadConfig(
                "this relay does not share ports".into(),
            ));
        };
        let addr = |s: &UdpSocket| {
            s.local_addr()
                .map_err(|e| RelayError::io("reading a socket's address", e))
        };
        Ok(SharedPortStats {
            worker: self.index,
            agent_port: addr(&shared.agents)?,
            source_port: addr(&shared.sources)?,
            unknown_agents: shared.routes.unknown_agents,
            unknown_sources: shared.routes.unknown_sources,
            xdp: shared.xdp.as_ref().map(|x| {
                let (dropped_in, invalid) = x.socket.dropped();
                XdpStats {
                    dropped_in,
                    not_sent: invalid,
                    ..x.stats
                }
            }),
        })
    }

    fn slot(&self, id: StreamId) -> Result<usize, RelayError> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or(RelayError::UnknownStream(id))
    }

    fn stream_mut(&mut self, id: StreamId) -> Result<(usize, &mut Stream), RelayError> {
        let slot = self.slot(id)?;
        match self.streams.get_mut(slot) {
            Some(Some(s)) => Ok((slot, s)),
            _ => Err(RelayError::UnknownStream(id)),
        }
    }

    /// Who has `key` on the shared ports already, if anyone.
    fn owner(&self, agent: bool, key: PeerKey) -> Option<Peer> {
        let shared = self.shared.as_ref()?;
        if agent {
            let slot = *shared.routes.agents.get(&key)?;
            let stream = self.streams.get(slot)?.as_ref()?;
            Some(Peer::Agent(stream.id))
        } else {
            let &(slot, k) = shared.routes.sources.get(&key)?;
            let stream = self.streams.get(slot)?.as_ref()?;
            let source = stream.sources.get(k)?.as_ref()?;
            Some(Peer::Source(stream.id, source.id))
        }
    }

    /// The port a new stream or source uses: its own socket, registered with epoll under
    /// `token`; or the shared socket (`agent` side or source side), if `addr` is free on it.
    fn port(
        &mut self,
        socket: Option<UdpSocket>,
        token: u64,
        agent: bool,
        addr: Option<SocketAddr>,
    ) -> Result<Port, RelayError> {
        if let Some(socket) = socket {
            self.epoll
                .add(socket.as_raw_fd(), token)
                .map_err(|e| RelayError::io("registering a socket", e))?;
            return Ok(Port::Own(socket));
        }
        let Some(shared) = &self.shared else {
            return Err(RelayError::BadConfig(
                "a stream or source without a socket on a relay that does not share ports".into(),
            ));
        };
        let fd = if agent {
            shared.agents.as_raw_fd()
        } else {
            shared.sources.as_raw_fd()
        };
        // The control interface refuses these before they get here.
        let Some(addr) = addr else {
            return Err(RelayError::BadConfig(
                "a shared port needs the peer's address".into(),
            ));
        };
        if let Some(owner) = self.owner(agent, PeerKey::of(addr)) {
            return Err(RelayError::AddressTaken { addr, owner });
        }
        Ok(Port::Shared(fd))
    }

    fn create(
        &mut self,
        id: StreamId,
        seq: Sequencer,
        socket: Option<UdpSocket>,
        agent: AgentAddr,
    ) -> Result<(), RelayError> {
        let fixed = match agent {
            AgentAddr::Fixed(a) => Some(a),
            AgentAddr::Learn => None,
        };
        let slot = self.free.last().copied().unwrap_or(self.streams.len());
        let port = self.port(socket, token(slot, AGENT), true, fixed)?;
        if slot == self.streams.len() {
            self.streams.push(None);
        } else {
            self.free.pop();
        }
        let mut stream = Stream {
            id,
            seq,
            port,
            agent,
            agent_addr: None,
            agent_key: None,
            agent_dest: None,
            agent_seen: self.clock.now(),
            sources: Default::default(),
            scheduled: None,
            counters: RelayStreamStats::default(),
        };
        if let Some(a) = fixed {
            stream.latch(a);
            if let (Port::Shared(_), Some(shared)) = (&stream.port, &mut self.shared) {
                shared.routes.agents.insert(PeerKey::of(a), slot);
            }
        }
        self.streams[slot] = Some(stream);
        self.by_id.insert(id, slot);
        self.schedule(slot);
        Ok(())
    }

    fn remove(&mut self, id: StreamId) -> Result<RelayStreamStats, RelayError> {
        let slot = self.slot(id)?;
        let Some(stream) = self.streams[slot].take() else {
            return Err(RelayError::UnknownStream(id));
        };
        self.by_id.remove(&id);
        self.free.push(slot);
        self.release(&stream.port, true, stream.agent_key);
        for s in stream.sources.iter().flatten() {
            self.release(&s.port, false, s.remote_key);
        }
        Ok(stream.snapshot())
    }

    /// Stops delivering to a stream's or source's port: its own socket leaves epoll (and is
    /// closed when dropped), or its address leaves the shared port's map.
    fn release(&mut self, port: &Port, agent: bool, key: Option<PeerKey>) {
        match (port, &mut self.shared, key) {
            (Port::Own(socket), _, _) => {
                let _ = self.epoll.delete(socket.as_raw_fd());
            }
            (Port::Shared(_), Some(shared), Some(key)) => {
                if agent {
                    shared.routes.agents.remove(&key);
                } else {
                    shared.routes.sources.remove(&key);
                }
                if let Some(x) = &mut shared.xdp {
                    x.macs.remove(&key);
                }
            }
            (Port::Shared(_), _, _) => {}
        }
    }

    fn add_source(
        &mut self,
        id: StreamId,
        source: SourceId,
        spec: SourceSpec,
        socket: Option<UdpSocket>,
        remote: Option<SocketAddr>,
    ) -> Result<(), RelayError> {
        let (slot, stream) = self.stream_mut(id)?;
        let Some(free) = stream.sources.iter().position(Option::is_none) else {
            return Err(RtpError::TooManySources { max: MAX_SOURCES }.into());
        };
        if stream.sources.iter().flatten().any(|s| s.id == source) {
            return Err(RtpError::DuplicateSource(source).into());
        }
        let port = self.port(socket, token(slot, 1 + free as u64), false, remote)?;
        let (slot, stream) = self.stream_mut(id)?;
        if let Err(e) = stream.seq.add_source(source, spec) {
            self.release(&port, false, None);
            return Err(e.into());
        }
        let remote_key = remote.map(PeerKey::of);
        if let (Port::Shared(_), Some(shared), Some(key)) = (&port, &mut self.shared, remote_key) {
            shared.routes.sources.insert(key, (slot, free));
        }
        if let Some(Some(stream)) = self.streams.get_mut(slot) {
            stream.sources[free] = Some(SourceSock {
                id: source,
                port,
                remote,
                remote_key,
                remote_dest: remote.map(sys::std_to_sockaddr),
                fixed: remote.is_some(),
            });
        }
        Ok(())
    }

    fn remove_source(&mut self, id: StreamId, source: SourceId) -> Result<(), RelayError> {
        let (slot, stream) = self.stream_mut(id)?;
        stream.seq.remove_source(source)?;
        let taken = stream
            .sources
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.id == source))
            .and_then(Option::take);
        if let Some(s) = taken {
            self.release(&s.port, false, s.remote_key);
        }
        self.schedule(slot);
        Ok(())
    }
}

fn token(slot: usize, role: u64) -> u64 {
    ((slot as u64) << 8) | role
}

/// Puts the stream's next timer on the heap if it is earlier than the one already there.
#[inline]
/// A datagram on a shared port, for stream `slot`: from its source `k`, or from its agent
/// (`None`); rewritten in place. Returns where it goes, if anywhere.
fn shared_datagram(
    timers: &mut BinaryHeap<Reverse<(Timestamp, usize)>>,
    slot: usize,
    stream: &mut Stream,
    now: Timestamp,
    k: Option<usize>,
    data: &mut [u8],
) -> Option<Dest> {
    match k {
        Some(k) => {
            let dest = stream.source_datagram(now, k, data).copied();
            // The first packet sent starts the sender reports' timer.
            schedule(timers, slot, stream);
            dest
        }
        None => {
            stream.counters.from_agent += 1;
            stream.agent_seen = now;
            stream.agent_datagram(now, data).copied()
        }
    }
}

fn schedule(timers: &mut BinaryHeap<Reverse<(Timestamp, usize)>>, slot: usize, s: &mut Stream) {
    if let Some(t) = s.seq.poll_timeout()
        && s.scheduled.is_none_or(|old| t < old)
    {
        s.scheduled = Some(t);
        timers.push(Reverse((t, slot)));
    }
}

/// Sends the batch's send list from `fd` and counts, per stream, what went and what the
/// kernel refused.
fn flush(batch: &mut Batch, fd: RawFd, streams: &mut [Option<Stream>], direction: Direction) {
    if batch.pending() == 0 {
        return;
    }
    batch.flush(fd);
    for (slot, delivered) in batch.outcomes() {
        let Some(Some(s)) = streams.get_mut(slot) else {
            continue;
        };
        match (delivered, direction) {
            (true, Direction::ToAgents) => s.counters.sent += 1,
            (true, Direction::ToSources) => s.counters.reverse_forwarded += 1,
            (false, _) => s.counters.send_errors += 1,
        }
    }
}
