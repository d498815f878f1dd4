//! One relay worker: an epoll loop that owns its streams, their sockets and their timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;

use rustc_hash::FxHashMap;

use super::sys::{self, Batch, Epoll, EventFd};
use super::{AgentAddr, Clock, RelayError, RelayStreamStats};
use crate::model::Timestamp;
use crate::rtp::{MAX_SOURCES, Sequencer, SourceId, SourceSpec, StreamId, Verdict, is_rtcp};

/// Requests from the control interface; each carries the channel its answer goes back on.
pub(crate) enum Command {
    CreateStream {
        id: StreamId,
        seq: Box<Sequencer>,
        socket: UdpSocket,
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
        socket: UdpSocket,
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
    Shutdown,
}

/// epoll token of the wake-up eventfd; stream tokens are `slot << 8 | role`.
const WAKE: u64 = u64::MAX;
/// Role 0 is the agent socket; role `1 + i` is source slot `i`.
const AGENT: u64 = 0;

type Dest = (libc::sockaddr_storage, libc::socklen_t);

struct SourceSock {
    id: SourceId,
    socket: UdpSocket,
    /// Where the agent's audio goes while this source is active.
    remote: Option<SocketAddr>,
    remote_dest: Option<Dest>,
    /// Configured (not learned) remote.
    fixed: bool,
}

impl SourceSock {
    #[inline]
    fn learn(&mut self, from: SocketAddr) {
        if !self.fixed && self.remote != Some(from) {
            self.remote = Some(from);
            self.remote_dest = Some(sys::std_to_sockaddr(from));
        }
    }
}

struct Stream {
    id: StreamId,
    seq: Sequencer,
    socket: UdpSocket,
    agent: AgentAddr,
    agent_addr: Option<SocketAddr>,
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
}

impl Worker {
    pub(crate) fn new(
        index: usize,
        commands: mpsc::Receiver<Command>,
        wake: Arc<EventFd>,
        clock: Clock,
        batch: usize,
    ) -> std::io::Result<Worker> {
        let epoll = Epoll::new()?;
        epoll.add(wake.raw(), WAKE)?;
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
            batch: Batch::new(batch),
            out: vec![0u8; Sequencer::MIN_TRANSMIT_BUFFER.max(sys::MAX_DATAGRAM)],
        })
    }

    /// The loop: timers, then readiness, then commands, until shutdown.
    pub(crate) fn run(mut self, cpu: Option<usize>) {
        if let Some(cpu) = cpu
            && let Err(e) = sys::pin_to_cpu(cpu)
        {
            tracing::warn!(worker = self.index, cpu, "cannot pin relay worker: {e}");
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 512];
        loop {
            let now = self.clock.now();
            self.run_timers(now);
            let timeout = self.timeout_ms(self.clock.now());
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(worker = self.index, "epoll_wait failed, worker stops: {e}");
                    return;
                }
            };
            for ev in &events[..n] {
                let token = ev.u64;
                if token == WAKE {
                    self.wake.drain();
                    if !self.commands() {
                        return;
                    }
                } else {
                    let slot = (token >> 8) as usize;
                    let role = token & 0xFF;
                    if role == AGENT {
                        self.agent_readable(slot);
                    } else {
                        self.source_readable(slot, (role - 1) as usize);
                    }
                }
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
        let Some(Some(s)) = self.streams.get_mut(slot) else {
            return;
        };
        if let Some(t) = s.seq.poll_timeout()
            && s.scheduled.is_none_or(|old| t < old)
        {
            s.scheduled = Some(t);
            self.timers.push(Reverse((t, slot)));
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
                        Some(dest) => {
                            match sys::send_one(s.socket.as_raw_fd(), &self.out[..tx.len], dest) {
                                Ok(()) => s.counters.sent += 1,
                                Err(_) => s.counters.send_errors += 1,
                            }
                        }
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

    /// Datagrams from a source: rewrite in place, send the batch to the agent.
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
        let Some(Some(src)) = stream.sources.get_mut(src_slot) else {
            return;
        };
        let fd = src.socket.as_raw_fd();
        let source_id = src.id;
        loop {
            let n = match batch.recv(fd) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => break,
            };
            let now = clock.now();
            if let Some(dest) = &stream.agent_dest {
                batch.send_to(dest);
            }
            for i in 0..n {
                let (data, from) = batch.datagram(i);
                if let Some(Some(src)) = stream.sources.get_mut(src_slot)
                    && let Some(from) = from
                {
                    src.learn(from);
                }
                if is_rtcp(data) {
                    stream.counters.source_rtcp += 1;
                    continue;
                }
                let len = data.len();
                if stream.seq.rewrite(now, source_id, data) == Verdict::Forward {
                    if stream.agent_dest.is_some() {
                        batch.push(i, len);
                    } else {
                        stream.counters.no_agent_address += 1;
                    }
                }
            }
            flush(
                batch,
                stream.socket.as_raw_fd(),
                &mut stream.counters.sent,
                &mut stream.counters.send_errors,
            );
            if n < batch.capacity() {
                break;
            }
        }
        self.schedule(slot);
    }

    /// Datagrams from the agent: learn its address, read its RTCP, relay its RTP to the active
    /// source.
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
        let fd = stream.socket.as_raw_fd();
        loop {
            let n = match batch.recv(fd) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => break,
            };
            let now = clock.now();
            // The reverse direction goes out of the active source's socket to its remote.
            let active = stream.seq.active().and_then(|id| {
                stream
                    .sources
                    .iter()
                    .flatten()
                    .find(|s| s.id == id)
                    .and_then(|s| s.remote_dest.map(|d| (s.socket.as_raw_fd(), d)))
            });
            if let Some((_, dest)) = &active {
                batch.send_to(dest);
            }
            for i in 0..n {
                let (data, from) = batch.datagram(i);
                stream.counters.from_agent += 1;
                let Some(from) = from else { continue };
                if stream.agent == AgentAddr::Learn && stream.agent_addr != Some(from) {
                    let silent = now.since(stream.agent_seen) >= AgentAddr::RELATCH_AFTER;
                    if stream.agent_addr.is_none() || silent {
                        stream.agent_addr = Some(from);
                        stream.agent_dest = Some(sys::std_to_sockaddr(from));
                    } else {
                        stream.counters.foreign += 1;
                        continue;
                    }
                }
                if Some(from) == stream.agent_addr {
                    stream.agent_seen = now;
                }
                if is_rtcp(data) {
                    let _ = stream.seq.handle_rtcp(now, data);
                    continue;
                }
                if active.is_some() {
                    let len = data.len();
                    batch.push(i, len);
                } else {
                    stream.counters.reverse_dropped += 1;
                }
            }
            if let Some((src_fd, _)) = active {
                flush(
                    batch,
                    src_fd,
                    &mut stream.counters.reverse_forwarded,
                    &mut stream.counters.send_errors,
                );
            }
            if n < batch.capacity() {
                break;
            }
        }
        // An agent address just learned lets queued filler and reports go out.
        self.schedule(slot);
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
            }
        }
        true
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

    fn create(
        &mut self,
        id: StreamId,
        seq: Sequencer,
        socket: UdpSocket,
        agent: AgentAddr,
    ) -> Result<(), RelayError> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.streams.push(None);
            self.streams.len() - 1
        });
        self.epoll
            .add(socket.as_raw_fd(), token(slot, AGENT))
            .map_err(|e| RelayError::io("registering an agent socket", e))?;
        let (agent_addr, agent_dest) = match agent {
            AgentAddr::Fixed(a) => (Some(a), Some(sys::std_to_sockaddr(a))),
            AgentAddr::Learn => (None, None),
        };
        self.streams[slot] = Some(Stream {
            id,
            seq,
            socket,
            agent,
            agent_addr,
            agent_dest,
            agent_seen: self.clock.now(),
            sources: Default::default(),
            scheduled: None,
            counters: RelayStreamStats::default(),
        });
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
        let _ = self.epoll.delete(stream.socket.as_raw_fd());
        for s in stream.sources.iter().flatten() {
            let _ = self.epoll.delete(s.socket.as_raw_fd());
        }
        Ok(stream.snapshot())
    }

    fn add_source(
        &mut self,
        id: StreamId,
        source: SourceId,
        spec: SourceSpec,
        socket: UdpSocket,
        remote: Option<SocketAddr>,
    ) -> Result<(), RelayError> {
        let (slot, stream) = self.stream_mut(id)?;
        let Some(free) = stream.sources.iter().position(Option::is_none) else {
            return Err(crate::rtp::RtpError::TooManySources { max: MAX_SOURCES }.into());
        };
        stream.seq.add_source(source, spec)?;
        let epoll_fd = socket.as_raw_fd();
        stream.sources[free] = Some(SourceSock {
            id: source,
            socket,
            remote,
            remote_dest: remote.map(sys::std_to_sockaddr),
            fixed: remote.is_some(),
        });
        if let Err(e) = self.epoll.add(epoll_fd, token(slot, 1 + free as u64)) {
            if let Some(Some(stream)) = self.streams.get_mut(slot) {
                stream.sources[free] = None;
                let _ = stream.seq.remove_source(source);
            }
            return Err(RelayError::io("registering a source socket", e));
        }
        Ok(())
    }

    fn remove_source(&mut self, id: StreamId, source: SourceId) -> Result<(), RelayError> {
        let (slot, stream) = self.stream_mut(id)?;
        stream.seq.remove_source(source)?;
        let Some(i) = stream
            .sources
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == source))
        else {
            return Ok(());
        };
        if let Some(s) = stream.sources[i].take() {
            let _ = self.epoll.delete(s.socket.as_raw_fd());
        }
        self.schedule(slot);
        Ok(())
    }
}

fn token(slot: usize, role: u64) -> u64 {
    ((slot as u64) << 8) | role
}

fn flush(batch: &mut Batch, fd: RawFd, sent: &mut u64, errors: &mut u64) {
    let pending = batch.pending();
    if pending == 0 {
        return;
    }
    let (n, _err) = batch.flush(fd);
    *sent += n as u64;
    *errors += (pending - n) as u64;
}
