//! Flows driven as the controller drives them: media events, router outputs and time in,
//! actions out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::media::{HangupCause, LegId, MediaCommand, MediaEvent, PlaySource};
use crate::model::{AgentId, ContactId, Outcome, QueueId, Timestamp};
use crate::routing::{Output, OverflowTarget};

use super::*;

const SALES: &str = r#"
name = "sales"
[[steps]]
play = { prompt = "welcome" }
[[steps]]
id = "menu"
menu = { prompt = "press-1-english-2-spanish", timeout_s = 5, retries = 1, options = { "1" = { set = { language = "en" } }, "2" = { set = { language = "es" } } }, default = { set = { language = "en" } } }
[[steps]]
queue = { name = "sales", music = "default", announce_every_s = 30, position_prompt = "you-are-caller", wait_prompt = "expected-wait", on_voicemail = "vm" }
[[steps]]
id = "vm"
voicemail = { prompt = "leave-a-message", max_s = 60, queue = "sales" }
"#;

fn at(secs: f64) -> Timestamp {
    Timestamp((1_800_000_000.0 * 1e6 + secs * 1e6) as i64)
}

const C: ContactId = ContactId(42);

fn leg() -> LegId {
    LegId::new("leg-42")
}

fn engine(flow: &str) -> FlowEngine {
    let mut e = FlowEngine::new();
    e.add_flow(Flow::from_toml(flow, "test.toml").unwrap());
    e
}

fn actions(e: &mut FlowEngine) -> Vec<FlowAction> {
    e.drain_actions().collect()
}

fn played(actions: &[FlowAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            FlowAction::Media(MediaCommand::Play {
                source: PlaySource::File(f),
                ..
            }) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn playback_id(actions: &[FlowAction]) -> Option<String> {
    actions.iter().rev().find_map(|a| match a {
        FlowAction::Media(MediaCommand::Play { playback, .. }) => Some(playback.clone()),
        _ => None,
    })
}

fn finished(e: &mut FlowEngine, now: Timestamp, id: Option<String>) -> Vec<FlowAction> {
    e.on_media(
        now,
        C,
        &MediaEvent::PlaybackFinished {
            leg: leg(),
            playback: id,
        },
    )
    .unwrap();
    actions(e)
}

fn digit(e: &mut FlowEngine, now: Timestamp, d: char) -> Vec<FlowAction> {
    e.on_media(
        now,
        C,
        &MediaEvent::Dtmf {
            leg: leg(),
            digit: d,
            duration: Duration::from_millis(100),
        },
    )
    .unwrap();
    actions(e)
}

#[test]
fn a_caller_hears_the_greeting_chooses_a_language_and_waits_in_the_queue() {
    let mut e = engine(SALES);
    e.start(at(0.0), C, leg(), "sales", BTreeMap::new())
        .unwrap();
    let a = actions(&mut e);
    assert_eq!(played(&a), vec!["welcome"]);
    let a = finished(&mut e, at(3.0), playback_id(&a));
    assert_eq!(played(&a), vec!["press-1-english-2-spanish"]);
    let a = digit(&mut e, at(4.0), '2');
    assert!(
        a.iter()
            .any(|x| matches!(x, FlowAction::Media(MediaCommand::StopPlayback { .. }))),
        "barge-in"
    );
    let enqueue = a.iter().find_map(|x| match x {
        FlowAction::Enqueue {
            queue, attributes, ..
        } => Some((queue.clone(), attributes.clone())),
        _ => None,
    });
    assert_eq!(
        enqueue,
        Some((
            "sales".to_owned(),
            BTreeMap::from([("language".to_owned(), "es".to_owned())])
        ))
    );
    assert!(a.iter().any(|x| matches!(x, FlowAction::Media(MediaCommand::Park { music: Some(m), .. }) if m == "default")));
}

#[test]
fn no_digit_repeats_the_menu_then_takes_the_default() {
    let mut e = engine(SALES);
    e.start(at(0.0), C, leg(), "sales", BTreeMap::new())
        .unwrap();
    let a = actions(&mut e);
    let a = finished(&mut e, at(1.0), playback_id(&a));
    let a = finished(&mut e, at(2.0), playback_id(&a));
    assert!(a.is_empty(), "waiting for a digit: {a:?}");
    e.handle_timeout(at(7.0));
    let a = actions(&mut e);
    assert_eq!(played(&a), vec!["press-1-english-2-spanish"], "one retry");
    finished(&mut e, at(8.0), playback_id(&a));
    // A wrong digit after the last try takes the default choice.
    let a = digit(&mut e, at(9.0), '9');
    assert!(a.iter().any(|x| matches!(x, FlowAction::Enqueue { attributes, .. } if attributes["language"] == "en")), "{a:?}");
}

#[test]
fn a_playback_that_never_finishes_is_stopped_and_the_flow_goes_on() {
    let mut e = engine(SALES);
    e.start(at(0.0), C, leg(), "sales", BTreeMap::new())
        .unwrap();
    actions(&mut e);
    assert_eq!(e.poll_timeout(), Some(at(120.0)));
    e.handle_timeout(at(120.0));
    let a = actions(&mut e);
    assert!(
        matches!(a[0], FlowAction::Media(MediaCommand::StopPlayback { .. })),
        "{a:?}"
    );
    assert_eq!(played(&a), vec!["press-1-english-2-spanish"]);
}

fn into_queue(e: &mut FlowEngine) {
    e.start(at(0.0), C, leg(), "sales", BTreeMap::new())
        .unwrap();
    let a = actions(e);
    let a = finished(e, at(1.0), playback_id(&a));
    let _ = finished(e, at(2.0), playback_id(&a));
    digit(e, at(3.0), '1');
}

#[test]
fn waiting_callers_hear_their_position_and_expected_wait() {
    let mut e = engine(SALES);
    into_queue(&mut e);
    e.handle_timeout(at(33.0));
    assert_eq!(
        actions(&mut e),
        vec![FlowAction::QueueStatusWanted { contact: C }]
    );
    e.on_queue_status(at(33.1), C, 4, Some(Duration::from_secs(150)));
    let mut prompts = Vec::new();
    let mut a = actions(&mut e);
    while let Some(id) = playback_id(&a) {
        prompts.extend(played(&a));
        a = finished(&mut e, at(34.0), Some(id));
    }
    assert_eq!(
        prompts,
        vec![
            "you-are-caller",
            "digits/4",
            "expected-wait",
            "digits/3",
            "minutes"
        ]
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, FlowAction::Media(MediaCommand::Park { .. }))),
        "music again: {a:?}"
    );
}

#[test]
fn a_caller_who_hangs_up_while_queued_is_abandoned_once() {
    let mut e = engine(SALES);
    into_queue(&mut e);
    e.on_media(
        at(20.0),
        C,
        &MediaEvent::HungUp {
            leg: leg(),
            cause: HangupCause::normal_clearing(),
        },
    )
    .unwrap();
    assert_eq!(
        actions(&mut e),
        vec![
            FlowAction::Abandon { contact: C },
            FlowAction::Finished { contact: C }
        ]
    );
    assert!(
        e.on_media(at(21.0), C, &MediaEvent::Destroyed { leg: leg() })
            .is_err()
    );
    assert_eq!(e.running(), 0);
}

#[test]
fn a_bridge_that_never_happens_sends_the_contact_back_to_its_place() {
    let mut e = engine(SALES);
    into_queue(&mut e);
    e.on_router(
        at(10.0),
        &Output::Connected {
            contact: C,
            agent: AgentId(1),
            at: at(10.0),
        },
    );
    e.handle_timeout(at(39.9));
    assert!(actions(&mut e).is_empty());
    e.handle_timeout(at(40.0));
    let a = actions(&mut e);
    assert_eq!(a[0], FlowAction::BackToQueue { contact: C });
    // When the bridge comes, the caller talks; when the agent leaves, the call ends.
    e.on_router(
        at(50.0),
        &Output::Connected {
            contact: C,
            agent: AgentId(2),
            at: at(50.0),
        },
    );
    e.on_media(
        at(51.0),
        C,
        &MediaEvent::Bridged {
            a: leg(),
            b: LegId::new("agent"),
        },
    )
    .unwrap();
    e.handle_timeout(at(200.0));
    assert!(
        !actions(&mut e)
            .iter()
            .any(|x| matches!(x, FlowAction::BackToQueue { .. }))
    );
    e.on_media(at(300.0), C, &MediaEvent::Unbridged { leg: leg() })
        .unwrap();
    assert!(
        actions(&mut e)
            .iter()
            .any(|x| matches!(x, FlowAction::Media(MediaCommand::Hangup { .. })))
    );
    e.on_media(
        at(301.0),
        C,
        &MediaEvent::HungUp {
            leg: leg(),
            cause: HangupCause::normal_clearing(),
        },
    )
    .unwrap();
    assert_eq!(
        actions(&mut e),
        vec![FlowAction::Finished { contact: C }],
        "no abandon after talking"
    );
}

#[test]
fn an_overflow_to_voicemail_records_a_message_that_becomes_a_contact() {
    let mut e = engine(SALES);
    into_queue(&mut e);
    e.on_router(
        at(600.0),
        &Output::Overflowed {
            contact: C,
            from: QueueId(0),
            target: OverflowTarget::Voicemail,
            at: at(600.0),
        },
    );
    e.on_router(
        at(600.0),
        &Output::Ended {
            contact: C,
            outcome: Outcome::Overflowed,
            agent: None,
            at: at(600.0),
        },
    );
    let a = actions(&mut e);
    assert_eq!(played(&a), vec!["leave-a-message"]);
    let a = finished(&mut e, at(603.0), playback_id(&a));
    let path = a.iter().find_map(|x| match x {
        FlowAction::Media(MediaCommand::StartRecording { path, .. }) => Some(path.clone()),
        _ => None,
    });
    assert_eq!(
        path.as_deref(),
        Some("voicemail/42.wav"),
        "recordings are named after the contact"
    );
    e.on_media(
        at(640.0),
        C,
        &MediaEvent::RecordingFinished {
            leg: leg(),
            path: "voicemail/42.wav".into(),
            duration: None,
        },
    )
    .unwrap();
    let a = actions(&mut e);
    assert!(
        matches!(&a[0], FlowAction::Voicemail { queue, attributes, .. } if queue == "sales" && attributes["language"] == "en")
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, FlowAction::Media(MediaCommand::Hangup { .. })))
    );
    // The caller hung up on its own before: no abandon, the flow is just over.
    e.on_media(
        at(641.0),
        C,
        &MediaEvent::HungUp {
            leg: leg(),
            cause: HangupCause::normal_clearing(),
        },
    )
    .unwrap();
    assert_eq!(actions(&mut e), vec![FlowAction::Finished { contact: C }]);
}

#[test]
fn a_caller_who_hangs_up_while_recording_leaves_the_message() {
    let mut e = engine(SALES);
    into_queue(&mut e);
    e.on_router(
        at(600.0),
        &Output::Overflowed {
            contact: C,
            from: QueueId(0),
            target: OverflowTarget::Voicemail,
            at: at(600.0),
        },
    );
    let a = actions(&mut e);
    finished(&mut e, at(603.0), playback_id(&a));
    assert!(e.is_recording_voicemail(C));
    // Hanging up is how callers end a message; the switch reports the recording after that.
    e.on_media(
        at(620.0),
        C,
        &MediaEvent::HungUp {
            leg: leg(),
            cause: HangupCause::normal_clearing(),
        },
    )
    .unwrap();
    let a = actions(&mut e);
    assert!(
        matches!(&a[0], FlowAction::Voicemail { path, queue, .. } if path == "voicemail/42.wav" && queue == "sales"),
        "{a:#?}"
    );
    assert_eq!(a.last(), Some(&FlowAction::Finished { contact: C }));
    assert!(
        !a.iter().any(|x| matches!(x, FlowAction::Abandon { .. })),
        "a message left is not an abandon: {a:#?}"
    );
}

#[test]
fn outside_business_hours_the_flow_starts_at_closed() {
    let flow = r#"
name = "closed-test"
closed = "sorry"
hours = { timezone = "UTC", open = [{ days = ["mon", "tue", "wed", "thu", "fri"], from = "08:00", to = "18:00" }] }
[[steps]]
play = { prompt = "welcome" }
[[steps]]
id = "sorry"
hangup = { prompt = "we-are-closed" }
"#;
    let mut e = engine(flow);
    // 1_800_000_000 s is Friday 15 Jan 2027 08:00 UTC: open.
    e.start(at(0.0), C, leg(), "closed-test", BTreeMap::new())
        .unwrap();
    assert_eq!(played(&actions(&mut e)), vec!["welcome"]);
    let mut e = engine(flow);
    let night = ContactId(43);
    e.start(
        at(12.0 * 3600.0),
        night,
        LegId::new("n"),
        "closed-test",
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(played(&actions(&mut e)), vec!["we-are-closed"]);
}

#[test]
fn numbers_are_said_with_the_switches_digit_files() {
    assert_eq!(number_prompts(0), vec!["digits/0"]);
    assert_eq!(number_prompts(7), vec!["digits/7"]);
    assert_eq!(number_prompts(20), vec!["digits/20"]);
    assert_eq!(number_prompts(34), vec!["digits/30", "digits/4"]);
    assert_eq!(
        number_prompts(105),
        vec!["digits/1", "digits/hundred", "digits/5"]
    );
}

#[test]
fn bad_flows_name_the_key() {
    let bad = |text: &str| Flow::from_toml(text, "f.toml").unwrap_err();
    assert_eq!(bad("name = \"x\"\nsteps = []").path, "steps");
    let e = bad("name = \"x\"\n[[steps]]\nplay = { prompt = \"a\" }\nhangup = {}");
    assert_eq!(e.path, "steps[0]");
    let e = bad("name = \"x\"\n[[steps]]\ngoto = \"nowhere\"");
    assert_eq!(e.path, "steps[0].goto");
    let e = bad("name = \"x\"\n[[steps]]\nmenu = { prompt = \"p\", options = { \"12\" = {} } }");
    assert_eq!(e.path, "steps[0].menu.options.12");
    let e = bad("name = \"x\"\n[[steps]]\nid = \"a\"\ngoto = \"a\"");
    assert!(e.message.contains("loop"), "{e}");
    let e = bad("name = \"x\"\n[[steps]]\nplay = { prompt = \"a\", max_s = -1 }");
    assert_eq!(e.path, "steps[0].play.max_s");
    let e = bad("name = \"x\"\nhours = { timezone = \"UTC\", open = [] }\n[[steps]]\nhangup = {}");
    assert_eq!(e.path, "closed");
    let e = bad("name = \"x\"\n[[steps]]\nplai = {}");
    assert!(e.message.contains("plai"), "{e}");
}

#[derive(Debug, Clone)]
enum Ev {
    PlaybackDone(bool),
    Digit(char),
    HungUp,
    Bridged,
    Unbridged,
    RecordingDone,
    Connected,
    Overflow(u8),
    Status(u32),
    Wait(u64),
}

fn ev() -> impl proptest::strategy::Strategy<Value = Ev> {
    use proptest::prelude::*;
    prop_oneof![
        4 => any::<bool>().prop_map(Ev::PlaybackDone),
        3 => proptest::sample::select(vec!['1', '2', '9', '#']).prop_map(Ev::Digit),
        1 => Just(Ev::HungUp),
        1 => Just(Ev::Bridged),
        1 => Just(Ev::Unbridged),
        1 => Just(Ev::RecordingDone),
        1 => Just(Ev::Connected),
        1 => (0u8..4).prop_map(Ev::Overflow),
        1 => (1u32..50).prop_map(Ev::Status),
        3 => (0u64..200).prop_map(Ev::Wait),
    ]
}

proptest::proptest! {
    #[test]
    fn every_flow_run_finishes_once_and_is_silent_after(events in proptest::collection::vec(ev(), 1..80)) {
        let mut e = engine(SALES);
        e.start(at(0.0), C, leg(), "sales", BTreeMap::new()).unwrap();
        let mut now = 0.0;
        let mut last_playback = None;
        let mut finished_count = 0;
        let mut abandons = 0;
        for event in events {
            now += 0.5;
            let t = at(now);
            let media = |m: MediaEvent| m;
            match event {
                Ev::PlaybackDone(right) => {
                    let id = if right { last_playback.clone() } else { Some("other".to_owned()) };
                    let _ = e.on_media(t, C, &media(MediaEvent::PlaybackFinished { leg: leg(), playback: id }));
                }
                Ev::Digit(d) => {
                    let _ = e.on_media(t, C, &MediaEvent::Dtmf { leg: leg(), digit: d, duration: Duration::ZERO });
                }
                Ev::HungUp => {
                    let _ = e.on_media(t, C, &MediaEvent::HungUp { leg: leg(), cause: HangupCause::normal_clearing() });
                }
                Ev::Bridged => {
                    let _ = e.on_media(t, C, &MediaEvent::Bridged { a: leg(), b: LegId::new("x") });
                }
                Ev::Unbridged => {
                    let _ = e.on_media(t, C, &MediaEvent::Unbridged { leg: leg() });
                }
                Ev::RecordingDone => {
                    let path = "voicemail/42.wav".to_owned();
                    let _ = e.on_media(t, C, &MediaEvent::RecordingFinished { leg: leg(), path, duration: None });
                }
                Ev::Connected => e.on_router(t, &Output::Connected { contact: C, agent: AgentId(1), at: t }),
                Ev::Overflow(k) => {
                    let target = [OverflowTarget::Voicemail, OverflowTarget::Callback, OverflowTarget::Disconnect, OverflowTarget::Queue(QueueId(1))][k as usize];
                    e.on_router(t, &Output::Overflowed { contact: C, from: QueueId(0), target, at: t });
                }
                Ev::Status(p) => e.on_queue_status(t, C, p, Some(Duration::from_secs(u64::from(p) * 30))),
                Ev::Wait(s) => {
                    now += s as f64;
                    e.handle_timeout(at(now));
                }
            }
            for action in e.drain_actions() {
                proptest::prop_assert_eq!(finished_count, 0, "an action after the run finished: {:?}", action);
                match action {
                    FlowAction::Finished { .. } => finished_count += 1,
                    FlowAction::Abandon { .. } => abandons += 1,
                    FlowAction::Media(MediaCommand::Play { playback, .. }) => last_playback = Some(playback),
                    _ => {}
                }
            }
        }
        proptest::prop_assert!(abandons <= 1);
        proptest::prop_assert!(finished_count <= 1);
        // A hang-up always ends the run.
        let _ = e.on_media(at(now + 1.0), C, &MediaEvent::HungUp { leg: leg(), cause: HangupCause::normal_clearing() });
        let rest: Vec<FlowAction> = e.drain_actions().collect();
        proptest::prop_assert_eq!(finished_count + rest.iter().filter(|a| matches!(a, FlowAction::Finished { .. })).count(), 1);
        proptest::prop_assert_eq!(e.running(), 0);
    }
}

#[test]
fn the_shipped_example_flows_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flows");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            Flow::from_toml(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            loaded += 1;
        }
    }
    assert!(loaded >= 2);
}
