//! The router with its memory: every lifecycle change the router reports is written to the
//! store before the caller sees it, and a restart rebuilds the queue from the store in the same
//! order with the same waiting times.

use std::collections::BTreeMap;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::config::Resolved;
use crate::model::{
    AgentId, ContactId, ContactState, CustomerId, MediaType, Outcome, Priority, Timestamp,
};
use crate::routing::setup::CriterionSetup;
use crate::routing::{
    Catalog, ContactSetup, ContactSpec, Output, OverflowTarget, Router, RouterError, SetupError,
};
use crate::store::{NewCdr, NewContact, Store, StoreError, StoredContact, Transition};

use super::admin::{self, Directory};
use super::contact_records::ContactRecords;

/// How far back customer affinity is rebuilt after a restart.
pub const AFFINITY_MEMORY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Something the durable router could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableError {
    /// The contact description is invalid (unknown queue, bad criterion…).
    #[error("invalid contact: {0}")]
    Contact(#[from] SetupError),
    /// The router refused the input (the message names agents and queues).
    #[error("{message}")]
    Refused {
        /// Why, in kind.
        refusal: Refusal,
        /// Why, in words.
        message: String,
    },
    /// The store failed; what the router decided is kept and written on the next call.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An agent name that is not configured.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    /// The stored criteria of a contact could not be read back.
    #[error("contact {contact}: stored criteria are not valid: {message}")]
    StoredCriteria {
        /// The contact.
        contact: ContactId,
        /// What was wrong.
        message: String,
    },
}

/// The kind of a refusal, for callers that map it (HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Something named does not exist (contact, agent, queue).
    NotFound,
    /// It exists but is in a state that does not allow this.
    Conflict,
    /// The input itself is invalid.
    Invalid,
}

fn refused(error: &RouterError, catalog: &Catalog) -> DurableError {
    let refusal = match error {
        RouterError::UnknownContact(_)
        | RouterError::UnknownAgent(_)
        | RouterError::UnknownQueue(_) => Refusal::NotFound,
        RouterError::TooManyCriteria { .. } | RouterError::TenantMismatch { .. } => {
            Refusal::Invalid
        }
        _ => Refusal::Conflict,
    };
    DurableError::Refused {
        refusal,
        message: error.render(catalog),
    }
}

/// What a restart found in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Contacts back in their queues.
    pub waiting: usize,
    /// Contacts connected to an agent before the restart.
    pub connected: usize,
    /// Contacts that could not be restored (their queue or agent is gone), ended with a reason.
    pub dropped: usize,
    /// Customers whose last agent is remembered again.
    pub customers: usize,
}

/// The router, the catalog of names, and the store, kept in step.
pub struct DurableRouter {
    router: Router,
    catalog: Catalog,
    store: Store,
    /// The state last written per live contact (for changes that do not name one).
    states: FxHashMap<ContactId, ContactState>,
    /// Transitions decided but not yet written, and the outputs waiting for them.
    unwritten: Vec<Transition>,
    unreported: Vec<Output>,
    /// The attributes of each live contact, as last stored (for views and re-adopted calls).
    attributes: FxHashMap<ContactId, BTreeMap<String, String>>,
    /// Every agent's definition, and what administrators changed over the API.
    directory: Directory,
    /// The records of contacts that are not calls, made as they end.
    records: ContactRecords,
}

impl DurableRouter {
    /// Builds the router from the resolved configuration, with the catalog administrators
    /// changed over the API laid over it, and rebuilds its queues from the store.
    pub async fn open(
        mut resolved: Resolved,
        store: Store,
        now: Timestamp,
    ) -> Result<(Self, Rebuilt), DurableError> {
        let items = store.catalog_items().await?;
        let directory = admin::overlay(&mut resolved, &items);
        let Resolved {
            catalog,
            settings,
            queues,
            agents,
            ..
        } = resolved;
        let mut router = Router::new(settings);
        for queue in queues {
            router.add_queue(queue).map_err(|e| refused(&e, &catalog))?;
        }
        for agent in agents {
            router
                .add_agent(now, agent)
                .map_err(|e| refused(&e, &catalog))?;
        }
        // Agents log back in after a restart: nobody overflows for want of them meanwhile.
        router.start_grace(now);
        let mut this = DurableRouter {
            router,
            catalog,
            store,
            states: FxHashMap::default(),
            unwritten: Vec::new(),
            unreported: Vec::new(),
            attributes: FxHashMap::default(),
            directory,
            records: ContactRecords::default(),
        };
        let rebuilt = this.rebuild(now).await?;
        Ok((this, rebuilt))
    }

    async fn rebuild(&mut self, now: Timestamp) -> Result<Rebuilt, DurableError> {
        let mut rebuilt = Rebuilt::default();
        for last in self.store.last_agents(now.minus(AFFINITY_MEMORY)).await? {
            let (Some(tenant), Some(agent)) = (
                self.catalog.tenant_id(&last.tenant),
                self.catalog.agent_id(&last.agent),
            ) else {
                continue;
            };
            self.router.remember_customer(
                CustomerId::from_reference(tenant, &last.customer),
                agent,
                last.at,
            );
            rebuilt.customers += 1;
        }
        // The store returns open contacts in serving order; arriving them in that order with
        // their original arrival times puts each at its old place.
        let mut dropped = Vec::new();
        for stored in self.store.open_contacts().await? {
            match self.restore(now, &stored) {
                Ok(true) => rebuilt.connected += 1,
                Ok(false) => rebuilt.waiting += 1,
                Err(reason) => {
                    tracing::warn!(contact = %stored.id, %reason, "contact not restored");
                    let mut end = Transition::new(stored.id, ContactState::Overflowed, now);
                    end.detail = Some(format!("not restored after restart: {reason}"));
                    dropped.push(end);
                }
            }
        }
        rebuilt.dropped = dropped.len();
        self.unwritten.extend(dropped);
        // What the router decided while rebuilding (offers to agents logged in later) is
        // written now; the restart itself is not reported as new arrivals.
        self.collect();
        self.unreported
            .retain(|o| !matches!(o, Output::Queued { .. }));
        self.flush().await?;
        Ok(rebuilt)
    }

    /// Puts one stored contact back; true if it was connected.
    fn restore(&mut self, now: Timestamp, stored: &StoredContact) -> Result<bool, String> {
        let criteria: Vec<CriterionSetup> = serde_json::from_str(&stored.criteria_json)
            .map_err(|e| format!("stored criteria: {e}"))?;
        let setup = ContactSetup {
            queue: stored.queue.clone(),
            media: stored.media,
            priority: stored.priority,
            attributes: stored.attributes.clone(),
            criteria,
        };
        let spec = self
            .resolve(&setup, stored.id, stored.arrived_at)
            .map_err(|e| e.to_string())?;
        if stored.state == ContactState::Connected {
            let agent = stored
                .agent
                .as_deref()
                .and_then(|name| self.catalog.agent_id(name))
                .ok_or_else(|| format!("agent {:?} is not configured", stored.agent))?;
            let since = stored.connected_at.unwrap_or(stored.updated_at);
            let follow = !ContactRecords::belongs_to_calls(spec.media);
            if follow {
                self.records.follow(&spec, &setup.attributes, &self.catalog);
                self.records.connected_since(spec.id, agent, since);
            }
            if let Err(error) = self.router.restore_connected(now, spec, agent, since) {
                self.records.forget(stored.id);
                return Err(error.to_string());
            }
            self.states.insert(stored.id, ContactState::Connected);
            self.attributes.insert(stored.id, setup.attributes);
            return Ok(true);
        }
        if !ContactRecords::belongs_to_calls(spec.media) {
            self.records.follow(&spec, &setup.attributes, &self.catalog);
        }
        if let Err(error) = self.router.arrive(now, spec) {
            self.records.forget(stored.id);
            return Err(error.to_string());
        }
        self.states.insert(stored.id, ContactState::Queued);
        self.attributes.insert(stored.id, setup.attributes);
        if stored.state == ContactState::Offered {
            let mut back = Transition::new(stored.id, ContactState::Queued, now);
            back.detail = Some("restart: the offer was lost; back at its place".to_owned());
            self.unwritten.push(back);
        }
        Ok(false)
    }

    /// The router (for queries: explanations, predictions, counters).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The names of queues, agents and skills.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The attributes of a live contact, as last stored (a call's: what its flow collected).
    pub fn contact_attributes(&self, contact: ContactId) -> Option<&BTreeMap<String, String>> {
        self.attributes.get(&contact)
    }

    /// Every agent's definition, and what administrators changed over the API.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Makes an administrator's change to the router, the catalog and the directory, then
    /// writes what the router decided because of it (offers to a new agent, contacts a removed
    /// membership leaves unservable) and returns those outputs.
    pub(crate) async fn change<T>(
        &mut self,
        edit: impl FnOnce(&mut Router, &mut Catalog, &mut Directory) -> Result<T, DurableError>,
    ) -> Result<(T, Vec<Output>), DurableError> {
        self.flush().await?;
        let value = edit(&mut self.router, &mut self.catalog, &mut self.directory)?;
        Ok((value, self.settle().await?))
    }

    /// Resolves a contact's setup; a queue an administrator deleted is refused like a missing
    /// one (its name stays in the catalog until a restart).
    fn resolve(
        &self,
        setup: &ContactSetup,
        id: ContactId,
        now: Timestamp,
    ) -> Result<ContactSpec, DurableError> {
        if let Some(queue) = self.catalog.queue_id(&setup.queue)
            && self.directory.is_closed(queue)
        {
            return Err(DurableError::Contact(SetupError::new(
                "queue",
                format!("no queue is named {:?} (it was deleted)", setup.queue),
            )));
        }
        Ok(self.catalog.resolve_contact(setup, id, now)?)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A new contact: stored, then routed. Returns its id and what the router decided.
    pub async fn arrive(
        &mut self,
        now: Timestamp,
        setup: &ContactSetup,
    ) -> Result<(ContactId, Vec<Output>), DurableError> {
        self.flush().await?;
        // Validate before anything is stored.
        let probe = self.resolve(setup, ContactId(0), now)?;
        let new = self.new_contact(now, setup, probe.tenant)?;
        let id = self.store.insert_contact(&new).await?;
        let mut spec = probe;
        spec.id = id;
        self.states.insert(id, ContactState::Queued);
        self.attributes.insert(id, setup.attributes.clone());
        // Voicemails are the calls side's to record; every other contact arriving here is not
        // a call (calls are registered, then enqueued).
        if setup.media != MediaType::Voicemail {
            self.records.follow(&spec, &setup.attributes, &self.catalog);
        }
        if let Err(error) = self.router.arrive(now, spec) {
            self.states.remove(&id);
            self.attributes.remove(&id);
            self.records.forget(id);
            let mut end = Transition::new(id, ContactState::Overflowed, now);
            end.detail = Some(format!("refused by the router: {error}"));
            self.store.record(&[end]).await?;
            return Err(refused(&error, &self.catalog));
        }
        Ok((id, self.settle().await?))
    }

    /// The stored form of a new contact.
    fn new_contact(
        &self,
        now: Timestamp,
        setup: &ContactSetup,
        tenant: crate::model::TenantId,
    ) -> Result<NewContact, DurableError> {
        let criteria_json =
            serde_json::to_string(&setup.criteria).map_err(|e| DurableError::StoredCriteria {
                contact: ContactId(0),
                message: e.to_string(),
            })?;
        Ok(NewContact {
            tenant: self.catalog.tenant_name(tenant).to_owned(),
            queue: setup.queue.clone(),
            media: setup.media,
            priority: setup.priority,
            arrived_at: now,
            attributes: setup.attributes.clone(),
            criteria_json,
            customer: setup
                .attributes
                .get(crate::routing::setup::CUSTOMER_ATTRIBUTE)
                .cloned(),
        })
    }

    /// A new call's contact, stored before its flow runs (so that its legs can carry its id),
    /// but not routed until [`enqueue`](Self::enqueue).
    pub async fn register(
        &mut self,
        now: Timestamp,
        setup: &ContactSetup,
    ) -> Result<ContactId, DurableError> {
        self.flush().await?;
        let probe = self.resolve(setup, ContactId(0), now)?;
        let new = self.new_contact(now, setup, probe.tenant)?;
        Ok(self.store.insert_contact(&new).await?)
    }

    /// Routes a contact stored by [`register`](Self::register), with what its flow collected
    /// (queue, priority, attributes). Its waiting time counts from now.
    pub async fn enqueue(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        setup: &ContactSetup,
    ) -> Result<Vec<Output>, DurableError> {
        self.flush().await?;
        let spec = self.resolve(setup, contact, now)?;
        // Checked before the router takes the contact: a transition the store refuses would
        // block every later write.
        crate::store::check_attributes("attributes", &setup.attributes)?;
        self.states.insert(contact, ContactState::Queued);
        self.attributes.insert(contact, setup.attributes.clone());
        if let Err(error) = self.router.arrive(now, spec) {
            self.states.remove(&contact);
            self.attributes.remove(&contact);
            let mut end = Transition::new(contact, ContactState::Overflowed, now);
            end.detail = Some(format!("refused by the router: {error}"));
            self.store.record(&[end]).await?;
            return Err(refused(&error, &self.catalog));
        }
        let mut queued = Transition::new(contact, ContactState::Queued, now);
        queued.queue = Some(setup.queue.clone());
        queued.detail = Some("queued by its flow".to_owned());
        // What the flow's menus set is stored with the contact: a restart keeps it.
        queued.attributes = Some(setup.attributes.clone());
        self.unwritten.push(queued);
        self.settle().await
    }

    /// Ends a registered contact that never reached the router (refused at the door, or its
    /// caller left during the flow).
    pub async fn end_registered(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        state: ContactState,
        detail: &str,
    ) -> Result<(), DurableError> {
        if self.router.contact_status(contact).is_some() {
            return Ok(());
        }
        self.flush().await?;
        let mut end = Transition::new(contact, state, now);
        end.detail = Some(detail.to_owned());
        self.store.record(&[end]).await?;
        Ok(())
    }

    /// Whether the router holds the contact (queued, offered or connected).
    pub fn is_routed(&self, contact: ContactId) -> bool {
        self.router.contact_status(contact).is_some()
    }

    /// An agent accepted an offer.
    pub async fn accept(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: &str,
    ) -> Result<Vec<Output>, DurableError> {
        let agent = self.agent(agent)?;
        self.apply(|r| r.accept(now, contact, agent)).await
    }

    /// An agent declined an offer.
    pub async fn reject(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: &str,
    ) -> Result<Vec<Output>, DurableError> {
        let agent = self.agent(agent)?;
        self.apply(|r| r.reject(now, contact, agent)).await
    }

    /// The customer left before being connected.
    pub async fn abandon(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.abandon(now, contact)).await
    }

    /// A connected contact whose bridge to the agent failed goes back to its place.
    pub async fn back_to_queue(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.back_to_queue(now, contact)).await
    }

    /// Sets a waiting contact aside while its handler is down (it keeps its place; nothing
    /// is stored: after a restart it simply waits).
    pub async fn hold(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.hold(now, contact).map(drop)).await
    }

    /// A held contact waits at its place again.
    pub async fn release(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.release(now, contact).map(drop)).await
    }

    /// The agent finished the contact.
    pub async fn complete(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.complete(now, contact)).await
    }

    /// Changes a contact's priority.
    pub async fn set_priority(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        priority: Priority,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.set_priority(now, contact, priority)).await
    }

    /// The caller asked to be called back.
    pub async fn request_callback(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| r.request_callback(now, contact)).await
    }

    /// Logs an agent in.
    pub async fn log_in(
        &mut self,
        now: Timestamp,
        agent: &str,
    ) -> Result<Vec<Output>, DurableError> {
        let agent = self.agent(agent)?;
        self.apply(|r| r.log_in(now, agent)).await
    }

    /// Logs an agent out.
    pub async fn log_out(
        &mut self,
        now: Timestamp,
        agent: &str,
    ) -> Result<Vec<Output>, DurableError> {
        let agent = self.agent(agent)?;
        self.apply(|r| r.log_out(now, agent)).await
    }

    /// Makes an agent available or not, for one media type or all.
    pub async fn set_available(
        &mut self,
        now: Timestamp,
        agent: &str,
        media: Option<MediaType>,
        available: bool,
    ) -> Result<Vec<Output>, DurableError> {
        let agent = self.agent(agent)?;
        self.apply(|r| r.set_available(now, agent, media, available))
            .await
    }

    /// Lets time pass: offer timeouts, relaxation, overflow.
    pub async fn tick(&mut self, now: Timestamp) -> Result<Vec<Output>, DurableError> {
        self.apply(|r| {
            r.handle_timeout(now);
            Ok(())
        })
        .await
    }

    /// The next instant at which [`tick`](Self::tick) has work.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.router.poll_timeout()
    }

    fn agent(&self, name: &str) -> Result<AgentId, DurableError> {
        self.catalog
            .agent_id(name)
            .ok_or_else(|| DurableError::UnknownAgent(name.to_owned()))
    }

    async fn apply(
        &mut self,
        input: impl FnOnce(&mut Router) -> Result<(), RouterError>,
    ) -> Result<Vec<Output>, DurableError> {
        self.flush().await?;
        input(&mut self.router).map_err(|e| refused(&e, &self.catalog))?;
        self.settle().await
    }

    /// Turns the router's outputs into transitions, writes them, then hands the outputs over.
    async fn settle(&mut self) -> Result<Vec<Output>, DurableError> {
        self.collect();
        self.flush().await?;
        Ok(std::mem::take(&mut self.unreported))
    }

    /// Writes what is unwritten; outputs stay unreported until their transitions are stored.
    async fn flush(&mut self) -> Result<(), DurableError> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        self.store.record(&self.unwritten).await?;
        self.unwritten.clear();
        Ok(())
    }

    /// The records of contacts that are not calls and ended since the last call (to write).
    pub fn take_ended_records(&mut self) -> Vec<NewCdr> {
        self.records.take_ended()
    }

    /// Outputs that a caller can still collect after a store failure was repaired.
    pub fn take_unreported(&mut self) -> Vec<Output> {
        if self.unwritten.is_empty() {
            std::mem::take(&mut self.unreported)
        } else {
            Vec::new()
        }
    }

    fn collect(&mut self) {
        let outputs: Vec<Output> = self.router.drain_outputs().collect();
        for output in &outputs {
            self.records.observe(output, &self.catalog);
            if let Some(transition) = self.transition(output) {
                self.unwritten.push(transition);
            }
        }
        self.unreported.extend(outputs);
    }

    /// The stored change an output stands for, if any.
    fn transition(&mut self, output: &Output) -> Option<Transition> {
        let agent_name =
            |catalog: &Catalog, agent: AgentId| Some(catalog.agent_name(agent).to_owned());
        let contact = output.contact();
        let mut t = match output {
            Output::Queued { .. } | Output::OfferWithdrawn { .. } => return None,
            Output::Offered { agents, at, .. } => {
                let mut t = Transition::new(contact, ContactState::Offered, *at);
                t.agent = agents.first().and_then(|a| agent_name(&self.catalog, *a));
                if agents.len() > 1 {
                    let names: Vec<&str> =
                        agents.iter().map(|a| self.catalog.agent_name(*a)).collect();
                    t.detail = Some(format!("ringing {}", names.join(", ")));
                }
                t
            }
            Output::OfferExtended { agent, at, .. } => {
                let mut t = Transition::new(contact, ContactState::Offered, *at);
                t.detail = Some(format!("also ringing {}", self.catalog.agent_name(*agent)));
                t
            }
            Output::OfferMissed {
                agent, reason, at, ..
            } => {
                let state = self
                    .states
                    .get(&contact)
                    .copied()
                    .unwrap_or(ContactState::Offered);
                let mut t = Transition::new(contact, state, *at);
                t.detail = Some(format!(
                    "{} missed the offer: {reason:?}",
                    self.catalog.agent_name(*agent)
                ));
                t
            }
            Output::Requeued { at, .. } => {
                let mut t = Transition::new(contact, ContactState::Queued, *at);
                t.detail = Some("back at its place".to_owned());
                t
            }
            Output::Connected { agent, at, .. } => {
                let mut t = Transition::new(contact, ContactState::Connected, *at);
                t.agent = agent_name(&self.catalog, *agent);
                t
            }
            Output::Overflowed {
                from, target, at, ..
            } => {
                let mut t = Transition::new(contact, ContactState::Queued, *at);
                let from = self.catalog.queue_name(*from).to_owned();
                match target {
                    OverflowTarget::Queue(to) => {
                        t.queue = Some(self.catalog.queue_name(*to).to_owned());
                        t.detail = Some(format!("overflowed from {from}"));
                    }
                    other => {
                        // The contact ends (or becomes a callback) in the outputs that follow.
                        let state = self
                            .states
                            .get(&contact)
                            .copied()
                            .unwrap_or(ContactState::Queued);
                        t.state = state;
                        t.detail = Some(format!("overflow from {from} to {other:?}"));
                    }
                }
                t
            }
            Output::PriorityChanged { priority, at, .. } => {
                let state = self
                    .states
                    .get(&contact)
                    .copied()
                    .unwrap_or(ContactState::Queued);
                let mut t = Transition::new(contact, state, *at);
                t.priority = Some(*priority);
                t
            }
            Output::BecameCallback { at, .. } => {
                let mut t = Transition::new(contact, ContactState::Queued, *at);
                t.media = Some(MediaType::Callback);
                t.detail = Some("became a callback, keeping its place".to_owned());
                t
            }
            Output::Ended {
                outcome, agent, at, ..
            } => {
                let mut t = Transition::new(contact, outcome.state(), *at);
                t.agent = agent.and_then(|a| agent_name(&self.catalog, a));
                if *outcome == Outcome::Overflowed {
                    t.detail = Some("left the queues for its overflow target".to_owned());
                }
                t
            }
        };
        if t.state.is_final() {
            self.states.remove(&contact);
            self.attributes.remove(&contact);
        } else {
            self.states.insert(contact, t.state);
        }
        if t.detail.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            t.detail = t.detail.map(|d| d.chars().take(1000).collect());
        }
        Some(t)
    }
}
