//! The outbound ESL server: the dialplan's `socket <host:port> async full` application connects
//! here, one TCP connection per call. FreeSWITCH sends nothing until the client sends `connect`
//! (README, "Outbound mode"); the reply is the channel's data as a URL-encoded serialized event.
//! Each session then sends `myevents` and `linger <s>`, hands the call over as an
//! [`OutboundCall`], and keeps the socket until FreeSWITCH's disconnect notice (after a
//! `linger` notice when lingering), so that the channel is not torn down under the controller.
//!
//! The calls are controlled like any other leg, through the inbound connection's uuid_*
//! commands: the session itself only reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::media::LegId;

use super::codec::{
    CodecError, Command, ContentType, Decoder, Disposition, Event, Frame, Limits, Reply,
};

/// How outbound sessions behave.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// `linger <s>` after the hangup, so the final events still arrive; `None`: no linger.
    pub linger: Option<u32>,
    /// Deadline of the `connect` exchange and of each command reply.
    pub reply_timeout: Duration,
    /// Sessions at once; more wait for a free slot (admission).
    pub max_sessions: usize,
    /// Frame size limits.
    pub limits: Limits,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            linger: Some(3),
            reply_timeout: Duration::from_secs(5),
            max_sessions: 2048,
            limits: Limits::default(),
        }
    }
}

/// What went wrong on the outbound server or one of its sessions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The listen address could not be bound.
    #[error("cannot listen for FreeSWITCH outbound sockets on {listen}: {reason}")]
    Bind {
        /// The address.
        listen: String,
        /// Why.
        reason: String,
    },
    /// The socket broke or closed.
    #[error("outbound session from {peer}: {reason}")]
    Io {
        /// FreeSWITCH's address.
        peer: String,
        /// Why.
        reason: String,
    },
    /// No reply in time.
    #[error("outbound session from {peer}: no reply to `{command}` within {after_ms} ms")]
    Timeout {
        /// FreeSWITCH's address.
        peer: String,
        /// The command.
        command: String,
        /// The deadline.
        after_ms: u64,
    },
    /// Bytes that are not ESL, or a `connect` reply without channel data.
    #[error("outbound session from {peer}: {reason}")]
    Protocol {
        /// FreeSWITCH's address.
        peer: String,
        /// What.
        reason: String,
    },
    /// A command was refused.
    #[error("outbound session from {peer}: FreeSWITCH refused `{command}`: {reply}")]
    Refused {
        /// FreeSWITCH's address.
        peer: String,
        /// The command.
        command: String,
        /// Its reply.
        reply: String,
    },
}

/// One call handed over by the dialplan's `socket` application.
#[derive(Debug, Clone)]
pub struct OutboundCall {
    /// The channel (`Unique-ID`).
    pub leg: LegId,
    /// The `connect` reply's channel data, values URL-decoded (Channel-*, Caller-*,
    /// variable_*).
    pub channel: Event,
    /// The channel variables (`variable_*` headers without the prefix).
    pub variables: BTreeMap<String, String>,
    /// `Socket-Mode` (`async` or `static`).
    pub socket_mode: Option<String>,
    /// `Control` (`full` or `single-channel`).
    pub control: Option<String>,
}

/// The listening server.
#[derive(Debug)]
pub struct OutboundServer {
    listener: TcpListener,
    config: OutboundConfig,
}

impl OutboundServer {
    /// Binds the listen address (`127.0.0.1:8084`, `:0` for any port). Must be called inside a
    /// tokio runtime.
    pub fn bind(listen: &str, config: OutboundConfig) -> Result<Self, OutboundError> {
        let bind_err = |reason: String| OutboundError::Bind {
            listen: listen.to_owned(),
            reason,
        };
        let std = std::net::TcpListener::bind(listen).map_err(|e| bind_err(e.to_string()))?;
        std.set_nonblocking(true)
            .map_err(|e| bind_err(e.to_string()))?;
        let listener = TcpListener::from_std(std).map_err(|e| bind_err(e.to_string()))?;
        Ok(OutboundServer { listener, config })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts sessions until `stop` turns true; each call goes to `calls` (waiting for room).
    pub async fn run(self, calls: mpsc::Sender<OutboundCall>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.max_sessions.max(1)));
        let config = Arc::new(self.config);
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = stop.changed() => return,
            };
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = stop.changed() => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let calls = calls.clone();
                    let config = config.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, peer, &config, &calls).await {
                            tracing::warn!(error = %e, "FreeSWITCH outbound session");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "outbound accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

struct Session {
    stream: TcpStream,
    decoder: Decoder,
    peer: String,
    timeout: Duration,
}

impl Session {
    async fn next_frame(&mut self) -> Result<Option<Frame>, OutboundError> {
        loop {
            match self.decoder.decode() {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => return Err(self.protocol(e)),
            }
            let n = self
                .stream
                .read_buf(&mut self.decoder.read_buf())
                .await
                .map_err(|e| OutboundError::Io {
                    peer: self.peer.clone(),
                    reason: e.to_string(),
                })?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    fn protocol(&self, e: CodecError) -> OutboundError {
        OutboundError::Protocol {
            peer: self.peer.clone(),
            reason: e.to_string(),
        }
    }

    /// Sends a command and reads up to its `command/reply` (events before it are skipped:
    /// the inbound connection reports them).
    async fn command(&mut self, command: &Command) -> Result<Frame, OutboundError> {
        let bytes = command.to_bytes().map_err(|e| self.protocol(e))?;
        let shown = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| OutboundError::Io {
                peer: self.peer.clone(),
                reason: e.to_string(),
            })?;
        let timeout = self.timeout;
        let wait = async {
            loop {
                match self.next_frame().await? {
                    None => {
                        return Err(OutboundError::Io {
                            peer: self.peer.clone(),
                            reason: format!("closed before answering `{shown}`"),
                        });
                    }
                    Some(f) if f.content_type() == ContentType::CommandReply => return Ok(f),
                    Some(_) => continue,
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(OutboundError::Timeout {
                peer: self.peer.clone(),
                command: shown,
                after_ms: timeout.as_millis() as u64,
            }),
        }
    }
}

fn refused(peer: &str, command: &str, frame: &Frame) -> Option<OutboundError> {
    match frame.reply() {
        Some(Reply::Err(text)) => Some(OutboundError::Refused {
            peer: peer.to_owned(),
            command: command.to_owned(),
            reply: format!("-ERR {text}"),
        }),
        _ => None,
    }
}

/// One outbound session: connect, myevents, linger, hand over, wait for the disconnect.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    config: &OutboundConfig,
    calls: &mpsc::Sender<OutboundCall>,
) -> Result<(), OutboundError> {
    let _ = stream.set_nodelay(true);
    let mut s = Session {
        stream,
        decoder: Decoder::new(config.limits),
        peer: peer.to_string(),
        timeout: config.reply_timeout,
    };
    let reply = s.command(&Command::Connect).await?;
    let channel = match reply.channel_data() {
        Some(Ok(event)) => event,
        Some(Err(e)) => return Err(s.protocol(e)),
        None => {
            return Err(OutboundError::Protocol {
                peer: s.peer.clone(),
                reason: "the connect reply carries no channel data (is this an outbound socket?)"
                    .into(),
            });
        }
    };
    let Some(leg) = channel.unique_id() else {
        return Err(OutboundError::Protocol {
            peer: s.peer.clone(),
            reason: "the channel data has no Unique-ID".into(),
        });
    };
    let variables: BTreeMap<String, String> = channel
        .headers()
        .filter_map(|(k, v)| {
            k.strip_prefix("variable_")
                .map(|k| (k.to_owned(), v.into_owned()))
        })
        .collect();
    let call = OutboundCall {
        leg: leg.clone(),
        socket_mode: reply.header_decoded("Socket-Mode").map(|v| v.into_owned()),
        control: reply.header_decoded("Control").map(|v| v.into_owned()),
        channel,
        variables,
    };
    let r = s
        .command(&Command::MyEvents {
            uuid: None,
            format: None,
        })
        .await?;
    if let Some(e) = refused(&s.peer, "myevents", &r) {
        return Err(e);
    }
    if let Some(seconds) = config.linger {
        let r = s
            .command(&Command::Linger {
                seconds: Some(seconds),
            })
            .await?;
        if let Some(e) = refused(&s.peer, "linger", &r) {
            return Err(e);
        }
    }
    tracing::info!(leg = %leg, peer = %s.peer, "FreeSWITCH outbound call");
    if calls.send(call).await.is_err() {
        // Nobody takes calls: let the dialplan go on.
        let _ = s.command(&Command::Resume).await;
        return Ok(());
    }
    // Keep the session until FreeSWITCH ends it: a linger notice first (when lingering),
    // then the disconnect notice, then close (fixture outbound_socket_async_full_linger).
    while let Some(frame) = s.next_frame().await? {
        if let Some(notice) = frame.disconnect_notice() {
            match notice.disposition {
                Some(Disposition::Linger) => {
                    tracing::debug!(leg = %leg, "outbound session lingers");
                }
                _ => break,
            }
        }
    }
    Ok(())
}
