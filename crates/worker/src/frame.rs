//! One message per datagram over a `SOCK_SEQPACKET` Unix socket pair, with at most one file
//! descriptor attached (SCM_RIGHTS). Datagrams keep message boundaries, so neither side needs
//! framing of its own, and a peer that dies is seen as end of file.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// The largest message body; output is sent in smaller chunks than this.
pub const MAX_MESSAGE: usize = 64 * 1024 + 256;

/// One end of a message channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// What a receive returned.
#[derive(Debug)]
pub enum Received {
    /// A message, with the descriptor that came with it.
    Message(Vec<u8>, Option<OwnedFd>),
    /// The peer closed its end (or died).
    Closed,
    /// Nothing arrived before the deadline.
    TimedOut,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wraps an inherited descriptor (the worker's fd 3).
    ///
    /// # Safety
    /// `fd` must be an open SOCK_SEQPACKET socket that nothing else owns.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
        Channel {
            // SAFETY: guaranteed by the caller.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        }
    }

    /// The socket, e.g. to hand to a child process.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sends one message, with an optional descriptor.
    pub fn send(&self, body: &[u8], fd: Option<RawFd>) -> io::Result<()> {
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[IoSlice::new(body)],
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits up to `deadline` (forever with None) for one message.
    pub fn recv(&self, deadline: Option<Instant>) -> io::Result<Received> {
        loop {
            let wait = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Received::TimedOut);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, wait) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                continue;
            }
            return self.recv_now();
        }
    }

    /// Waits at most `timeout` for one message.
    pub fn recv_within(&self, timeout: Duration) -> io::Result<Received> {
        self.recv(Some(Instant::now() + timeout))
    }

    fn recv_now(&self) -> io::Result<Received> {
        let mut body = vec![0u8; MAX_MESSAGE];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (len, truncated, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut body)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(v) = c {
                                fds.extend(v);
                            }
                        }
                    }
                    break (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), fds);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        // SAFETY: the kernel just installed these descriptors in our table; we own them.
        let mut owned: Vec<OwnedFd> = fds
            .into_iter()
            .map(|f| unsafe { OwnedFd::from_raw_fd(f) })
            .collect();
        if len == 0 && owned.is_empty() {
            return Ok(Received::Closed);
        }
        if truncated || owned.len() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "oversized message or extra descriptors from the peer",
            ));
        }
        body.truncate(len);
        Ok(Received::Message(body, owned.pop()))
    }
}

/// Builds a message body: a tag byte, then fields in order.
pub struct Enc(Vec<u8>);

impl Enc {
    /// A message with this tag.
    pub fn new(tag: u8) -> Enc {
        Enc(vec![tag])
    }
    /// Appends a u64.
    pub fn u64(mut self, v: u64) -> Enc {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends an i32.
    pub fn i32(mut self, v: i32) -> Enc {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends bytes with their length.
    pub fn bytes(mut self, v: &[u8]) -> Enc {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    /// Appends a string with its length.
    pub fn str(self, v: &str) -> Enc {
        self.bytes(v.as_bytes())
    }
    /// The finished body.
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a message body written by [`Enc`]; every read is bounds-checked.
pub struct Dec<'a>(&'a [u8]);

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed message")
}

impl<'a> Dec<'a> {
    /// The tag and a reader for the fields.
    pub fn new(body: &'a [u8]) -> io::Result<(u8, Dec<'a>)> {
        let (&tag, rest) = body.split_first().ok_or_else(short)?;
        Ok((tag, Dec(rest)))
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(short());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    /// Reads a u64.
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| short())?,
        ))
    }
    /// Reads an i32.
    pub fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| short())?,
        ))
    }
    /// Reads length-prefixed bytes.
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| short())?);
        self.take(n as usize)
    }
    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn messages_and_descriptors_cross_and_a_closed_peer_is_seen() {
        let (a, b) = Channel::pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let body = Enc::new(7).u64(42).str("name").i32(-5).done();
        a.send(&body, Some(f.as_raw_fd())).unwrap();
        let Received::Message(got, Some(fd)) = b.recv(None).unwrap() else {
            panic!("no message")
        };
        let (tag, mut d) = Dec::new(&got).unwrap();
        assert_eq!(
            (tag, d.u64().unwrap(), d.str().unwrap(), d.i32().unwrap()),
            (7, 42, "name".into(), -5)
        );
        assert!(d.u64().is_err(), "reading past the end is an error");
        let file = std::fs::File::from(fd);
        let mut buf = [0u8; 5];
        std::os::unix::fs::FileExt::read_at(&file, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(matches!(
            b.recv_within(Duration::from_millis(20)).unwrap(),
            Received::TimedOut
        ));
        drop(a);
        assert!(matches!(b.recv(None).unwrap(), Received::Closed));
    }
}
