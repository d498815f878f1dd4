//! The system calls of the fast path (Linux): epoll, eventfd, recvmmsg/sendmmsg over
//! preallocated buffers, CPU pinning. Every `unsafe` block of the relay lives here.

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

/// Preallocated buffers and message headers for recvmmsg and sendmmsg: `n` datagrams of
/// [`MAX_DATAGRAM`] bytes, their source addresses, and a send list that points into the same
/// buffers (packets are rewritten in place and sent from where they were received).
pub struct Batch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    recv: Box<[libc::mmsghdr]>,
    send_iovs: Box<[libc::iovec]>,
    send: Box<[libc::mmsghdr]>,
    dest: Box<libc::sockaddr_storage>,
    dest_len: libc::socklen_t,
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
            dest: Box::new(unsafe { zeroed() }),
            dest_len: 0,
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
        }
        b
    }

    /// Datagrams per call.
    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    /// Receives up to `capacity` datagrams without blocking; returns how many (0 when none
    /// is waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
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

    /// Datagram `i` of the last receive, mutable (for the in-place rewrite), with the address
    /// it came from.
    pub fn datagram(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>) {
        let len = (self.recv[i].msg_len as usize).min(MAX_DATAGRAM);
        let from = sockaddr_to_std(&self.addrs[i], self.recv[i].msg_hdr.msg_namelen);
        (&mut self.bufs[i][..len], from)
    }

    /// Starts a send list to `dest`.
    pub fn send_to(&mut self, dest: &(libc::sockaddr_storage, libc::socklen_t)) {
        *self.dest = dest.0;
        self.dest_len = dest.1;
        self.send_len = 0;
    }

    /// Adds datagram `i` of the last receive, `len` bytes, to the send list.
    pub fn push(&mut self, i: usize, len: usize) {
        let k = self.send_len;
        if k >= self.send.len() || i >= self.bufs.len() {
            return;
        }
        self.send_iovs[k].iov_base = self.bufs[i].as_mut_ptr().cast();
        self.send_iovs[k].iov_len = len.min(MAX_DATAGRAM);
        self.send[k].msg_hdr.msg_name = (&mut *self.dest as *mut libc::sockaddr_storage).cast();
        self.send[k].msg_hdr.msg_namelen = self.dest_len;
        self.send_len += 1;
    }

    /// Datagrams in the send list.
    pub fn pending(&self) -> usize {
        self.send_len
    }

    /// Sends the list with sendmmsg; returns how many left, and the error that stopped the
    /// rest, if any (UDP: what is not sent is lost, and counted by the caller).
    pub fn flush(&mut self, fd: RawFd) -> (usize, Option<io::Error>) {
        let total = self.send_len;
        self.send_len = 0;
        let mut sent = 0;
        while sent < total {
            // SAFETY: headers [sent, total) point at buffers and the destination of this
            // Batch, all alive for the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send.as_mut_ptr().add(sent),
                    (total - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            match check(r) {
                Ok(0) => break,
                Ok(n) => sent += n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (sent, Some(e)),
            }
        }
        (sent, None)
    }
}

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
