//! The catalog: names of tenants, queues, agents, skills and tags, and the resolution of
//! setups (strings, seconds) into specs (ids, durations) that the router works on.

use std::collections::HashMap;
use std::time::Duration;

use crate::model::{
    AgentId, ContactId, CustomerId, Level, MediaMap, Names, QueueId, SkillId, TagId, TenantId,
    Timestamp,
};

use super::setup::{
    AgentSetup, CUSTOMER_ATTRIBUTE, ContactSetup, MembershipSetup, ModifierSetup, OverflowSetup,
    QueueSetup, SetupError, attribute_keys,
};
use super::spec::{
    AgentSpec, ContactSpec, Criterion, Membership, Modifier, OverflowTarget, QueueSpec,
    RelaxAction, RelaxStep,
};

/// Most criteria a single contact may carry (bounds memory and decision time).
pub const MAX_CRITERIA: usize = 32;

/// The key of a contact criterion that no agent has (its name was never configured).
pub const UNKNOWN_KEY: SkillId = SkillId(u32::MAX);
/// The tag of a criterion no relaxation rule names.
pub const UNKNOWN_TAG: TagId = TagId(u32::MAX);

/// Names and queue rules, shared by everything that turns text into specs.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tenants: Names,
    queues: Names,
    agents: Names,
    skills: Names,
    tags: Names,
    queue_setups: HashMap<QueueId, QueueSetup>,
}

fn seconds(value: f64) -> Duration {
    // Setups are validated first; a NaN that slipped through is zero, never a panic.
    Duration::from_secs_f64(if value.is_finite() {
        value.clamp(0.0, 1e9)
    } else {
        0.0
    })
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tenant id of `name`, assigned if new.
    pub fn tenant(&mut self, name: &str) -> TenantId {
        TenantId(self.tenants.intern(name))
    }

    /// The skill/key id of `name`, assigned if new.
    pub fn skill(&mut self, name: &str) -> SkillId {
        SkillId(self.skills.intern(name))
    }

    /// The tag id of `name`, assigned if new.
    pub fn tag(&mut self, name: &str) -> TagId {
        TagId(self.tags.intern(name))
    }

    /// The id of a known queue.
    pub fn queue_id(&self, name: &str) -> Option<QueueId> {
        self.queues.get(name).map(QueueId)
    }

    /// The id of a known agent.
    pub fn agent_id(&self, name: &str) -> Option<AgentId> {
        self.agents.get(name).map(AgentId)
    }

    /// The id of a known tenant.
    pub fn tenant_id(&self, name: &str) -> Option<TenantId> {
        self.tenants.get(name).map(TenantId)
    }

    /// A queue's name.
    pub fn queue_name(&self, id: QueueId) -> &str {
        self.queues.name(id.0).unwrap_or("?")
    }

    /// An agent's name.
    pub fn agent_name(&self, id: AgentId) -> &str {
        self.agents.name(id.0).unwrap_or("?")
    }

    /// A tenant's name.
    pub fn tenant_name(&self, id: TenantId) -> &str {
        self.tenants.name(id.0).unwrap_or("?")
    }

    /// A key's name.
    pub fn skill_name(&self, id: SkillId) -> &str {
        if id == UNKNOWN_KEY {
            return "(a key no agent has)";
        }
        self.skills.name(id.0).unwrap_or("?")
    }

    /// A tag's name.
    pub fn tag_name(&self, id: TagId) -> &str {
        self.tags.name(id.0).unwrap_or("?")
    }

    /// Number of queues known.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The setup a queue was resolved from.
    pub fn queue_setup(&self, id: QueueId) -> Option<&QueueSetup> {
        self.queue_setups.get(&id)
    }

    /// Assigns ids to every queue name first, so that overflow targets can refer to any queue.
    pub fn declare_queues<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.queues.intern(name);
        }
    }

    /// Resolves a queue; `at` names it in errors (`queues[3]`).
    pub fn resolve_queue(&mut self, setup: &QueueSetup, at: &str) -> Result<QueueSpec, SetupError> {
        setup.validate(at)?;
        let id = QueueId(self.queues.intern(&setup.name));
        let tenant = self.tenant(&setup.tenant);
        let overflow = match &setup.overflow {
            OverflowSetup::None => OverflowTarget::None,
            OverflowSetup::Voicemail => OverflowTarget::Voicemail,
            OverflowSetup::Callback => OverflowTarget::Callback,
            OverflowSetup::Disconnect => OverflowTarget::Disconnect,
            OverflowSetup::Queue(name) => {
                OverflowTarget::Queue(self.queue_id(name).ok_or_else(|| {
                    SetupError::new(
                        format!("{at}.overflow"),
                        format!("no queue is named {name:?}"),
                    )
                })?)
            }
        };
        let mut criteria = Vec::new();
        for (name, level) in &setup.skills {
            criteria.push(Criterion {
                key: self.skill(name),
                tag: self.tag(name),
                min_level: *level,
                modifier: Modifier::Required,
            });
        }
        let mut relax = Vec::new();
        for step in &setup.relax {
            let after = seconds(step.after_s);
            if let Some(name) = &step.name {
                let tag = self.tag(name);
                if let Some(level) = step.min_level {
                    relax.push(RelaxStep {
                        after,
                        action: RelaxAction::MinLevel { tag, level },
                    });
                }
                if step.drop {
                    relax.push(RelaxStep {
                        after,
                        action: RelaxAction::Drop { tag },
                    });
                }
            }
            if let Some(level) = step.max_tier_level {
                relax.push(RelaxStep {
                    after,
                    action: RelaxAction::MaxTierLevel(level),
                });
            }
        }
        let spec = QueueSpec {
            id,
            tenant,
            strategy: setup.strategy,
            offer_timeout: seconds(setup.offer_timeout_s),
            max_wait: setup.max_wait_s.map(seconds),
            overflow,
            service_level: seconds(setup.service_level_s),
            weight: setup.weight,
            wait_factor_permille: (setup.wait_factor * 1000.0).round() as u32,
            affinity: seconds(setup.affinity_s),
            ring_progressively_delay: seconds(setup.ring_progressively_delay_s),
            default_handle: seconds(setup.default_handle_s),
            criteria,
            relax,
            tier_step: setup
                .tier_rules
                .as_ref()
                .map(|rules| seconds(rules.wait_per_level_s)),
            max_tier_level: setup
                .max_tier_level
                .or(setup.tier_rules.as_ref().map(|_| 1)),
        };
        self.queue_setups.insert(id, setup.clone());
        Ok(spec)
    }

    /// Resolves an agent; `at` names it in errors (`agents[7]`). Queues must be resolved first.
    pub fn resolve_agent(&mut self, setup: &AgentSetup, at: &str) -> Result<AgentSpec, SetupError> {
        setup.validate(at)?;
        let id = AgentId(self.agents.intern(&setup.name));
        let tenant = self.tenant(&setup.tenant);
        let mut skills: Vec<(SkillId, Level)> = Vec::new();
        for (name, level) in &setup.skills {
            skills.push((self.skill(name), *level));
        }
        for (name, value) in &setup.attributes {
            let keys = attribute_keys(name, value)
                .map_err(|message| SetupError::new(format!("{at}.attributes.{name}"), message))?;
            for (key, level) in keys {
                skills.push((self.skill(&key), level));
            }
        }
        // One entry per key: the highest level wins when a skill and an attribute overlap.
        skills.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        skills.dedup_by_key(|(key, _)| *key);
        let mut slots = MediaMap::<u8>::default();
        for (media, count) in &setup.slots {
            *slots.get_mut(*media) = *count;
        }
        let mut memberships = Vec::new();
        for (i, membership) in setup.queues.iter().enumerate() {
            let path = format!("{at}.queues[{i}]");
            let name = membership.queue();
            let queue = self
                .queue_id(name)
                .filter(|q| self.queue_setups.contains_key(q))
                .ok_or_else(|| {
                    SetupError::new(path.clone(), format!("no queue is named {name:?}"))
                })?;
            let queue_tenant = self.queue_setups.get(&queue).map(|q| q.tenant.as_str());
            if queue_tenant != Some(setup.tenant.as_str()) {
                return Err(SetupError::new(
                    path,
                    format!(
                        "queue {name:?} belongs to tenant {:?}, agent {:?} to {:?}; agents serve their own tenant's queues",
                        queue_tenant.unwrap_or("?"),
                        setup.name,
                        setup.tenant
                    ),
                ));
            }
            if memberships.iter().any(|m: &Membership| m.queue == queue) {
                return Err(SetupError::new(
                    path,
                    format!("queue {name:?} is listed twice"),
                ));
            }
            let (level, position) = match membership {
                MembershipSetup::Name(_) => (1, None),
                MembershipSetup::Tier(tier) => (tier.level, tier.position),
            };
            memberships.push(Membership {
                queue,
                level,
                position: position.unwrap_or(id.0),
            });
        }
        Ok(AgentSpec {
            id,
            tenant,
            skills,
            slots,
            memberships,
        })
    }

    /// Resolves a contact: the queue's attribute rules turn attributes into criteria, explicit
    /// criteria are added, and the `customer` attribute names the customer.
    pub fn resolve_contact(
        &self,
        setup: &ContactSetup,
        id: ContactId,
        arrival: Timestamp,
    ) -> Result<ContactSpec, SetupError> {
        let queue = self
            .queue_id(&setup.queue)
            .filter(|q| self.queue_setups.contains_key(q))
            .ok_or_else(|| {
                SetupError::new("queue", format!("no queue is named {:?}", setup.queue))
            })?;
        let queue_setup = self.queue_setups.get(&queue).ok_or_else(|| {
            SetupError::new("queue", format!("queue {:?} has no setup", setup.queue))
        })?;
        let tenant = TenantId(self.tenants.get(&queue_setup.tenant).unwrap_or(u32::MAX));
        // Contacts only look names up: a key no agent has cannot be matched anyway, and
        // interning whatever callers send would grow memory without bound.
        let key_of = |name: &str| self.skills.get(name).map_or(UNKNOWN_KEY, SkillId);
        let tag_of = |name: &str| self.tags.get(name).map_or(UNKNOWN_TAG, TagId);
        let mut criteria = Vec::new();
        for rule in &queue_setup.attributes {
            let Some(value) = setup.attributes.get(&rule.name) else {
                continue;
            };
            criteria.push(Criterion {
                key: key_of(&format!("{}={}", rule.name, value)),
                tag: tag_of(&rule.name),
                min_level: rule.min_level,
                modifier: modifier(rule.modifier, rule.weight),
            });
        }
        for (i, explicit) in setup.criteria.iter().enumerate() {
            if explicit.key.trim().is_empty() {
                return Err(SetupError::new(
                    format!("criteria[{i}].key"),
                    "expected a non-empty key",
                ));
            }
            let tag_name = explicit.key.split('=').next().unwrap_or(&explicit.key);
            criteria.push(Criterion {
                key: key_of(&explicit.key),
                tag: tag_of(tag_name),
                min_level: explicit.min_level,
                modifier: modifier(explicit.modifier, explicit.weight),
            });
        }
        if criteria.len() > MAX_CRITERIA {
            return Err(SetupError::new(
                "criteria",
                format!(
                    "{} criteria; a contact may carry at most {MAX_CRITERIA}",
                    criteria.len()
                ),
            ));
        }
        let customer = setup
            .attributes
            .get(CUSTOMER_ATTRIBUTE)
            .map(|reference| CustomerId::from_reference(tenant, reference));
        Ok(ContactSpec {
            id,
            tenant,
            queue,
            media: setup.media,
            priority: setup.priority,
            arrival,
            customer,
            criteria,
        })
    }
}

fn modifier(setup: ModifierSetup, weight: u32) -> Modifier {
    match setup {
        ModifierSetup::Required => Modifier::Required,
        ModifierSetup::Preferred => Modifier::Preferred { weight },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MediaType;

    fn catalog_with(queues: &str) -> (Catalog, Vec<QueueSpec>) {
        #[derive(serde::Deserialize)]
        struct File {
            queues: Vec<QueueSetup>,
        }
        let file: File = toml::from_str(queues).unwrap();
        let mut catalog = Catalog::new();
        catalog.declare_queues(file.queues.iter().map(|q| q.name.as_str()));
        let specs = file
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| catalog.resolve_queue(q, &format!("queues[{i}]")).unwrap())
            .collect();
        (catalog, specs)
    }

    #[test]
    fn attributes_become_criteria_by_the_queue_rules() {
        let (mut catalog, _) = catalog_with(
            r#"
            [[queues]]
            name = "sales"
            skills = { sales = 2 }
            [[queues.attributes]]
            name = "language"
            modifier = "required"
            min_level = 5
            [[queues.attributes]]
            name = "product"
            modifier = "preferred"
            weight = 3
            "#,
        );
        let setup = ContactSetup {
            queue: "sales".into(),
            media: MediaType::Chat,
            priority: Default::default(),
            attributes: [
                ("language", "es"),
                ("product", "mortgage"),
                ("customer", "C-1"),
                ("note", "x"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            criteria: vec![],
        };
        let mut agent = AgentSetup::named("1001");
        agent.attributes.insert(
            "language".into(),
            crate::routing::setup::AttributeValue::List(vec!["es".into()]),
        );
        agent.attributes.insert(
            "product".into(),
            crate::routing::setup::AttributeValue::Text("mortgage".into()),
        );
        catalog.resolve_agent(&agent, "agents[0]").unwrap();
        let contact = catalog
            .resolve_contact(&setup, ContactId(9), Timestamp(5))
            .unwrap();
        assert_eq!(contact.criteria.len(), 2);
        assert_eq!(catalog.skill_name(contact.criteria[0].key), "language=es");
        assert_eq!(contact.criteria[0].modifier, Modifier::Required);
        assert_eq!(contact.criteria[0].min_level.get(), 5);
        assert_eq!(
            catalog.skill_name(contact.criteria[1].key),
            "product=mortgage"
        );
        assert_eq!(
            contact.criteria[1].modifier,
            Modifier::Preferred { weight: 3 }
        );
        assert!(contact.customer.is_some());
    }

    #[test]
    fn attribute_values_no_agent_has_are_not_remembered() {
        let (mut catalog, _) = catalog_with(
            r#"
            [[queues]]
            name = "sales"
            [[queues.attributes]]
            name = "language"
            modifier = "required"
            "#,
        );
        catalog
            .resolve_agent(&AgentSetup::named("1001"), "agents[0]")
            .unwrap();
        let known = catalog.skills.len();
        for i in 0..1000 {
            let setup = ContactSetup {
                queue: "sales".into(),
                media: MediaType::Voice,
                priority: Default::default(),
                attributes: [("language".to_owned(), format!("x{i}"))]
                    .into_iter()
                    .collect(),
                criteria: vec![],
            };
            let contact = catalog
                .resolve_contact(&setup, ContactId(i), Timestamp(0))
                .unwrap();
            assert_eq!(contact.criteria[0].key, UNKNOWN_KEY);
        }
        assert_eq!(
            catalog.skills.len(),
            known,
            "a flood of new values does not grow the catalog"
        );
    }

    #[test]
    fn overflow_targets_and_memberships_must_exist() {
        let (mut catalog, specs) = catalog_with(
            r#"
            [[queues]]
            name = "a"
            overflow = { queue = "b" }
            [[queues]]
            name = "b"
            "#,
        );
        assert_eq!(specs[0].overflow, OverflowTarget::Queue(specs[1].id));
        let mut agent = AgentSetup::named("1001");
        agent.queues.push(MembershipSetup::Name("c".into()));
        let err = catalog.resolve_agent(&agent, "agents[0]").unwrap_err();
        assert_eq!(err.path, "agents[0].queues[0]");
        let mut q = QueueSetup::named("x");
        q.overflow = OverflowSetup::Queue("nowhere".into());
        assert_eq!(
            catalog.resolve_queue(&q, "queues[2]").unwrap_err().path,
            "queues[2].overflow"
        );
    }

    #[test]
    fn agents_only_serve_their_own_tenants_queues() {
        let (mut catalog, _) = catalog_with(
            r#"
            [[queues]]
            name = "a"
            tenant = "acme"
            "#,
        );
        let mut agent = AgentSetup::named("1001");
        agent.tenant = "globex".into();
        agent.queues.push(MembershipSetup::Name("a".into()));
        let err = catalog.resolve_agent(&agent, "agents[0]").unwrap_err();
        assert!(err.message.contains("tenant"), "{err}");
    }

    #[test]
    fn skills_and_attributes_merge_into_one_sorted_key_list() {
        let (mut catalog, _) = catalog_with("[[queues]]\nname = \"a\"");
        let agent: AgentSetup = toml::from_str(
            r#"
            name = "1001"
            skills = { sales = 4, "language=es" = 3 }
            attributes = { language = ["es"] }
            queues = [{ queue = "a", level = 2, position = 7 }]
            "#,
        )
        .unwrap();
        let spec = catalog.resolve_agent(&agent, "agents[0]").unwrap();
        assert_eq!(spec.skills.len(), 2);
        assert!(spec.skills.windows(2).all(|w| w[0].0 < w[1].0));
        let es = catalog.skill("language=es");
        assert_eq!(spec.level_of(es).unwrap().get(), 10);
        assert_eq!(spec.memberships[0].level, 2);
        assert_eq!(spec.memberships[0].position, 7);
    }
}
