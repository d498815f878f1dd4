//! SIP registrations of the directory users' softphones on profile `internal`: the scripted
//! REGISTER a softphone sends, what the registrar keeps of it, and how FreeSWITCH 1.10.12
//! shows registrations (the CUSTOM `sofia::*` headers, `sofia status profile internal reg`,
//! `sofia_contact`), read from fixtures sip_register_inbound_call_dtmf_outbound_user and
//! sip_unregister_events.

use std::net::SocketAddr;

/// The registrar's default expiry (sofia's `Expires: 3600`, as the captures show).
pub const DEFAULT_EXPIRES: u32 = 3600;
/// Longest Call-ID or User-Agent a scripted REGISTER may carry (bounded memory).
const MAX_TEXT: usize = 256;
/// How long after a MESSAGE_QUERY the registrar sends none for the same user (sofia_reg.c
/// `debounce_check`: 30 s).
pub const MWI_DEBOUNCE_US: i64 = 30_000_000;

/// A softphone's REGISTER, as a scripted SIP client sends it (digest authentication passes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The directory user (`1000`).
    pub user: String,
    /// The softphone's Contact: where `user/<name>` calls reach it.
    pub contact: SocketAddr,
    /// Where the REGISTER came from (`network-ip`, `network-port`).
    pub source: SocketAddr,
    /// The SIP Call-ID; `None` makes one up.
    pub call_id: Option<String>,
    /// The User-Agent header.
    pub user_agent: String,
    /// How long the registration lasts, in seconds; 0 unregisters.
    pub expires: u32,
}

impl Registration {
    /// User `user`'s softphone at `contact` registering for an hour, from its contact address.
    pub fn new(user: &str, contact: SocketAddr) -> Self {
        Registration {
            user: user.to_owned(),
            contact,
            source: contact,
            call_id: None,
            user_agent: "switchboard-softphone".to_owned(),
            expires: DEFAULT_EXPIRES,
        }
    }

    /// The same softphone unregistering: `Expires: 0`.
    pub fn unregistering(user: &str, contact: SocketAddr) -> Self {
        Registration {
            expires: 0,
            ..Registration::new(user, contact)
        }
    }

    /// Why the REGISTER cannot be taken as it is: text that would break an event header, or
    /// too long to keep.
    pub fn check(&self) -> Result<(), String> {
        let line = |what: &str, v: &str, max: usize| {
            if v.is_empty() && what == "user" {
                Err("the user is empty".to_owned())
            } else if v.len() > max {
                Err(format!("the {what} is longer than {max} bytes"))
            } else if v.chars().any(char::is_control) {
                Err(format!("the {what} holds a control character"))
            } else {
                Ok(())
            }
        };
        line("user", &self.user, 64)?;
        if self.user.contains(['@', '/', ' ']) {
            return Err("the user must be a bare directory name".to_owned());
        }
        line("call-id", self.call_id.as_deref().unwrap_or(""), MAX_TEXT)?;
        line("user agent", &self.user_agent, MAX_TEXT)
    }
}

/// A registration the registrar holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reg {
    /// The SIP Call-ID.
    pub call_id: String,
    /// `host[:port]` of the Contact.
    pub contact: String,
    /// `network-ip`.
    pub source_ip: String,
    /// `network-port`.
    pub source_port: u16,
    /// User-Agent.
    pub user_agent: String,
    /// Seconds asked for.
    pub expires: u32,
    /// When it was registered (microseconds since 1970).
    pub registered_us: i64,
    /// A softphone that keeps re-registering before it expires (the emulator's
    /// softphones registered from the start): it never lapses.
    pub refreshes: bool,
}

impl Reg {
    /// The registration of a REGISTER that passed [`Registration::check`], at `now_us`.
    pub fn from_register(r: &Registration, call_id: String, now_us: i64) -> Self {
        Reg {
            call_id,
            contact: r.contact.to_string(),
            source_ip: r.source.ip().to_string(),
            source_port: r.source.port(),
            user_agent: r.user_agent.clone(),
            expires: r.expires,
            registered_us: now_us,
            refreshes: false,
        }
    }

    /// A softphone registered since the switch started, on the domain's host with SIP's
    /// default port (its contact carries no port, as `user/<n>` channel names then show).
    pub fn standing(user: &str, domain: &str) -> Self {
        Reg {
            call_id: format!("emulator-{user}@{domain}"),
            contact: domain.to_owned(),
            source_ip: domain.to_owned(),
            source_port: 5060,
            user_agent: "switchboard-emulator".to_owned(),
            expires: DEFAULT_EXPIRES,
            registered_us: 0,
            refreshes: true,
        }
    }

    /// When the registrar drops it, in whole seconds since 1970 as sofia stores it: its
    /// expiry plus the 60 s grace sofia adds (EXP in `sofia status … reg`); a refreshing
    /// softphone's moves with `now_us`.
    pub fn expires_at_s(&self, now_us: i64) -> i64 {
        let since = if self.refreshes {
            now_us
        } else {
            self.registered_us
        };
        since.div_euclid(1_000_000) + i64::from(self.expires) + 60
    }

    /// Whether it still stands at `now_us`.
    pub fn live(&self, now_us: i64) -> bool {
        self.refreshes || now_us < self.registered_us + i64::from(self.expires) * 1_000_000
    }

    /// The Contact header value FreeSWITCH reports (`"" <sip:1000@127.0.0.1:5091>`).
    pub fn contact_header(&self, user: &str) -> String {
        format!("\"\" <sip:{user}@{}>", self.contact)
    }
}

/// The vanilla directory's variables of user `user` in `domain` (the capture machine's users
/// 1000–1019 have them), in the order sofia::register lists them.
pub fn directory_vars(user: &str, domain: &str) -> Vec<(&'static str, String)> {
    vec![
        ("sip_number_alias", user.to_owned()),
        ("sip_auth_username", user.to_owned()),
        ("sip_auth_realm", domain.to_owned()),
        ("number_alias", user.to_owned()),
        ("user_name", user.to_owned()),
        ("domain_name", domain.to_owned()),
        ("record_stereo", "true".to_owned()),
        ("default_gateway", "example.com".to_owned()),
        ("default_areacode", "918".to_owned()),
        ("transfer_fallback_extension", "operator".to_owned()),
        ("toll_allow", "domestic,international,local".to_owned()),
        ("accountcode", user.to_owned()),
        ("user_context", "default".to_owned()),
        ("effective_caller_id_name", format!("Extension {user}")),
        ("effective_caller_id_number", user.to_owned()),
        ("outbound_caller_id_name", "FreeSWITCH".to_owned()),
        ("outbound_caller_id_number", "0000000000".to_owned()),
        ("callgroup", "techsupport".to_owned()),
    ]
}

/// The rule `sofia status` tables are drawn with.
pub const RULE: &str = "=================================================================================================";

/// `sofia status profile internal reg [<filter>]`: every live registration whose Call-ID,
/// user, contact or agent contains `filter`, as sofia prints them.
pub fn status_table<'a>(
    regs: impl IntoIterator<Item = (&'a String, &'a Reg)>,
    filter: Option<&str>,
    now_us: i64,
    hostname: &str,
    domain: &str,
) -> String {
    let mut out = format!("\nRegistrations:\n{RULE}\n");
    let mut n = 0;
    for (user, r) in regs {
        if !r.live(now_us) {
            continue;
        }
        let contact = r.contact_header(user);
        if let Some(f) = filter {
            let hit = [r.call_id.as_str(), user, &contact, &r.user_agent]
                .iter()
                .any(|s| s.contains(f));
            if !hit {
                continue;
            }
        }
        n += 1;
        let exp_s = r.expires_at_s(now_us);
        let exp = jiff::Timestamp::from_second(exp_s)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .strftime("%Y-%m-%d %H:%M:%S");
        // Capture sip_register…: EXPSECS(3660) right after an hour-long REGISTER.
        let secs = (exp_s - now_us.div_euclid(1_000_000)).max(0);
        out.push_str(&format!(
            "Call-ID:    \t{}\nUser:       \t{user}@{domain}\nContact:    \t{contact}\nAgent:      \t{}\nStatus:     \tRegistered(UDP)(unknown) EXP({exp}) EXPSECS({secs})\nPing-Status:\tReachable\nPing-Time:\t0.00\nHost:       \t{hostname}\nIP:         \t{}\nPort:       \t{}\nAuth-User:  \t{user}\nAuth-Realm: \t{domain}\nMWI-Account:\t{user}@{domain}\n\n",
            r.call_id, r.user_agent, r.source_ip, r.source_port
        ));
    }
    out.push_str(&format!("Total items returned: {n}\n{RULE}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_with_a_line_break_or_a_long_call_id_is_refused() {
        let addr: SocketAddr = "127.0.0.1:5091".parse().unwrap();
        let mut r = Registration::new("1000", addr);
        assert!(r.check().is_ok());
        r.user_agent = "x\r\nEvil: 1".into();
        assert!(r.check().is_err());
        r = Registration::new("1000", addr);
        r.call_id = Some("c".repeat(300));
        assert!(r.check().is_err());
        assert!(Registration::new("", addr).check().is_err());
        assert!(Registration::new("1000@host", addr).check().is_err());
    }

    #[test]
    fn a_scripted_registration_lapses_and_a_standing_one_does_not() {
        let addr: SocketAddr = "127.0.0.1:5091".parse().unwrap();
        let mut r = Registration::new("1000", addr);
        r.expires = 10;
        let reg = Reg::from_register(&r, "c".into(), 0);
        assert!(reg.live(9_999_999));
        assert!(!reg.live(10_000_000));
        assert!(Reg::standing("1000", "127.0.0.1").live(i64::MAX - 1));
        assert_eq!(reg.contact_header("1000"), "\"\" <sip:1000@127.0.0.1:5091>");
    }

    #[test]
    fn an_empty_table_is_as_sofia_prints_it() {
        let none: Vec<(&String, &Reg)> = Vec::new();
        assert_eq!(
            status_table(none, None, 0, "vm", "127.0.0.1"),
            format!("\nRegistrations:\n{RULE}\nTotal items returned: 0\n{RULE}\n")
        );
    }
}
