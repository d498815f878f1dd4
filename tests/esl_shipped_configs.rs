//! The FreeSWITCH configs and dialplans Switchboard ships (freeswitch-conf/, dialplans/):
//! every file is well-formed XML, the event socket listens on 127.0.0.1 only (port 8021,
//! loopback ACL), calls reach Switchboard's outbound event socket server the way the emulator
//! expects, and every secret is a visible `change-me`/`ClueCon` placeholder the deployment
//! guide tells the administrator to replace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn xml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            xml_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "xml") {
            out.push(path);
        }
    }
}

/// Every element of a file, in order: (name, attributes).
type Elements = Vec<(String, BTreeMap<String, String>)>;

fn parse(path: &Path) -> Elements {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = Reader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.name().as_ref().to_owned();
                let mut attrs = BTreeMap::new();
                for a in e.attributes() {
                    let a =
                        a.unwrap_or_else(|err| panic!("{}: bad attribute: {err}", path.display()));
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap_or_else(|err| panic!("{}: bad value: {err}", path.display()));
                    attrs.insert(a.key.as_ref().to_owned(), value.into_owned());
                }
                out.push((name, attrs));
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "{} is not well-formed XML at byte {}: {e}",
                path.display(),
                reader.buffer_position()
            ),
        }
    }
    assert!(!out.is_empty(), "{}: no elements", path.display());
    out
}

fn params(elements: &Elements) -> BTreeMap<String, String> {
    elements
        .iter()
        .filter(|(n, _)| n == "param")
        .filter_map(|(_, a)| Some((a.get("name")?.clone(), a.get("value")?.clone())))
        .collect()
}

#[test]
fn every_shipped_xml_file_is_well_formed() {
    let mut files = Vec::new();
    xml_files(&root().join("freeswitch-conf"), &mut files);
    xml_files(&root().join("dialplans"), &mut files);
    assert!(files.len() >= 9, "{files:?}");
    for f in files {
        parse(&f);
    }
}

#[test]
fn event_socket_listens_on_127_0_0_1_port_8021_with_a_loopback_acl() {
    let e = parse(&root().join("freeswitch-conf/autoload_configs/event_socket.conf.xml"));
    assert_eq!(e[0].0, "configuration");
    assert_eq!(
        e[0].1.get("name").map(String::as_str),
        Some("event_socket.conf")
    );
    let p = params(&e);
    assert_eq!(p.get("listen-ip").map(String::as_str), Some("127.0.0.1"));
    assert_eq!(p.get("listen-port").map(String::as_str), Some("8021"));
    assert_eq!(
        p.get("apply-inbound-acl").map(String::as_str),
        Some("loopback.auto")
    );
    // The default password ships so that the file works as copied; the guide has it changed.
    assert_eq!(p.get("password").map(String::as_str), Some("ClueCon"));
    let guide = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(guide.contains("ClueCon") && guide.contains("event_socket.conf.xml"));
}

#[test]
fn inbound_and_agent_calls_go_to_switchboards_outbound_socket_async_full() {
    for file in [
        "dialplans/public/switchboard-inbound.xml",
        "dialplans/default/switchboard-agents.xml",
    ] {
        let e = parse(&root().join(file));
        let sockets: Vec<&String> = e
            .iter()
            .filter(|(n, a)| {
                n == "action" && a.get("application").map(String::as_str) == Some("socket")
            })
            .filter_map(|(_, a)| a.get("data"))
            .collect();
        assert_eq!(sockets, ["127.0.0.1:8084 async full"], "{file}");
    }
    // The emulator's own dialplan hands calls over the same way.
    let o =
        switchboard::emulator::freeswitch::EmulatorOptions::with_outbound("x", "127.0.0.1:8084");
    assert!(
        o.world
            .inbound
            .contains(&switchboard::emulator::freeswitch::App::Socket {
                target: "127.0.0.1:8084".into()
            })
    );
}

#[test]
fn agents_have_directory_users_and_a_sip_profile_and_the_carrier_a_gateway() {
    for n in ["1000", "1001"] {
        let e = parse(&root().join(format!(
            "freeswitch-conf/directory/default/switchboard-agent-{n}.xml"
        )));
        let user = e.iter().find(|(name, _)| name == "user").expect("a user");
        assert_eq!(user.1.get("id").map(String::as_str), Some(n));
        assert!(
            params(&e)
                .get("password")
                .is_some_and(|p| p.starts_with("change-me"))
        );
    }
    let profile = parse(&root().join("freeswitch-conf/sip_profiles/switchboard-agents.xml"));
    let p = params(&profile);
    assert_eq!(p.get("auth-calls").map(String::as_str), Some("true"));
    assert_eq!(p.get("context").map(String::as_str), Some("default"));
    let gw = parse(&root().join("freeswitch-conf/sip_profiles/external/switchboard-carrier.xml"));
    assert!(
        gw.iter()
            .any(|(n, a)| n == "gateway" && a.get("name").map(String::as_str) == Some("carrier"))
    );
    let outbound = parse(&root().join("dialplans/switchboard-outbound.xml"));
    assert!(outbound.iter().any(|(n, a)| {
        n == "action"
            && a.get("data")
                .is_some_and(|d| d.starts_with("sofia/gateway/carrier/"))
    }));
    let moh = parse(&root().join("freeswitch-conf/autoload_configs/local_stream.conf.xml"));
    assert!(moh.iter().any(|(n, a)| n == "directory" && a.get("name").map(String::as_str) == Some("moh/8000")));
}
