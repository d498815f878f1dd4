//! The system calls of the fast path (Linux): epoll, eventfd, recvmmsg/sendmmsg over
//! preallocated buffers, CPU pinning. Every `unsafe` block of the relay lives here, or, for
//! AF_XDP, in [`super::xdp`].

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Largest datagram the relay takes in; anything longer is truncated by the kernel and then
/// refused by the parser (RTP over UDP stays below the path MTU: RFC 3550 §11).
pub const MAX_DATAGRAM: usize = 2048;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A level-triggered epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new epoll instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 has no pointer arguments; a non-negative result is a new fd
        // that nothing else owns.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for readability, reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Stops watching `fd` (before it is closed).
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; the event argument is ignored for EPOLL_CTL_DEL but must be
        // non-null on old kernels.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (−1: forever) and fills `events`; returns how many are ready.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a valid, writable buffer of `max` epoll_events.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
        match check(n) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// An eventfd that wakes a worker's epoll when a command is queued.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: no pointer arguments; a non-negative result is a new fd.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to register with epoll.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Wakes the waiter.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64. A full counter (EAGAIN) still wakes.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                size_of::<u64>(),
            )
        };
    }

    /// Resets the counter after a wake-up.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a valid u64.
        let _ = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast(),
                size_of::<u64>(),
            )
        };
    }
}

/// The address a datagram came from, as the kernel wrote it (IPv4 or IPv6; `None` for any
/// other family or a short length).
pub fn sockaddr_to_std(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which fits inside it
            // and has no stricter alignment than sockaddr_storage.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A socket address in the kernel's representation.
pub fn std_to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero bytes are a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage, whose alignment is at least its own.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A peer's address (IP and port) as a hash key, read straight from what the kernel wrote:
/// IPv4 packed into a u64 (address << 16 | port), IPv6 as its 128 bits and port. An
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4
/// peer) is its IPv4 key, so a peer configured either way is found. Flow label and scope are
/// not part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    /// An IPv4 peer.
    V4(u64),
    /// An IPv6 peer.
    V6(u128, u16),
}

impl PeerKey {
    /// The key of a socket address.
    pub fn of(addr: SocketAddr) -> PeerKey {
        match addr.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => PeerKey::v4(ip, addr.port()),
            std::net::IpAddr::V6(ip) => PeerKey::V6(u128::from(ip), addr.port()),
        }
    }

    fn v4(ip: Ipv4Addr, port: u16) -> PeerKey {
        PeerKey::V4(u64::from(u32::from(ip)) << 16 | u64::from(port))
    }

    /// The key of the address the kernel wrote (`None` for another family or a short length).
    /// Nothing is parsed into a `SocketAddr`: this runs for every datagram.
    #[inline]
    pub fn from_raw(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<PeerKey> {
        let len = len as usize;
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, which fits inside it
                // and has no stricter alignment than sockaddr_storage.
                let sin = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(PeerKey::v4(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let port = u16::from_be(sin6.sin6_port);
                Some(match ip.to_ipv4_mapped() {
                    Some(v4) => PeerKey::v4(v4, port),
                    None => PeerKey::V6(u128::from(ip), port),
                })
            }
            _ => None,
        }
    }
}

/// Preallocated buffers and message headers for recvmmsg and sendmmsg: `n` datagrams of
/// [`MAX_DATAGRAM`] bytes, their source addresses, and a send list that points into the same
/// buffers (packets are rewritten in place and sent from where they were received). Each
/// datagram of the send list has its own destination and a tag (the caller's stream slot) so
/// that one sendmmsg carries packets of many streams and each stream's counters learn what
/// became of its own.
pub struct Batch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    recv: Box<[libc::mmsghdr]>,
    send_iovs: Box<[libc::iovec]>,
    send: Box<[libc::mmsghdr]>,
    send_addrs: Box<[libc::sockaddr_storage]>,
    tags: Box<[u32]>,
    delivered: Box<[bool]>,
    send_len: usize,
}

// SAFETY: the raw pointers inside point into the Batch's own heap allocations, which move with
// it; a Batch is used by one thread at a time.
unsafe impl Send for Batch {}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("n", &self.bufs.len())
            .finish()
    }
}

impl Batch {
    /// Buffers for `n` datagrams per system call.
    pub fn new(n: usize) -> Batch {
        let n = n.max(1);
        // SAFETY (all zeroed below): iovec, sockaddr_storage and mmsghdr are plain C data for
        // which all-zero bytes are a valid value; the pointers are set right after.
        let mut b = Batch {
            bufs: vec![[0u8; MAX_DATAGRAM]; n].into_boxed_slice(),
            iovs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            addrs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            recv: (0..n).map(|_| unsafe { zeroed() }).collect(),
            send_iovs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            send: (0..n).map(|_| unsafe { zeroed() }).collect(),
            send_addrs: (0..n).map(|_| unsafe { zeroed() }).collect(),
            tags: vec![0; n].into_boxed_slice(),
            delivered: vec![false; n].into_boxed_slice(),
            send_len: 0,
        };
        for i in 0..n {
            b.iovs[i].iov_base = b.bufs[i].as_mut_ptr().cast();
            b.iovs[i].iov_len = MAX_DATAGRAM;
            b.recv[i].msg_hdr.msg_iov = &mut b.iovs[i];
            b.recv[i].msg_hdr.msg_iovlen = 1;
            b.recv[i].msg_hdr.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            b.send[i].msg_hdr.msg_iov = &mut b.send_iovs[i];
            b.send[i].msg_hdr.msg_iovlen = 1;
            b.send[i].msg_hdr.msg_name =
                (&mut b.send_addrs[i] as *mut libc::sockaddr_storage).cast();
        }
        b
    }

    /// Datagrams per call.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// Receives up to `capacity` datagrams without blocking; returns how many (0 when none
    /// is waiting). Starts a new, empty send list.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.send_len = 0;
        for m in self.recv.iter_mut() {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        let n = self.recv.len() as libc::c_uint;
        // SAFETY: every header points at a live iovec/buffer and address slot of this Batch,
        // with lengths that match their allocations.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.recv.as_mut_ptr(),
                n,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        match check(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Datagram `i` of the last receive, mutable (for the in-place rewrite), with the key of
    /// the address it came from.
    #[inline]
    pub fn datagram(&mut self, i: usize) -> (&mut [u8], Option<PeerKey>) {
        let len = (self.recv[i].msg_len as usize).min(MAX_DATAGRAM);
        let from = PeerKey::from_raw(&self.addrs[i], self.recv[i].msg_hdr.msg_namelen);
        (&mut self.bufs[i][..len], from)
    }

    /// The address datagram `i` of the last receive came from, parsed (for learning it).
    pub fn sender(&self, i: usize) -> Option<SocketAddr> {
        sockaddr_to_std(&self.addrs[i], self.recv[i].msg_hdr.msg_namelen)
    }

    /// Adds datagram `i` of the last receive, `len` bytes, to the send list, for `dest`;
    /// `tag` comes back with its outcome from [`outcomes`](Self::outcomes).
    #[inline]
    pub fn push(&mut self, i: usize, len: usize, dest: &Dest, tag: usize) {
        let k = self.send_len;
        if k >= self.send.len() || i >= self.bufs.len() {
            return;
        }
        self.send_iovs[k].iov_base = self.bufs[i].as_mut_ptr().cast();
        self.send_iovs[k].iov_len = len.min(MAX_DATAGRAM);
        self.send_addrs[k] = dest.0;
        self.send[k].msg_hdr.msg_namelen = dest.1;
        self.tags[k] = tag as u32;
        self.send_len += 1;
    }

    /// Datagrams in the send list.
    pub fn pending(&self) -> usize {
        self.send_len
    }

    /// Sends the list with sendmmsg (one call when all goes well) and returns how many left.
    /// A datagram the kernel refuses (a destination it cannot reach) is skipped and the rest
    /// still go, so one stream's bad address costs no other stream; a full buffer ends the
    /// call (UDP: what is not sent is lost; [`outcomes`](Self::outcomes) tells whose).
    pub fn flush(&mut self, fd: RawFd) -> usize {
        let total = self.send_len;
        let mut at = 0;
        let mut sent = 0;
        while at < total {
            // SAFETY: headers [at, total) point at buffers and destinations of this Batch,
            // all alive for the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send.as_mut_ptr().add(at),
                    (total - at) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            match check(r) {
                Ok(n) if n > 0 => {
                    let n = (n as usize).min(total - at);
                    self.delivered[at..at + n].fill(true);
                    at += n;
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    break;
                }
                // The datagram at `at` was refused: skip it, send the rest.
                Err(_) => {
                    self.delivered[at] = false;
                    at += 1;
                }
                Ok(_) => break,
            }
        }
        self.delivered[at..total].fill(false);
        sent
    }

    /// Each datagram of the last send list: its tag and whether the kernel took it.
    pub fn outcomes(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.tags[..self.send_len]
            .iter()
            .zip(&self.delivered[..self.send_len])
            .map(|(tag, ok)| (*tag as usize, *ok))
    }
}

/// A destination in the kernel's representation.
pub type Dest = (libc::sockaddr_storage, libc::socklen_t);

/// Sends one datagram without blocking (filler, RTCP, the reverse direction).
pub fn send_one(
    fd: RawFd,
    data: &[u8],
    dest: &(libc::sockaddr_storage, libc::socklen_t),
) -> io::Result<()> {
    // SAFETY: `data` and `dest` are valid for the call; lengths match their sizes.
    let r = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (&dest.0 as *const libc::sockaddr_storage).cast(),
            dest.1,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Which socket buffer [`set_buffer`] sizes.
#[derive(Debug, Clone, Copy)]
pub enum Buffer {
    /// SO_RCVBUF.
    Receive,
    /// SO_SNDBUF.
    Send,
}

/// Sets a socket buffer to `size` bytes: with the FORCE option first, which goes past the
/// system's maximum (`net.core.rmem_max` / `wmem_max`) when the process may (CAP_NET_ADMIN),
/// else with the plain option, which the kernel silently caps at that maximum. A shared port
/// carries every stream of a worker, so its buffer is what absorbs the worker's pauses.
pub fn set_buffer(fd: RawFd, which: Buffer, size: usize) -> io::Result<()> {
    let (force, plain) = match which {
        Buffer::Receive => (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        Buffer::Send => (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    };
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    let set = |option| {
        // SAFETY: passes a valid c_int and its size.
        check(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
    };
    set(force).or_else(|_| set(plain)).map(|_| ())
}

/// Sends an IPv4 socket's datagrams with the don't-fragment bit (`IP_PMTUDISC_PROBE`: DF set,
/// the path MTU not enforced). RTP stays far below the path MTU anyway (RFC 3550 §11); without
/// DF, Linux gives every datagram a fresh IP identification from a hash of its destination
/// and a shared counter (RFC 6864 §4.1 lets atomic datagrams skip it), a tenth of the cost of
/// sending to thousands of different agents from one socket.
pub fn set_dont_fragment(fd: RawFd) -> io::Result<()> {
    let value: libc::c_int = libc::IP_PMTUDISC_PROBE;
    // SAFETY: passes a valid c_int and its size.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Sets the calling thread's timer slack: how much later than asked the kernel may end its
/// sleeps (to group wake-ups). Best effort: a thread that keeps the default sleeps longer.
pub fn set_timer_slack(slack: std::time::Duration) {
    let ns = libc::c_ulong::try_from(slack.as_nanos())
        .unwrap_or(libc::c_ulong::MAX)
        .max(1);
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument; no memory is passed.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        libc::CPU_SET(cpu, &mut set);
        check(libc::sched_setaffinity(
            0,
            size_of::<libc::cpu_set_t>(),
            &set,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("a socket address")
    }

    #[test]
    fn peer_keys_read_from_the_kernels_form_match_keys_of_addresses() {
        for a in ["127.1.2.3:5004", "[::1]:5006", "[2001:db8::7]:40000"] {
            let (storage, len) = std_to_sockaddr(addr(a));
            assert_eq!(
                PeerKey::from_raw(&storage, len),
                Some(PeerKey::of(addr(a))),
                "{a}"
            );
        }
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6: the same key.
        let (storage, len) = std_to_sockaddr(addr("[::ffff:10.0.0.1]:5004"));
        assert_eq!(
            PeerKey::from_raw(&storage, len),
            Some(PeerKey::of(addr("10.0.0.1:5004")))
        );
        // Address and port both count.
        let key = PeerKey::of(addr("10.0.0.1:5004"));
        assert_ne!(key, PeerKey::of(addr("10.0.0.1:5006")));
        assert_ne!(key, PeerKey::of(addr("10.0.0.2:5004")));
        assert_ne!(key, PeerKey::of(addr("0.0.0.0:0")));
        // A length too short for the family is no address.
        assert_eq!(PeerKey::from_raw(&storage, 4), None);
    }

    #[test]
    fn one_refused_destination_does_not_stop_the_rest_of_the_batch() {
        let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (r1, r2) = (
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
        );
        for s in [&r1, &r2] {
            s.set_read_timeout(Some(Duration::from_secs(1)))
                .expect("timeout");
        }
        for i in 0..3u8 {
            sender
                .send_to(&[i], relay.local_addr().expect("addr"))
                .expect("send");
        }
        // Loopback delivers within send_to: all three are queued.
        let mut batch = Batch::new(8);
        assert_eq!(batch.recv(relay.as_raw_fd()).expect("recv"), 3);
        // An IPv6 destination on an IPv4 socket: the kernel refuses that one datagram.
        let dests = [
            std_to_sockaddr(r1.local_addr().expect("addr")),
            std_to_sockaddr(addr("[2001:db8::1]:5004")),
            std_to_sockaddr(r2.local_addr().expect("addr")),
        ];
        for (i, d) in dests.iter().enumerate() {
            batch.push(i, 1, d, 10 + i);
        }
        assert_eq!(batch.flush(relay.as_raw_fd()), 2);
        let outcomes: Vec<_> = batch.outcomes().collect();
        assert_eq!(outcomes, [(10, true), (11, false), (12, true)]);
        let mut buf = [0u8; 8];
        assert_eq!(r1.recv(&mut buf).expect("first"), 1);
        assert_eq!(buf[0], 0);
        assert_eq!(r2.recv(&mut buf).expect("third"), 1);
        assert_eq!(buf[0], 2);
    }
}
