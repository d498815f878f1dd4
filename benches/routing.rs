//! `cargo bench --bench routing`: one contact-arrival decision and one slot-freed decision in a
//! saturated center of 10,000 agents, 500 skills and 100,000 waiting contacts.
//!
//! Ends with one line:
//! `routing: arrival_p50_us=… arrival_p99_us=… freed_p50_us=… freed_p99_us=… decisions_per_s=… rss_mib=…`
//!
//! The center: 100 queues, each requiring its own skill; contacts also require one of 10
//! languages (minimum level 1–5, relaxed after 30 s) and prefer one of 390 product skills.
//! Agents serve 3–5 queues with tier levels 1–3, speak 1–3 languages, know 8 products, and
//! have one voice slot; a fifth of them also take 3 chats and 2 emails. Every slot is busy, so
//! arrivals wait; a freed slot takes the best waiting contact it can serve over all its queues.
//! Each decision is one router call timed on its own; `decisions_per_s` is the rate of a tight
//! loop of both decisions (and the accepts that keep the center saturated) on one core.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::time::{Duration, Instant};

use switchboard::model::{
    AgentId, ContactId, Level, MediaType, Priority, QueueId, SkillId, TagId, TenantId, Timestamp,
};
use switchboard::routing::spec::{RelaxAction, RelaxStep};
use switchboard::routing::{
    AgentSpec, ContactSpec, Criterion, Membership, Modifier, Output, QueueSpec, Router,
    RouterSettings, Strategy,
};

const AGENTS: u32 = 10_000;
const SKILLS: u32 = 500;
const QUEUES: u32 = 100;
const LANGUAGES: u32 = 10;
const WAITING: usize = 100_000;
const SAMPLES: usize = 20_000;
const TENANT: TenantId = TenantId(0);
const STRATEGIES: [Strategy; 5] = [
    Strategy::LongestIdleAgent,
    Strategy::BestSkill,
    Strategy::AgentWithFewestCalls,
    Strategy::RoundRobin,
    Strategy::Leastrecent,
];

fn level(n: u32) -> Level {
    Level::new(i64::from(n.clamp(1, 10))).unwrap_or(Level::MIN)
}

fn language_key(language: u32) -> SkillId {
    SkillId(QUEUES + language)
}

fn product_key(product: u32) -> SkillId {
    SkillId(QUEUES + LANGUAGES + product)
}

struct Bench {
    router: Router,
    rng: Xoshiro256PlusPlus,
    now: Timestamp,
    next_contact: u64,
    connected: Vec<ContactId>,
}

impl Bench {
    fn build() -> Bench {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(20261121);
        let mut router = Router::new(RouterSettings::default());
        for q in 0..QUEUES {
            let mut spec = QueueSpec::new(QueueId(q), TENANT);
            spec.strategy = STRATEGIES[q as usize % STRATEGIES.len()];
            spec.offer_timeout = Duration::from_secs(3600);
            spec.criteria = vec![Criterion {
                key: SkillId(q),
                tag: TagId(0),
                min_level: level(1),
                modifier: Modifier::Required,
            }];
            spec.relax = vec![RelaxStep {
                after: Duration::from_secs(30),
                action: RelaxAction::MinLevel {
                    tag: TagId(1),
                    level: level(1),
                },
            }];
            router.add_queue(spec).expect("distinct queues");
        }
        for a in 0..AGENTS {
            let mut spec = AgentSpec::new(AgentId(a), TENANT);
            let mut queues = Vec::new();
            while queues.len() < rng.random_range(3..=5usize) {
                let q = rng.random_range(0..QUEUES);
                if !queues.contains(&q) {
                    queues.push(q);
                }
            }
            for (i, q) in queues.iter().enumerate() {
                spec.memberships.push(Membership {
                    queue: QueueId(*q),
                    level: 1 + (i as u32 % 3),
                    position: a,
                });
                spec.skills
                    .push((SkillId(*q), level(rng.random_range(1..=10))));
            }
            for _ in 0..rng.random_range(1..=3) {
                spec.skills.push((
                    language_key(rng.random_range(0..LANGUAGES)),
                    level(rng.random_range(1..=10)),
                ));
            }
            for _ in 0..8 {
                spec.skills.push((
                    product_key(rng.random_range(0..SKILLS - QUEUES - LANGUAGES)),
                    level(rng.random_range(1..=10)),
                ));
            }
            if a % 5 == 0 {
                *spec.slots.get_mut(MediaType::Chat) = 3;
                *spec.slots.get_mut(MediaType::Email) = 2;
            }
            router
                .add_agent(Timestamp::ZERO, spec)
                .expect("valid agent");
            router
                .log_in(Timestamp::ZERO, AgentId(a))
                .expect("known agent");
        }
        let mut bench = Bench {
            router,
            rng,
            now: Timestamp::from_secs(1),
            next_contact: 1,
            connected: Vec::new(),
        };
        // Fill every slot, then let 100,000 contacts wait.
        while bench.router.waiting_contacts() < WAITING {
            let contact = bench.contact();
            bench
                .router
                .arrive(bench.now, contact)
                .expect("valid contact");
            bench.absorb();
            bench.now = bench.now.plus(Duration::from_micros(500));
        }
        bench
    }

    fn contact(&mut self) -> ContactSpec {
        let id = ContactId(self.next_contact);
        self.next_contact += 1;
        let queue = self.rng.random_range(0..QUEUES);
        let mut spec = ContactSpec::new(id, TENANT, QueueId(queue), self.now);
        spec.media = match self.rng.random_range(0..20) {
            0..=15 => MediaType::Voice,
            16..=18 => MediaType::Chat,
            _ => MediaType::Email,
        };
        spec.priority = Priority(if self.rng.random_range(0..10) == 0 {
            1
        } else {
            0
        });
        spec.criteria = vec![
            Criterion {
                key: language_key(self.rng.random_range(0..LANGUAGES)),
                tag: TagId(1),
                min_level: level(self.rng.random_range(1..=5)),
                modifier: Modifier::Required,
            },
            Criterion {
                key: product_key(self.rng.random_range(0..SKILLS - QUEUES - LANGUAGES)),
                tag: TagId(2),
                min_level: level(3),
                modifier: Modifier::Preferred { weight: 5 },
            },
        ];
        spec
    }

    /// Accepts every offer at once (agents answer), keeping the center saturated.
    fn absorb(&mut self) {
        let outputs: Vec<Output> = self.router.drain_outputs().collect();
        for output in outputs {
            if let Output::Offered {
                contact, agents, ..
            } = output
                && let Some(agent) = agents.first()
            {
                self.router
                    .accept(self.now, contact, *agent)
                    .expect("a fresh offer can be accepted");
                self.connected.push(contact);
            }
        }
        self.router.drain_outputs().for_each(drop);
    }

    fn arrival(&mut self) -> Duration {
        let contact = self.contact();
        let started = Instant::now();
        self.router
            .arrive(self.now, contact)
            .expect("valid contact");
        let took = started.elapsed();
        self.absorb();
        took
    }

    fn freed(&mut self) -> Duration {
        let pick = self.rng.random_range(0..self.connected.len());
        let contact = self.connected.swap_remove(pick);
        let started = Instant::now();
        self.router
            .complete(self.now, contact)
            .expect("connected contact");
        let took = started.elapsed();
        self.absorb();
        took
    }
}

fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1e6
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; stay quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let built = Instant::now();
    let mut bench = Bench::build();
    eprintln!(
        "built {} agents, {} skills, {} queues, {} waiting, {} connected in {:.1}s",
        AGENTS,
        SKILLS,
        QUEUES,
        bench.router.waiting_contacts(),
        bench.connected.len(),
        built.elapsed().as_secs_f64()
    );
    let samples = if quick { 200 } else { SAMPLES };
    let mut arrivals = Vec::with_capacity(samples);
    let mut freed = Vec::with_capacity(samples);
    for _ in 0..samples {
        bench.now = bench.now.plus(Duration::from_millis(5));
        arrivals.push(bench.arrival());
        freed.push(bench.freed());
    }
    let loop_rounds = samples;
    let started = Instant::now();
    for _ in 0..loop_rounds {
        bench.now = bench.now.plus(Duration::from_millis(5));
        let contact = bench.contact();
        bench
            .router
            .arrive(bench.now, contact)
            .expect("valid contact");
        bench.absorb();
        let pick = bench.rng.random_range(0..bench.connected.len());
        let contact = bench.connected.swap_remove(pick);
        bench
            .router
            .complete(bench.now, contact)
            .expect("connected contact");
        bench.absorb();
    }
    let decisions_per_s = (2 * loop_rounds) as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "after the run: {} waiting, {} live",
        bench.router.waiting_contacts(),
        bench.router.live_contacts()
    );
    println!(
        "routing: arrival_p50_us={:.2} arrival_p99_us={:.2} freed_p50_us={:.2} freed_p99_us={:.2} decisions_per_s={:.0} rss_mib={:.0}",
        percentile_us(&mut arrivals, 0.50),
        percentile_us(&mut arrivals, 0.99),
        percentile_us(&mut freed, 0.50),
        percentile_us(&mut freed, 0.99),
        decisions_per_s,
        rss_mib()
    );
}
