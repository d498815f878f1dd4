//! A contact-center day over both switches at once: Switchboard drives a FreeSWITCH (over
//! ESL) and an Asterisk (over ARI), callers arrive on both, and the same agents serve them
//! (every agent's phone is reachable on both switches). Callers give up while waiting, some
//! phones never answer their offers, callers hang up in the middle of their call, callers who
//! wait too long leave a voicemail, and agents work those voicemails from the portal later.
//! Whatever happens: every contact ends in exactly one final state with one record in the
//! store, every voicemail left reaches an agent and is closed, no agent is left offered or
//! busy, and no channel is left open on either switch.
//!
//! SWITCHBOARD_SCENARIO_CALLERS and SWITCHBOARD_SCENARIO_AGENTS scale it (default 120 and 12,
//! which CI runs; 500 and 50 is the issue's full size). Runs on a SQLite file, and on
//! PostgreSQL when `SWITCHBOARD_TEST_POSTGRES_URL` names a server.

#[path = "support/center.rs"]
mod center;
#[path = "support/store_harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use switchboard::agents::StayOnLine;
use switchboard::controller::telephony::AgentNotice;
use switchboard::controller::{AgentAction, ContactAction, Controller, HangupOutcome};
use switchboard::emulator::{asterisk, freeswitch};
use switchboard::media::HandlerId;
use switchboard::model::{ContactId, ContactState, Disposition, MediaType, Timestamp};
use switchboard::store::{Cdr, Store, StoredContact};
use tokio::sync::broadcast;

const FREESWITCH: HandlerId = HandlerId(1);
const ASTERISK: HandlerId = HandlerId(2);

/// Emulated time runs 20 × faster than real time (the controller's own timers, such as
/// `max_wait_s` and the voicemail's length, run in real time).
const SCALE: f64 = 0.05;

/// Callers wait in `sales` for at most 3 s, then leave a message (cut off by the flow at
/// `max_s` plus its grace), which becomes a voicemail contact in `messages`.
const FLOW: &str = r#"
name = "sales"

[[steps]]
queue = { name = "sales", music = "default", bridge_timeout_s = 10, on_voicemail = "voicemail" }

[[steps]]
id = "voicemail"
voicemail = { max_s = 2, queue = "messages" }
"#;

const QUEUES: &str = r#"
[[queues]]
name = "sales"
tenant = "acme"
offer_timeout_s = 2
max_wait_s = 3
overflow = "voicemail"

[[queues]]
name = "messages"
tenant = "acme"
offer_timeout_s = 10
"#;

fn scaled(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contact_of_a_day_on_both_switches_ends_once_and_nothing_is_left_open_on_sqlite() {
    let file = harness::SqliteFile::new();
    a_day_on_both_switches(file.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contact_of_a_day_on_both_switches_ends_once_and_nothing_is_left_open_on_postgres() {
    harness::on_postgres(a_day_on_both_switches).await;
}

async fn a_day_on_both_switches(url: String) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into()))
        .with_test_writer()
        .try_init();
    let began = Instant::now();
    let callers = scaled("SWITCHBOARD_SCENARIO_CALLERS", 120);
    let agents = scaled("SWITCHBOARD_SCENARIO_AGENTS", 12).max(2);
    let mut rng = StdRng::seed_from_u64(11);

    // Agents serve both queues: calls one at a time, and one voicemail at a time. One phone
    // in six never answers: its offers time out and its agent is set not ready.
    let mut config = String::from(QUEUES);
    let mut fs_options = freeswitch::EmulatorOptions::new("ClueCon");
    fs_options.time_scale = SCALE;
    fs_options.world.users.clear();
    let mut ast_options = asterisk::EmulatorOptions::capture(center::PASSWORD);
    ast_options.time_scale = SCALE;
    ast_options.rtp = false;
    let mut names = Vec::new();
    for i in 0..agents {
        let (name, user) = (format!("agent{i}"), (1000 + i).to_string());
        let _ = write!(
            config,
            "\n[[agents]]\nname = \"{name}\"\ntenant = \"acme\"\nqueues = [\"sales\", \"messages\"]\n\
             slots = {{ voice = 1, voicemail = 1 }}\n"
        );
        let ring = Duration::from_secs(rng.random_range(1..6));
        let answers = i % 6 != 5;
        fs_options.world.users.insert(
            user.clone(),
            if answers {
                freeswitch::DialBehaviour::Answer { ring }
            } else {
                freeswitch::DialBehaviour::NoAnswer
            },
        );
        ast_options.world.endpoints.push(asterisk::EndpointConfig {
            resource: user.clone(),
            context: "cc-inbound".into(),
            behaviour: if answers {
                asterisk::DialBehaviour::Answer { ring }
            } else {
                asterisk::DialBehaviour::NoAnswer
            },
        });
        names.push((name, user));
    }
    let lines: Vec<(&str, &str, StayOnLine)> = names
        .iter()
        .map(|(name, user)| (name.as_str(), user.as_str(), StayOnLine::Never))
        .collect();

    let fs = freeswitch::Emulator::start("127.0.0.1:0".parse().expect("address"), fs_options)
        .await
        .expect("the FreeSWITCH emulator starts");
    let ast = asterisk::Emulator::start("127.0.0.1:0".parse().expect("address"), ast_options)
        .await
        .expect("the Asterisk emulator starts");
    let store = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    let (controller, _task) = {
        let fs_addr = fs.local_addr().to_string();
        let ari_url = ast.base_url();
        center::controller_with_flow(store.clone(), &config, FLOW, &lines, move |events| {
            center::both_switches(&fs_addr, &ari_url, events)
        })
        .await
    };
    wait_until(
        "both switches see Switchboard",
        Duration::from_secs(20),
        || fs.connections() > 0 && ast.sockets() > 0,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let portal = Portal::open(&controller);
    for (name, _) in &names {
        for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
            controller
                .agent(name, action)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    // Callers arrive twelve a second (the default day lasts ten seconds, the full one about
    // forty: the same load per agent), every other one on each switch, and hang up when
    // their patience ends: some give up in the queue, others in the middle of their call,
    // and those still waiting after 3 s leave a message (and hang up while recording, or are
    // cut off when the message reaches its length).
    for i in 0..callers {
        let number = format!("+49301{i:04}");
        let hangup = Duration::from_secs(patience(&mut rng));
        if i % 2 == 0 {
            let mut call = freeswitch::InboundCall::new(&number, "8001");
            call.hangup_after = Some(hangup);
            fs.place_call(&call).expect("placed on the FreeSWITCH");
        } else {
            ast.place_call(&asterisk::InboundCall {
                endpoint: "customer".into(),
                extension: "8001".into(),
                caller_name: format!("Caller {i}"),
                caller_number: number,
                dtmf: Vec::new(),
                hangup_after: Some(hangup),
            })
            .expect("placed on the Asterisk");
        }
        tokio::time::sleep(Duration::from_millis(1000 / 12)).await;
    }

    // Every call ends with its record; then the agents work off the voicemails left.
    let calls = voice_records(&store, callers, Duration::from_secs(60)).await;
    let start = Instant::now();
    while store.counts_by_state("acme").await.expect("counts").open() > 0
        && start.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // After-call work ends after 0.3 s; legs hung up a moment ago may still be going.
    tokio::time::sleep(Duration::from_millis(600)).await;
    wait_until("the switches are empty", Duration::from_secs(5), || {
        fs.channels().is_empty() && ast.channels().is_empty()
    })
    .await
    .ok();

    let contacts = stored_contacts(&store).await;
    let all_records = center::records(&store, 0, Duration::ZERO).await;
    let portal = portal.close();
    let live_agents = controller.agents().await.expect("the controller runs");

    // The run log: what the day was made of.
    let mut by_disposition: BTreeMap<&str, usize> = BTreeMap::new();
    for cdr in &calls {
        *by_disposition
            .entry(cdr.record.disposition.code())
            .or_default() += 1;
    }
    let voicemails: Vec<&StoredContact> = contacts
        .iter()
        .filter(|c| c.media == MediaType::Voicemail)
        .collect();
    let on_switch = |h| calls.iter().filter(|c| c.record.handler == Some(h)).count();
    eprintln!(
        "day on both switches: {callers} callers ({} over FreeSWITCH, {} over Asterisk), \
         {agents} agents, {:.1} s: calls {by_disposition:?}; voicemails left {}, offered {}, \
         handled {}",
        on_switch(FREESWITCH),
        on_switch(ASTERISK),
        began.elapsed().as_secs_f64(),
        voicemails.len(),
        portal.offered.len(),
        portal.handled.len(),
    );

    // One record per call, for each of its contacts, on the switch it came in on.
    assert_eq!(
        calls.len(),
        callers,
        "one record per call: {by_disposition:?}"
    );
    let call_contacts: BTreeSet<u64> = calls.iter().map(|c| c.record.contact.0).collect();
    assert_eq!(call_contacts.len(), callers, "no call written twice");
    assert_eq!(on_switch(FREESWITCH), callers.div_ceil(2), "calls over ESL");
    assert_eq!(on_switch(ASTERISK), callers / 2, "calls over ARI");
    for cdr in &calls {
        let r = &cdr.record;
        match r.disposition {
            // Recorded from the bridge on; a caller who hangs up as the agent answers is
            // answered but never bridged.
            Disposition::Answered => assert!(
                r.agent.is_some() && (r.recording.is_some() || r.talk_ms < 2000),
                "{r:#?}"
            ),
            Disposition::Abandoned | Disposition::OverflowedVoicemail => {
                assert!(r.agent.is_none(), "{r:#?}")
            }
            other => panic!("unexpected {other:?}: {r:#?}"),
        }
    }

    // Every stored contact is in exactly one final state.
    assert_eq!(
        contacts.len(),
        callers + voicemails.len(),
        "the store holds the calls and the voicemails, nothing else"
    );
    let mut not_ended = Vec::new();
    for contact in &contacts {
        let events = store.contact_events(contact.id).await.expect("events");
        let finals: Vec<&str> = events
            .iter()
            .filter(|e| e.state.is_final())
            .map(|e| e.state.code())
            .collect();
        if !contact.state.is_final() || finals != [contact.state.code()] {
            not_ended.push(format!(
                "contact {} ({}): {} with final events {finals:?}",
                contact.id.0,
                contact.media.code(),
                contact.state.code()
            ));
        }
    }
    assert!(not_ended.is_empty(), "{not_ended:#?}");

    // Each call's record says how its contact ended: served, given up, or sent to voicemail.
    let stored: BTreeMap<u64, &StoredContact> = contacts.iter().map(|c| (c.id.0, c)).collect();
    let mut contradicted = Vec::new();
    for cdr in &calls {
        let r = &cdr.record;
        let expected = match r.disposition {
            Disposition::Answered => ContactState::Completed,
            Disposition::Abandoned => ContactState::Abandoned,
            _ => ContactState::Overflowed,
        };
        let state = stored.get(&r.contact.0).map(|c| c.state);
        if state != Some(expected) {
            contradicted.push(format!(
                "contact {} ({}): stored {:?}, record {}",
                r.contact.0,
                r.caller,
                state.map(ContactState::code),
                r.disposition.code()
            ));
        }
    }
    assert!(
        contradicted.is_empty(),
        "{} records contradict their stored contact: {contradicted:#?}",
        contradicted.len()
    );
    // The mix of a day: served calls, callers who gave up, callers who left a message.
    for disposition in ["answered", "abandoned", "overflowed_voicemail"] {
        assert!(
            by_disposition.get(disposition).copied().unwrap_or(0) > 0,
            "no {disposition} call: {by_disposition:?}"
        );
    }

    // Every caller sent to voicemail (the only overflow of `sales`) left one message, which
    // became a voicemail contact naming its call.
    let mut left: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for vm in &voicemails {
        let caller = vm
            .attributes
            .get("caller_contact")
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("voicemail {} names no caller: {vm:#?}", vm.id.0));
        left.entry(caller).or_default().push(vm.id.0);
    }
    let sent: Vec<&Cdr> = calls
        .iter()
        .filter(|c| {
            stored.get(&c.record.contact.0).map(|s| s.state) == Some(ContactState::Overflowed)
        })
        .collect();
    let lost: Vec<String> = sent
        .iter()
        .filter(|c| !left.contains_key(&c.record.contact.0))
        .map(|c| format!("contact {} ({})", c.record.contact.0, c.record.caller))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} callers sent to voicemail have no voicemail: {lost:?}",
        lost.len(),
        sent.len()
    );
    for (caller, vms) in &left {
        assert!(
            vms.len() == 1 && sent.iter().any(|c| c.record.contact.0 == *caller),
            "contact {caller}, not sent to voicemail once, left {vms:?}"
        );
    }

    // Every voicemail was offered on the portal, taken and finished by an agent, and closed
    // with its record.
    assert!(!voicemails.is_empty(), "no voicemail was left");
    assert!(
        portal.lagged == 0,
        "the portal missed {} notices",
        portal.lagged
    );
    assert!(portal.failures.is_empty(), "{:#?}", portal.failures);
    let mut unserved = Vec::new();
    for vm in &voicemails {
        let id = vm.id.0;
        let agent = portal.handled.get(&id);
        let events = store.contact_events(vm.id).await.expect("events");
        let path: Vec<&str> = events.iter().map(|e| e.state.code()).collect();
        if !portal.offered.contains_key(&id)
            || agent.is_none()
            || vm.state != ContactState::Completed
            || vm.agent.as_ref() != agent
            || !path.ends_with(&["offered", "connected", "completed"])
        {
            unserved.push(format!(
                "voicemail {id}: offered to {:?}, handled by {agent:?}, stored {} for {:?}, \
                 path {path:?}",
                portal.offered.get(&id),
                vm.state.code(),
                vm.agent
            ));
        }
    }
    assert!(unserved.is_empty(), "{unserved:#?}");
    let unrecorded: Vec<String> = voicemails
        .iter()
        .filter_map(|vm| {
            let records: Vec<_> = all_records
                .iter()
                .filter(|c| c.record.contact == vm.id)
                .collect();
            let fine = records.len() == 1
                && records[0].record.media == MediaType::Voicemail
                && records[0].record.agent == vm.agent;
            (!fine).then(|| {
                format!(
                    "voicemail {}: {} records {records:?}",
                    vm.id.0,
                    records.len()
                )
            })
        })
        .collect();
    assert!(
        unrecorded.is_empty(),
        "{} of {} handled voicemails have no record of their own: {unrecorded:#?}",
        unrecorded.len(),
        voicemails.len()
    );

    // No agent is left offered or busy, neither live nor in its stored history.
    let mut stuck = Vec::new();
    for (name, _) in &names {
        let live = live_agents
            .iter()
            .find(|a| &a.name == name)
            .and_then(|a| a.state);
        let history = store
            .agent_states(
                "acme",
                name,
                Timestamp::from_secs(0),
                Timestamp::now().plus(Duration::from_secs(60)),
                None,
            )
            .await
            .expect("history");
        let last = history.last().map(|s| s.state.code());
        if matches!(live, Some("offered" | "busy")) || matches!(last, Some("offered" | "busy")) {
            stuck.push(format!("{name}: {live:?} (stored: {last:?})"));
        }
    }
    assert!(
        stuck.is_empty(),
        "agents left offered or busy with no contact open: {stuck:?}"
    );

    // Nothing is left open on either switch.
    assert!(fs.channels().is_empty(), "FreeSWITCH: {:?}", fs.channels());
    assert!(ast.channels().is_empty(), "Asterisk: {:?}", ast.channels());
}

/// What the agents' portal saw and did with voicemails: contact → agent.
#[derive(Debug, Default)]
struct PortalLog {
    offered: BTreeMap<u64, String>,
    handled: BTreeMap<u64, String>,
    lagged: u64,
    failures: Vec<String>,
}

/// The agents' portal: on an offer of a voicemail, the agent listens for a moment, accepts
/// it, and finishes it (an agent's hang-up of a contact without a call completes it).
struct Portal {
    log: Arc<Mutex<PortalLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Portal {
    fn open(controller: &Controller) -> Portal {
        let mut notices = controller.notices().expect("the calls side runs");
        let log = Arc::new(Mutex::new(PortalLog::default()));
        let task = {
            let (controller, log) = (controller.clone(), log.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(13);
                loop {
                    match notices.recv().await {
                        Ok(notice) if notice.event == "offered" => {
                            let listen = Duration::from_millis(rng.random_range(100..500));
                            tokio::spawn(work(controller.clone(), log.clone(), notice, listen));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            lock(&log).lagged += n;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        };
        Portal { log, task }
    }

    fn close(self) -> PortalLog {
        self.task.abort();
        std::mem::take(&mut *lock(&self.log))
    }
}

fn lock(log: &Mutex<PortalLog>) -> std::sync::MutexGuard<'_, PortalLog> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// One agent's work on one offer: calls are for the phone; a voicemail is accepted after
/// `listen` and then finished.
async fn work(
    controller: Controller,
    log: Arc<Mutex<PortalLog>>,
    notice: AgentNotice,
    listen: Duration,
) {
    let contact = ContactId(notice.contact);
    let media = controller
        .contact_info(contact)
        .await
        .ok()
        .flatten()
        .map(|v| v.media);
    if media != Some(MediaType::Voicemail.code()) {
        return;
    }
    let agent = notice.agent;
    lock(&log).offered.insert(contact.0, agent.clone());
    tokio::time::sleep(listen).await;
    if let Err(e) = controller
        .contact(contact, ContactAction::Accept(agent.clone()))
        .await
    {
        lock(&log)
            .failures
            .push(format!("{agent} accepting voicemail {}: {e:?}", contact.0));
        return;
    }
    tokio::time::sleep(listen).await;
    match controller.hang_up(contact, &agent).await {
        Ok(HangupOutcome::Completed(_)) => {
            lock(&log).handled.insert(contact.0, agent);
        }
        other => lock(&log).failures.push(format!(
            "{agent} finishing voicemail {}: {other:?}",
            contact.0
        )),
    }
}

/// The records of calls (voice), once there are at least `n` (or `limit` has passed).
async fn voice_records(store: &Store, n: usize, limit: Duration) -> Vec<Cdr> {
    let start = Instant::now();
    loop {
        let calls: Vec<Cdr> = center::records(store, 0, Duration::ZERO)
            .await
            .into_iter()
            .filter(|c| c.record.media == MediaType::Voice)
            .collect();
        if calls.len() >= n || start.elapsed() > limit {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every contact in the store (ids are assigned increasing from 1).
async fn stored_contacts(store: &Store) -> Vec<StoredContact> {
    let mut found = Vec::new();
    let (mut id, mut misses) = (1, 0);
    while misses < 100 {
        match store.contact(ContactId(id)).await.expect("reads") {
            Some(contact) => {
                found.push(contact);
                misses = 0;
            }
            None => misses += 1,
        }
        id += 1;
    }
    found
}

/// How long a caller waits before hanging up, in emulated seconds: 0.5 to 2 real seconds
/// (a caller who gives up in the queue), or 4.5 to 12 (one who is served, or waits 3 s and
/// then leaves a message: the margin lets a loaded controller start the recording before
/// the caller hangs up).
fn patience(rng: &mut StdRng) -> u64 {
    if rng.random_bool(0.2) {
        rng.random_range(10..40)
    } else {
        rng.random_range(90..240)
    }
}

/// Waits until `done`, at most `limit`; `Err` if it never was.
async fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("not within {limit:?}: {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
