//! The Asterisk configs Switchboard ships (asterisk-conf/) agree with each other and with
//! what the adapter expects: ARI on 127.0.0.1, a user with a password to change, the contact
//! variable listed in `channelvars`, every endpoint's context present in the dialplan, inbound
//! calls handed to the Stasis application, agents named PJSIP/<extension>, a default MOH class.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchboard::media::CONTACT_VARIABLE;

/// One section: name, what follows the brackets (`(!)`, `(template)`), key/value lines.
type Section = (String, String, Vec<(String, String)>);

/// Sections of an Asterisk config file, in file order.
fn parse(file: &str) -> Vec<Section> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("asterisk-conf")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: Vec<Section> = Vec::new();
    for raw in text.lines() {
        let line = raw.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (name, tail) = rest
                .split_once(']')
                .unwrap_or_else(|| panic!("{file}: bad section {raw:?}"));
            out.push((name.to_owned(), tail.trim().to_owned(), Vec::new()));
            continue;
        }
        let (k, v) = line
            .split_once("=>")
            .or_else(|| line.split_once('='))
            .unwrap_or_else(|| panic!("{file}: bad line {raw:?}"));
        let section = out
            .last_mut()
            .unwrap_or_else(|| panic!("{file}: line outside a section: {raw:?}"));
        section.2.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    out
}

fn get<'a>(sections: &'a [Section], name: &str) -> BTreeMap<&'a str, &'a str> {
    sections
        .iter()
        .filter(|(n, _, _)| n == name)
        .flat_map(|(_, _, kv)| kv.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect()
}

#[test]
fn ari_listens_on_localhost_only() {
    let http = parse("http.conf");
    let general = get(&http, "general");
    assert_eq!(general["enabled"], "yes");
    assert_eq!(general["bindaddr"], "127.0.0.1");
    assert_eq!(general["bindport"], "8088");
}

#[test]
fn ari_has_a_user_with_a_password_to_change_and_lists_the_contact_variable() {
    let ari = parse("ari.conf");
    let general = get(&ari, "general");
    assert_eq!(general["enabled"], "yes");
    assert!(
        general["channelvars"]
            .split(',')
            .any(|v| v.trim() == CONTACT_VARIABLE)
    );
    let user = get(&ari, "switchboard");
    assert_eq!(user["type"], "user");
    assert_eq!(user["read_only"], "no");
    assert!(
        user["password"].contains("change-me"),
        "the shipped password says it must change"
    );
}

#[test]
fn every_endpoint_context_exists_and_inbound_calls_enter_the_application() {
    let pjsip = parse("pjsip.conf");
    let dialplan = parse("extensions.conf");
    let contexts: Vec<&str> = dialplan.iter().map(|(n, _, _)| n.as_str()).collect();
    let templates: BTreeMap<&str, Vec<(String, String)>> = pjsip
        .iter()
        .filter(|(_, t, _)| t == "(!)")
        .map(|(n, _, kv)| (n.as_str(), kv.clone()))
        .collect();
    let mut endpoints = 0;
    for (name, tail, kv) in &pjsip {
        let mut all = kv.clone();
        if let Some(t) = tail.strip_prefix('(').and_then(|t| t.strip_suffix(')'))
            && t != "!"
        {
            all.extend(templates.get(t).cloned().unwrap_or_default());
        }
        let is_endpoint = all.iter().any(|(k, v)| k == "type" && v == "endpoint");
        if !is_endpoint || tail == "(!)" {
            continue;
        }
        endpoints += 1;
        let context = all
            .iter()
            .find(|(k, _)| k == "context")
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name}: no context"));
        assert!(
            contexts.contains(&context),
            "{name}: context {context} not in extensions.conf"
        );
    }
    assert!(endpoints >= 3, "two agents and a trunk: {endpoints}");
    let inbound = dialplan
        .iter()
        .find(|(n, _, _)| n == "switchboard-inbound")
        .unwrap();
    assert!(
        inbound
            .2
            .iter()
            .any(|(_, v)| v.contains("Stasis(switchboard,inbound,${EXTEN})"))
    );
    let agents: Vec<&str> = pjsip
        .iter()
        .filter(|(_, t, _)| t == "(agent-endpoint)")
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert!(
        agents.iter().all(|a| a.chars().all(|c| c.is_ascii_digit())),
        "agents are PJSIP/<extension>: {agents:?}"
    );
}

#[test]
fn music_on_hold_has_a_default_class() {
    let moh = parse("musiconhold.conf");
    assert_eq!(get(&moh, "default")["mode"], "files");
}
