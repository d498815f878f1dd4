//! Commands a client sends, encoded as FreeSWITCH's mod_event_socket reads them, and read back
//! (the emulator's side). Byte shapes follow the client bytes of the capture logs
//! (fixtures/esl/*.log, `=== C->S` blocks).

use std::fmt;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::CodecError;
use super::event::EventFormat;
use super::header::{self, HeaderSpan, Span};
use super::ids::{ApplicationUuid, JobUuid};
use crate::media::LegId;

/// A command from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `auth <password>`.
    Auth {
        /// The event socket password.
        password: String,
    },
    /// `api <command>`: blocks until FreeSWITCH answers with `api/response`.
    Api {
        /// The API command line (`status`, `originate …`).
        command: String,
    },
    /// `bgapi <command>` (with `Job-UUID: <id>` when the client picks the job id): answered at
    /// once with `+OK Job-UUID: <id>`; the result comes in a BACKGROUND_JOB event.
    BgApi {
        /// The API command line.
        command: String,
        /// The job id the client chose (FreeSWITCH honours it).
        job_uuid: Option<JobUuid>,
    },
    /// `event <format> <names…>`: subscribe (`ALL`, event names, `CUSTOM <subclass…>`).
    Event {
        /// The format events will arrive in.
        format: EventFormat,
        /// Event names and CUSTOM subclasses, in order.
        events: Vec<String>,
    },
    /// `myevents [<uuid>] [<format>]`: only one channel's events; on an inbound socket the
    /// connection then closes when that channel ends (fixture filter_myevents_nixevent_noevents).
    MyEvents {
        /// The channel (inbound sockets); outbound sockets take their own channel.
        uuid: Option<LegId>,
        /// The format (plain when absent).
        format: Option<EventFormat>,
    },
    /// `nixevent <names…>`: unsubscribe from some events.
    NixEvent {
        /// Event names.
        events: Vec<String>,
    },
    /// `noevents`: unsubscribe from everything.
    NoEvents,
    /// `filter <header> <value>`: deliver only events whose header has this value.
    Filter {
        /// The header name.
        header: String,
        /// The value (may contain spaces).
        value: String,
    },
    /// `filter delete <header> [<value>]`.
    FilterDelete {
        /// The header name.
        header: String,
        /// The value; all filters on the header when absent.
        value: Option<String>,
    },
    /// `filter delete all`.
    FilterDeleteAll,
    /// `divert_events on|off`: deliver events of the session's own channel (outbound).
    DivertEvents {
        /// On or off.
        on: bool,
    },
    /// `linger [<seconds>]`: keep the socket open after the channel hangs up.
    Linger {
        /// How long (FreeSWITCH's default when absent).
        seconds: Option<u32>,
    },
    /// `nolinger`.
    NoLinger,
    /// `log [<level>]`: send log lines as `log/data` frames.
    Log {
        /// Level number or name (`7`, `debug`).
        level: Option<String>,
    },
    /// `nolog`.
    NoLog,
    /// `sendmsg [<uuid>]` with a call command.
    SendMsg(SendMsg),
    /// `connect`: the first command on an outbound socket; FreeSWITCH answers with the
    /// channel's data.
    Connect,
    /// `resume`: let the dialplan continue when the socket ends (outbound).
    Resume,
    /// `getvar <name>`: a channel variable, returned in Reply-Text (outbound).
    GetVar {
        /// The variable.
        name: String,
    },
    /// `exit`: FreeSWITCH answers `+OK bye`, sends a disconnect notice and closes.
    Exit,
}

/// A `sendmsg`: a call command for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMsg {
    /// The channel; absent on an outbound socket (its own channel).
    pub uuid: Option<LegId>,
    /// What to do.
    pub command: CallCommand,
    /// `event-lock: true`: run in order with other locked messages.
    pub event_lock: bool,
    /// `async: true`: do not wait for the application (async sockets).
    pub asynchronous: bool,
    /// `Event-UUID`: echoed as `Application-UUID` on CHANNEL_EXECUTE[_COMPLETE].
    pub event_uuid: Option<ApplicationUuid>,
}

impl SendMsg {
    /// A sendmsg with only a call command.
    pub fn new(uuid: Option<LegId>, command: CallCommand) -> Self {
        SendMsg {
            uuid,
            command,
            event_lock: false,
            asynchronous: false,
            event_uuid: None,
        }
    }
}

/// The `call-command` of a sendmsg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// `call-command: execute`: run a dialplan application.
    Execute {
        /// `execute-app-name`.
        app: String,
        /// The argument, in a header or in the body.
        arg: Option<AppArg>,
        /// `loops`: how many times to run it.
        loops: Option<u32>,
    },
    /// `call-command: hangup` with an optional `hangup-cause`.
    Hangup {
        /// The cause (`NORMAL_CLEARING`, `USER_BUSY`, ...).
        cause: Option<String>,
    },
    /// `call-command: unicast`: stream the channel's media to a socket.
    Unicast {
        /// `local-ip`.
        local_ip: String,
        /// `local-port`.
        local_port: u16,
        /// `remote-ip`.
        remote_ip: String,
        /// `remote-port`.
        remote_port: u16,
        /// `transport` (`udp` or `tcp`).
        transport: String,
        /// `flags` (`native`).
        flags: Option<String>,
    },
}

/// Where an execute's argument travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArg {
    /// `execute-app-arg: <arg>` (one line).
    Header(String),
    /// The body, with `content-type: text/plain` and `content-length` (any text: newlines,
    /// leading blanks, long arguments).
    Body(String),
}

impl AppArg {
    /// Arguments longer than this go in the body, which keeps header lines short.
    pub const HEADER_MAX: usize = 1024;

    /// The argument, in a header when one line can carry it exactly, else in the body.
    pub fn new(arg: impl Into<String>) -> Self {
        let arg = arg.into();
        if header_safe(&arg) && arg.len() <= Self::HEADER_MAX {
            AppArg::Header(arg)
        } else {
            AppArg::Body(arg)
        }
    }

    /// The argument.
    pub fn as_str(&self) -> &str {
        match self {
            AppArg::Header(a) | AppArg::Body(a) => a,
        }
    }
}

/// Whether a header line carries `value` exactly: no line break, and no leading blank (the
/// reader skips blanks after the colon).
fn header_safe(value: &str) -> bool {
    !value.contains(['\n', '\r']) && !value.starts_with([' ', '\t'])
}

fn unencodable(what: &'static str, reason: &'static str) -> CodecError {
    CodecError::Unencodable { what, reason }
}

/// Text on the command line or in a header: no line break (it would end the command, or start
/// another: command injection).
fn line(what: &'static str, s: &str) -> Result<(), CodecError> {
    if s.contains(['\n', '\r']) {
        Err(unencodable(what, "contains a line break"))
    } else {
        Ok(())
    }
}

/// One word of a command line.
fn word(what: &'static str, s: &str) -> Result<(), CodecError> {
    if s.is_empty() {
        Err(unencodable(what, "is empty"))
    } else if s.contains(char::is_whitespace) {
        Err(unencodable(what, "contains whitespace"))
    } else {
        Ok(())
    }
}

/// A header value written after `name: `.
fn value(what: &'static str, s: &str) -> Result<(), CodecError> {
    if header_safe(s) {
        Ok(())
    } else {
        Err(unencodable(
            what,
            "contains a line break or starts with a blank",
        ))
    }
}

impl Command {
    /// Append the command's bytes to `out`. Fails, writing nothing, on a value that would break
    /// the framing (a newline in any text, a space in a single word, ...).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut b = String::with_capacity(64);
        let mut body: Option<&str> = None;
        match self {
            Command::Auth { password } => {
                api_line("password", password)?;
                b.push_str("auth ");
                b.push_str(password);
            }
            Command::Api { command } => {
                api_line("api command", command)?;
                b.push_str("api ");
                b.push_str(command);
            }
            Command::BgApi { command, job_uuid } => {
                api_line("bgapi command", command)?;
                b.push_str("bgapi ");
                b.push_str(command);
                if let Some(job) = job_uuid {
                    value("Job-UUID", job.as_str())?;
                    b.push_str("\nJob-UUID: ");
                    b.push_str(job.as_str());
                }
            }
            Command::Event { format, events } => {
                b.push_str("event ");
                b.push_str(format.as_str());
                push_words(&mut b, "event name", events)?;
            }
            Command::MyEvents { uuid, format } => {
                b.push_str("myevents");
                if let Some(uuid) = uuid {
                    word("myevents uuid", uuid.as_str())?;
                    if format.is_none() && EventFormat::from_word(uuid.as_str()).is_some() {
                        return Err(unencodable("myevents uuid", "reads as a format"));
                    }
                    b.push(' ');
                    b.push_str(uuid.as_str());
                }
                if let Some(format) = format {
                    b.push(' ');
                    b.push_str(format.as_str());
                }
            }
            Command::NixEvent { events } => {
                b.push_str("nixevent");
                push_words(&mut b, "event name", events)?;
            }
            Command::NoEvents => b.push_str("noevents"),
            Command::Filter { header, value: v } => {
                word("filter header", header)?;
                if header.eq_ignore_ascii_case("delete") {
                    return Err(unencodable("filter header", "reads as `filter delete`"));
                }
                line("filter value", v)?;
                b.push_str("filter ");
                b.push_str(header);
                b.push(' ');
                b.push_str(v);
            }
            Command::FilterDelete { header, value: v } => {
                word("filter header", header)?;
                if header.eq_ignore_ascii_case("all") && v.is_none() {
                    return Err(unencodable("filter header", "reads as `filter delete all`"));
                }
                b.push_str("filter delete ");
                b.push_str(header);
                if let Some(v) = v {
                    line("filter value", v)?;
                    b.push(' ');
                    b.push_str(v);
                }
            }
            Command::FilterDeleteAll => b.push_str("filter delete all"),
            Command::DivertEvents { on } => {
                b.push_str(if *on {
                    "divert_events on"
                } else {
                    "divert_events off"
                });
            }
            Command::Linger { seconds } => {
                b.push_str("linger");
                if let Some(s) = seconds {
                    b.push_str(&format!(" {s}"));
                }
            }
            Command::NoLinger => b.push_str("nolinger"),
            Command::Log { level } => {
                b.push_str("log");
                if let Some(level) = level {
                    word("log level", level)?;
                    b.push(' ');
                    b.push_str(level);
                }
            }
            Command::NoLog => b.push_str("nolog"),
            Command::SendMsg(msg) => body = msg.write(&mut b)?,
            Command::Connect => b.push_str("connect"),
            Command::Resume => b.push_str("resume"),
            Command::GetVar { name } => {
                word("variable name", name)?;
                b.push_str("getvar ");
                b.push_str(name);
            }
            Command::Exit => b.push_str("exit"),
        }
        out.extend_from_slice(b.as_bytes());
        out.extend_from_slice(b"\n\n");
        if let Some(body) = body {
            out.extend_from_slice(body.as_bytes());
        }
        Ok(())
    }

    /// The command's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

fn api_line(what: &'static str, command: &str) -> Result<(), CodecError> {
    line(what, command)?;
    if command.trim().is_empty() {
        return Err(unencodable(what, "is empty"));
    }
    Ok(())
}

fn push_words(b: &mut String, what: &'static str, words: &[String]) -> Result<(), CodecError> {
    for w in words {
        word(what, w)?;
        b.push(' ');
        b.push_str(w);
    }
    Ok(())
}

impl SendMsg {
    /// Write the command line and headers; returns the body, if the argument travels in it.
    /// Header order of fixture sendmsg_execute_eventlock.
    fn write<'a>(&'a self, b: &mut String) -> Result<Option<&'a str>, CodecError> {
        b.push_str("sendmsg");
        if let Some(uuid) = &self.uuid {
            word("sendmsg uuid", uuid.as_str())?;
            b.push(' ');
            b.push_str(uuid.as_str());
        }
        let mut header = |name: &str, v: &str| {
            b.push('\n');
            b.push_str(name);
            b.push_str(": ");
            b.push_str(v);
        };
        let mut body = None;
        match &self.command {
            CallCommand::Execute { app, arg, loops } => {
                word("execute-app-name", app)?;
                header("call-command", "execute");
                header("execute-app-name", app);
                match arg {
                    Some(AppArg::Header(a)) => {
                        value("execute-app-arg", a)?;
                        header("execute-app-arg", a);
                    }
                    Some(AppArg::Body(a)) => body = Some(a.as_str()),
                    None => {}
                }
                if let Some(n) = loops {
                    header("loops", &n.to_string());
                }
            }
            CallCommand::Hangup { cause } => {
                header("call-command", "hangup");
                if let Some(cause) = cause {
                    word("hangup-cause", cause)?;
                    header("hangup-cause", cause);
                }
            }
            CallCommand::Unicast {
                local_ip,
                local_port,
                remote_ip,
                remote_port,
                transport,
                flags,
            } => {
                word("local-ip", local_ip)?;
                word("remote-ip", remote_ip)?;
                word("transport", transport)?;
                header("call-command", "unicast");
                header("local-ip", local_ip);
                header("local-port", &local_port.to_string());
                header("remote-ip", remote_ip);
                header("remote-port", &remote_port.to_string());
                header("transport", transport);
                if let Some(flags) = flags {
                    word("flags", flags)?;
                    header("flags", flags);
                }
            }
        }
        if self.event_lock {
            header("event-lock", "true");
        }
        if self.asynchronous {
            header("async", "true");
        }
        if let Some(id) = &self.event_uuid {
            word("Event-UUID", id.as_str())?;
            header("Event-UUID", id.as_str());
        }
        if let Some(body) = body {
            header("content-type", "text/plain");
            header("content-length", &body.len().to_string());
        }
        Ok(body)
    }
}

/// FreeSWITCH's `switch_true`: yes, on, true, t, enabled, active, allow, or a non-zero number.
fn switch_true(v: &str) -> bool {
    ["yes", "on", "true", "t", "enabled", "active", "allow"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(v))
        || v.parse::<i64>().is_ok_and(|n| n != 0)
}

/// One command as a client sent it: the command line, its headers, and a body when
/// `content-length` was given. Shares the bytes it was read from.
#[derive(Clone)]
pub struct CommandFrame {
    bytes: Bytes,
    offset: u64,
    header_len: u32,
    line: Span,
    headers: SmallVec<[HeaderSpan; 6]>,
}

impl fmt::Debug for CommandFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandFrame")
            .field("offset", &self.offset)
            .field("line", &self.line())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body", &String::from_utf8_lossy(self.body()))
            .finish()
    }
}

impl CommandFrame {
    pub(crate) fn new(bytes: Bytes, offset: u64, head: super::frame::Head) -> Self {
        CommandFrame {
            bytes,
            offset,
            header_len: head.header_len as u32,
            line: head.line,
            headers: head.headers,
        }
    }

    /// Where the command starts in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The command as received.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The command line (`api status`, `sendmsg <uuid>`).
    pub fn line(&self) -> &str {
        header::text(&self.bytes, self.line)
    }

    /// A header's value (names match whole, ignoring ASCII case: clients write
    /// `content-length`, `Job-UUID`, `Event-UUID`).
    pub fn header(&self, name: &str) -> Option<&str> {
        header::find(&self.bytes, &self.headers, name).map(|h| header::text(&self.bytes, h.value))
    }

    /// Every header in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(move |h| {
            (
                header::text(&self.bytes, h.name),
                header::text(&self.bytes, h.value),
            )
        })
    }

    /// The body (empty when none).
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.header_len as usize..]
    }

    fn bad(&self, reason: impl Into<String>) -> CodecError {
        CodecError::BadCommand {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// The command, read as mod_event_socket reads it (verbs without regard to case).
    pub fn command(&self) -> Result<Command, CodecError> {
        let line = self.line();
        let (verb, rest) = match line.find(' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let verb_lower = verb.to_ascii_lowercase();
        let words = || rest.unwrap_or("").split_whitespace();
        let needs = |what: &str| -> Result<&str, CodecError> {
            match rest {
                Some(r) if !r.trim().is_empty() => Ok(r),
                _ => Err(self.bad(format!("{verb} needs {what}"))),
            }
        };
        let format = |w: &str| -> Result<EventFormat, CodecError> {
            EventFormat::from_word(w).ok_or_else(|| self.bad(format!("unknown event format {w:?}")))
        };
        let no_args = |cmd: Command| -> Result<Command, CodecError> {
            match rest {
                Some(r) if !r.trim().is_empty() => {
                    Err(self.bad(format!("{verb} takes no argument")))
                }
                _ => Ok(cmd),
            }
        };
        match verb_lower.as_str() {
            "auth" => Ok(Command::Auth {
                password: needs("a password")?.to_owned(),
            }),
            "api" => Ok(Command::Api {
                command: needs("a command")?.to_owned(),
            }),
            "bgapi" => Ok(Command::BgApi {
                command: needs("a command")?.to_owned(),
                job_uuid: self.header("Job-UUID").map(JobUuid::new),
            }),
            "event" => {
                let mut words = words().peekable();
                let fmt = match words.peek().and_then(|w| EventFormat::from_word(w)) {
                    Some(f) => {
                        words.next();
                        f
                    }
                    // `event ALL` without a format subscribes in plain.
                    None => EventFormat::Plain,
                };
                Ok(Command::Event {
                    format: fmt,
                    events: words.map(str::to_owned).collect(),
                })
            }
            "myevents" => {
                let w: Vec<&str> = words().collect();
                match w.as_slice() {
                    [] => Ok(Command::MyEvents {
                        uuid: None,
                        format: None,
                    }),
                    [one] => Ok(match EventFormat::from_word(one) {
                        Some(f) => Command::MyEvents {
                            uuid: None,
                            format: Some(f),
                        },
                        None => Command::MyEvents {
                            uuid: Some(LegId::new(*one)),
                            format: None,
                        },
                    }),
                    [uuid, f] => Ok(Command::MyEvents {
                        uuid: Some(LegId::new(*uuid)),
                        format: Some(format(f)?),
                    }),
                    _ => Err(self.bad("myevents takes at most a uuid and a format")),
                }
            }
            "nixevent" => Ok(Command::NixEvent {
                events: words().map(str::to_owned).collect(),
            }),
            "noevents" => no_args(Command::NoEvents),
            "filter" => {
                let r = needs("a header")?;
                let (first, tail) = split_word(r);
                if first.eq_ignore_ascii_case("delete") {
                    let Some(tail) = tail.filter(|t| !t.trim().is_empty()) else {
                        return Err(self.bad("filter delete needs a header or all"));
                    };
                    let (header, value) = split_word(tail);
                    if header.eq_ignore_ascii_case("all") && value.is_none() {
                        return Ok(Command::FilterDeleteAll);
                    }
                    Ok(Command::FilterDelete {
                        header: header.to_owned(),
                        value: value.map(str::to_owned),
                    })
                } else {
                    Ok(Command::Filter {
                        header: first.to_owned(),
                        value: tail.unwrap_or("").to_owned(),
                    })
                }
            }
            "divert_events" => Ok(Command::DivertEvents {
                on: switch_true(needs("on or off")?.trim()),
            }),
            "linger" => match rest.map(str::trim).filter(|r| !r.is_empty()) {
                None => Ok(Command::Linger { seconds: None }),
                Some(s) => s
                    .parse()
                    .map(|n| Command::Linger { seconds: Some(n) })
                    .map_err(|_| self.bad(format!("linger time {s:?} is not a number"))),
            },
            "nolinger" => no_args(Command::NoLinger),
            "log" => Ok(Command::Log {
                level: words().next().map(str::to_owned),
            }),
            "nolog" => no_args(Command::NoLog),
            "sendmsg" => self.sendmsg(rest),
            "connect" => no_args(Command::Connect),
            "resume" => no_args(Command::Resume),
            "getvar" => Ok(Command::GetVar {
                name: needs("a variable name")?.trim().to_owned(),
            }),
            "exit" => no_args(Command::Exit),
            _ => Err(CodecError::UnknownCommand {
                offset: self.offset,
                verb: verb.to_owned(),
            }),
        }
    }

    fn sendmsg(&self, rest: Option<&str>) -> Result<Command, CodecError> {
        let uuid = rest
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(LegId::new);
        let number = |name: &str| -> Result<Option<u32>, CodecError> {
            match self.header(name) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| self.bad(format!("{name} {v:?} is not a number"))),
            }
        };
        let port = |name: &str| -> Result<u16, CodecError> {
            let v = self
                .header(name)
                .ok_or_else(|| self.bad(format!("unicast needs {name}")))?;
            v.parse()
                .map_err(|_| self.bad(format!("{name} {v:?} is not a port")))
        };
        let required = |name: &str| -> Result<String, CodecError> {
            self.header(name)
                .map(str::to_owned)
                .ok_or_else(|| self.bad(format!("unicast needs {name}")))
        };
        let call_command = self
            .header("call-command")
            .ok_or_else(|| self.bad("sendmsg without call-command"))?;
        let command = match call_command.to_ascii_lowercase().as_str() {
            "execute" => {
                let app = self
                    .header("execute-app-name")
                    .ok_or_else(|| self.bad("execute without execute-app-name"))?
                    .to_owned();
                // mod_event_socket takes the argument from the body when the header is absent
                // (fixture sendmsg_execute_eventlock: `content-type: text/plain`).
                let arg = match self.header("execute-app-arg") {
                    Some(a) => Some(AppArg::Header(a.to_owned())),
                    None if self.header("content-length").is_some() => Some(AppArg::Body(
                        std::str::from_utf8(self.body())
                            .map_err(|_| self.bad("execute argument body is not UTF-8"))?
                            .to_owned(),
                    )),
                    None => None,
                };
                CallCommand::Execute {
                    app,
                    arg,
                    loops: number("loops")?,
                }
            }
            "hangup" => CallCommand::Hangup {
                cause: self.header("hangup-cause").map(str::to_owned),
            },
            "unicast" => CallCommand::Unicast {
                local_ip: required("local-ip")?,
                local_port: port("local-port")?,
                remote_ip: required("remote-ip")?,
                remote_port: port("remote-port")?,
                transport: required("transport")?,
                flags: self.header("flags").map(str::to_owned),
            },
            other => return Err(self.bad(format!("unsupported call-command {other:?}"))),
        };
        Ok(Command::SendMsg(SendMsg {
            uuid,
            command,
            event_lock: self.header("event-lock").is_some_and(switch_true),
            asynchronous: self.header("async").is_some_and(switch_true),
            event_uuid: self.header("Event-UUID").map(ApplicationUuid::new),
        }))
    }
}

/// The first word, and what follows the single space after it.
fn split_word(s: &str) -> (&str, Option<&str>) {
    match s.find(' ') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}
