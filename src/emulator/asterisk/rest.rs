//! ARI's REST surface on the emulated switch: request parsing as Asterisk does it (query,
//! form or JSON body merged into one set of parameters; a JSON body only with
//! `Content-Type: application/json`), and routing of `(method, path)` to the [`World`].
//! Shared by HTTP and by REST over the events WebSocket.

use super::world::{Params, PlayTarget, Reply, World};

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError;

/// Builds the parameters of a request. `query` is the raw query string; a JSON body counts only
/// with `Content-Type: application/json` (e: without it the body is ignored), and a malformed
/// one is [`BodyError`] ("Error parsing request body").
pub fn params(query: &str, content_type: Option<&str>, body: &[u8]) -> Result<Params, BodyError> {
    let mut p = Params::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "api_key" {
            continue;
        }
        p.values.insert(k.into_owned(), v.into_owned());
    }
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_ascii_lowercase())
        .unwrap_or_default();
    if ct == "application/json" && !body.iter().all(u8::is_ascii_whitespace) {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| BodyError)?;
        let serde_json::Value::Object(map) = value else {
            return Err(BodyError);
        };
        for (k, v) in map {
            match (k.as_str(), v) {
                ("variables", serde_json::Value::Object(vars)) => {
                    for (name, value) in vars {
                        let text = match value {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        p.variables.insert(name, text);
                    }
                }
                (_, serde_json::Value::String(s)) => {
                    p.values.insert(k, s);
                }
                (_, serde_json::Value::Array(items)) => {
                    let joined: Vec<String> = items
                        .into_iter()
                        .map(|i| match i {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect();
                    p.values.insert(k, joined.join(","));
                }
                (_, serde_json::Value::Null) => {}
                (_, other) => {
                    p.values.insert(k, other.to_string());
                }
            }
        }
    } else if ct == "application/x-www-form-urlencoded" {
        for (k, v) in form_urlencoded::parse(body) {
            p.values.insert(k.into_owned(), v.into_owned());
        }
    }
    Ok(p)
}

/// The methods a path allows (for 405 `Allow`), or `None` for an unknown path.
fn allowed(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["asterisk", "info"] | ["asterisk", "ping"] | ["asterisk", "modules"] => "OPTIONS,GET",
        ["asterisk", "modules", _] => "OPTIONS,GET,POST,DELETE,PUT",
        ["asterisk", "variable"] => "OPTIONS,GET,POST",
        ["channels"] => "OPTIONS,GET,POST",
        ["channels", "create"] | ["channels", "externalMedia"] => "OPTIONS,POST",
        ["channels", _] => "OPTIONS,GET,POST,DELETE",
        [
            "channels",
            _,
            "continue" | "redirect" | "answer" | "dtmf" | "dial" | "move",
        ] => "OPTIONS,POST",
        ["channels", _, "ring" | "mute" | "hold" | "moh" | "silence"] => "OPTIONS,POST,DELETE",
        ["channels", _, "play"] | ["channels", _, "play", _] | ["channels", _, "record"] => {
            "OPTIONS,POST"
        }
        ["channels", _, "snoop"] | ["channels", _, "snoop", _] => "OPTIONS,POST",
        ["channels", _, "variable"] => "OPTIONS,GET,POST",
        ["channels", _, "rtp_statistics"] => "OPTIONS,GET",
        ["bridges"] => "OPTIONS,GET,POST",
        ["bridges", _] => "OPTIONS,GET,POST,DELETE",
        ["bridges", _, "addChannel" | "removeChannel" | "record"] => "OPTIONS,POST",
        ["bridges", _, "play"] | ["bridges", _, "play", _] => "OPTIONS,POST",
        ["bridges", _, "moh"] => "OPTIONS,POST,DELETE",
        ["playbacks", _] => "OPTIONS,GET,DELETE",
        ["playbacks", _, "control"] => "OPTIONS,POST",
        ["recordings", "stored"] => "OPTIONS,GET",
        ["recordings", "stored", _] => "OPTIONS,GET,DELETE",
        ["recordings", "stored", _, "file"] => "OPTIONS,GET",
        ["recordings", "live", _] => "OPTIONS,GET,DELETE",
        ["recordings", "live", _, "stop"] => "OPTIONS,POST",
        ["endpoints"] | ["endpoints", _] | ["endpoints", _, _] => "OPTIONS,GET",
        ["applications"] | ["applications", _] => "OPTIONS,GET",
        ["deviceStates"] | ["deviceStates", _] => "OPTIONS,GET,PUT,DELETE",
        ["sounds"] | ["sounds", _] => "OPTIONS,GET",
        ["events"] => "OPTIONS,GET",
        _ => return None,
    })
}

/// Carries out one ARI request on the world. `segments` is the path after `/ari/`.
pub fn handle(world: &mut World, method: &str, segments: &[&str], p: &Params) -> Reply {
    let Some(allow) = allowed(segments) else {
        return Reply::error(404, "Resource not found");
    };
    let reply = dispatch(world, method, segments, p);
    match reply {
        Some(r) => r,
        None => {
            let mut r = Reply::error(405, "Invalid method");
            r.allow = Some(allow);
            r
        }
    }
}

fn dispatch(world: &mut World, method: &str, segments: &[&str], p: &Params) -> Option<Reply> {
    use PlayTarget::{Bridge, Channel};
    Some(match (method, segments) {
        ("GET", ["asterisk", "info"]) => world.info(p),
        ("GET", ["asterisk", "ping"]) => world.ping(),
        ("GET", ["asterisk", "modules", name]) => world.module(name),
        ("GET", ["asterisk", "variable"]) => world.global_variable(p),
        ("POST", ["asterisk", "variable"]) => world.set_global_variable(p),
        ("GET", ["channels"]) => world.list_channels(),
        ("POST", ["channels"]) => world.originate(None, p),
        ("POST", ["channels", "create"]) => world.create(p),
        ("POST", ["channels", "externalMedia"]) => world.external_media(p),
        ("GET", ["channels", id]) => world.get_channel(id),
        ("POST", ["channels", id]) => world.originate(Some(id), p),
        ("DELETE", ["channels", id]) => world.delete_channel(id, p),
        ("POST", ["channels", id, "answer"]) => world.answer(id),
        ("POST", ["channels", id, "ring"]) => world.ring(id),
        ("DELETE", ["channels", id, "ring"])
        | ("POST" | "DELETE", ["channels", id, "hold" | "moh" | "silence" | "mute"]) => {
            world.silent_op(id)
        }
        ("POST", ["channels", id, "dtmf"]) => world.send_dtmf(id, p),
        ("POST", ["channels", id, "dial"]) => world.dial(id, p),
        ("POST", ["channels", id, "continue"]) => world.continue_dialplan(id, p),
        ("POST", ["channels", id, "redirect"]) => world.redirect(id, p),
        ("POST", ["channels", id, "play"]) => {
            let app = world.owner_app(Channel(id));
            world.play(Channel(id), None, p, &app)
        }
        ("POST", ["channels", id, "play", pb]) => {
            let app = world.owner_app(Channel(id));
            world.play(Channel(id), Some(pb), p, &app)
        }
        ("POST", ["channels", id, "record"]) => {
            let app = world.owner_app(Channel(id));
            world.record(Channel(id), p, &app)
        }
        ("POST", ["channels", id, "snoop"]) => world.snoop(id, None, p),
        ("POST", ["channels", id, "snoop", sid]) => world.snoop(id, Some(sid), p),
        ("GET", ["channels", id, "variable"]) => world.get_variable(id, p),
        ("POST", ["channels", id, "variable"]) => world.set_variable(id, p),
        ("GET", ["channels", id, "rtp_statistics"]) => world.rtp_statistics(id),
        ("GET", ["bridges"]) => world.list_bridges(),
        ("POST", ["bridges"]) => world.create_bridge(None, p),
        ("GET", ["bridges", id]) => world.get_bridge(id),
        ("POST", ["bridges", id]) => world.create_bridge(Some(id), p),
        ("DELETE", ["bridges", id]) => world.destroy_bridge(id),
        ("POST", ["bridges", id, "addChannel"]) => {
            let app = world.owner_app(Channel(
                p.values
                    .get("channel")
                    .map(|c| c.split(',').next().unwrap_or(""))
                    .unwrap_or(""),
            ));
            world.add_channels(id, p, &app)
        }
        ("POST", ["bridges", id, "removeChannel"]) => {
            let app = world.owner_app(Bridge(id));
            world.remove_channels(id, p, &app)
        }
        ("POST", ["bridges", id, "play"]) => {
            let app = world.owner_app(Bridge(id));
            world.play(Bridge(id), None, p, &app)
        }
        ("POST", ["bridges", id, "play", pb]) => {
            let app = world.owner_app(Bridge(id));
            world.play(Bridge(id), Some(pb), p, &app)
        }
        ("POST", ["bridges", id, "record"]) => {
            let app = world.owner_app(Bridge(id));
            world.record(Bridge(id), p, &app)
        }
        ("POST" | "DELETE", ["bridges", id, "moh"]) => world.get_bridge(id).no_content_if_ok(),
        ("GET", ["playbacks", id]) => world.get_playback(id),
        ("DELETE", ["playbacks", id]) => world.stop_playback(id),
        ("POST", ["playbacks", id, "control"]) => world.control_playback(id, p),
        ("GET", ["recordings", "stored"]) => world.list_stored(),
        ("GET", ["recordings", "stored", name]) => world.get_stored(name),
        ("DELETE", ["recordings", "stored", name]) => world.delete_stored(name),
        ("GET", ["recordings", "stored", name, "file"]) => world.stored_file(name),
        ("GET", ["recordings", "live", name]) => world.get_live(name),
        ("DELETE", ["recordings", "live", name]) => world.cancel_recording(name),
        ("POST", ["recordings", "live", name, "stop"]) => world.stop_recording(name),
        ("GET", ["endpoints"]) => world.endpoints(None, None),
        ("GET", ["endpoints", tech]) => world.endpoints(Some(tech), None),
        ("GET", ["endpoints", tech, resource]) => world.endpoints(Some(tech), Some(resource)),
        ("GET", ["applications"]) => world.applications(None),
        ("GET", ["applications", name]) => world.applications(Some(name)),
        ("GET", ["deviceStates"]) => Reply::ok(serde_json::json!([])),
        ("GET", ["sounds"]) => world.sounds(None, p),
        ("GET", ["sounds", id]) => world.sounds(Some(id), p),
        _ => return None,
    })
}

impl Reply {
    fn no_content_if_ok(self) -> Reply {
        if self.status == 200 {
            Reply::no_content()
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_body_counts_only_with_its_content_type() {
        let p = params("", None, b"{not json").unwrap();
        assert!(p.values.is_empty());
        assert_eq!(
            params("", Some("application/json"), b"{not json"),
            Err(BodyError)
        );
        let p = params(
            "app=cc",
            Some("application/json"),
            br#"{"endpoint":"Local/300@cc-test","timeout":"3","variables":{"CC_QUEUE":"support"},"media":["sound:beep"]}"#,
        )
        .unwrap();
        assert_eq!(p.values["endpoint"], "Local/300@cc-test");
        assert_eq!(p.values["timeout"], "3");
        assert_eq!(p.values["media"], "sound:beep");
        assert_eq!(p.variables["CC_QUEUE"], "support");
        let p = params(
            "",
            Some("application/x-www-form-urlencoded"),
            b"endpoint=Local/300@cc-test&app=cc",
        )
        .unwrap();
        assert_eq!(p.values["app"], "cc");
    }
}
