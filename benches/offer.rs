//! `cargo bench --bench offer`: how fast a queued call reaches a free agent, and how many
//! calls per second go through the whole cycle, against the FreeSWITCH emulator on loopback.
//!
//! The center, all in this process on a two-worker tokio runtime: the FreeSWITCH emulator (real
//! time, time scale 1) on 127.0.0.1, Switchboard's FreeSWITCH handler connected to it over TCP,
//! the controller with the calls side (admission, the `sales` flow — hold music until an agent
//! answers — the router, the agent manager), and the SQLite store in memory (`sqlite::memory:`,
//! as the call-center tests use). Queue `sales` has [`AGENTS`] agents, none staying on line:
//! each offer rings the agent's softphone (a directory user of the emulator that answers after
//! [`RING`]), the answer is bridged to the caller and recorded, wrap-up is zero. Every caller
//! is a scripted emulator call to a number the dialplan parks for Switchboard; it hangs up
//! [`TALK`] after the emulator received the `uuid_bridge` that connected it (or gives up after
//! [`GIVE_UP`] unserved), and the agent becomes available again. Ring and talk are short on
//! purpose: they are the agents' and callers' share of a cycle, and the rate phase measures the
//! center's share.
//!
//! Time to offer, per contact: t0 is when the contact entered the queue — the instant the
//! controller routed it (`DurableRouter::enqueue`), as written to the store as the contact's
//! `queued` event (it is the `now` of the controller pass that enqueued it, taken when the pass
//! began, so it is never later than the enqueue); t1 is when the emulator decoded the command
//! that offers it — the `bgapi originate` of the agent's leg carrying the contact's id (or a
//! `uuid_bridge` of its leg, for an agent on line) — off its socket (an observer hook of the
//! emulator, [`Emulator::observe_commands`]). Both are wall-clock microseconds of this machine.
//! Only contacts that found a free agent count: their `offered` event has the same instant as
//! their `queued` one (offered in the pass that queued them); others are counted and shown.
//! Callers arrive evenly at [`PACED_RATE`] per second (the throughput target) for
//! [`PACED_FOR`]; contacts queued in the first [`WARM_UP`] are not measured.
//!
//! Rate (the `cycle` phase): a closed loop that keeps the center the bottleneck. Every
//! [`TOP_UP`] the driver places one caller per two channels the emulator holds below
//! [`LIVE_CHANNELS`] (callers and agents' legs; a caller and its agent's leg leave together
//! when the caller hangs up), so a new caller arrives as soon as a cycle ends. A caller still
//! waiting for its agent's leg counts one channel, so the switch may hold up to twice
//! [`LIVE_CHANNELS`] (the average is printed): below its 1000 channels, so no caller is refused,
//! and below [`AGENTS`], so an agent is free for every caller (shown by how many contacts
//! waited for one: not offered in the pass that queued them). The bound that loop puts on the
//! rate if the center took no time — [`LIVE_CHANNELS`]` / 2` callers, each for
//! [`RING`]` + `[`TALK`] — is printed beside the result, which must stay far below it; so are
//! the answered calls' mean wait (arrival to answer) and talk (answer to end) as the center
//! recorded them, which show the center's share of a cycle. The phase runs [`WARM_UP`], then
//! [`RATE_WINDOW`]; once every call is over, the rate is the number of answered calls' records
//! (CDRs with disposition `answered`: admitted, queued, offered, bridged, completed) whose call
//! ended inside the window, read from the store, divided by the window's length.
//!
//! `OFFER_DUMP=<file>` writes every command the switch received (`<micros> <command>`), and
//! `RUST_LOG=switchboard=info` shows what the center does.
//!
//! Ends with one line:
//! `offer: time_to_offer_p50_ms=… time_to_offer_p99_ms=… contacts_per_s=…`

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use switchboard::admission::{Admission, AdmissionSettings, ClientTrunks};
use switchboard::agents::{AgentManager, AgentTimers, StayOnLine};
use switchboard::config::Config;
use switchboard::controller::calls::{AgentLine, CallSettings, Calls};
use switchboard::controller::telephony::TelephonySetup;
use switchboard::controller::{AgentAction, Controller, ControllerTask, DurableRouter};
use switchboard::emulator::freeswitch::{
    DialBehaviour, Emulator, EmulatorOptions, InboundCall, ReceivedCommand,
};
use switchboard::flow::{Flow, FlowEngine};
use switchboard::media::freeswitch::codec::Command;
use switchboard::media::freeswitch::{FreeswitchConfig, FreeswitchHandler};
use switchboard::media::{CONTACT_VARIABLE, HandlerId, LegId, MediaHandler, OriginateTarget};
use switchboard::model::{ContactId, ContactState, Disposition, Timestamp};
use switchboard::store::{CdrFilter, MAX_LIST_LIMIT, NewCdr, Store};

/// Agents in queue `sales`: more than the callers either phase has in the center at once.
const AGENTS: usize = 1000;
/// How long an agent's softphone rings before it answers.
const RING: Duration = Duration::from_millis(5);
/// Each caller hangs up this long after being bridged to its agent.
const TALK: Duration = Duration::from_millis(20);
/// A caller not served this long after arriving hangs up.
const GIVE_UP: Duration = Duration::from_secs(20);
/// Arrivals per second while time to offer is measured.
const PACED_RATE: u32 = 500;
/// How long callers arrive at [`PACED_RATE`].
const PACED_FOR: Duration = Duration::from_secs(5);
/// Contacts of the first part of each phase are not measured.
const WARM_UP: Duration = Duration::from_secs(1);
/// The steady window over which the rate is counted.
const RATE_WINDOW: Duration = Duration::from_secs(6);
/// Channels (callers and agents' legs) the rate phase tops the emulator up to: enough callers
/// that the center always has work (see the bound printed beside the rate), few enough that an
/// agent is free for every caller (up to twice this many channels are live, see the module doc).
const LIVE_CHANNELS: usize = 300;
/// How often the rate phase tops the emulator up.
const TOP_UP: Duration = Duration::from_millis(1);
/// The event socket password.
const PASSWORD: &str = "ClueCon";

/// The flow every caller of `sales` hears: hold music until an agent answers.
const FLOW: &str = r#"
name = "sales"
[[steps]]
queue = { name = "sales", music = "default", bridge_timeout_s = 10 }
"#;

fn agent_name(i: usize) -> String {
    format!("agent{i:04}")
}

/// The center's configuration: one queue, [`AGENTS`] agents of tenant `acme`.
fn center_toml() -> String {
    let mut toml =
        String::from("[[queues]]\nname = \"sales\"\ntenant = \"acme\"\noffer_timeout_s = 20\n");
    for i in 0..AGENTS {
        toml.push_str(&format!(
            "\n[[agents]]\nname = \"{}\"\ntenant = \"acme\"\nqueues = [\"sales\"]\n",
            agent_name(i)
        ));
    }
    toml
}

struct Center {
    emu: Arc<Emulator>,
    store: Store,
    controller: Controller,
    _task: ControllerTask,
    /// Every command the emulator received, in order.
    received: Arc<Mutex<Vec<ReceivedCommand>>>,
}

/// Keeps what Switchboard sends the switch, and plays the callers: each hangs up [`TALK`]
/// after the bridge that connects it.
async fn callers(
    emu: Arc<Emulator>,
    mut commands: mpsc::Receiver<ReceivedCommand>,
    received: Arc<Mutex<Vec<ReceivedCommand>>>,
) {
    while let Some(r) = commands.recv().await {
        if let Command::Api { command } = &r.command
            && let Some(bridge) = command.strip_prefix("uuid_bridge ")
            && let Some(caller) = bridge.split_whitespace().next()
        {
            let (emu, caller) = (emu.clone(), LegId::new(caller));
            tokio::spawn(async move {
                tokio::time::sleep(TALK).await;
                emu.kill_channel(&caller, "NORMAL_CLEARING");
            });
        }
        received.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
}

async fn start() -> anyhow::Result<Center> {
    let mut options = EmulatorOptions::new(PASSWORD);
    for i in 0..AGENTS {
        options
            .world
            .users
            .insert(agent_name(i), DialBehaviour::Answer { ring: RING });
    }
    let emu = Arc::new(Emulator::start("127.0.0.1:0".parse()?, options).await?);
    let commands = emu
        .observe_commands(1 << 20)
        .context("the emulator is already observed")?;
    let store = Store::open("sqlite::memory:").await?;

    let config = Config::load_from_str(&center_toml(), "offer.toml", Vec::new())?;
    let resolved = config.resolve()?;
    let (router, _) = DurableRouter::open(resolved, store.clone(), Timestamp::now()).await?;
    let catalog = router.catalog().clone();
    let acme = catalog.tenant_id("acme").context("tenant acme")?;
    let mut flows = FlowEngine::new();
    flows.add_flow(Flow::from_toml(FLOW, "sales.toml")?);
    let timers = AgentTimers {
        wrap_up: Duration::ZERO,
        ..AgentTimers::default()
    };
    let mut admission = Admission::new(AdmissionSettings::default());
    admission.set_client(
        acme,
        ClientTrunks {
            ratio: 2.0,
            after_hours: 10_000,
        },
    );
    let mut calls = Calls::new(
        CallSettings {
            recordings: Some("/var/spool/switchboard".to_owned()),
            ring_timeout: Duration::from_secs(10),
            ..CallSettings::default()
        },
        flows,
        AgentManager::new(timers),
        admission,
    );
    for i in 0..AGENTS {
        let name = agent_name(i);
        let agent = catalog.agent_id(&name).context("agent configured")?;
        calls.add_agent(
            agent,
            acme,
            AgentLine {
                target: OriginateTarget::SipUser {
                    user: name,
                    domain: None,
                },
                stay_on_line: StayOnLine::Never,
            },
        );
    }
    let (events_tx, events) = mpsc::channel(switchboard::media::EVENT_QUEUE);
    let handler: Arc<dyn MediaHandler> = Arc::new(FreeswitchHandler::start(
        HandlerId(1),
        FreeswitchConfig::new(&emu.local_addr().to_string(), PASSWORD),
        events_tx,
    )?);
    let setup = TelephonySetup {
        calls,
        handlers: vec![(handler, 1.0)],
        numbers: BTreeMap::from([("*".to_owned(), "sales".to_owned())]),
        queue_flows: BTreeMap::from([("sales".to_owned(), "sales".to_owned())]),
        events,
    };
    let (controller, task) = Controller::spawn_with_calls(router, setup);

    let begun = Instant::now();
    while emu.connections() == 0 {
        if begun.elapsed() > Duration::from_secs(10) {
            bail!("the handler did not connect to the emulator");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The handler resyncs before it takes commands: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..AGENTS {
        let name = agent_name(i);
        for action in [AgentAction::LogIn, AgentAction::Ready(None)] {
            controller
                .agent(&name, action)
                .await
                .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        }
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(callers(emu.clone(), commands, received.clone()));
    Ok(Center {
        emu,
        store,
        controller,
        _task: task,
        received,
    })
}

fn caller(n: u64) -> InboundCall {
    let mut call = InboundCall::new(&format!("+4930{n:08}"), "8001");
    call.hangup_after = Some(GIVE_UP);
    call
}

/// Waits until the emulator has no channels left (every call of the phase is over).
async fn drained(emu: &Emulator, limit: Duration) -> anyhow::Result<()> {
    let begun = Instant::now();
    while !emu.channels().is_empty() {
        if begun.elapsed() > limit {
            bail!(
                "{} channels still up after {limit:?}, such as {:?}",
                emu.channels().len(),
                emu.channels().first()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last records are written after the last hang-up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Callers arrive evenly at [`PACED_RATE`] for [`PACED_FOR`]; returns the measured span and
/// how many callers the switch refused (it was full: the center fell behind).
async fn paced(center: &Center, next: &mut u64) -> anyhow::Result<(Timestamp, Timestamp, u64)> {
    let gap = Duration::from_secs(1) / PACED_RATE;
    let mut tick = tokio::time::interval(gap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begun = Instant::now();
    let mut from = None;
    let mut refused = 0;
    while begun.elapsed() < PACED_FOR {
        tick.tick().await;
        if from.is_none() && begun.elapsed() >= WARM_UP {
            from = Some(Timestamp::now());
        }
        *next += 1;
        if center.emu.place_call(&caller(*next)).is_err() {
            refused += 1;
        }
    }
    let to = Timestamp::now();
    drained(&center.emu, Duration::from_secs(30)).await?;
    Ok((from.unwrap_or(to), to, refused))
}

/// Answered calls' records whose call ended in `[from, to)` (all of them without bounds).
async fn answered(
    store: &Store,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> anyhow::Result<Vec<NewCdr>> {
    let mut filter = CdrFilter {
        from,
        to,
        disposition: Some(Disposition::Answered),
        limit: Some(MAX_LIST_LIMIT),
        ..CdrFilter::default()
    };
    let mut all = Vec::new();
    loop {
        let page = store.cdrs("acme", &filter).await?;
        all.extend(page.cdrs.into_iter().map(|cdr| cdr.record));
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return Ok(all),
        }
    }
}

/// What the rate phase saw.
struct Cycle {
    /// Callers placed in the phase.
    placed: u64,
    /// Callers the switch refused (it was full).
    refused: u64,
    /// The answered calls that ended in the window.
    done: Vec<NewCdr>,
    /// The window's length.
    window: Duration,
    /// Channels live on the emulator during the window, on average.
    mean_live: f64,
}

/// The closed loop: every [`TOP_UP`], one caller is placed per two channels the emulator holds
/// below [`LIVE_CHANNELS`]; after [`WARM_UP`], the answered calls that end over [`RATE_WINDOW`]
/// are counted once every call is over.
async fn cycle(center: &Center, next: &mut u64) -> anyhow::Result<Cycle> {
    let first = *next;
    let mut tick = tokio::time::interval(TOP_UP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let begun = Instant::now();
    let mut window: Option<(Instant, Timestamp)> = None;
    let (mut live_sum, mut live_samples) = (0usize, 0usize);
    let mut refused = 0;
    let (from, to, length) = loop {
        tick.tick().await;
        let live = center.emu.channels().len();
        // Each caller brings its agent's leg: two channels.
        for _ in 0..LIVE_CHANNELS.saturating_sub(live) / 2 {
            *next += 1;
            if center.emu.place_call(&caller(*next)).is_err() {
                refused += 1;
            }
        }
        match window {
            None if begun.elapsed() >= WARM_UP => window = Some((Instant::now(), Timestamp::now())),
            Some((at, from)) => {
                live_sum += live;
                live_samples += 1;
                if at.elapsed() >= RATE_WINDOW {
                    break (from, Timestamp::now(), at.elapsed());
                }
            }
            None => {}
        }
    };
    drained(&center.emu, Duration::from_secs(30)).await?;
    Ok(Cycle {
        placed: *next - first,
        refused,
        done: answered(&center.store, Some(from), Some(to)).await?,
        window: length,
        mean_live: live_sum as f64 / live_samples.max(1) as f64,
    })
}

/// How many of `contacts` waited for an agent (were not offered in the pass that queued them).
async fn waited_for_agent(store: &Store, contacts: &[ContactId]) -> anyhow::Result<usize> {
    let mut waited = 0;
    for &contact in contacts {
        let events = store.contact_events(contact).await?;
        let first = |state: ContactState| events.iter().find(|e| e.state == state).map(|e| e.at);
        if first(ContactState::Queued) != first(ContactState::Offered) {
            waited += 1;
        }
    }
    Ok(waited)
}

/// The contact a command offers (an originate carrying its id, or a bridge of its leg).
fn offered_contact(command: &Command, legs: &HashMap<String, ContactId>) -> Option<ContactId> {
    match command {
        Command::BgApi { command, .. } | Command::Api { command }
            if command.starts_with("originate ") =>
        {
            let key = format!("{CONTACT_VARIABLE}=");
            let rest = &command[command.find(&key)? + key.len()..];
            let digits = rest.split([',', '}']).next()?;
            digits.parse().ok().map(ContactId)
        }
        Command::Api { command } if command.starts_with("uuid_bridge ") => {
            legs.get(command.split_whitespace().nth(1)?).copied()
        }
        _ => None,
    }
}

/// The caller leg a command tags with its contact (`uuid_setvar <leg> switchboard_contact_id N`).
fn tagged_leg(command: &Command) -> Option<(String, ContactId)> {
    let Command::Api { command } = command else {
        return None;
    };
    let mut words = command.split_whitespace();
    if words.next()? != "uuid_setvar" {
        return None;
    }
    let leg = words.next()?;
    if words.next()? != CONTACT_VARIABLE {
        return None;
    }
    let contact = words.next()?.parse().ok()?;
    Some((leg.to_owned(), ContactId(contact)))
}

/// Time to offer of every contact queued in `[from, to)` while an agent was free, in
/// milliseconds, and how many contacts of the span waited for an agent.
async fn times_to_offer(
    store: &Store,
    received: &[ReceivedCommand],
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut legs = HashMap::new();
    let mut offered: HashMap<ContactId, Timestamp> = HashMap::new();
    for r in received {
        if let Some((leg, contact)) = tagged_leg(&r.command) {
            legs.insert(leg, contact);
        }
        if let Some(contact) = offered_contact(&r.command, &legs) {
            offered.entry(contact).or_insert(r.at);
        }
    }
    let mut samples = Vec::new();
    let mut waited = 0;
    for (contact, t1) in offered {
        let events = store.contact_events(contact).await?;
        let first = |state: ContactState| events.iter().find(|e| e.state == state).map(|e| e.at);
        let (Some(t0), Some(offer)) = (first(ContactState::Queued), first(ContactState::Offered))
        else {
            continue;
        };
        if t0 < from || t0 >= to {
            continue;
        }
        if offer != t0 {
            waited += 1;
            continue;
        }
        samples.push((t1.as_micros() - t0.as_micros()) as f64 / 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples, waited))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() -> anyhow::Result<()> {
    // RUST_LOG=switchboard=info (say) shows what the center does; quiet by default.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into()))
        .try_init();
    let center = start().await?;
    let mut next = 0u64;

    let (from, to, refused) = paced(&center, &mut next).await?;
    let received = std::mem::take(&mut *center.received.lock().unwrap_or_else(|p| p.into_inner()));
    let (samples, waited) = times_to_offer(&center.store, &received, from, to).await?;
    let paced_answered = answered(&center.store, None, None).await?.len();
    println!(
        "paced: {next} callers at {PACED_RATE}/s ({refused} refused: the switch was full), {paced_answered} answered; {} offers measured, {waited} waited for an agent; max {:.2} ms",
        samples.len(),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    if samples.is_empty() {
        bail!("no contact was offered");
    }

    let cycled = match cycle(&center, &mut next).await {
        Ok(done) => done,
        Err(e) => {
            // What Switchboard told the switch about the calls left behind.
            let left = center.emu.channels();
            for r in center
                .received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
            {
                let line = format!("{:?}", r.command);
                if left.iter().take(3).any(|l| line.contains(l.as_str())) {
                    eprintln!("{} {line}", r.at.as_micros());
                }
            }
            return Err(e);
        }
    };
    let unobserved = center.emu.unobserved_commands();
    if unobserved > 0 {
        bail!("{unobserved} commands were not observed: the times to offer would be incomplete");
    }
    let done = cycled.done.len();
    if done == 0 {
        bail!("no call completed in the rate window");
    }
    let rate = done as f64 / cycled.window.as_secs_f64();
    let contacts: Vec<ContactId> = cycled.done.iter().map(|cdr| cdr.contact).collect();
    let cycle_waited = waited_for_agent(&center.store, &contacts).await?;
    let mean_ms = |ms: fn(&NewCdr) -> u64| {
        cycled.done.iter().map(|cdr| ms(cdr) as f64).sum::<f64>() / done as f64
    };
    // What the loop allows if the center took no time: every caller for ring and talk only.
    let bound = (LIVE_CHANNELS / 2) as f64 / (RING + TALK).as_secs_f64();
    println!(
        "cycle: {} callers placed ({} refused), {done} answered calls ended in {:.1} s ({cycle_waited} waited for an agent); {:.0} channels live on average; mean wait {:.1} ms, talk {:.1} ms; the loop's bound {bound:.0}/s",
        cycled.placed,
        cycled.refused,
        cycled.window.as_secs_f64(),
        cycled.mean_live,
        mean_ms(|cdr| cdr.wait_ms),
        mean_ms(|cdr| cdr.talk_ms),
    );
    println!(
        "offer: time_to_offer_p50_ms={:.2} time_to_offer_p99_ms={:.2} contacts_per_s={:.0}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        rate
    );
    if let Some(path) = std::env::var_os("OFFER_DUMP") {
        // Every command the switch received, for a closer look: `<micros> <command>`.
        let all = center.received.lock().unwrap_or_else(|p| p.into_inner());
        let lines: Vec<String> = received
            .iter()
            .chain(all.iter())
            .map(|r| format!("{} {:?}", r.at.as_micros(), r.command))
            .collect();
        std::fs::write(path, lines.join("\n"))?;
    }
    drop(center.controller);
    if let Ok(emu) = Arc::try_unwrap(center.emu) {
        emu.shutdown().await;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored (one benchmark).
    // Two workers: this machine's two cores, shared by the emulator and the center.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
