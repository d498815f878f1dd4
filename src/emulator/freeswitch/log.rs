//! The switch's log as an event socket streams it after `log <level>`: the levels `log`
//! accepts, the places (file, function, line, text channel) FreeSWITCH logs a step from, and
//! log lines written as FreeSWITCH 1.10.12 writes them. Every [`Site`] below is one that
//! fixture `log_level7` shows for the same step of a loopback call; the emulator logs fewer
//! lines than FreeSWITCH (no XML dialplan walk, no state-machine wake-ups), never other ones.

use crate::media::freeswitch::codec::LogRecord;

/// A log level as `switch_log_level_t`: -1 (disable), 0 (console) … 7 (debug), up to 63.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLevel(pub i8);

impl LogLevel {
    /// `NOTICE` (5): channels created, answered, hung up, closed.
    pub const NOTICE: LogLevel = LogLevel(5);
    /// `INFO` (6): dialplan hunting, applications run.
    pub const INFO: LogLevel = LogLevel(6);
    /// `DEBUG` (7): state changes and the rest.
    pub const DEBUG: LogLevel = LogLevel(7);

    /// The name in a log line's `[NAME]` (switch_log_level2str: above 7 reads DEBUG).
    pub fn name(self) -> &'static str {
        match self.0 {
            i8::MIN..=-1 => "DISABLE",
            0 => "CONSOLE",
            1 => "ALERT",
            2 => "CRIT",
            3 => "ERR",
            4 => "WARNING",
            5 => "NOTICE",
            6 => "INFO",
            _ => "DEBUG",
        }
    }
}

/// Level names switch_log_str2level knows, in its order (index - 1 is the level).
const NAMES: [&str; 9] = [
    "DISABLE", "CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG",
];

/// `SWITCH_LOG_INVALID`: a number equal to it is refused, larger ones are clamped below it.
const INVALID: i64 = 64;

/// The level `log <arg>` asks for, as switch_log_str2level reads `arg`: a number (negative
/// reads 0, above 64 reads 63, 64 is invalid) or a level name in any case; `None`: invalid
/// (`-ERR invalid log level`).
pub fn parse_level(arg: &str) -> Option<LogLevel> {
    if is_number(arg) {
        // atoi: the leading sign and digits; a fraction is cut off.
        let (negative, digits) = match arg.as_bytes().first() {
            Some(b'-') => (true, &arg[1..]),
            Some(b'+') => (false, &arg[1..]),
            _ => (false, arg),
        };
        let magnitude = digits
            .bytes()
            .take_while(u8::is_ascii_digit)
            .try_fold(0i64, |n, d| {
                n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
            })
            .unwrap_or(i64::MAX);
        let n = if negative { -magnitude } else { magnitude };
        return match n {
            INVALID => None,
            n if n > INVALID => Some(LogLevel((INVALID - 1) as i8)),
            n if n < 0 => Some(LogLevel(0)),
            n => Some(LogLevel(n as i8)),
        };
    }
    NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(arg))
        .map(|i| LogLevel(i as i8 - 1))
}

/// switch_is_number: an optional sign, then digits and dots only.
fn is_number(s: &str) -> bool {
    let rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    rest.bytes().all(|b| b == b'.' || b.is_ascii_digit())
}

/// `Text-Channel`: where a line was logged to (switch_text_channel_t).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextChannel {
    /// `SWITCH_CHANNEL_ID_LOG` (0): prefixed with date, idle CPU, level, file and line.
    Log,
    /// `SWITCH_CHANNEL_ID_LOG_CLEAN` (1): the text alone (dialplan lines, `EXECUTE`).
    LogClean,
    /// `SWITCH_CHANNEL_ID_SESSION` (3): prefixed like [`TextChannel::Log`].
    Session,
}

impl TextChannel {
    fn number(self) -> u32 {
        match self {
            TextChannel::Log => 0,
            TextChannel::LogClean => 1,
            TextChannel::Session => 3,
        }
    }
}

/// Where FreeSWITCH logs one step from, and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// `Log-File`.
    pub file: &'static str,
    /// `Log-Func`.
    pub func: &'static str,
    /// `Log-Line`.
    pub line: u32,
    /// `Text-Channel`.
    pub channel: TextChannel,
    /// `Log-Level`.
    pub level: LogLevel,
    /// Whether `User-Data` carries the channel's uuid (else it is empty).
    pub user_data: bool,
}

const fn site(
    file: &'static str,
    func: &'static str,
    line: u32,
    channel: TextChannel,
    level: LogLevel,
) -> Site {
    Site {
        file,
        func,
        line,
        channel,
        level,
        user_data: true,
    }
}

use LogLevel as L;
use TextChannel::{Log, LogClean, Session};

/// `Parsing global variables`: an originate starts (no channel yet, so no User-Data).
pub const ORIGINATE_START: Site = Site {
    user_data: false,
    ..site(
        "switch_ivr_originate.c",
        "switch_ivr_originate",
        2301,
        Session,
        L::DEBUG,
    )
};
/// `Originate Resulted in Success: [<name>] Peer UUID: <uuid>`.
pub const ORIGINATE_SUCCESS: Site = Site {
    user_data: false,
    ..site(
        "switch_ivr_originate.c",
        "switch_ivr_originate",
        3913,
        Session,
        L::DEBUG,
    )
};
/// `New Channel <name> [<uuid>]`.
pub const NEW_CHANNEL: Site = site(
    "switch_channel.c",
    "switch_channel_set_name",
    1142,
    Session,
    L::NOTICE,
);
/// `(<name>) Running State Change CS_<STATE> (Cur <live> Tot <since start>)`.
pub const RUNNING_STATE: Site = site(
    "switch_core_state_machine.c",
    "switch_core_session_run",
    581,
    Log,
    L::DEBUG,
);
/// `(<name>) State INIT`.
pub const STATE_INIT: Site = site(
    "switch_core_state_machine.c",
    "switch_core_session_run",
    624,
    Session,
    L::DEBUG,
);
/// `Processing <cid name> <<cid number>>-><dest> in context <context>`.
pub const DIALPLAN_HUNT: Site = site("mod_dialplan_xml.c", "dialplan_hunt", 639, Session, L::INFO);
/// `Dialplan: <name> Action <app>(<arg>) `.
pub const DIALPLAN_ACTION: Site =
    site("mod_dialplan_xml.c", "parse_exten", 560, LogClean, L::DEBUG);
/// `EXECUTE [depth=0] <name> <app>(<arg>)`.
pub const EXECUTE: Site = site(
    "switch_core_session.c",
    "switch_core_session_exec",
    2902,
    LogClean,
    L::INFO,
);
/// `Channel [<name>] has been answered`, by the `answer` application.
pub const ANSWERED_BY_APP: Site = site("mod_dptools.c", "answer_function", 1406, Log, L::NOTICE);
/// `Channel [<name>] has been answered`, a loopback A-leg as its B-leg answers.
pub const ANSWERED_BY_LOOPBACK: Site = site(
    "mod_loopback.c",
    "channel_receive_message",
    1021,
    Log,
    L::NOTICE,
);
/// `(<name>) Callstate Change <old> -> ACTIVE`.
pub const CALLSTATE_ACTIVE: Site = site(
    "switch_channel.c",
    "switch_channel_perform_mark_answered",
    3912,
    Log,
    L::DEBUG,
);
/// `done playing file <file>`.
pub const PLAYBACK_DONE: Site = site(
    "switch_ivr_play_say.c",
    "switch_ivr_play_file",
    2010,
    Session,
    L::DEBUG,
);
/// `Hangup <name> [CS_<STATE>] [<cause>]`, by the `hangup` application.
pub const HANGUP_BY_APP: Site = site("mod_dptools.c", "hangup_function", 1374, Log, L::NOTICE);
/// `Hangup <name> [CS_<STATE>] [<cause>]`, a loopback leg as its partner hangs up.
pub const HANGUP_BY_LOOPBACK: Site =
    site("mod_loopback.c", "channel_on_hangup", 585, Log, L::NOTICE);
/// `(<name>) Callstate Change <old> -> HANGUP`.
pub const CALLSTATE_HANGUP: Site = site(
    "switch_core_state_machine.c",
    "switch_core_session_hangup_state",
    844,
    Log,
    L::DEBUG,
);
/// `(<name>) State HANGUP`.
pub const STATE_HANGUP: Site = site(
    "switch_core_state_machine.c",
    "switch_core_session_hangup_state",
    846,
    Session,
    L::DEBUG,
);
/// `<name> Standard HANGUP, cause: <cause>`.
pub const STANDARD_HANGUP: Site = site(
    "switch_core_state_machine.c",
    "switch_core_standard_on_hangup",
    59,
    Session,
    L::DEBUG,
);
/// `(<name>) State Change CS_HANGUP -> CS_REPORTING`.
pub const TO_REPORTING: Site = site(
    "switch_core_state_machine.c",
    "switch_core_session_run",
    616,
    Log,
    L::DEBUG,
);
/// `<name> Standard REPORTING, cause: <cause>`.
pub const STANDARD_REPORTING: Site = site(
    "switch_core_state_machine.c",
    "switch_core_standard_on_reporting",
    168,
    Session,
    L::DEBUG,
);
/// `Session <n> (<name>) Ended`.
pub const SESSION_ENDED: Site = site(
    "switch_core_session.c",
    "switch_core_session_thread",
    1762,
    Session,
    L::NOTICE,
);
/// `Close Channel <name> [CS_DESTROY]`.
pub const CLOSE_CHANNEL: Site = site(
    "switch_core_session.c",
    "switch_core_session_thread",
    1766,
    Log,
    L::NOTICE,
);
/// `<name> Standard DESTROY`.
pub const STANDARD_DESTROY: Site = site(
    "switch_core_state_machine.c",
    "switch_core_standard_on_destroy",
    175,
    Session,
    L::DEBUG,
);

/// The idle CPU a prefixed line reports: the emulated switch is never busy.
const IDLE_CPU: &str = "100.00%";

/// One log line from `site` at `now_us` (microseconds since 1970), about the channel
/// `uuid` (User-Data, when the site names one): prefixed lines read `<date> <idle> [LEVEL]
/// <file>:<line> <text>` (fixture log_level7), clean ones the text alone; both end in a
/// newline.
pub fn record(site: &Site, now_us: i64, uuid: &str, text: &str) -> LogRecord {
    let body = match site.channel {
        TextChannel::LogClean => format!("{text}\n"),
        TextChannel::Log | TextChannel::Session => {
            let ts =
                jiff::Timestamp::from_microsecond(now_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            format!(
                "{}.{:06} {IDLE_CPU} [{}] {}:{} {text}\n",
                ts.strftime("%Y-%m-%d %H:%M:%S"),
                now_us.rem_euclid(1_000_000),
                site.level.name(),
                site.file,
                site.line,
            )
        }
    };
    LogRecord {
        level: site.level.0.max(0) as u8,
        text_channel: site.channel.number(),
        file: site.file.to_owned(),
        func: site.func.to_owned(),
        line: site.line,
        user_data: if site.user_data {
            uuid.to_owned()
        } else {
            String::new()
        },
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::freeswitch::codec::ServerFrame;

    #[test]
    fn levels_read_as_switch_log_str2level_reads_them() {
        assert_eq!(parse_level("7"), Some(LogLevel(7)));
        assert_eq!(parse_level("debug"), Some(LogLevel::DEBUG));
        assert_eq!(parse_level("NOTICE"), Some(LogLevel::NOTICE));
        assert_eq!(parse_level("console"), Some(LogLevel(0)));
        assert_eq!(parse_level("disable"), Some(LogLevel(-1)));
        assert_eq!(parse_level("-3"), Some(LogLevel(0)));
        assert_eq!(parse_level("9"), Some(LogLevel(9)));
        assert_eq!(parse_level("64"), None);
        assert_eq!(parse_level("65"), Some(LogLevel(63)));
        assert_eq!(parse_level("99999999999999999999999"), Some(LogLevel(63)));
        assert_eq!(parse_level("7.5"), Some(LogLevel(7)));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(LogLevel(12).name(), "DEBUG");
    }

    /// Frame #5 of fixture log_level7, but for the emulator's idle CPU.
    #[test]
    fn a_prefixed_line_is_written_as_in_the_capture() {
        let now_us = 1_795_295_300_044_373;
        let uuid = "cf57cd80-ebee-4c11-8b4c-2c80d29bd961";
        let text = format!("New Channel loopback/7201/default-a [{uuid}]");
        let frame = ServerFrame::Log(record(&NEW_CHANNEL, now_us, uuid, &text));
        let bytes = frame.to_bytes().unwrap();
        let body =
            format!("2026-11-21 21:08:20.044373 100.00% [NOTICE] switch_channel.c:1142 {text}\n");
        let want = format!(
            "Content-Type: log/data\nContent-Length: {}\nLog-Level: 5\nText-Channel: 3\nLog-File: switch_channel.c\nLog-Func: switch_channel_set_name\nLog-Line: 1142\nUser-Data: {uuid}\n\n{body}",
            body.len()
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), want);
    }

    #[test]
    fn clean_lines_have_no_prefix_and_sites_without_a_channel_an_empty_user_data() {
        let r = record(
            &EXECUTE,
            0,
            "u",
            "EXECUTE [depth=0] loopback/7201-b answer()",
        );
        assert_eq!(r.body, "EXECUTE [depth=0] loopback/7201-b answer()\n");
        assert_eq!((r.text_channel, r.level, r.user_data.as_str()), (1, 6, "u"));
        let r = record(&ORIGINATE_START, 0, "u", "Parsing global variables");
        assert_eq!(r.user_data, "");
        assert!(
            r.body
                .ends_with("[DEBUG] switch_ivr_originate.c:2301 Parsing global variables\n")
        );
    }
}
