//! A scripted ESL server for the client, handler and outbound tests: it speaks the server side
//! of the codec, answers each command with what a script says (usually frames taken from the
//! fixtures, byte for byte), records what it received, and can push frames at any time, close
//! mid-frame, or refuse connections.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use switchboard::media::freeswitch::codec::{
    Command, CommandDecoder, ContentType, DisconnectNotice, Disposition, EventFormat, GOODBYE,
    JobUuid, Limits, OwnedEvent, ServerFrame, split_frames,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The password the scripted server accepts.
pub const PASSWORD: &str = "ClueCon";

/// fixtures/esl, beside the repository (or where SWITCHBOARD_ESL_FIXTURES says).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("SWITCHBOARD_ESL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl"))
}

/// Every frame FreeSWITCH sent in a capture, as bytes, in order.
pub fn fixture_frames(name: &str) -> Vec<Bytes> {
    let path = fixtures_dir().join(format!("{name}.raw"));
    let raw = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("ESL fixture {} not readable: {e}", path.display()));
    split_frames(Bytes::from(raw), Limits::default())
        .map(|f| f.expect("fixture frames parse").as_bytes().clone())
        .collect()
}

/// The first frame of a capture whose text contains every needle.
pub fn fixture_frame(name: &str, needles: &[&str]) -> Bytes {
    fixture_frames(name)
        .into_iter()
        .find(|f| {
            let t = String::from_utf8_lossy(f);
            needles.iter().all(|n| t.contains(n))
        })
        .unwrap_or_else(|| panic!("no frame with {needles:?} in {name}"))
}

/// The plain event frames of a capture.
pub fn fixture_events(name: &str) -> Vec<Bytes> {
    fixture_frames(name)
        .into_iter()
        .filter(|f| {
            let t = String::from_utf8_lossy(&f[..f.len().min(200)]);
            t.contains("Content-Type: text/event-")
        })
        .collect()
}

/// What the server does in answer to a command.
#[derive(Debug, Clone)]
pub enum Act {
    /// Write these bytes.
    Send(Bytes),
    /// Wait.
    Sleep(Duration),
    /// Close the connection.
    Close,
}

/// A frame's bytes.
pub fn frame(f: ServerFrame) -> Act {
    Act::Send(Bytes::from(f.to_bytes().expect("encodes")))
}

/// `command/reply` with this Reply-Text.
pub fn reply(text: &str) -> Act {
    frame(ServerFrame::CommandReply {
        reply_text: text.to_owned(),
    })
}

/// `api/response` with this body.
pub fn api(body: &str) -> Act {
    frame(ServerFrame::ApiResponse {
        body: body.to_owned(),
    })
}

/// An event frame.
pub fn event(format: EventFormat, event: OwnedEvent) -> Act {
    frame(ServerFrame::Event { format, event })
}

/// The goodbye disconnect notice.
pub fn goodbye() -> Act {
    frame(ServerFrame::Disconnect(DisconnectNotice {
        controlled_session: None,
        disposition: None,
        channel_name: None,
        linger_time: None,
        body: GOODBYE.to_owned(),
    }))
}

/// A linger or disconnect notice of a bound session.
pub fn notice(uuid: &str, disposition: Disposition) -> Act {
    let linger = disposition == Disposition::Linger;
    frame(ServerFrame::Disconnect(DisconnectNotice {
        controlled_session: Some(switchboard::media::LegId::new(uuid)),
        disposition: Some(disposition),
        channel_name: linger.then(|| "loopback/7202-b".to_owned()),
        linger_time: linger.then_some(3),
        body: if linger {
            String::new()
        } else {
            GOODBYE.to_owned()
        },
    }))
}

/// A BACKGROUND_JOB event with a result.
pub fn job_done(format: EventFormat, job: &JobUuid, command: &str, result: &str) -> Act {
    event(
        format,
        OwnedEvent::new("BACKGROUND_JOB")
            .with("Job-UUID", job.as_str())
            .with("Job-Command", command)
            .with_body(result),
    )
}

/// Decides the answer to each command; `conn` counts connections from 1.
pub type Script = Arc<dyn Fn(&Command, usize) -> Vec<Act> + Send + Sync>;

/// How the server greets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// `auth/request` (an inbound socket).
    Auth,
    /// `text/rude-rejection` + goodbye + close (fixture acl_rude_rejection, byte for byte).
    Rude,
}

/// The answers of a FreeSWITCH that accepts [`PASSWORD`], subscriptions, and lists no channel;
/// `api` and `bgapi` go to `then`.
pub fn standard(format: EventFormat, then: Script) -> Script {
    Arc::new(move |cmd, conn| match cmd {
        Command::Auth { password } if password == PASSWORD => vec![reply("+OK accepted")],
        Command::Auth { .. } => vec![reply("-ERR invalid"), goodbye(), Act::Close],
        Command::Event { format: f, .. } => {
            vec![reply(&format!("+OK event listener enabled {f}"))]
        }
        Command::Exit => vec![reply("+OK bye"), goodbye(), Act::Close],
        other => {
            let acts = then(other, conn);
            if acts.is_empty() {
                default_answer(format, other)
            } else {
                acts
            }
        }
    })
}

/// A script that leaves everything to [`default_answer`].
pub fn idle() -> Script {
    Arc::new(|_, _| Vec::new())
}

/// What an idle FreeSWITCH answers: no channels, `+OK` to uuid commands, bgapi accepted and
/// its result `+OK` right away.
pub fn default_answer(format: EventFormat, cmd: &Command) -> Vec<Act> {
    match cmd {
        Command::Api { command } if command.starts_with("show channels as json") => {
            vec![api("{\"row_count\": 0}")]
        }
        Command::Api { command } if command.starts_with("uuid_getvar") => vec![api("_undef_")],
        Command::Api { command } if command.starts_with("uuid_bridge") => {
            let b = command.split_whitespace().nth(2).unwrap_or_default();
            vec![api(&format!("+OK {b}"))]
        }
        Command::Api { .. } => vec![api("+OK")],
        Command::BgApi { command, job_uuid } => {
            let job = job_uuid
                .clone()
                .unwrap_or_else(|| JobUuid::new("job-by-server"));
            let uuid = command
                .split("origination_uuid=")
                .nth(1)
                .and_then(|r| r.split([',', '}']).next())
                .unwrap_or("00000000-0000-0000-0000-000000000000");
            vec![
                frame(ServerFrame::BgApiAccepted {
                    job_uuid: job.clone(),
                }),
                job_done(format, &job, "originate", &format!("+OK {uuid}\n")),
            ]
        }
        _ => vec![reply("+OK")],
    }
}

/// A running scripted server.
pub struct EslServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Command>>>,
    connections: Arc<AtomicUsize>,
    push: broadcast::Sender<Act>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EslServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EslServer {
    /// Binds 127.0.0.1:0 and serves with this greeting and script.
    pub async fn start(greeting: Greeting, script: Script) -> EslServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (push, _) = broadcast::channel(4096);
        let task = {
            let received = received.clone();
            let connections = connections.clone();
            let push = push.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let conn = connections.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::spawn(serve(
                        socket,
                        conn,
                        greeting,
                        script.clone(),
                        received.clone(),
                        push.subscribe(),
                    ));
                }
            })
        };
        EslServer {
            addr,
            received,
            connections,
            push,
            task,
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Commands received so far, on every connection.
    pub fn received(&self) -> Vec<Command> {
        self.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Sends to every open connection.
    pub fn push(&self, act: Act) {
        let _ = self.push.send(act);
    }

    /// Waits until `pred` holds on the received commands (at most 5 s).
    pub async fn wait_for(&self, pred: impl Fn(&[Command]) -> bool) {
        for _ in 0..500 {
            if pred(&self.received()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "server never received what was expected: {:?}",
            self.received()
        );
    }
}

async fn serve(
    mut socket: tokio::net::TcpStream,
    conn: usize,
    greeting: Greeting,
    script: Script,
    received: Arc<Mutex<Vec<Command>>>,
    mut push: broadcast::Receiver<Act>,
) {
    if greeting == Greeting::Rude {
        for f in fixture_frames("acl_rude_rejection") {
            let _ = socket.write_all(&f).await;
        }
        return;
    }
    let Ok(bytes) = ServerFrame::AuthRequest.to_bytes() else {
        return;
    };
    if socket.write_all(&bytes).await.is_err() {
        return;
    }
    let mut decoder = CommandDecoder::new(Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Answer whatever is buffered first.
        loop {
            let cmd = match decoder.decode() {
                Ok(Some(frame)) => frame.command(),
                Ok(None) => break,
                Err(_) => return,
            };
            let Ok(cmd) = cmd else {
                if run(&mut socket, vec![reply("-ERR command not found")])
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            };
            received.lock().unwrap().push(cmd.clone());
            if run(&mut socket, script(&cmd, conn)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            n = socket.read(&mut buf) => {
                let Ok(n) = n else { return };
                if n == 0 { return; }
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let taken = decoder.feed(rest);
                    if taken == 0 { return; }
                    rest = &rest[taken..];
                }
            }
            act = push.recv() => {
                let Ok(act) = act else { continue };
                if run(&mut socket, vec![act]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn run(socket: &mut tokio::net::TcpStream, acts: Vec<Act>) -> Result<(), ()> {
    for act in acts {
        match act {
            Act::Send(b) => socket.write_all(&b).await.map_err(|_| ())?,
            Act::Sleep(d) => tokio::time::sleep(d).await,
            Act::Close => {
                let _ = socket.shutdown().await;
                return Err(());
            }
        }
    }
    Ok(())
}

/// Whether `frame` bytes are a reply (for scripts that filter fixture frames).
pub fn is_reply(frame: &[u8]) -> bool {
    let t = String::from_utf8_lossy(&frame[..frame.len().min(120)]);
    t.contains(ContentType::CommandReply.as_str()) || t.contains(ContentType::ApiResponse.as_str())
}
