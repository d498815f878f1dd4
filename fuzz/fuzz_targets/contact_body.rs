//! The body of `POST /api/v1/contacts`: any bytes either fail to parse, are refused, or become
//! a contact the router takes — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::config::Config;
use switchboard::model::{ContactId, Timestamp};
use switchboard::routing::{ContactSetup, Router};

const CENTER: &str = r#"
[[queues]]
name = "sales"
max_wait_s = 30
overflow = "callback"
[[queues.attributes]]
name = "language"
modifier = "required"
min_level = 5
[[queues.relax]]
after_s = 10
name = "language"
drop = true
[[agents]]
name = "a"
attributes = { language = ["es"] }
slots = { voice = 1, callback = 1 }
queues = ["sales"]
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(setup) = serde_json::from_slice::<ContactSetup>(data) else { return };
    let no_env: Vec<(String, String)> = Vec::new();
    let Ok(config) = Config::load_from_str(CENTER, "center.toml", no_env) else { return };
    let Ok(mut resolved) = config.resolve() else { return };
    let mut router = Router::new(resolved.settings.clone());
    for queue in resolved.queues.drain(..) {
        let _ = router.add_queue(queue);
    }
    for agent in resolved.agents.drain(..) {
        let id = agent.id;
        let _ = router.add_agent(Timestamp::ZERO, agent);
        let _ = router.log_in(Timestamp::ZERO, id);
    }
    if let Ok(spec) = resolved.catalog.resolve_contact(&setup, ContactId(1), Timestamp::ZERO) {
        let _ = router.arrive(Timestamp::ZERO, spec);
        router.handle_timeout(Timestamp::from_secs(3600));
        if let Err(violation) = router.check_invariants(Timestamp::from_secs(3600)) {
            panic!("invariant violated: {violation}");
        }
    }
});
