//! The events WebSocket (`/ari/events?app=…`) and the reconnect backoff.
//!
//! [`Backoff`] is sans-IO: it takes a random number in `[0, 1)` and returns the next delay
//! (exponential, capped, "equal jitter": half fixed, half random), so tests need no clock.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client::error_message;

/// How reconnects back off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with jitter; [`Backoff::reset`] after a connection that worked.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, attempt: 0 }
    }

    /// The delay before the next attempt; `unit` is a random number in `[0, 1)`. The delay lies
    /// in `[d/2, d)` where `d = min(max, initial × 2^attempt)`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        let d = self
            .policy
            .initial
            .saturating_mul(factor)
            .min(self.policy.max);
        self.attempt = self.attempt.saturating_add(1);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        d / 2 + d.mul_f64(unit / 2.0)
    }

    /// Attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over (after a successful connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The events WebSocket could not be opened or broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The TCP or WebSocket handshake failed.
    #[error("cannot open the ARI events socket at {url}: {reason}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// Asterisk answered the upgrade with an HTTP error (401: credentials, 400: no `app`).
    #[error("Asterisk refused the ARI events socket at {url}: {status}: {message}")]
    Refused {
        /// The URL, password removed.
        url: String,
        /// HTTP status.
        status: u16,
        /// Asterisk's words.
        message: String,
    },
    /// No handshake within the deadline.
    #[error("the ARI events socket at {url} did not open within {after_ms} ms")]
    Timeout {
        /// The URL, password removed.
        url: String,
        /// The deadline.
        after_ms: u64,
    },
    /// The socket broke while reading or writing.
    #[error("the ARI events socket broke: {reason}")]
    Broken {
        /// Why.
        reason: String,
    },
}

/// The URL with the `api_key` password replaced, for logs and errors.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if k == "api_key" {
                let user = v.split(':').next().unwrap_or("").to_owned();
                (k.into_owned(), format!("{user}:<redacted>"))
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    if !pairs.is_empty() {
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// One open events WebSocket.
#[derive(Debug)]
pub struct EventSocket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl EventSocket {
    /// Opens the socket (`url` from [`super::AriClient::events_url`]) within `timeout`.
    pub async fn connect(url: &Url, timeout: Duration) -> Result<Self, SocketError> {
        let shown = redact(url);
        let attempt = tokio_tungstenite::connect_async(url.as_str());
        match tokio::time::timeout(timeout, attempt).await {
            Err(_) => Err(SocketError::Timeout {
                url: shown,
                after_ms: timeout.as_millis() as u64,
            }),
            Ok(Ok((stream, _response))) => Ok(EventSocket { stream }),
            Ok(Err(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let message = response
                    .body()
                    .as_deref()
                    .map(error_message)
                    .unwrap_or_default();
                Err(SocketError::Refused {
                    url: shown,
                    status,
                    message,
                })
            }
            Ok(Err(e)) => Err(SocketError::Connect {
                url: shown,
                reason: e.to_string(),
            }),
        }
    }

    /// The next text message's bytes; `None` when the socket closed. Pings are answered by
    /// tungstenite; binary frames are ignored (ARI sends none).
    pub async fn next_text(&mut self) -> Option<Result<Vec<u8>, SocketError>> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(text)) => return Some(Ok(text.as_bytes().to_vec())),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => {
                    return Some(Err(SocketError::Broken {
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }

    /// Sends a text message (REST over the WebSocket).
    pub async fn send_text(&mut self, text: String) -> Result<(), SocketError> {
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| SocketError::Broken {
                reason: e.to_string(),
            })
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        });
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(100));
        let d = b.next_delay(0.999_999);
        assert!(
            d >= Duration::from_millis(399) && d < Duration::from_millis(400),
            "{d:?}"
        );
        // 800 ms before jitter, then capped at 1 s.
        let d = b.next_delay(0.5);
        assert!(
            d.abs_diff(Duration::from_millis(600)) < Duration::from_micros(1),
            "{d:?}"
        );
        for _ in 0..100 {
            let d = b.next_delay(0.5);
            assert!(
                d.abs_diff(Duration::from_millis(750)) < Duration::from_micros(1),
                "{d:?}"
            );
        }
        let d = b.next_delay(f64::NAN);
        assert!(
            d.abs_diff(Duration::from_millis(750)) < Duration::from_micros(1),
            "{d:?}"
        );
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
    }

    #[test]
    fn passwords_never_reach_logs() {
        let u = Url::parse("ws://127.0.0.1:8088/ari/events?app=cc&api_key=cc%3Asecret").unwrap();
        let shown = redact(&u);
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("cc%3A%3Credacted%3E"), "{shown}");
    }
}
