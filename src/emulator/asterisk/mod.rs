//! The Asterisk emulator: an HTTP + WebSocket server (axum) that behaves like Asterisk 22's
//! ARI for everything Switchboard uses — the same paths, parameters, status codes, reason
//! phrases, headers (`Server: Asterisk/22.10.1`, `Content-type` spelt that way) and JSON shapes
//! as `api-docs/` and the captured transcripts, and the same event sequences. Channels, bridges,
//! playbacks and recordings are simulated with durations ([`world`]); scripted callers and
//! faults (drop the sockets, refuse or delay requests, kill channels) are on demand.
//!
//! `switchboard emulate asterisk --listen 127.0.0.1:8088` calls [`run`].

pub mod rest;
pub mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use axum::routing::any;
use base64::Engine;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::media::asterisk::event::{AriEvent, EventKind, RestResponse};
use crate::media::asterisk::time::{AriTime, civil_from_days};

use super::timers::run_timers;

pub use world::{DialBehaviour, Dialplan, EndpointConfig, InboundCall, Step, WorldConfig};
use world::{Output, Reply, Timer, World};

/// How the emulator runs.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// The simulated switch (users, endpoints, dialplan, sounds).
    pub world: WorldConfig,
    /// Emulated durations are multiplied by this (1.0: real time; 0.01: a hundred times
    /// faster, for tests).
    pub time_scale: f64,
    /// Send RTP to externalMedia hosts (as Asterisk does: PT 0, 160 bytes every 20 ms).
    pub rtp: bool,
}

impl EmulatorOptions {
    /// A switch like the capture machine's, with ARI user `cc` and `password`.
    pub fn capture(password: &str) -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        EmulatorOptions {
            world: WorldConfig::capture(password, epoch),
            time_scale: 1.0,
            rtp: true,
        }
    }

    /// A switch as shipped in `asterisk-conf/` would be for Switchboard: ARI user `user` with
    /// `password`, and the capture's dialplan with its Stasis application renamed to `app`.
    pub fn for_switchboard(user: &str, password: &str, app: &str) -> Self {
        let mut options = Self::capture(password);
        options.world.users = vec![(user.to_owned(), password.to_owned())];
        for steps in options
            .world
            .dialplan
            .contexts
            .values_mut()
            .flat_map(|c| c.values_mut())
        {
            for step in steps.iter_mut() {
                if let Step::Stasis(name, _) = step {
                    *name = app.to_owned();
                }
            }
        }
        options
    }
}

impl Default for EmulatorOptions {
    /// User `switchboard`, password `switchboard`, application `switchboard`, real time.
    fn default() -> Self {
        Self::for_switchboard("switchboard", "switchboard", "switchboard")
    }
}

/// The emulator could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("emulator server failed: {0}")]
    Serve(std::io::Error),
    /// A scripted call could not be placed.
    #[error("cannot place the call: {0}")]
    Call(String),
}

/// Faults on demand.
#[derive(Debug, Clone, Default)]
struct Faults {
    refuse: Option<u16>,
    delay: Option<Duration>,
}

/// What the server tasks share.
struct Hub {
    world: Mutex<World>,
    sockets: Mutex<HashMap<u64, mpsc::Sender<String>>>,
    // Unbounded on purpose: timers are produced under the world lock and must not be lost;
    // each is bounded by the work that armed it.
    timers: mpsc::UnboundedSender<(Instant, Timer)>,
    faults: Mutex<Faults>,
    drop_sockets: watch::Sender<u64>,
    scale: f64,
    started: Instant,
    start_millis: i64,
    case_map: Option<axum::http::Extensions>,
    rtp: bool,
    rtp_tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

/// Events a socket may have queued before it is dropped as too slow.
const SOCKET_QUEUE: usize = 65_536;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    fn now(&self) -> AriTime {
        let elapsed = self.started.elapsed().as_millis() as i64;
        AriTime::from_unix_millis(self.start_millis + elapsed)
    }

    /// Runs `f` on the world at the current time and carries out what it produced.
    fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let (result, outputs) = {
            let mut w = lock(&self.world);
            w.set_now(self.now());
            let r = f(&mut w);
            (r, w.drain())
        };
        self.apply(outputs);
        result
    }

    fn apply(&self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { socket, text } => {
                    let tx = lock(&self.sockets).get(&socket).cloned();
                    if let Some(tx) = tx
                        && tx.try_send(text).is_err()
                    {
                        tracing::warn!(socket, "emulator: socket too slow, dropping it");
                        lock(&self.sockets).remove(&socket);
                    }
                }
                Output::Arm { after, timer } => {
                    let at = Instant::now() + after.mul_f64(self.scale);
                    let _ = self.timers.send((at, timer));
                }
                Output::RtpStart { channel, to } => {
                    if self.rtp {
                        let task = tokio::spawn(send_rtp(to));
                        lock(&self.rtp_tasks).insert(channel, task.abort_handle());
                    }
                }
                Output::RtpStop { channel } => {
                    if let Some(t) = lock(&self.rtp_tasks).remove(&channel) {
                        t.abort();
                    }
                }
            }
        }
    }
}

/// Streams silence as Asterisk does (d): PT 0, 160-byte payloads every 20 ms, timestamps from
/// 160, random SSRC and sequence, no marker on the first packet. Stops after an hour at most.
async fn send_rtp(to: String) {
    let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return;
    };
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut ts: u32 = 160;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..(3600 * 50) {
        tick.tick().await;
        let mut packet = Vec::with_capacity(172);
        packet.extend_from_slice(&[0x80, 0x00]);
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.resize(172, 0xff);
        if socket.send_to(&packet, &to).await.is_err() {
            return;
        }
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
}

/// The HTTP date (`Sat, 21 Nov 2026 21:13:08 GMT`).
fn http_date(unix_millis: i64) -> String {
    let secs = unix_millis.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1).clamp(0, 11) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Header names as Asterisk writes them. hyper writes lower-case names unless the response
/// carries its (crate-private) header-case map; the map is obtained by letting hyper parse a
/// request with the wanted spellings, with `preserve_header_case`, and keeping its extensions.
async fn header_case_map() -> Option<axum::http::Extensions> {
    use hyper::server::conn::http1;
    use tokio::io::AsyncWriteExt;
    let (mut client, server) = tokio::io::duplex(4096);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        if let Some(tx) = lock(&tx).take() {
            let _ = tx.send(req.extensions().clone());
        }
        async { Ok::<_, std::convert::Infallible>(Response::new(Body::empty())) }
    });
    let conn = http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(hyper_util::rt::TokioIo::new(server), service);
    let task = tokio::spawn(conn);
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nServer: x\r\nDate: x\r\nCache-Control: x\r\nLocation: x\r\nAllow: x\r\nWWW-Authenticate: x\r\nContent-type: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    client.write_all(head).await.ok()?;
    let ext = tokio::time::timeout(Duration::from_secs(2), rx)
        .await
        .ok()?
        .ok();
    task.abort();
    ext
}

fn reply_response(hub: &Hub, reply: Reply) -> Response<Body> {
    let (content_type, body): (Option<&str>, Vec<u8>) = match (&reply.raw, &reply.body) {
        (Some((ct, bytes)), _) => (Some(*ct), bytes.clone()),
        (None, Some(v)) => (
            Some("application/json"),
            serde_json::to_vec(v).unwrap_or_default(),
        ),
        (None, None) => (None, Vec::new()),
    };
    let mut b = Response::builder().status(reply.status);
    let mut headers = vec![
        ("server", "Asterisk/22.10.1".to_owned()),
        ("date", http_date(hub.now().unix_millis)),
        ("cache-control", "no-cache, no-store".to_owned()),
    ];
    if let Some(loc) = &reply.location {
        headers.push(("location", loc.clone()));
    }
    if let Some(allow) = reply.allow {
        headers.push(("allow", allow.to_owned()));
    }
    if reply.status == 401 {
        headers.push((
            "www-authenticate",
            "Basic realm=\"Asterisk REST Interface\"".to_owned(),
        ));
    }
    if let Some(ct) = content_type {
        headers.push(("content-type", ct.to_owned()));
    }
    headers.push(("content-length", body.len().to_string()));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            b = b.header(HeaderName::from_static(k), v);
        }
    }
    let mut response = b
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()));
    finish(hub, &mut response, reply.reason);
    response
}

/// Adds the exact reason phrase and the header spellings.
fn finish(hub: &Hub, response: &mut Response<Body>, reason: &'static str) {
    let canonical = response.status().canonical_reason().unwrap_or("");
    if reason != canonical {
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
    }
    if let Some(ext) = &hub.case_map {
        response.extensions_mut().extend(ext.clone());
    }
}

fn html_error(hub: &Hub, status: u16, reason: &'static str, text: &str) -> Response<Body> {
    let body = format!(
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>{status} {reason}</title>\r\n</head><body>\r\n<h1>{reason}</h1>\r\n<p>{text}</p>\r\n<hr />\r\n<address>Asterisk/22.10.1</address>\r\n</body></html>\r\n"
    );
    let reply = Reply {
        status,
        reason,
        body: None,
        location: None,
        allow: None,
        raw: Some(("text/html", body.into_bytes())),
    };
    reply_response(hub, reply)
}

/// Basic auth or `?api_key=user:password`.
fn authenticated(hub: &Hub, headers: &HeaderMap, query: &str) -> bool {
    let world = lock(&hub.world);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "api_key" {
            if let Some((u, p)) = v.split_once(':') {
                return world.authenticates(u, p);
            }
            return false;
        }
    }
    let Some(auth) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = auth.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((u, p)) => world.authenticates(u, p),
        None => false,
    }
}

async fn serve_http(
    State(hub): State<Arc<Hub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let faults = lock(&hub.faults).clone();
    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = faults.refuse
        && !path.starts_with("/emulator/")
    {
        return reply_response(&hub, Reply::error(status, "Refused (emulator fault)"));
    }
    if path.starts_with("/emulator/") {
        if !authenticated(&hub, &headers, &query) {
            return reply_response(&hub, Reply::error(401, "Authentication required"));
        }
        return reply_response(&hub, control(&hub, &method, &path, &query));
    }
    let Some(rest) = path.strip_prefix("/ari/") else {
        return html_error(
            &hub,
            404,
            "Not Found",
            "The requested URL was not found on this server.",
        );
    };
    if !authenticated(&hub, &headers, &query) {
        return reply_response(&hub, Reply::error(401, "Authentication required"));
    }
    if rest == "events" && method == Method::GET {
        let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let app = params.get("app").cloned().unwrap_or_default();
        if app.is_empty() {
            return html_error(
                &hub,
                400,
                "Bad Request",
                "HTTP request is missing param: [app]",
            );
        }
        let subscribe_all = params
            .get("subscribeAll")
            .is_some_and(|v| matches!(v.as_str(), "true" | "yes" | "1"));
        let Ok(ws) = ws else {
            return reply_response(&hub, Reply::error(400, "WebSocket upgrade required"));
        };
        let hub2 = hub.clone();
        let mut response =
            ws.on_upgrade(move |socket| events_session(hub2, socket, app, subscribe_all));
        finish(&hub, &mut response, "Switching Protocols");
        return response;
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let params = match rest::params(&query, content_type.as_deref(), &body) {
        Ok(p) => p,
        Err(_) => return reply_response(&hub, Reply::error(400, "Error parsing request body")),
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = method.as_str().to_owned();
    let reply = hub.with_world(|w| rest::handle(w, &method, &segs, &params));
    reply_response(&hub, reply)
}

fn percent_decode(s: &str) -> String {
    // Path segments: %XX only (`+` stays a plus in paths).
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The emulator's own control surface (same credentials as ARI): scripted callers and faults
/// for a user running the emulator on its own.
fn control(hub: &Hub, method: &Method, path: &str, query: &str) -> Reply {
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let secs = |k: &str| {
        q.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Duration::from_secs_f64)
    };
    match (method.as_str(), path) {
        ("POST", "/emulator/calls") => {
            let call = InboundCall {
                endpoint: q
                    .get("endpoint")
                    .cloned()
                    .unwrap_or_else(|| "customer".into()),
                extension: q.get("extension").cloned().unwrap_or_else(|| "1000".into()),
                caller_name: q
                    .get("caller_name")
                    .cloned()
                    .unwrap_or_else(|| "Customer".into()),
                caller_number: q
                    .get("caller_number")
                    .cloned()
                    .unwrap_or_else(|| "customer".into()),
                dtmf: q
                    .get("dtmf")
                    .map(|d| {
                        vec![(
                            secs("dtmf_after").unwrap_or(Duration::from_secs(1)),
                            d.clone(),
                        )]
                    })
                    .unwrap_or_default(),
                hangup_after: secs("hangup_after"),
            };
            match hub.with_world(|w| w.inbound_call(&call)) {
                Ok(id) => Reply::ok(json!({ "channel": id })),
                Err(e) => Reply::error(400, &e),
            }
        }
        ("POST", "/emulator/faults/drop-sockets") => {
            hub.drop_sockets.send_modify(|n| *n += 1);
            Reply::no_content()
        }
        ("POST", "/emulator/faults/refuse") => {
            lock(&hub.faults).refuse = q.get("status").and_then(|s| s.parse().ok());
            Reply::no_content()
        }
        ("POST", "/emulator/faults/delay") => {
            lock(&hub.faults).delay = secs("seconds");
            Reply::no_content()
        }
        ("POST", p) if p.starts_with("/emulator/channels/") && p.ends_with("/hangup") => {
            let id = p
                .trim_start_matches("/emulator/channels/")
                .trim_end_matches("/hangup");
            let cause = q.get("cause").and_then(|c| c.parse().ok()).unwrap_or(16);
            if hub.with_world(|w| w.kill_channel(id, cause)) {
                Reply::no_content()
            } else {
                Reply::error(404, "Channel not found")
            }
        }
        _ => Reply::error(404, "Resource not found"),
    }
}

async fn events_session(hub: Arc<Hub>, mut socket: WebSocket, app: String, subscribe_all: bool) {
    let (tx, mut rx) = mpsc::channel::<String>(SOCKET_QUEUE);
    let mut dropped = hub.drop_sockets.subscribe();
    let id = {
        let (id, outputs) = {
            let mut w = lock(&hub.world);
            w.set_now(hub.now());
            let id = w.open_socket(&app, subscribe_all);
            (id, w.drain())
        };
        lock(&hub.sockets).insert(id, tx);
        hub.apply(outputs);
        id
    };
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => rest_over_ws(&hub, id, &app, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = dropped.changed() => {
                // Fault: the TCP connection goes away without a closing handshake.
                drop(socket);
                lock(&hub.sockets).remove(&id);
                hub.with_world(|w| w.close_socket(id));
                return;
            }
        }
    }
    lock(&hub.sockets).remove(&id);
    hub.with_world(|w| w.close_socket(id));
}

/// REST over the events WebSocket (g): the reply is a `RESTResponse` event, sent after the
/// events the request caused.
fn rest_over_ws(hub: &Hub, socket: u64, app: &str, text: &str) {
    let Ok(serde_json::Value::Object(msg)) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if msg.get("type").and_then(|t| t.as_str()) != Some("RESTRequest") {
        return;
    }
    let s = |k: &str| msg.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let (transaction_id, request_id, method, uri) =
        (s("transaction_id"), s("request_id"), s("method"), s("uri"));
    let (path, mut query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (uri.clone(), String::new()),
    };
    if let Some(serde_json::Value::Array(qs)) = msg.get("query_strings") {
        let mut ser = form_urlencoded::Serializer::new(query.clone());
        for item in qs {
            if let (Some(n), Some(v)) = (
                item.get("name").and_then(|v| v.as_str()),
                item.get("value").and_then(|v| v.as_str()),
            ) {
                ser.append_pair(n, v);
            }
        }
        query = ser.finish();
    }
    let mut pending = Vec::new();
    let reply = if !matches!(
        method.as_str(),
        "GET" | "POST" | "PUT" | "DELETE" | "OPTIONS"
    ) {
        let mut r = Reply::error(400, "Unknown or missing 'method' property.");
        r.reason = "Bad request";
        r
    } else if path.starts_with('/') {
        Reply::error(405, "Invalid method")
    } else {
        let ct = msg
            .get("content_type")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let body = s("message_body");
        match rest::params(&query, ct.as_deref(), body.as_bytes()) {
            Err(_) => Reply::error(400, "Error parsing request body"),
            Ok(params) => {
                let segments: Vec<String> = path
                    .split('/')
                    .filter(|x| !x.is_empty())
                    .map(percent_decode)
                    .collect();
                let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
                let (reply, mut outputs, mark) = {
                    let mut w = lock(&hub.world);
                    w.set_now(hub.now());
                    let reply = rest::handle(&mut w, &method, &segs, &params);
                    let mark = w.reply_mark();
                    (reply, w.drain(), mark)
                };
                let at = mark.unwrap_or(outputs.len()).min(outputs.len());
                let later = outputs.split_off(at);
                hub.apply(outputs);
                pending = later;
                reply
            }
        }
    };
    let message_body = reply.body.as_ref().map(|b| b.to_string());
    let event = AriEvent {
        application: app.to_owned(),
        timestamp: Some(hub.now()),
        asterisk_id: Some(lock(&hub.world).config().asterisk_id.clone()),
        kind: EventKind::RestResponse(RestResponse {
            transaction_id,
            request_id,
            status_code: reply.status,
            reason_phrase: reply.reason.to_owned(),
            uri: path,
            content_type: message_body.as_ref().map(|_| "application/json".to_owned()),
            message_body,
        }),
    };
    if let Ok(text) = serde_json::to_string(&event) {
        hub.apply(vec![Output::Send { socket, text }]);
    }
    hub.apply(pending);
}

/// A running emulator; [`Emulator::shutdown`] stops it (dropping it aborts its tasks).
pub struct Emulator {
    addr: SocketAddr,
    hub: Arc<Hub>,
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Emulator {
    /// Binds `listen` (port 0 picks one) and starts serving.
    pub async fn start(
        listen: SocketAddr,
        options: EmulatorOptions,
    ) -> Result<Self, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: listen,
                source,
            })?;
        let (timers, timer_rx) = mpsc::unbounded_channel();
        let start_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let hub = Arc::new(Hub {
            world: Mutex::new(World::new(options.world)),
            sockets: Mutex::new(HashMap::new()),
            timers,
            faults: Mutex::new(Faults::default()),
            drop_sockets: watch::channel(0).0,
            scale: if options.time_scale.is_finite() && options.time_scale > 0.0 {
                options.time_scale
            } else {
                1.0
            },
            started: Instant::now(),
            start_millis,
            case_map: header_case_map().await,
            rtp: options.rtp,
            rtp_tasks: Mutex::new(HashMap::new()),
        });
        let (stop, mut stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let timers_hub = hub.clone();
        tasks.spawn(run_timers(timer_rx, move |timer| {
            timers_hub.with_world(|w| w.fire(timer))
        }));
        let app = Router::new()
            .fallback(any(serve_http))
            .with_state(hub.clone());
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        tracing::info!(%addr, "Asterisk emulator listening (ARI at /ari)");
        Ok(Emulator {
            addr,
            hub,
            tasks,
            stop,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/ari`.
    pub fn base_url(&self) -> String {
        format!("http://{}/ari", self.addr)
    }

    /// A scripted SIP call arrives now; returns its channel id.
    pub fn place_call(&self, call: &InboundCall) -> Result<String, EmulatorError> {
        self.hub
            .with_world(|w| w.inbound_call(call))
            .map_err(EmulatorError::Call)
    }

    /// Fault: the far end of `channel` hangs up with a Q.850 cause (16: a normal BYE).
    pub fn kill_channel(&self, channel: &str, cause: i64) -> bool {
        self.hub.with_world(|w| w.kill_channel(channel, cause))
    }

    /// The far end of `channel` sends DTMF.
    pub fn caller_dtmf(&self, channel: &str, digits: &str) -> bool {
        self.hub.with_world(|w| w.caller_dtmf(channel, digits))
    }

    /// Fault: every events WebSocket is dropped (no closing handshake).
    pub fn drop_sockets(&self) {
        self.hub.drop_sockets.send_modify(|n| *n += 1);
    }

    /// Fault: refuse every request with `status` (`None`: stop refusing).
    pub fn refuse_requests(&self, status: Option<u16>) {
        lock(&self.hub.faults).refuse = status;
    }

    /// Fault: delay every request by `delay` (real time; `None`: no delay).
    pub fn delay_requests(&self, delay: Option<Duration>) {
        lock(&self.hub.faults).delay = delay;
    }

    /// Channels that exist now.
    pub fn channels(&self) -> Vec<String> {
        lock(&self.hub.world).channel_ids()
    }

    /// Bridges that exist now.
    pub fn bridges(&self) -> Vec<String> {
        lock(&self.hub.world).bridge_ids()
    }

    /// Events sockets open now.
    pub fn sockets(&self) -> usize {
        lock(&self.hub.world).socket_ids().len()
    }

    /// Stops serving and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.drop_sockets();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs the emulator on `listen` until Ctrl-C: what `switchboard emulate asterisk --listen
/// 127.0.0.1:8088` calls.
pub async fn run(listen: SocketAddr, options: EmulatorOptions) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(listen, options).await?;
    println!(
        "Asterisk emulator: ARI at {} (WebSocket {}/events?app=…)",
        emulator.base_url(),
        emulator.base_url().replacen("http", "ws", 1)
    );
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc_7231() {
        assert_eq!(
            http_date(1_795_295_588_568),
            "Sat, 21 Nov 2026 21:13:08 GMT"
        );
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn path_segments_decode() {
        assert_eq!(percent_decode("err-1%3B2"), "err-1;2");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
    }
}
