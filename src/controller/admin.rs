//! The catalog administrators edit over the API: the queues, agents and flows of their own
//! client.
//!
//! The config file gives the initial catalog. Every change made through the API is checked
//! first, then stored (`catalog_items`), then applied to the live router, catalog and calls
//! side; at the next start the stored items are laid over the config file's catalog
//! ([`overlay`]), so changes survive a restart. Everything applies at once: new queues, new
//! rules of a queue (its waiting callers keep their places and take the new rules), deleted
//! queues (closed: no new contacts; the client may open it again under its name at once,
//! another client may take the name after a restart), agents created,
//! changed or deleted (skills, attributes, slots, queues, phone line) and flows.
//!
//! Queue and agent names are one namespace across clients, as in the router: a name another
//! client uses is refused as taken, without saying whose it is.

use std::collections::{BTreeMap, BTreeSet};

use crate::agents::StayOnLine;
use crate::config::{BUILTIN_FLOW_MUSIC, BUILTIN_FLOW_PREFIX, DEFAULT_AFTER_HOURS_TRUNKS};
use crate::config::{DEFAULT_TRUNK_RATIO, Resolved};
use crate::flow::{Flow, FlowFile, Step};
use crate::media::OriginateTarget;
use crate::model::{AgentId, MediaType, QueueId, TenantId, Timestamp};
use crate::routing::setup::{MembershipSetup, OverflowSetup, TierSetup};
use crate::routing::{AgentSetup, Catalog, Output, QueueSetup, SetupError};
use crate::store::{CatalogItem, CatalogKind, StoreError};

use super::DurableRouter;
use super::calls::AgentLine;
use super::durable_router::DurableError;
use super::telephony::Telephony;

/// Most queues the catalog holds (deleted ones count until a restart): names are never freed
/// while running, so this bounds the memory administrators can make it use.
pub const MAX_QUEUES: usize = 10_000;
/// Most agents the catalog holds.
pub const MAX_AGENTS: usize = 100_000;
/// The prefix of the flow engine's name for a flow set through the API (`api:sales`): queue
/// names are unique, so these never collide with each other or with the config file's flows.
pub const API_FLOW_PREFIX: &str = "api:";
/// The reason stored with the logout of an agent an administrator deleted.
pub const DELETED_REASON: &str = "deleted by an administrator";

/// A change an administrator asks for, on behalf of its client (`tenant`).
#[derive(Debug, Clone, PartialEq)]
pub enum AdminChange {
    /// Creates a queue, or gives one new rules.
    PutQueue {
        /// The caller's client.
        tenant: String,
        /// The queue; its `tenant` is the caller's.
        setup: QueueSetup,
    },
    /// Closes a queue: no new contacts, its agents leave it, its flow goes.
    DeleteQueue {
        /// The caller's client.
        tenant: String,
        /// The queue.
        name: String,
    },
    /// Creates or changes an agent (skills, attributes, slots, queues, phone line).
    PutAgent {
        /// The caller's client.
        tenant: String,
        /// The agent; its `tenant` is the caller's.
        setup: AgentSetup,
    },
    /// Removes an agent that holds no contact (it is logged out first).
    DeleteAgent {
        /// The caller's client.
        tenant: String,
        /// The agent.
        name: String,
    },
    /// Sets the flow a queue's callers hear.
    PutFlow {
        /// The caller's client.
        tenant: String,
        /// The queue.
        queue: String,
        /// The flow, as a flow file says it.
        flow: FlowFile,
    },
    /// Goes back to the queue's flow from the config file (or the built-in one).
    DeleteFlow {
        /// The caller's client.
        tenant: String,
        /// The queue.
        queue: String,
    },
    /// Sends callers of a called number to one of the client's queues.
    PutNumber {
        /// The caller's client.
        tenant: String,
        /// The called number (`+498001234`, `1000`, or `*` for any number not listed).
        number: String,
        /// The queue.
        queue: String,
    },
    /// Stops taking calls to a number of the client.
    DeleteNumber {
        /// The caller's client.
        tenant: String,
        /// The called number.
        number: String,
    },
    /// The operator creates a client or changes its trunk rules.
    PutClient {
        /// The client.
        name: String,
        /// Its trunk rules.
        rules: super::clients::ClientRules,
    },
}

/// What a stored number item holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct NumberItem {
    queue: String,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminOutcome {
    /// It is new, and live.
    Created,
    /// It changed, live.
    Updated,
    /// It is gone.
    Deleted,
    /// It was already so: nothing was written.
    Unchanged,
}

/// A change that was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The definition is invalid; `field` names where (`offer_timeout_s`, `queues[1]`).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Nothing by that name in the caller's client.
    #[error("{0}")]
    NotFound(String),
    /// It cannot be done now, or the name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The store failed: nothing was changed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The router refused the change (after it was stored; it applies at the next start, if
    /// the router takes it then).
    #[error("{0}")]
    Router(#[from] DurableError),
}

impl AdminError {
    pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A setup's validation error, with the path made relative to the definition (`offer_timeout_s`
/// rather than `queues[3].offer_timeout_s`).
fn setup_error(error: SetupError) -> AdminError {
    let field = error.path.trim_start_matches('.').to_owned();
    let field = if field.is_empty() {
        "definition".to_owned()
    } else {
        field
    };
    AdminError::invalid(field, error.message)
}

/// A queue as an administrator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueDefinition {
    /// The rules the router works with now.
    pub setup: QueueSetup,
    /// The name of the flow its callers hear.
    pub flow: Option<String>,
}

/// Every definition of one client, for administrators' listings.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Definitions {
    /// Its open queues, by name.
    pub queues: Vec<QueueDefinition>,
    /// Its agents, by name.
    pub agents: Vec<AgentSetup>,
    /// The flows set through the API, by queue name.
    pub flows: BTreeMap<String, FlowFile>,
    /// Its called numbers, each with the queue it reaches.
    pub numbers: BTreeMap<String, String>,
}

/// The catalog's names and owners as the web layer reads them: a snapshot the controller
/// publishes after every change.
#[derive(Debug, Clone, Default)]
pub struct CatalogView {
    /// Names of queues, agents and skills (for rendering the router's outputs).
    pub catalog: Catalog,
    /// Open queue → its client.
    pub queues: BTreeMap<String, String>,
    /// Agent → its client.
    pub agents: BTreeMap<String, String>,
}

impl CatalogView {
    /// The client of an open queue.
    pub fn queue_tenant(&self, name: &str) -> Option<&str> {
        self.queues.get(name).map(String::as_str)
    }

    /// The client of an agent.
    pub fn agent_tenant(&self, name: &str) -> Option<&str> {
        self.agents.get(name).map(String::as_str)
    }
}

/// Every agent's definition, and what administrators changed that the router does not hold.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Every agent's definition (the config file's are rebuilt from their specs).
    agents: BTreeMap<AgentId, AgentSetup>,
    /// Deleted queues: their names stay in the catalog until a restart.
    closed: BTreeSet<QueueId>,
    /// Flows set through the API, by queue name.
    flows: BTreeMap<String, FlowFile>,
    /// Queue → the flow in force (the config file's, a built-in one, or an API one).
    queue_flows: BTreeMap<String, String>,
    /// Queue → the config file's flow, restored when an API flow is deleted.
    config_flows: BTreeMap<String, String>,
    /// Flow → the queues its steps send callers to.
    flow_queues: BTreeMap<String, BTreeSet<String>>,
    /// Agents the config file gave a phone line (the calls side starts with them).
    config_lines: BTreeSet<AgentId>,
    /// Called number → the queue it reaches.
    numbers: BTreeMap<String, String>,
    /// Client → its trunk rules (the config file's, or the operator's).
    pub(super) clients: BTreeMap<String, super::clients::ClientRules>,
    /// Clients whose rules the operator set over the API.
    pub(super) operator_clients: BTreeSet<String>,
}

impl Directory {
    /// Whether an administrator deleted the queue.
    pub fn is_closed(&self, queue: QueueId) -> bool {
        self.closed.contains(&queue)
    }

    /// An agent's definition.
    pub fn agent(&self, agent: AgentId) -> Option<&AgentSetup> {
        self.agents.get(&agent)
    }

    /// Every agent with its definition.
    pub fn agents(&self) -> impl Iterator<Item = (AgentId, &AgentSetup)> + '_ {
        self.agents.iter().map(|(id, setup)| (*id, setup))
    }

    /// The flow in force for a queue.
    pub fn queue_flow(&self, queue: &str) -> Option<&str> {
        self.queue_flows.get(queue).map(String::as_str)
    }

    /// The directory of the config file's catalog.
    fn from_config(resolved: &Resolved) -> Directory {
        let catalog = &resolved.catalog;
        let lines: BTreeMap<AgentId, &AgentLine> = resolved
            .agent_lines
            .iter()
            .filter_map(|(id, line)| line.as_ref().map(|l| (*id, l)))
            .collect();
        let agents = resolved
            .agents
            .iter()
            .map(|spec| {
                let mut slots = BTreeMap::new();
                for media in MediaType::ALL {
                    let count = *spec.slots.get(media);
                    if count > 0 {
                        slots.insert(media, count);
                    }
                }
                let line = lines.get(&spec.id);
                let setup = AgentSetup {
                    name: catalog.agent_name(spec.id).to_owned(),
                    tenant: catalog.tenant_name(spec.tenant).to_owned(),
                    // Attribute keys (`language=es`) are skills to the router: listed as such,
                    // they resolve to the same agent again.
                    skills: spec
                        .skills
                        .iter()
                        .map(|(key, level)| (catalog.skill_name(*key).to_owned(), *level))
                        .collect(),
                    attributes: BTreeMap::new(),
                    slots,
                    queues: spec
                        .memberships
                        .iter()
                        .map(|m| {
                            MembershipSetup::Tier(TierSetup {
                                queue: catalog.queue_name(m.queue).to_owned(),
                                level: m.level,
                                position: Some(m.position),
                            })
                        })
                        .collect(),
                    sip: line.map(|l| sip_text(&l.target)),
                    stay_on_line: line.map_or(StayOnLine::Never, |l| l.stay_on_line),
                };
                (spec.id, setup)
            })
            .collect();
        let flow_queues = resolved
            .flows
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    flow_refs(f).into_iter().map(|(_, q)| q).collect(),
                )
            })
            .collect();
        Directory {
            agents,
            closed: BTreeSet::new(),
            flows: BTreeMap::new(),
            queue_flows: resolved.queue_flows.clone(),
            config_flows: resolved.queue_flows.clone(),
            flow_queues,
            config_lines: lines.keys().copied().collect(),
            numbers: resolved.numbers.clone(),
            clients: super::clients::from_config(resolved),
            operator_clients: BTreeSet::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// At startup

/// Lays the stored catalog items over the config file's catalog in `resolved` (before the
/// router is built from it) and returns the directory. An item that no longer fits (its JSON
/// unreadable, a queue it names gone) is skipped with a warning: the start goes on.
pub(crate) fn overlay(resolved: &mut Resolved, items: &[CatalogItem]) -> Directory {
    let mut dir = Directory::from_config(resolved);
    super::clients::overlay(resolved, &mut dir, items);
    let queues: Vec<(&CatalogItem, QueueSetup)> = items
        .iter()
        .filter(|i| i.kind == CatalogKind::Queue)
        .filter_map(|i| {
            let json = i.definition.as_deref()?;
            match serde_json::from_str::<QueueSetup>(json) {
                Ok(setup) => Some((i, setup)),
                Err(error) => {
                    tracing::warn!(queue = i.name, %error, "stored queue unreadable; skipped");
                    None
                }
            }
        })
        .collect();
    // Every stored queue is named first, so that an overflow may point at a queue stored later.
    resolved
        .catalog
        .declare_queues(queues.iter().map(|(_, s)| s.name.as_str()));
    for item in items.iter().filter(|i| i.kind == CatalogKind::Queue) {
        if item.definition.is_none() {
            overlay_queue_deleted(resolved, &mut dir, &item.name);
        }
    }
    for (item, setup) in queues {
        if let Err(error) = overlay_queue(resolved, &mut dir, &setup, &item.tenant) {
            tracing::warn!(queue = item.name, %error, "stored queue not applied");
        }
    }
    for item in items.iter().filter(|i| i.kind == CatalogKind::Agent) {
        let result = match &item.definition {
            Some(json) => serde_json::from_str::<AgentSetup>(json)
                .map_err(|e| e.to_string())
                .and_then(|setup| overlay_agent(resolved, &mut dir, setup, &item.tenant)),
            None => {
                overlay_agent_deleted(resolved, &mut dir, &item.name);
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(agent = item.name, %error, "stored agent not applied");
        }
    }
    for item in items.iter().filter(|i| i.kind == CatalogKind::Number) {
        let stored = item
            .definition
            .as_deref()
            .map(serde_json::from_str::<NumberItem>)
            .transpose();
        match stored {
            Ok(Some(number)) => {
                let owned = resolved
                    .catalog
                    .queue_id(&number.queue)
                    .and_then(|q| resolved.catalog.queue_setup(q))
                    .is_some_and(|s| s.tenant == item.tenant);
                if owned {
                    resolved
                        .numbers
                        .insert(item.name.clone(), number.queue.clone());
                    dir.numbers.insert(item.name.clone(), number.queue);
                } else {
                    tracing::warn!(number = item.name, "stored number's queue is gone; skipped");
                }
            }
            Ok(None) => {
                resolved.numbers.remove(&item.name);
                dir.numbers.remove(&item.name);
            }
            Err(error) => tracing::warn!(number = item.name, %error, "stored number unreadable"),
        }
    }
    for item in items.iter().filter(|i| i.kind == CatalogKind::Flow) {
        let Some(json) = &item.definition else {
            continue;
        };
        let result = serde_json::from_str::<FlowFile>(json)
            .map_err(|e| e.to_string())
            .and_then(|file| overlay_flow(resolved, &mut dir, &item.name, file));
        if let Err(error) = result {
            tracing::warn!(queue = item.name, %error, "stored flow not applied");
        }
    }
    // Memberships of queues that are gone (or now another client's) are dropped: the router
    // refuses an agent in another client's queue.
    let tenants: BTreeMap<QueueId, TenantId> =
        resolved.queues.iter().map(|q| (q.id, q.tenant)).collect();
    for spec in &mut resolved.agents {
        spec.memberships
            .retain(|m| tenants.get(&m.queue) == Some(&spec.tenant));
        let catalog = &resolved.catalog;
        if let Some(setup) = dir.agents.get_mut(&spec.id) {
            setup.queues.retain(|m| {
                catalog
                    .queue_id(m.queue())
                    .is_some_and(|q| tenants.get(&q) == Some(&spec.tenant))
            });
        }
    }
    dir
}

fn overlay_queue_deleted(resolved: &mut Resolved, dir: &mut Directory, name: &str) {
    let Some(id) = resolved.catalog.queue_id(name) else {
        return;
    };
    resolved.queues.retain(|q| q.id != id);
    dir.queue_flows.remove(name);
    if resolved.catalog.queue_setup(id).is_some() {
        dir.closed.insert(id);
    }
}

fn overlay_queue(
    resolved: &mut Resolved,
    dir: &mut Directory,
    setup: &QueueSetup,
    tenant: &str,
) -> Result<(), String> {
    if setup.tenant != tenant {
        return Err(format!(
            "belongs to {:?}, stored for {tenant:?}",
            setup.tenant
        ));
    }
    let spec = resolved
        .catalog
        .resolve_queue(setup, "queue")
        .map_err(|e| e.to_string())?;
    dir.closed.remove(&spec.id);
    match resolved.queues.iter_mut().find(|q| q.id == spec.id) {
        Some(existing) => *existing = spec,
        None => {
            resolved.queues.push(spec);
            let flow = builtin_flow_name(&setup.name);
            dir.queue_flows.entry(setup.name.clone()).or_insert(flow);
        }
    }
    Ok(())
}

fn overlay_agent_deleted(resolved: &mut Resolved, dir: &mut Directory, name: &str) {
    let Some(id) = resolved.catalog.agent_id(name) else {
        return;
    };
    resolved.agents.retain(|a| a.id != id);
    resolved.agent_lines.retain(|(a, _)| *a != id);
    dir.agents.remove(&id);
}

fn overlay_agent(
    resolved: &mut Resolved,
    dir: &mut Directory,
    mut setup: AgentSetup,
    tenant: &str,
) -> Result<(), String> {
    if setup.tenant != tenant {
        return Err(format!(
            "belongs to {:?}, stored for {tenant:?}",
            setup.tenant
        ));
    }
    let line = agent_line(&setup).map_err(|e| e.to_string())?;
    let catalog = &resolved.catalog;
    setup.queues.retain(|m| {
        catalog
            .queue_id(m.queue())
            .and_then(|q| catalog.queue_setup(q))
            .is_some_and(|q| q.tenant == setup.tenant)
    });
    let spec = resolved
        .catalog
        .resolve_agent(&setup, "agent")
        .map_err(|e| e.to_string())?;
    let id = spec.id;
    match resolved.agents.iter_mut().find(|a| a.id == id) {
        Some(existing) => *existing = spec,
        None => resolved.agents.push(spec),
    }
    match resolved.agent_lines.iter_mut().find(|(a, _)| *a == id) {
        Some((_, existing)) => *existing = line,
        None => resolved.agent_lines.push((id, line)),
    }
    dir.agents.insert(id, setup);
    Ok(())
}

fn overlay_flow(
    resolved: &mut Resolved,
    dir: &mut Directory,
    queue: &str,
    file: FlowFile,
) -> Result<(), String> {
    let open = |name: &str| {
        resolved
            .catalog
            .queue_id(name)
            .is_some_and(|q| resolved.queues.iter().any(|s| s.id == q))
    };
    if !open(queue) {
        return Err("its queue is gone".to_owned());
    }
    let mut flow = Flow::from_setup(&file, "stored flow").map_err(|e| e.to_string())?;
    let refs = flow_refs(&flow);
    if let Some((_, gone)) = refs.iter().find(|(_, q)| !open(q)) {
        return Err(format!("it sends callers to queue {gone:?}, which is gone"));
    }
    flow.name = api_flow_name(queue);
    dir.flow_queues.insert(
        flow.name.clone(),
        refs.into_iter().map(|(_, q)| q).collect(),
    );
    dir.queue_flows.insert(queue.to_owned(), flow.name.clone());
    resolved
        .queue_flows
        .insert(queue.to_owned(), flow.name.clone());
    resolved.flows.push(flow);
    dir.flows.insert(queue.to_owned(), file);
    Ok(())
}

/// Brings the calls side (built from the config file) in line with the directory before it
/// starts: agents' phone lines, flows, and trunk rules for clients the config file does not
/// name.
pub(crate) fn prepare_calls(
    router: &DurableRouter,
    setup: &mut super::telephony::TelephonySetup,
    now: Timestamp,
) {
    let dir = router.directory();
    let catalog = router.catalog();
    for &agent in &dir.config_lines {
        let has_line = dir.agents.get(&agent).is_some_and(|a| a.sip.is_some());
        if !has_line {
            let _ = setup.calls.remove_agent(now, agent, DELETED_REASON);
        }
    }
    for (id, agent) in &dir.agents {
        if let (Ok(Some(line)), Some(tenant)) =
            (agent_line(agent), catalog.tenant_id(&agent.tenant))
        {
            setup.calls.add_agent(*id, tenant, line);
        }
    }
    for (queue, file) in &dir.flows {
        if let Ok(mut flow) = Flow::from_setup(file, "stored flow") {
            flow.name = api_flow_name(queue);
            setup.calls.flows_mut().add_flow(flow);
        }
    }
    // Only what the API changed: the setup's own choices for the config file's queues stand.
    for (queue, flow) in &dir.queue_flows {
        let api = flow.starts_with(API_FLOW_PREFIX);
        if !api && setup.queue_flows.contains_key(queue) {
            continue;
        }
        if flow == &builtin_flow_name(queue)
            && !setup.calls.flows_mut().has_flow(flow)
            && let Ok(builtin) = builtin_flow(queue)
        {
            setup.calls.flows_mut().add_flow(builtin);
        }
        setup.queue_flows.insert(queue.clone(), flow.clone());
    }
    setup
        .queue_flows
        .retain(|queue, _| dir.queue_flows.contains_key(queue));
    super::clients::prepare_calls(router, setup.calls.admission_mut());
    let tenants: BTreeSet<TenantId> = router
        .router()
        .queue_ids()
        .filter_map(|q| router.router().queue_spec(q).ok().map(|s| s.tenant))
        .collect();
    for tenant in tenants {
        know_client(setup.calls.admission_mut(), tenant, now);
    }
}

// ---------------------------------------------------------------------------------------------
// While running

/// Carries out an administrator's change: checked, stored, then applied to the router, the
/// catalog and (when there is one) the calls side. Returns what it did and the router's outputs
/// it caused (offers to a new agent, …), for the calls side and the live views.
pub(crate) async fn apply(
    router: &mut DurableRouter,
    mut telephony: Option<&mut Telephony>,
    now: Timestamp,
    change: AdminChange,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    match change {
        AdminChange::PutQueue { tenant, setup } => {
            put_queue(router, telephony, now, &tenant, setup).await
        }
        AdminChange::DeleteQueue { tenant, name } => {
            delete_queue(router, telephony, now, &tenant, &name).await
        }
        AdminChange::PutAgent { tenant, setup } => {
            put_agent(router, telephony.as_deref_mut(), now, &tenant, setup).await
        }
        AdminChange::DeleteAgent { tenant, name } => {
            delete_agent(router, telephony, now, &tenant, &name).await
        }
        AdminChange::PutFlow {
            tenant,
            queue,
            flow,
        } => put_flow(router, telephony, now, &tenant, &queue, flow).await,
        AdminChange::DeleteFlow { tenant, queue } => {
            delete_flow(router, telephony, now, &tenant, &queue).await
        }
        AdminChange::PutNumber {
            tenant,
            number,
            queue,
        } => put_number(router, telephony, now, &tenant, &number, &queue).await,
        AdminChange::DeleteNumber { tenant, number } => {
            delete_number(router, telephony, now, &tenant, &number).await
        }
        AdminChange::PutClient { name, rules } => {
            super::clients::put_client(router, telephony, now, &name, rules).await
        }
    }
}

/// The client whose queue a number reaches now, if it reaches one.
fn number_owner<'a>(router: &'a DurableRouter, number: &str) -> Option<&'a str> {
    let queue = router.directory().numbers.get(number)?;
    let catalog = router.catalog();
    catalog
        .queue_id(queue)
        .and_then(|q| catalog.queue_setup(q))
        .map(|s| s.tenant.as_str())
}

async fn put_number(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    number: &str,
    queue: &str,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    crate::config::check_number(number).map_err(|m| AdminError::invalid("number", m))?;
    own_queue(router, tenant, queue)
        .map_err(|_| AdminError::invalid("queue", format!("no queue is named {queue:?}")))?;
    let current = router.directory().numbers.get(number).cloned();
    if current.is_some() && number_owner(router, number).is_some_and(|owner| owner != tenant) {
        return Err(AdminError::Conflict(format!(
            "the number {number:?} is taken; choose another"
        )));
    }
    if current.as_deref() == Some(queue) {
        return Ok((AdminOutcome::Unchanged, Vec::new()));
    }
    let item = NumberItem {
        queue: queue.to_owned(),
    };
    store(
        router,
        CatalogKind::Number,
        number,
        tenant,
        Some(json(&item)?),
        now,
    )
    .await?;
    let ((), outputs) = router
        .change(|_, _, dir| {
            dir.numbers.insert(number.to_owned(), queue.to_owned());
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        t.numbers_mut().insert(number.to_owned(), queue.to_owned());
    }
    let outcome = if current.is_some() {
        AdminOutcome::Updated
    } else {
        AdminOutcome::Created
    };
    Ok((outcome, outputs))
}

async fn delete_number(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    number: &str,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    if number_owner(router, number) != Some(tenant) {
        return Err(AdminError::NotFound(format!("no number is {number:?}")));
    }
    store(router, CatalogKind::Number, number, tenant, None, now).await?;
    let ((), outputs) = router
        .change(|_, _, dir| {
            dir.numbers.remove(number);
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        t.numbers_mut().remove(number);
    }
    Ok((AdminOutcome::Deleted, outputs))
}

/// The caller's open queue `name`; another client's, a deleted or a missing one is not found.
fn own_queue(router: &DurableRouter, tenant: &str, name: &str) -> Result<QueueId, AdminError> {
    let catalog = router.catalog();
    catalog
        .queue_id(name)
        .filter(|q| !router.directory().is_closed(*q))
        .filter(|q| catalog.queue_setup(*q).is_some_and(|s| s.tenant == tenant))
        .ok_or_else(|| AdminError::NotFound(format!("no queue is named {name:?}")))
}

/// The caller's agent `name`.
fn own_agent(router: &DurableRouter, tenant: &str, name: &str) -> Result<AgentId, AdminError> {
    router
        .catalog()
        .agent_id(name)
        .filter(|a| {
            router
                .directory()
                .agent(*a)
                .is_some_and(|s| s.tenant == tenant)
        })
        .ok_or_else(|| AdminError::NotFound(format!("no agent is named {name:?}")))
}

pub(super) async fn store(
    router: &DurableRouter,
    kind: CatalogKind,
    name: &str,
    tenant: &str,
    definition: Option<String>,
    now: Timestamp,
) -> Result<(), AdminError> {
    let item = CatalogItem {
        kind,
        name: name.to_owned(),
        tenant: tenant.to_owned(),
        definition,
        updated_at: now,
    };
    match router.store().put_catalog_item(&item).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotOwned { kind, name }) => Err(AdminError::Conflict(format!(
            "the {kind} name {name:?} is taken; choose another"
        ))),
        Err(StoreError::Invalid { field, reason }) => Err(AdminError::invalid(field, reason)),
        Err(error) => Err(error.into()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, AdminError> {
    serde_json::to_string(value).map_err(|e| AdminError::invalid("definition", e.to_string()))
}

async fn put_queue(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    setup: QueueSetup,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    setup.validate("").map_err(setup_error)?;
    if setup.tenant != tenant {
        return Err(AdminError::invalid(
            "tenant",
            format!(
                "is {:?}; a queue belongs to the caller's client",
                setup.tenant
            ),
        ));
    }
    let catalog = router.catalog();
    let existing = catalog
        .queue_id(&setup.name)
        .filter(|q| catalog.queue_setup(*q).is_some());
    // A config file's flow path may come back as read (GET, then PUT); another one may not.
    let file = existing.and_then(|q| catalog.queue_setup(q)?.flow.as_ref());
    if setup.flow.is_some() && setup.flow.as_ref() != file {
        return Err(AdminError::invalid(
            "flow",
            "flow files are read from the config file's directory; set the queue's flow with \
             PUT /api/v1/queues/{name}/flow instead",
        ));
    }
    if let Some(id) = existing
        && catalog.queue_setup(id).is_some_and(|s| s.tenant != tenant)
    {
        return Err(AdminError::Conflict(format!(
            "the queue name {:?} is taken; choose another",
            setup.name
        )));
    }
    if let OverflowSetup::Queue(target) = &setup.overflow
        && own_queue(router, tenant, target).is_err()
    {
        return Err(AdminError::invalid(
            "overflow",
            format!("no queue is named {target:?}"),
        ));
    }
    if let Some(id) = existing {
        // A queue the client deleted comes back under its name with the new rules.
        let reopened = router.directory().is_closed(id);
        if !reopened && router.catalog().queue_setup(id) == Some(&setup) {
            return Ok((AdminOutcome::Unchanged, Vec::new()));
        }
        store(
            router,
            CatalogKind::Queue,
            &setup.name,
            tenant,
            Some(json(&setup)?),
            now,
        )
        .await?;
        // The router takes the new rules at once: its waiting callers keep their places.
        let ((), outputs) = router
            .change(|r, catalog, dir| {
                let previous = catalog.queue_setup(id).cloned();
                let spec = catalog.resolve_queue(&setup, "queue")?;
                if let Err(e) = r.update_queue(now, spec) {
                    // Keep the catalog as the router is.
                    if let Some(previous) = previous {
                        let _ = catalog.resolve_queue(&previous, "queue");
                    }
                    return Err(DurableError::Refused {
                        refusal: super::Refusal::Conflict,
                        message: e.render(catalog),
                    });
                }
                if reopened {
                    dir.closed.remove(&id);
                    dir.queue_flows
                        .insert(setup.name.clone(), builtin_flow_name(&setup.name));
                }
                Ok(())
            })
            .await?;
        if !reopened {
            return Ok((AdminOutcome::Updated, outputs));
        }
        if let Some(t) = telephony {
            let name = setup.name.clone();
            if let Ok(builtin) = builtin_flow(&name) {
                t.calls_mut().flows_mut().add_flow(builtin);
            }
            t.queue_flows_mut()
                .insert(name.clone(), builtin_flow_name(&name));
        }
        return Ok((AdminOutcome::Created, outputs));
    }
    if router.catalog().queue_count() >= MAX_QUEUES {
        return Err(AdminError::Conflict(format!(
            "the catalog holds {MAX_QUEUES} queues, the most it may; delete some and restart"
        )));
    }
    store(
        router,
        CatalogKind::Queue,
        &setup.name,
        tenant,
        Some(json(&setup)?),
        now,
    )
    .await?;
    let name = setup.name.clone();
    let flow = builtin_flow_name(&name);
    let ((), outputs) = router
        .change(|r, catalog, dir| {
            let spec = catalog.resolve_queue(&setup, "queue")?;
            r.add_queue(spec).map_err(|e| DurableError::Refused {
                refusal: super::Refusal::Conflict,
                message: e.render(catalog),
            })?;
            dir.queue_flows.insert(name.clone(), flow.clone());
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        // Callers that reach the new queue (through another queue's flow) hear the built-in flow.
        if let Ok(builtin) = builtin_flow(&name) {
            t.calls_mut().flows_mut().add_flow(builtin);
        }
        t.queue_flows_mut().insert(name.clone(), flow);
        if let Some(tenant) = router.catalog().tenant_id(tenant) {
            know_client(t.calls_mut().admission_mut(), tenant, now);
        }
    }
    Ok((AdminOutcome::Created, outputs))
}

async fn delete_queue(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    name: &str,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    let id = own_queue(router, tenant, name)?;
    let r = router.router();
    let live = r
        .live_contact_ids()
        .filter(|c| r.contact_status(*c).is_some_and(|(q, _, _)| q == id))
        .count();
    if live > 0 {
        return Err(AdminError::Conflict(format!(
            "queue {name:?} holds {live} live contacts; delete it when it is empty"
        )));
    }
    let catalog = router.catalog();
    let dir = router.directory();
    let overflowing = r.queue_ids().find(|q| {
        *q != id
            && !dir.is_closed(*q)
            && catalog
                .queue_setup(*q)
                .is_some_and(|s| s.overflow == OverflowSetup::Queue(name.to_owned()))
    });
    if let Some(other) = overflowing {
        return Err(AdminError::Conflict(format!(
            "queue {:?} overflows into {name:?}; change its overflow first",
            catalog.queue_name(other)
        )));
    }
    let feeding = dir.queue_flows.iter().find(|(queue, flow)| {
        queue.as_str() != name
            && dir
                .flow_queues
                .get(*flow)
                .is_some_and(|targets| targets.contains(name))
    });
    if let Some((queue, flow)) = feeding {
        return Err(AdminError::Conflict(format!(
            "the flow {flow:?} of queue {queue:?} sends callers to {name:?}; change it first"
        )));
    }
    if let Some((number, _)) = dir.numbers.iter().find(|(_, queue)| queue.as_str() == name) {
        return Err(AdminError::Conflict(format!(
            "the number {number:?} reaches {name:?}; send it elsewhere or delete it first"
        )));
    }
    store(router, CatalogKind::Queue, name, tenant, None, now).await?;
    if dir.flows.contains_key(name) {
        store(router, CatalogKind::Flow, name, tenant, None, now).await?;
    }
    let members: Vec<(AgentId, AgentSetup)> = dir
        .agents
        .iter()
        .filter(|(_, a)| a.queues.iter().any(|m| m.queue() == name))
        .map(|(id, a)| {
            let mut left = a.clone();
            left.queues.retain(|m| m.queue() != name);
            (*id, left)
        })
        .collect();
    // Its agents are stored without it: a queue of that name made later does not take them.
    for (_, setup) in &members {
        store(
            router,
            CatalogKind::Agent,
            &setup.name,
            tenant,
            Some(json(setup)?),
            now,
        )
        .await?;
    }
    let ((), outputs) = router
        .change(|r, _, dir| {
            for (agent, setup) in members {
                // Not a member any more (the router agrees or never knew): nothing to undo.
                let _ = r.remove_membership(now, agent, id);
                dir.agents.insert(agent, setup);
            }
            dir.closed.insert(id);
            dir.flows.remove(name);
            dir.queue_flows.remove(name);
            dir.flow_queues.remove(&api_flow_name(name));
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        t.queue_flows_mut().remove(name);
        t.calls_mut().flows_mut().remove_flow(&api_flow_name(name));
    }
    Ok((AdminOutcome::Deleted, outputs))
}

async fn put_agent(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    setup: AgentSetup,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    setup.validate("").map_err(setup_error)?;
    if setup.tenant != tenant {
        return Err(AdminError::invalid(
            "tenant",
            format!(
                "is {:?}; an agent belongs to the caller's client",
                setup.tenant
            ),
        ));
    }
    let line = agent_line(&setup)?;
    let mut seen = BTreeSet::new();
    for (i, membership) in setup.queues.iter().enumerate() {
        let queue = membership.queue();
        if own_queue(router, tenant, queue).is_err() {
            return Err(AdminError::invalid(
                format!("queues[{i}]"),
                format!("no queue is named {queue:?}"),
            ));
        }
        if !seen.insert(queue) {
            return Err(AdminError::invalid(
                format!("queues[{i}]"),
                format!("queue {queue:?} is listed twice"),
            ));
        }
    }
    let existing = router
        .catalog()
        .agent_id(&setup.name)
        .filter(|a| router.directory().agent(*a).is_some());
    let previous = existing.and_then(|a| router.directory().agent(a).cloned());
    if let Some(previous) = &previous {
        if previous.tenant != tenant {
            return Err(AdminError::Conflict(format!(
                "the agent name {:?} is taken; choose another",
                setup.name
            )));
        }
        if *previous == setup {
            return Ok((AdminOutcome::Unchanged, Vec::new()));
        }
    } else if router.directory().agents.len() >= MAX_AGENTS {
        return Err(AdminError::Conflict(format!(
            "the catalog holds {MAX_AGENTS} agents, the most it may"
        )));
    }
    let known_to_calls = existing.is_some_and(|a| {
        telephony
            .as_ref()
            .is_some_and(|t| t.calls().agent_tenant(a).is_some())
    });
    if let (Some(agent), None, true) = (existing, &line, known_to_calls) {
        // Taking the phone line away logs the agent out: not in the middle of a contact.
        if let Some(contact) = held_contact(router, agent) {
            return Err(AdminError::Conflict(format!(
                "agent {:?} holds contact {contact}; remove its phone line when it is free",
                setup.name
            )));
        }
    }
    store(
        router,
        CatalogKind::Agent,
        &setup.name,
        tenant,
        Some(json(&setup)?),
        now,
    )
    .await?;
    let old_queues: Vec<QueueId> = previous
        .as_ref()
        .map(|p| {
            p.queues
                .iter()
                .filter_map(|m| router.catalog().queue_id(m.queue()))
                .collect()
        })
        .unwrap_or_default();
    let (agent, outputs) = router
        .change(|r, catalog, dir| {
            let spec = catalog.resolve_agent(&setup, "agent")?;
            let id = spec.id;
            let refused = |e: crate::routing::RouterError| DurableError::Refused {
                refusal: super::Refusal::Conflict,
                message: e.to_string(),
            };
            if previous.is_some() {
                r.set_skills(now, id, spec.skills.clone())
                    .map_err(refused)?;
                for media in MediaType::ALL {
                    r.set_slots(now, id, media, *spec.slots.get(media))
                        .map_err(refused)?;
                }
                for queue in old_queues {
                    if !spec.memberships.iter().any(|m| m.queue == queue) {
                        let _ = r.remove_membership(now, id, queue);
                    }
                }
                for membership in &spec.memberships {
                    r.set_membership(now, id, *membership).map_err(refused)?;
                }
            } else {
                r.add_agent(now, spec).map_err(refused)?;
            }
            dir.agents.insert(id, setup.clone());
            Ok(id)
        })
        .await?;
    if let Some(t) = telephony {
        let tenant_id = router.catalog().tenant_id(tenant);
        match (line, tenant_id) {
            (Some(line), Some(tenant_id)) => t.calls_mut().add_agent(agent, tenant_id, line),
            _ => {
                if t.calls().agent_tenant(agent).is_some() {
                    let reason = "its phone line was removed";
                    if let Err(error) = t.calls_mut().remove_agent(now, agent, reason) {
                        tracing::warn!(agent = setup.name, %error, "phone line not removed");
                    }
                }
            }
        }
        t.settle(router).await;
    }
    let outcome = if previous.is_some() {
        AdminOutcome::Updated
    } else {
        AdminOutcome::Created
    };
    Ok((outcome, outputs))
}

/// A contact that rings or is connected to the agent, if any.
fn held_contact(router: &DurableRouter, agent: AgentId) -> Option<u64> {
    let r = router.router();
    r.live_contact_ids()
        .find(|c| r.contact_agents(*c).contains(&agent))
        .map(|c| c.0)
}

async fn delete_agent(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    name: &str,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    let agent = own_agent(router, tenant, name)?;
    if let Some(contact) = held_contact(router, agent) {
        return Err(AdminError::Conflict(format!(
            "agent {name:?} holds contact {contact}; delete it when it is free"
        )));
    }
    store(router, CatalogKind::Agent, name, tenant, None, now).await?;
    if let Some(t) = telephony
        && t.calls().agent_tenant(agent).is_some()
    {
        if let Err(error) = t.calls_mut().remove_agent(now, agent, DELETED_REASON) {
            tracing::warn!(agent = name, %error, "agent not removed from the calls side");
        }
        t.settle(router).await;
    }
    let ((), outputs) = router
        .change(|r, catalog, dir| {
            r.remove_agent(now, agent)
                .map_err(|e| DurableError::Refused {
                    refusal: super::Refusal::Conflict,
                    message: e.render(catalog),
                })?;
            dir.agents.remove(&agent);
            Ok(())
        })
        .await?;
    Ok((AdminOutcome::Deleted, outputs))
}

async fn put_flow(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    queue: &str,
    file: FlowFile,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    own_queue(router, tenant, queue)?;
    let mut flow = Flow::from_setup(&file, "flow").map_err(|e| {
        let field = if e.path.is_empty() {
            "definition".to_owned()
        } else {
            e.path.clone()
        };
        AdminError::invalid(field, e.message)
    })?;
    let refs = flow_refs(&flow);
    for (field, target) in &refs {
        if own_queue(router, tenant, target).is_err() {
            return Err(AdminError::invalid(
                field.clone(),
                format!("no queue is named {target:?}"),
            ));
        }
    }
    if router.directory().flows.get(queue) == Some(&file) {
        return Ok((AdminOutcome::Unchanged, Vec::new()));
    }
    let created = !router.directory().flows.contains_key(queue);
    store(
        router,
        CatalogKind::Flow,
        queue,
        tenant,
        Some(json(&file)?),
        now,
    )
    .await?;
    flow.name = api_flow_name(queue);
    let name = flow.name.clone();
    let ((), outputs) = router
        .change(|_, _, dir| {
            dir.flow_queues
                .insert(name.clone(), refs.into_iter().map(|(_, q)| q).collect());
            dir.queue_flows.insert(queue.to_owned(), name.clone());
            dir.flows.insert(queue.to_owned(), file);
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        // Callers already in the old flow finish with it; new callers hear this one.
        t.calls_mut().flows_mut().add_flow(flow);
        t.queue_flows_mut().insert(queue.to_owned(), name);
    }
    let outcome = if created {
        AdminOutcome::Created
    } else {
        AdminOutcome::Updated
    };
    Ok((outcome, outputs))
}

async fn delete_flow(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    tenant: &str,
    queue: &str,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    own_queue(router, tenant, queue)?;
    if !router.directory().flows.contains_key(queue) {
        return Err(AdminError::NotFound(format!(
            "queue {queue:?} has no flow set through the API"
        )));
    }
    store(router, CatalogKind::Flow, queue, tenant, None, now).await?;
    let fallback = router
        .directory()
        .config_flows
        .get(queue)
        .cloned()
        .unwrap_or_else(|| builtin_flow_name(queue));
    let api = api_flow_name(queue);
    let back = fallback.clone();
    let ((), outputs) = router
        .change(|_, _, dir| {
            dir.flows.remove(queue);
            dir.flow_queues.remove(&api);
            dir.queue_flows.insert(queue.to_owned(), back);
            Ok(())
        })
        .await?;
    if let Some(t) = telephony {
        let flows = t.calls_mut().flows_mut();
        flows.remove_flow(&api);
        if !flows.has_flow(&fallback)
            && let Ok(builtin) = builtin_flow(queue)
        {
            flows.add_flow(builtin);
        }
        t.queue_flows_mut().insert(queue.to_owned(), fallback);
    }
    Ok((AdminOutcome::Deleted, outputs))
}

// ---------------------------------------------------------------------------------------------
// Views

/// The catalog's names and owners, for the web layer.
pub(crate) fn view(router: &DurableRouter) -> CatalogView {
    let catalog = router.catalog();
    let dir = router.directory();
    let queues = router
        .router()
        .queue_ids()
        .filter(|q| !dir.is_closed(*q))
        .filter_map(|q| {
            let setup = catalog.queue_setup(q)?;
            Some((setup.name.clone(), setup.tenant.clone()))
        })
        .collect();
    let agents = dir
        .agents
        .values()
        .map(|a| (a.name.clone(), a.tenant.clone()))
        .collect();
    CatalogView {
        catalog: catalog.clone(),
        queues,
        agents,
    }
}

/// Every definition of `tenant`.
pub(crate) fn definitions(router: &DurableRouter, tenant: &str) -> Definitions {
    let catalog = router.catalog();
    let dir = router.directory();
    let mut queues: Vec<QueueDefinition> = router
        .router()
        .queue_ids()
        .filter(|q| !dir.is_closed(*q))
        .filter_map(|q| {
            let setup = catalog.queue_setup(q)?;
            (setup.tenant == tenant).then(|| QueueDefinition {
                setup: setup.clone(),
                flow: dir.queue_flows.get(&setup.name).cloned(),
            })
        })
        .collect();
    queues.sort_by(|a, b| a.setup.name.cmp(&b.setup.name));
    let mut agents: Vec<AgentSetup> = dir
        .agents
        .values()
        .filter(|a| a.tenant == tenant)
        .cloned()
        .collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    let flows = dir
        .flows
        .iter()
        .filter(|(queue, _)| {
            catalog
                .queue_id(queue)
                .and_then(|q| catalog.queue_setup(q))
                .is_some_and(|s| s.tenant == tenant)
        })
        .map(|(queue, file)| (queue.clone(), file.clone()))
        .collect();
    let numbers = dir
        .numbers
        .iter()
        .filter(|(_, queue)| {
            catalog
                .queue_id(queue)
                .filter(|q| !dir.is_closed(*q))
                .and_then(|q| catalog.queue_setup(q))
                .is_some_and(|s| s.tenant == tenant)
        })
        .map(|(number, queue)| (number.clone(), queue.clone()))
        .collect();
    Definitions {
        queues,
        agents,
        flows,
        numbers,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The flow engine's name of the flow set through the API for `queue`.
fn api_flow_name(queue: &str) -> String {
    format!("{API_FLOW_PREFIX}{queue}")
}

/// The name of the built-in flow of `queue`, as the config file names it.
fn builtin_flow_name(queue: &str) -> String {
    format!("{BUILTIN_FLOW_PREFIX}{queue}")
}

/// The built-in flow of a queue without its own: wait in it with music, as the config file
/// builds it for its queues.
fn builtin_flow(queue: &str) -> Result<Flow, crate::flow::FlowError> {
    let step: crate::flow::StepSetup = serde_json::from_value(serde_json::json!({
        "queue": { "name": queue, "music": BUILTIN_FLOW_MUSIC }
    }))
    .map_err(|e| crate::flow::FlowError {
        file: "built-in flow".to_owned(),
        path: "steps[0]".to_owned(),
        message: e.to_string(),
    })?;
    let file = FlowFile {
        name: builtin_flow_name(queue),
        hours: None,
        closed: None,
        steps: vec![step],
    };
    Flow::from_setup(&file, "built-in flow")
}

/// The queues a flow's steps send callers to, with the field that names each.
fn flow_refs(flow: &Flow) -> Vec<(String, String)> {
    flow.steps
        .iter()
        .enumerate()
        .filter_map(|(i, step)| match step {
            Step::Queue { queue, .. } => Some((format!("steps[{i}].queue.name"), queue.clone())),
            Step::Voicemail { queue, .. } => {
                Some((format!("steps[{i}].voicemail.queue"), queue.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Gives a client the config file's default trunk rules unless admission knows it already.
fn know_client(admission: &mut crate::admission::Admission, tenant: TenantId, now: Timestamp) {
    use crate::admission::{AdmissionRule, ClientTrunks};
    if admission.decide(now, tenant).rule == AdmissionRule::UnknownClient {
        admission.set_client(
            tenant,
            ClientTrunks {
                ratio: DEFAULT_TRUNK_RATIO,
                after_hours: DEFAULT_AFTER_HOURS_TRUNKS,
            },
        );
    }
}

/// An agent's phone line from its `sip` and `stay_on_line`.
fn agent_line(setup: &AgentSetup) -> Result<Option<AgentLine>, AdminError> {
    match &setup.sip {
        Some(sip) => Ok(Some(AgentLine {
            target: parse_sip_user(sip).map_err(|m| AdminError::invalid("sip", m))?,
            stay_on_line: setup.stay_on_line,
        })),
        None if setup.stay_on_line != StayOnLine::Never => Err(AdminError::invalid(
            "stay_on_line",
            "an agent without `sip` has no phone line to keep up; expected `sip` too, or \
             stay_on_line = \"never\"",
        )),
        None => Ok(None),
    }
}

/// The text form of a line's target (`user` or `user@domain`).
fn sip_text(target: &OriginateTarget) -> String {
    match target {
        OriginateTarget::SipUser {
            user,
            domain: Some(domain),
        } => format!("{user}@{domain}"),
        OriginateTarget::SipUser { user, domain: None } => user.clone(),
        other => format!("{other:?}"),
    }
}

/// An agent's `sip`: `user` or `user@domain`, by the config file's rules: characters that
/// dial strings use as separators (`,` `|` `;` `{` `/`) would let a user ring someone else.
fn parse_sip_user(sip: &str) -> Result<OriginateTarget, String> {
    const EXPECTED: &str = "expected a SIP user such as \"1000\" or \"1000@pbx.example.com\"";
    let (user, domain) = match sip.split_once('@') {
        Some((user, domain)) => (user, Some(domain)),
        None => (sip, None),
    };
    let user_ok = !user.is_empty()
        && user.len() <= 100
        && user.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '+' | '*' | '#' | '~' | '!' | '%')
        });
    if !user_ok {
        return Err(format!(
            "{:?} is not a SIP user; {EXPECTED}",
            sip.chars().take(64).collect::<String>()
        ));
    }
    if let Some(domain) = domain {
        let domain_ok = domain.len() <= 253
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !domain_ok {
            return Err(format!(
                "{:?} is not a domain; {EXPECTED}",
                domain.chars().take(64).collect::<String>()
            ));
        }
    }
    Ok(OriginateTarget::SipUser {
        user: user.to_owned(),
        domain: domain.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_users_follow_the_config_files_rules() {
        assert_eq!(
            parse_sip_user("1000@pbx.example.com"),
            Ok(OriginateTarget::SipUser {
                user: "1000".into(),
                domain: Some("pbx.example.com".into())
            })
        );
        for bad in ["", "user/1000", "a,b", "1000@", "1000@bad..domain", "a;b@x"] {
            assert!(parse_sip_user(bad).is_err(), "{bad}");
        }
        let target = parse_sip_user("ann@pbx").unwrap();
        assert_eq!(sip_text(&target), "ann@pbx");
    }

    #[test]
    fn built_in_flows_wait_in_their_queue() {
        let flow = builtin_flow("sales").unwrap();
        assert_eq!(flow.name, "built-in:sales");
        assert_eq!(
            flow_refs(&flow),
            vec![("steps[0].queue.name".to_owned(), "sales".to_owned())]
        );
    }

    #[test]
    fn setup_errors_name_the_field_of_the_definition() {
        let mut setup = QueueSetup::named("sales");
        setup.offer_timeout_s = -1.0;
        let error = setup_error(setup.validate("").unwrap_err());
        assert!(
            matches!(&error, AdminError::Invalid { field, .. } if field == "offer_timeout_s"),
            "{error}"
        );
    }
}
