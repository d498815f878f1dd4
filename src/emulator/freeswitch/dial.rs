//! Text the emulated FreeSWITCH reads from api commands: originate strings (`{vars}endpoint`),
//! application strings (`&park()`), dial endpoints and tone_stream durations. Pure functions,
//! no state.

use std::time::Duration;

/// Where an originate or bridge sends the new leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `loopback/<exten>[/<context>]`: two legs; the B-leg runs the dialplan.
    Loopback {
        /// The extension.
        exten: String,
        /// The dialplan context.
        context: String,
    },
    /// `user/<name>[@<domain>]`: a directory user's registered softphone.
    User {
        /// The user.
        name: String,
        /// The domain.
        domain: Option<String>,
    },
    /// `sofia/gateway/<gateway>/<number>`: a call out through a gateway (the PSTN).
    Gateway {
        /// The gateway.
        gateway: String,
        /// The number dialled.
        number: String,
    },
    /// `sofia/<profile>/<uri>`: a SIP URI dialled directly.
    Sofia {
        /// The profile.
        profile: String,
        /// The URI (`1000@127.0.0.1:5091`).
        uri: String,
    },
    /// `error/<CAUSE>`: fails at once with that cause.
    Error {
        /// The hangup cause.
        cause: String,
    },
}

/// A parsed dial string: channel variables and the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialString {
    /// `{a=b,c=d}` and `[a=b]` variables, in order.
    pub vars: Vec<(String, String)>,
    /// The endpoint.
    pub endpoint: Endpoint,
}

/// Splits `{a=b,c=d}` variable lists: `\,` escapes a comma, `'…'` quotes one value.
fn parse_vars(text: &str, out: &mut Vec<(String, String)>) {
    let mut item = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut items = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                item.push(',');
                chars.next();
            }
            '\'' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut item)),
            c => item.push(c),
        }
    }
    items.push(item);
    for item in items {
        if let Some((k, v)) = item.split_once('=') {
            let k = k.trim();
            if !k.is_empty() {
                out.push((k.to_owned(), v.to_owned()));
            }
        }
    }
}

/// Reads `{vars}[vars]endpoint`. `None` when the endpoint is not one the emulator knows.
pub fn parse_dial_string(text: &str) -> Option<DialString> {
    let mut rest = text.trim();
    let mut vars = Vec::new();
    loop {
        let close = match rest.chars().next() {
            Some('{') => '}',
            Some('[') => ']',
            Some('<') => '>',
            _ => break,
        };
        let end = rest.find(close)?;
        parse_vars(&rest[1..end], &mut vars);
        rest = &rest[end + 1..];
    }
    // Only the first of several `,`/`|` alternatives is dialled.
    let first = rest.split([',', '|']).next().unwrap_or("");
    let endpoint = parse_endpoint(first)?;
    Some(DialString { vars, endpoint })
}

fn parse_endpoint(text: &str) -> Option<Endpoint> {
    let (kind, rest) = text.split_once('/')?;
    match kind {
        "loopback" => {
            let mut parts = rest.splitn(3, '/');
            let exten = parts.next().filter(|e| !e.is_empty())?.to_owned();
            let context = parts
                .next()
                .filter(|c| !c.is_empty())
                .unwrap_or("default")
                .to_owned();
            Some(Endpoint::Loopback { exten, context })
        }
        "user" => {
            let (name, domain) = match rest.split_once('@') {
                Some((n, d)) => (n, Some(d.to_owned())),
                None => (rest, None),
            };
            (!name.is_empty()).then(|| Endpoint::User {
                name: name.to_owned(),
                domain,
            })
        }
        "sofia" => {
            let (profile, uri) = rest.split_once('/')?;
            if profile == "gateway" {
                let (gateway, number) = uri.split_once('/')?;
                (!gateway.is_empty() && !number.is_empty()).then(|| Endpoint::Gateway {
                    gateway: gateway.to_owned(),
                    number: number.to_owned(),
                })
            } else {
                (!uri.is_empty()).then(|| Endpoint::Sofia {
                    profile: profile.to_owned(),
                    uri: uri.to_owned(),
                })
            }
        }
        "error" => Some(Endpoint::Error {
            cause: rest.to_owned(),
        }),
        _ => None,
    }
}

/// What the originated leg does once answered: `&app(arg)` or a dialplan extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// `&park()`, `&playback(file)`, …: one application.
    App {
        /// The application.
        name: String,
        /// Its argument.
        arg: String,
    },
    /// `<exten> [XML] [<context>]`.
    Exten {
        /// The extension.
        exten: String,
        /// The context.
        context: String,
    },
}

/// Reads the part of `originate` after the dial string.
pub fn parse_then(words: &[&str]) -> Option<Then> {
    let first = words.first()?;
    if let Some(app) = first.strip_prefix('&') {
        // The app and its argument may contain spaces: `&playback(/a b.wav)`.
        let joined = words.join(" ");
        let app_text = joined.strip_prefix('&').unwrap_or(app);
        let (name, arg) = match app_text.split_once('(') {
            Some((n, a)) => (n, a.rsplit_once(')').map(|(a, _)| a).unwrap_or(a)),
            None => (app_text, ""),
        };
        return Some(Then::App {
            name: name.trim().to_owned(),
            arg: arg.to_owned(),
        });
    }
    let context = words.get(2).copied().unwrap_or("default");
    Some(Then::Exten {
        exten: (*first).to_owned(),
        context: context.to_owned(),
    })
}

/// How long FreeSWITCH plays `tone_stream://%(on,off,freq)[;loops=N]`: on + off per loop.
/// `None` for anything else (the configured duration applies), and for endless tones
/// (`loops=-1`).
pub fn tone_duration(file: &str) -> Option<Duration> {
    let spec = file.strip_prefix("tone_stream://")?;
    let mut total = 0u64;
    let mut loops = 1u64;
    for part in spec.split(';') {
        if let Some(n) = part.strip_prefix("loops=") {
            match n.trim().parse::<i64>() {
                Ok(n) if n > 0 => loops = n as u64,
                _ => return None,
            }
            continue;
        }
        let inner = part.strip_prefix("%(")?;
        let inner = inner.split(')').next()?;
        let mut nums = inner.split(',').map(|n| n.trim().parse::<u64>().ok());
        let on = nums.next()??;
        let off = nums.next()??;
        total = total.saturating_add(on.saturating_add(off));
    }
    Some(Duration::from_millis(total.saturating_mul(loops)))
}

/// Splits an api command line into its command and argument.
pub fn split_command(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originate_strings_parse() {
        let d = parse_dial_string(
            "{origination_uuid=u1,origination_caller_id_name=Interop,x=a\\,b}loopback/7201/default",
        )
        .unwrap();
        assert_eq!(d.vars[0], ("origination_uuid".into(), "u1".into()));
        assert_eq!(d.vars[2], ("x".into(), "a,b".into()));
        assert_eq!(
            d.endpoint,
            Endpoint::Loopback {
                exten: "7201".into(),
                context: "default".into()
            }
        );
        assert_eq!(
            parse_dial_string("[leg_timeout=10]user/1000")
                .unwrap()
                .endpoint,
            Endpoint::User {
                name: "1000".into(),
                domain: None
            }
        );
        assert_eq!(
            parse_dial_string("sofia/gateway/pstn/15551234")
                .unwrap()
                .endpoint,
            Endpoint::Gateway {
                gateway: "pstn".into(),
                number: "15551234".into()
            }
        );
        assert!(parse_dial_string("{a=b").is_none());
        assert!(parse_dial_string("nosuch/x").is_none());
    }

    #[test]
    fn then_parts_parse() {
        assert_eq!(
            parse_then(&["&park()"]),
            Some(Then::App {
                name: "park".into(),
                arg: String::new()
            })
        );
        assert_eq!(
            parse_then(&["7200", "XML", "default"]),
            Some(Then::Exten {
                exten: "7200".into(),
                context: "default".into()
            })
        );
    }

    #[test]
    fn tone_durations() {
        assert_eq!(
            tone_duration("tone_stream://%(1000,0,440)"),
            Some(Duration::from_millis(1000))
        );
        assert_eq!(
            tone_duration("tone_stream://%(600,0,523);loops=2"),
            Some(Duration::from_millis(1200))
        );
        assert_eq!(
            tone_duration("tone_stream://%(1000,1000,440);loops=-1"),
            None
        );
        assert_eq!(tone_duration("/sounds/hello.wav"), None);
    }
}
