//! The ARI REST client: a thin typed layer over reqwest. Every call has a deadline; every ARI
//! error reply (400, 401, 404, 409, 422, 500, …) becomes an [`AriError::Status`] that names the
//! operation, the status and Asterisk's words (read from `message`, or from `error` as the 500
//! "Allocation failed" writes it).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::model::{
    AsteriskInfo, AsteriskPing, Bridge, Channel, Endpoint, LiveRecording, Playback, RtpStat,
    StoredRecording, Variable,
};

/// How Switchboard proves who it is to ARI (ari.conf user and password).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic authentication.
    Basic {
        /// ari.conf user.
        user: String,
        /// Its password.
        password: String,
    },
    /// `?api_key=user:password` on every request (and on the WebSocket URL).
    ApiKey {
        /// ari.conf user.
        user: String,
        /// Its password.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <password>)"),
            Credentials::ApiKey { user, .. } => write!(f, "ApiKey({user}, <password>)"),
        }
    }
}

impl Credentials {
    /// The `api_key` value (`user:password`).
    pub fn api_key(&self) -> String {
        match self {
            Credentials::Basic { user, password } | Credentials::ApiKey { user, password } => {
                format!("{user}:{password}")
            }
        }
    }
}

/// An ARI call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AriError {
    /// ARI answered with an error status; `message` is what Asterisk said.
    #[error("{operation} failed: {status} {reason}: {message}")]
    Status {
        /// The call (`POST /channels/abc/answer`).
        operation: String,
        /// HTTP status.
        status: u16,
        /// The reason phrase's meaning (from the status code).
        reason: String,
        /// Asterisk's `message` (or `error`), or the start of a non-JSON body.
        message: String,
    },
    /// No reply within the deadline.
    #[error("{operation} got no reply within {after_ms} ms")]
    Timeout {
        /// The call.
        operation: String,
        /// The deadline.
        after_ms: u64,
    },
    /// Asterisk could not be reached.
    #[error("{operation}: cannot reach Asterisk: {reason}")]
    Connect {
        /// The call.
        operation: String,
        /// Why.
        reason: String,
    },
    /// The HTTP exchange broke off.
    #[error("{operation}: HTTP failure: {reason}")]
    Http {
        /// The call.
        operation: String,
        /// Why.
        reason: String,
    },
    /// The reply was not the JSON the API describes.
    #[error("{operation}: unexpected reply ({reason}): {body_start}")]
    Decode {
        /// The call.
        operation: String,
        /// The parser's words.
        reason: String,
        /// The start of the body.
        body_start: String,
    },
    /// The configured URL is not usable.
    #[error("bad ARI URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl AriError {
    /// The HTTP status, for status errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            AriError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether ARI said 404 (the object is gone).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The operation that failed.
    pub fn operation(&self) -> &str {
        match self {
            AriError::Status { operation, .. }
            | AriError::Timeout { operation, .. }
            | AriError::Connect { operation, .. }
            | AriError::Http { operation, .. }
            | AriError::Decode { operation, .. } => operation,
            AriError::BadUrl { url, .. } => url,
        }
    }
}

/// Reads Asterisk's words out of an error body: `{"message": …}`, `{"error": …}`, or text.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "error"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
        return serde_json::Value::Object(map).to_string();
    }
    let text = String::from_utf8_lossy(body);
    // text/html error pages: keep the sentence, drop the markup.
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                plain.push(' ');
            }
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = plain.split_whitespace().collect();
    words.join(" ").chars().take(200).collect()
}

/// Where ARI is and how to log in.
#[derive(Debug, Clone)]
pub struct AriConfig {
    /// Base URL of ARI, e.g. `http://127.0.0.1:8088/ari`.
    pub base_url: String,
    /// Credentials.
    pub credentials: Credentials,
    /// The deadline of each request.
    pub request_timeout: Duration,
}

/// Parameters of an originate (`POST /channels[/{channelId}]`); `None` fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginateParams {
    /// Endpoint to call (`PJSIP/agent`, `Local/100@cc-test`).
    pub endpoint: String,
    /// Dialplan extension (instead of `app`).
    pub extension: Option<String>,
    /// Dialplan context.
    pub context: Option<String>,
    /// Dialplan priority.
    pub priority: Option<i64>,
    /// Stasis application to enter once answered.
    pub app: Option<String>,
    /// Application arguments, comma-separated.
    pub app_args: Option<String>,
    /// Caller id (`Name <number>`).
    pub caller_id: Option<String>,
    /// Seconds to ring.
    pub timeout: Option<i64>,
    /// The id of the new channel (chosen by Switchboard, to correlate events).
    pub channel_id: Option<String>,
    /// The id of the `;2` half of a Local channel.
    pub other_channel_id: Option<String>,
    /// The channel this one is made for (for codec negotiation).
    pub originator: Option<String>,
    /// Formats (`ulaw`), not with `originator`.
    pub formats: Option<String>,
    /// Channel variables (sent in the JSON body, as ARI requires).
    pub variables: BTreeMap<String, String>,
}

/// Parameters of `POST /channels/externalMedia`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMediaParams {
    /// The channel id.
    pub channel_id: Option<String>,
    /// Stasis application.
    pub app: String,
    /// Where Asterisk sends RTP (`host:port`).
    pub external_host: String,
    /// Audio format (`ulaw`).
    pub format: String,
    /// `rtp` (default) or `audiosocket`.
    pub encapsulation: String,
    /// `udp` (default) or `tcp`.
    pub transport: String,
    /// `both` (default), `sendonly`, `recvonly`.
    pub direction: String,
    /// Channel variables.
    pub variables: BTreeMap<String, String>,
}

impl ExternalMediaParams {
    /// RTP over UDP in both directions, the defaults Asterisk documents.
    pub fn rtp(app: &str, external_host: &str, format: &str) -> Self {
        ExternalMediaParams {
            channel_id: None,
            app: app.to_owned(),
            external_host: external_host.to_owned(),
            format: format.to_owned(),
            encapsulation: "rtp".into(),
            transport: "udp".into(),
            direction: "both".into(),
            variables: BTreeMap::new(),
        }
    }
}

/// Parameters of a recording (`POST /channels|bridges/{id}/record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParams {
    /// Name (file name without extension).
    pub name: String,
    /// Format (`wav`).
    pub format: String,
    /// Stop after this many seconds (0: no limit).
    pub max_duration_seconds: Option<i64>,
    /// Stop after this much silence (0: no limit).
    pub max_silence_seconds: Option<i64>,
    /// `fail` (default), `overwrite`, `append`.
    pub if_exists: Option<String>,
    /// Play a beep first.
    pub beep: Option<bool>,
    /// DTMF that stops it (`none`, `any`, `*`, `#`).
    pub terminate_on: Option<String>,
}

impl RecordParams {
    /// A recording of `name` in `format`, overwriting an old one of that name.
    pub fn new(name: &str, format: &str) -> Self {
        RecordParams {
            name: name.to_owned(),
            format: format.to_owned(),
            max_duration_seconds: None,
            max_silence_seconds: None,
            if_exists: Some("overwrite".into()),
            beep: None,
            terminate_on: None,
        }
    }
}

/// A query string under construction.
#[derive(Debug, Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    fn set(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.push((name, value.into()));
        self
    }
    fn opt(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.set(name, v.to_string()),
            None => self,
        }
    }
}

/// The ARI REST client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct AriClient {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    timeout: Duration,
}

impl AriClient {
    /// A client for `config` (no request is sent yet).
    pub fn new(config: &AriConfig) -> Result<Self, AriError> {
        let bad = |reason: String| AriError::BadUrl {
            url: config.base_url.clone(),
            reason,
        };
        let mut base = Url::parse(&config.base_url).map_err(|e| bad(e.to_string()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected http://host:port/ari".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(AriClient {
            http,
            base,
            credentials: config.credentials.clone(),
            timeout: config.request_timeout,
        })
    }

    /// The base URL (ends with `/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The events WebSocket URL for `app` (`ws://…/ari/events?app=…&subscribeAll=…&api_key=…`).
    pub fn events_url(&self, app: &str, subscribe_all: bool) -> Url {
        let mut url = self.base.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http→ws keeps host and port; set_scheme refuses only special↔non-special changes,
        // so rebuild from text.
        let text = format!("{scheme}{}", &url.as_str()[url.scheme().len()..]);
        if let Ok(u) = Url::parse(&text) {
            url = u;
        }
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("events");
        }
        url.query_pairs_mut()
            .append_pair("app", app)
            .append_pair("subscribeAll", if subscribe_all { "true" } else { "false" })
            .append_pair("api_key", &self.credentials.api_key());
        url
    }

    fn url(&self, path: &[&str], query: &Query) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for p in path {
                segments.push(p);
            }
        }
        let api_key = match &self.credentials {
            Credentials::ApiKey { .. } => Some(self.credentials.api_key()),
            Credentials::Basic { .. } => None,
        };
        if !query.0.is_empty() || api_key.is_some() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &query.0 {
                pairs.append_pair(k, v);
            }
            if let Some(key) = api_key {
                pairs.append_pair("api_key", &key);
            }
        }
        url
    }

    /// Sends one request and returns the status and body (errors already mapped).
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: Query,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, AriError> {
        let operation = format!("{method} /{}", path.join("/"));
        let url = self.url(path, &query);
        let mut request = self.http.request(method, url);
        if let Credentials::Basic { user, password } = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.map_error(&operation, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.map_error(&operation, e))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(AriError::Status {
            operation,
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("error").to_owned(),
            message: error_message(&bytes),
        })
    }

    fn map_error(&self, operation: &str, e: reqwest::Error) -> AriError {
        if e.is_timeout() {
            AriError::Timeout {
                operation: operation.to_owned(),
                after_ms: self.timeout.as_millis() as u64,
            }
        } else if e.is_connect() {
            AriError::Connect {
                operation: operation.to_owned(),
                reason: source_chain(&e),
            }
        } else {
            AriError::Http {
                operation: operation.to_owned(),
                reason: source_chain(&e),
            }
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: Query,
        body: Option<serde_json::Value>,
    ) -> Result<T, AriError> {
        let operation = format!("{method} /{}", path.join("/"));
        let bytes = self.send(method, path, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| AriError::Decode {
            operation,
            reason: e.to_string(),
            body_start: super::event::payload_start(&bytes),
        })
    }

    async fn empty(
        &self,
        method: Method,
        path: &[&str],
        query: Query,
        body: Option<serde_json::Value>,
    ) -> Result<(), AriError> {
        self.send(method, path, query, body).await.map(|_| ())
    }

    // ---- asterisk ----

    /// `GET /asterisk/info`, optionally `only` some parts (`build`, `system`, `config`, `status`).
    pub async fn asterisk_info(&self, only: &[&str]) -> Result<AsteriskInfo, AriError> {
        let q = if only.is_empty() {
            Query::default()
        } else {
            Query::default().set("only", only.join(","))
        };
        self.json(Method::GET, &["asterisk", "info"], q, None).await
    }

    /// `GET /asterisk/ping`.
    pub async fn ping(&self) -> Result<AsteriskPing, AriError> {
        self.json(Method::GET, &["asterisk", "ping"], Query::default(), None)
            .await
    }

    // ---- channels ----

    /// `GET /channels`: every channel on the switch.
    pub async fn list_channels(&self) -> Result<Vec<Channel>, AriError> {
        self.json(Method::GET, &["channels"], Query::default(), None)
            .await
    }

    /// `GET /channels/{id}`.
    pub async fn get_channel(&self, id: &str) -> Result<Channel, AriError> {
        self.json(Method::GET, &["channels", id], Query::default(), None)
            .await
    }

    fn originate_query(p: &OriginateParams) -> Query {
        Query::default()
            .set("endpoint", p.endpoint.clone())
            .opt("extension", p.extension.as_ref())
            .opt("context", p.context.as_ref())
            .opt("priority", p.priority)
            .opt("app", p.app.as_ref())
            .opt("appArgs", p.app_args.as_ref())
            .opt("callerId", p.caller_id.as_ref())
            .opt("timeout", p.timeout)
            .opt("otherChannelId", p.other_channel_id.as_ref())
            .opt("originator", p.originator.as_ref())
            .opt("formats", p.formats.as_ref())
    }

    fn variables_body(variables: &BTreeMap<String, String>) -> Option<serde_json::Value> {
        (!variables.is_empty()).then(|| serde_json::json!({ "variables": variables }))
    }

    /// Originates a channel. With `channel_id` set it uses `POST /channels/{id}` (Switchboard
    /// chooses the id and correlates events by it: the reply may come before or after
    /// `ChannelCreated`).
    pub async fn originate(&self, p: &OriginateParams) -> Result<Channel, AriError> {
        let body = Self::variables_body(&p.variables);
        match &p.channel_id {
            Some(id) => {
                self.json(
                    Method::POST,
                    &["channels", id],
                    Self::originate_query(p),
                    body,
                )
                .await
            }
            None => {
                self.json(Method::POST, &["channels"], Self::originate_query(p), body)
                    .await
            }
        }
    }

    /// `POST /channels/create`: a channel in Stasis that is not dialled yet (see [`Self::dial`]).
    pub async fn create_channel(&self, p: &OriginateParams) -> Result<Channel, AriError> {
        let q = Query::default()
            .set("endpoint", p.endpoint.clone())
            .opt("app", p.app.as_ref())
            .opt("appArgs", p.app_args.as_ref())
            .opt("channelId", p.channel_id.as_ref())
            .opt("otherChannelId", p.other_channel_id.as_ref())
            .opt("originator", p.originator.as_ref())
            .opt("formats", p.formats.as_ref());
        self.json(
            Method::POST,
            &["channels", "create"],
            q,
            Self::variables_body(&p.variables),
        )
        .await
    }

    /// `POST /channels/{id}/dial`: dials a created channel.
    pub async fn dial(
        &self,
        id: &str,
        caller: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), AriError> {
        let q = Query::default()
            .opt("caller", caller)
            .opt("timeout", timeout);
        self.empty(Method::POST, &["channels", id, "dial"], q, None)
            .await
    }

    /// `DELETE /channels/{id}` with a Q.850 `reason_code`.
    pub async fn hangup(&self, id: &str, reason_code: Option<i64>) -> Result<(), AriError> {
        let q = Query::default().opt("reason_code", reason_code);
        self.empty(Method::DELETE, &["channels", id], q, None).await
    }

    /// `DELETE /channels/{id}?reason=…` with one of ARI's words (`normal`, `busy`, …).
    pub async fn hangup_with_reason(&self, id: &str, reason: &str) -> Result<(), AriError> {
        let q = Query::default().set("reason", reason);
        self.empty(Method::DELETE, &["channels", id], q, None).await
    }

    async fn channel_op(
        &self,
        method: Method,
        id: &str,
        op: &str,
        q: Query,
    ) -> Result<(), AriError> {
        self.empty(method, &["channels", id, op], q, None).await
    }

    /// `POST /channels/{id}/answer`.
    pub async fn answer(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::POST, id, "answer", Query::default())
            .await
    }

    /// `POST /channels/{id}/ring` (SIP 180 on an inbound call).
    pub async fn ring(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::POST, id, "ring", Query::default())
            .await
    }

    /// `DELETE /channels/{id}/ring`.
    pub async fn ring_stop(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::DELETE, id, "ring", Query::default())
            .await
    }

    /// `POST /channels/{id}/hold`.
    pub async fn hold(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::POST, id, "hold", Query::default())
            .await
    }

    /// `DELETE /channels/{id}/hold`.
    pub async fn unhold(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::DELETE, id, "hold", Query::default())
            .await
    }

    /// `POST /channels/{id}/moh?mohClass=…`.
    pub async fn start_moh(&self, id: &str, class: Option<&str>) -> Result<(), AriError> {
        self.channel_op(
            Method::POST,
            id,
            "moh",
            Query::default().opt("mohClass", class),
        )
        .await
    }

    /// `DELETE /channels/{id}/moh`.
    pub async fn stop_moh(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::DELETE, id, "moh", Query::default())
            .await
    }

    /// `POST /channels/{id}/silence`.
    pub async fn start_silence(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::POST, id, "silence", Query::default())
            .await
    }

    /// `DELETE /channels/{id}/silence`.
    pub async fn stop_silence(&self, id: &str) -> Result<(), AriError> {
        self.channel_op(Method::DELETE, id, "silence", Query::default())
            .await
    }

    /// `POST /channels/{id}/mute?direction=…` (`both`, `in`, `out`).
    pub async fn mute(&self, id: &str, direction: &str) -> Result<(), AriError> {
        self.channel_op(
            Method::POST,
            id,
            "mute",
            Query::default().set("direction", direction),
        )
        .await
    }

    /// `DELETE /channels/{id}/mute?direction=…`.
    pub async fn unmute(&self, id: &str, direction: &str) -> Result<(), AriError> {
        self.channel_op(
            Method::DELETE,
            id,
            "mute",
            Query::default().set("direction", direction),
        )
        .await
    }

    /// `POST /channels/{id}/play/{playbackId}?media=…` (201, state `queued`); several media
    /// play as a list.
    pub async fn play(
        &self,
        id: &str,
        playback_id: Option<&str>,
        media: &[&str],
        lang: Option<&str>,
    ) -> Result<Playback, AriError> {
        let q = Query::default()
            .set("media", media.join(","))
            .opt("lang", lang);
        match playback_id {
            Some(pb) => {
                self.json(Method::POST, &["channels", id, "play", pb], q, None)
                    .await
            }
            None => {
                self.json(Method::POST, &["channels", id, "play"], q, None)
                    .await
            }
        }
    }

    /// `POST /channels/{id}/record` (201, state `queued`).
    pub async fn record_channel(
        &self,
        id: &str,
        p: &RecordParams,
    ) -> Result<LiveRecording, AriError> {
        self.json(
            Method::POST,
            &["channels", id, "record"],
            record_query(p),
            None,
        )
        .await
    }

    /// `POST /channels/{id}/snoop/{snoopId}`: a snoop channel into `app`.
    pub async fn snoop(
        &self,
        id: &str,
        snoop_id: &str,
        spy: &str,
        whisper: &str,
        app: &str,
        app_args: Option<&str>,
    ) -> Result<Channel, AriError> {
        let q = Query::default()
            .set("spy", spy)
            .set("whisper", whisper)
            .set("app", app)
            .opt("appArgs", app_args);
        self.json(Method::POST, &["channels", id, "snoop", snoop_id], q, None)
            .await
    }

    /// `POST /channels/{id}/continue`: back to the dialplan (emits `StasisEnd`).
    pub async fn continue_in_dialplan(
        &self,
        id: &str,
        context: Option<&str>,
        extension: Option<&str>,
        priority: Option<i64>,
    ) -> Result<(), AriError> {
        let q = Query::default()
            .opt("context", context)
            .opt("extension", extension)
            .opt("priority", priority);
        self.channel_op(Method::POST, id, "continue", q).await
    }

    /// `POST /channels/{id}/redirect?endpoint=…`.
    pub async fn redirect(&self, id: &str, endpoint: &str) -> Result<(), AriError> {
        self.channel_op(
            Method::POST,
            id,
            "redirect",
            Query::default().set("endpoint", endpoint),
        )
        .await
    }

    /// `POST /channels/{id}/dtmf?dtmf=…`.
    pub async fn send_dtmf(
        &self,
        id: &str,
        dtmf: &str,
        duration_ms: Option<i64>,
        between_ms: Option<i64>,
    ) -> Result<(), AriError> {
        let q = Query::default()
            .set("dtmf", dtmf)
            .opt("duration", duration_ms)
            .opt("between", between_ms);
        self.channel_op(Method::POST, id, "dtmf", q).await
    }

    /// `GET /channels/{id}/variable?variable=…` (404 when unset).
    pub async fn get_variable(&self, id: &str, variable: &str) -> Result<String, AriError> {
        let v: Variable = self
            .json(
                Method::GET,
                &["channels", id, "variable"],
                Query::default().set("variable", variable),
                None,
            )
            .await?;
        Ok(v.value)
    }

    /// `POST /channels/{id}/variable?variable=…&value=…`.
    pub async fn set_variable(
        &self,
        id: &str,
        variable: &str,
        value: &str,
    ) -> Result<(), AriError> {
        let q = Query::default()
            .set("variable", variable)
            .set("value", value);
        self.channel_op(Method::POST, id, "variable", q).await
    }

    /// `GET /channels/{id}/rtp_statistics` (404 "RTP info not found" for UnicastRTP).
    pub async fn rtp_statistics(&self, id: &str) -> Result<RtpStat, AriError> {
        self.json(
            Method::GET,
            &["channels", id, "rtp_statistics"],
            Query::default(),
            None,
        )
        .await
    }

    /// `POST /channels/externalMedia`: a UnicastRTP channel whose audio goes to
    /// `external_host`; its `channelvars` say where to send audio back.
    pub async fn external_media(&self, p: &ExternalMediaParams) -> Result<Channel, AriError> {
        let q = Query::default()
            .opt("channelId", p.channel_id.as_ref())
            .set("app", p.app.clone())
            .set("external_host", p.external_host.clone())
            .set("format", p.format.clone())
            .set("encapsulation", p.encapsulation.clone())
            .set("transport", p.transport.clone())
            .set("direction", p.direction.clone());
        self.json(
            Method::POST,
            &["channels", "externalMedia"],
            q,
            Self::variables_body(&p.variables),
        )
        .await
    }

    // ---- bridges ----

    /// `GET /bridges`.
    pub async fn list_bridges(&self) -> Result<Vec<Bridge>, AriError> {
        self.json(Method::GET, &["bridges"], Query::default(), None)
            .await
    }

    /// `GET /bridges/{id}`.
    pub async fn get_bridge(&self, id: &str) -> Result<Bridge, AriError> {
        self.json(Method::GET, &["bridges", id], Query::default(), None)
            .await
    }

    /// `POST /bridges?type=…&bridgeId=…&name=…` (`mixing`, `holding`, `mixing,dtmf_events`).
    pub async fn create_bridge(
        &self,
        bridge_type: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<Bridge, AriError> {
        let q = Query::default()
            .set("type", bridge_type)
            .opt("bridgeId", id)
            .opt("name", name);
        self.json(Method::POST, &["bridges"], q, None).await
    }

    /// `POST /bridges/{id}/addChannel?channel=a,b`.
    pub async fn add_channels(&self, bridge: &str, channels: &[&str]) -> Result<(), AriError> {
        let q = Query::default().set("channel", channels.join(","));
        self.empty(Method::POST, &["bridges", bridge, "addChannel"], q, None)
            .await
    }

    /// `POST /bridges/{id}/removeChannel?channel=a,b`.
    pub async fn remove_channels(&self, bridge: &str, channels: &[&str]) -> Result<(), AriError> {
        let q = Query::default().set("channel", channels.join(","));
        self.empty(Method::POST, &["bridges", bridge, "removeChannel"], q, None)
            .await
    }

    /// `DELETE /bridges/{id}` (channels still inside leave it and stay in Stasis).
    pub async fn destroy_bridge(&self, bridge: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["bridges", bridge], Query::default(), None)
            .await
    }

    /// `POST /bridges/{id}/play/{playbackId}?media=…`.
    pub async fn play_on_bridge(
        &self,
        bridge: &str,
        playback_id: Option<&str>,
        media: &[&str],
    ) -> Result<Playback, AriError> {
        let q = Query::default().set("media", media.join(","));
        match playback_id {
            Some(pb) => {
                self.json(Method::POST, &["bridges", bridge, "play", pb], q, None)
                    .await
            }
            None => {
                self.json(Method::POST, &["bridges", bridge, "play"], q, None)
                    .await
            }
        }
    }

    /// `POST /bridges/{id}/record` (with subscribeAll its events arrive twice).
    pub async fn record_bridge(
        &self,
        bridge: &str,
        p: &RecordParams,
    ) -> Result<LiveRecording, AriError> {
        self.json(
            Method::POST,
            &["bridges", bridge, "record"],
            record_query(p),
            None,
        )
        .await
    }

    // ---- playbacks ----

    /// `GET /playbacks/{id}` (a finished playback is 404 at once).
    pub async fn get_playback(&self, id: &str) -> Result<Playback, AriError> {
        self.json(Method::GET, &["playbacks", id], Query::default(), None)
            .await
    }

    /// `DELETE /playbacks/{id}`: stops it (it still finishes with state `done`).
    pub async fn stop_playback(&self, id: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["playbacks", id], Query::default(), None)
            .await
    }

    /// `POST /playbacks/{id}/control?operation=…` (`pause`, `unpause`, `restart`, `reverse`,
    /// `forward`).
    pub async fn control_playback(&self, id: &str, operation: &str) -> Result<(), AriError> {
        let q = Query::default().set("operation", operation);
        self.empty(Method::POST, &["playbacks", id, "control"], q, None)
            .await
    }

    // ---- recordings ----

    /// `GET /recordings/live/{name}`.
    pub async fn get_live_recording(&self, name: &str) -> Result<LiveRecording, AriError> {
        self.json(
            Method::GET,
            &["recordings", "live", name],
            Query::default(),
            None,
        )
        .await
    }

    /// `POST /recordings/live/{name}/stop`.
    pub async fn stop_recording(&self, name: &str) -> Result<(), AriError> {
        self.empty(
            Method::POST,
            &["recordings", "live", name, "stop"],
            Query::default(),
            None,
        )
        .await
    }

    /// `GET /recordings/stored`.
    pub async fn list_stored_recordings(&self) -> Result<Vec<StoredRecording>, AriError> {
        self.json(
            Method::GET,
            &["recordings", "stored"],
            Query::default(),
            None,
        )
        .await
    }

    /// `GET /recordings/stored/{name}`.
    pub async fn get_stored_recording(&self, name: &str) -> Result<StoredRecording, AriError> {
        self.json(
            Method::GET,
            &["recordings", "stored", name],
            Query::default(),
            None,
        )
        .await
    }

    /// `GET /recordings/stored/{name}/file`: the file's bytes.
    pub async fn stored_recording_file(&self, name: &str) -> Result<Vec<u8>, AriError> {
        self.send(
            Method::GET,
            &["recordings", "stored", name, "file"],
            Query::default(),
            None,
        )
        .await
    }

    /// `DELETE /recordings/stored/{name}`.
    pub async fn delete_stored_recording(&self, name: &str) -> Result<(), AriError> {
        self.empty(
            Method::DELETE,
            &["recordings", "stored", name],
            Query::default(),
            None,
        )
        .await
    }

    // ---- endpoints ----

    /// `GET /endpoints`.
    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>, AriError> {
        self.json(Method::GET, &["endpoints"], Query::default(), None)
            .await
    }

    /// `GET /endpoints/{tech}/{resource}`.
    pub async fn get_endpoint(&self, tech: &str, resource: &str) -> Result<Endpoint, AriError> {
        self.json(
            Method::GET,
            &["endpoints", tech, resource],
            Query::default(),
            None,
        )
        .await
    }
}

fn record_query(p: &RecordParams) -> Query {
    Query::default()
        .set("name", p.name.clone())
        .set("format", p.format.clone())
        .opt("maxDurationSeconds", p.max_duration_seconds)
        .opt("maxSilenceSeconds", p.max_silence_seconds)
        .opt("ifExists", p.if_exists.as_ref())
        .opt("beep", p.beep)
        .opt("terminateOn", p.terminate_on.as_ref())
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_say_why() {
        assert_eq!(
            error_message(br#"{"message": "Channel not found"}"#),
            "Channel not found"
        );
        assert_eq!(
            error_message(br#"{"error": "Allocation failed"}"#),
            "Allocation failed"
        );
        let html = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>400 Bad Request</title>\r\n</head><body>\r\n<h1>Bad Request</h1>\r\n<p>HTTP request is missing param: [app]</p>\r\n<hr />\r\n<address>Asterisk/22.10.1</address>\r\n</body></html>\r\n";
        let m = error_message(html.as_bytes());
        assert!(m.contains("HTTP request is missing param: [app]"), "{m}");
        assert_eq!(error_message(b""), "");
    }

    #[test]
    fn urls_encode_like_the_captures() {
        let c = AriClient::new(&AriConfig {
            base_url: "http://127.0.0.1:8088/ari".into(),
            credentials: Credentials::ApiKey {
                user: "cc".into(),
                password: "pw".into(),
            },
            request_timeout: Duration::from_secs(1),
        })
        .unwrap();
        let u = c.url(
            &["channels", "err-1;2", "answer"],
            &Query::default().set("callerId", "Customer <5551000>"),
        );
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8088/ari/channels/err-1;2/answer?callerId=Customer+%3C5551000%3E&api_key=cc%3Apw"
        );
        assert_eq!(
            c.events_url("cc", false).as_str(),
            "ws://127.0.0.1:8088/ari/events?app=cc&subscribeAll=false&api_key=cc%3Apw"
        );
        let e = AriError::Status {
            operation: "POST /channels/x/answer".into(),
            status: 409,
            reason: "Conflict".into(),
            message: "Channel not in Stasis application".into(),
        };
        assert_eq!(
            e.to_string(),
            "POST /channels/x/answer failed: 409 Conflict: Channel not in Stasis application"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["not a url", "mailto:x@y", "ftp://h/ari"] {
            let r = AriClient::new(&AriConfig {
                base_url: url.into(),
                credentials: Credentials::Basic {
                    user: "u".into(),
                    password: "p".into(),
                },
                request_timeout: Duration::from_secs(1),
            });
            assert!(matches!(r, Err(AriError::BadUrl { .. })), "{url}");
        }
    }
}
