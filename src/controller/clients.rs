//! The clients (tenants) the operator manages, above every client's own administrators: each
//! client's trunk rules (R, trunks per available agent; T, after-hours trunks), set over the
//! API, stored as catalog items of kind `client`, laid over the config file's `[[clients]]` at
//! the next start, and applied to admission at once.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::admission::{AdmissionRule, ClientTrunks};
use crate::config::{DEFAULT_AFTER_HOURS_TRUNKS, DEFAULT_TRUNK_RATIO, Resolved, TRUNK_RATIO_LIMIT};
use crate::model::Timestamp;
use crate::routing::Output;
use crate::store::{CatalogItem, CatalogKind};

use super::DurableRouter;
use super::admin::{AdminError, AdminOutcome, Directory};
use super::telephony::Telephony;

/// The name operator keys are stored under; no client may take it.
pub use crate::web::OPERATOR_TENANT;

/// Longest client name, in bytes (as the config file's names).
pub const MAX_CLIENT_NAME_BYTES: usize = 200;

/// What a stored client item holds, and what `PUT /api/v1/clients/{name}` takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRules {
    /// R: trunks per available agent, above 0 and at most [`TRUNK_RATIO_LIMIT`].
    #[serde(default = "default_ratio")]
    pub trunk_ratio: f64,
    /// T: trunks the client keeps when few agents are available.
    #[serde(default = "default_after_hours")]
    pub after_hours_trunks: u32,
}

fn default_ratio() -> f64 {
    DEFAULT_TRUNK_RATIO
}

fn default_after_hours() -> u32 {
    DEFAULT_AFTER_HOURS_TRUNKS
}

impl Default for ClientRules {
    fn default() -> Self {
        ClientRules {
            trunk_ratio: DEFAULT_TRUNK_RATIO,
            after_hours_trunks: DEFAULT_AFTER_HOURS_TRUNKS,
        }
    }
}

impl ClientRules {
    /// The rules as admission takes them.
    pub fn trunks(self) -> ClientTrunks {
        ClientTrunks {
            ratio: self.trunk_ratio,
            after_hours: self.after_hours_trunks,
        }
    }

    /// The rules admission has.
    pub fn of(trunks: ClientTrunks) -> ClientRules {
        ClientRules {
            trunk_ratio: trunks.ratio,
            after_hours_trunks: trunks.after_hours,
        }
    }

    /// Refuses a ratio admission cannot use.
    pub fn check(&self) -> Result<(), AdminError> {
        let ratio = self.trunk_ratio;
        if !ratio.is_finite() || ratio <= 0.0 || ratio > TRUNK_RATIO_LIMIT {
            return Err(AdminError::invalid(
                "trunk_ratio",
                format!(
                    "{ratio} is out of range; expected a number of trunks per available agent \
                     above 0, at most {TRUNK_RATIO_LIMIT}"
                ),
            ));
        }
        Ok(())
    }
}

/// Refuses a name no client can have.
pub fn check_name(name: &str) -> Result<(), AdminError> {
    if name.trim().is_empty() || name.len() > MAX_CLIENT_NAME_BYTES {
        return Err(AdminError::invalid(
            "name",
            format!("a client's name is 1 to {MAX_CLIENT_NAME_BYTES} bytes, not blank"),
        ));
    }
    if name == OPERATOR_TENANT {
        return Err(AdminError::invalid(
            "name",
            format!("{OPERATOR_TENANT:?} is the operator's own; choose another name"),
        ));
    }
    Ok(())
}

/// One client as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientView {
    /// Its name (the `tenant` of its queues, agents, keys and records).
    pub name: String,
    /// Its trunk rules in force.
    #[serde(flatten)]
    pub rules: ClientRules,
    /// Whether the operator set the rules over the API (else the config file's or defaults).
    pub set_by_operator: bool,
    /// Its open queues.
    pub queues: usize,
    /// Its agents.
    pub agents: usize,
    /// Admission now, where there is a calls side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<ClientAdmission>,
}

/// A client's admission figures now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClientAdmission {
    /// A: its available agents.
    pub available_agents: u32,
    /// Its calls holding a trunk.
    pub calls: u32,
    /// Simultaneous calls permitted now: max(A×R, A+T).
    pub permitted: u32,
}

/// Rules the config file gave (by client name), before the stored items are laid over it.
pub(crate) fn from_config(resolved: &Resolved) -> BTreeMap<String, ClientRules> {
    resolved
        .clients
        .iter()
        .map(|(tenant, trunks)| {
            (
                resolved.catalog.tenant_name(*tenant).to_owned(),
                ClientRules::of(*trunks),
            )
        })
        .collect()
}

/// Lays the stored client items over `resolved`'s clients (and the directory's): a client the
/// operator created is known from the start, with its rules.
pub(crate) fn overlay(resolved: &mut Resolved, dir: &mut Directory, items: &[CatalogItem]) {
    for item in items.iter().filter(|i| i.kind == CatalogKind::Client) {
        let Some(json) = &item.definition else {
            continue;
        };
        let rules = match serde_json::from_str::<ClientRules>(json) {
            Ok(rules) if rules.check().is_ok() => rules,
            Ok(_) | Err(_) => {
                tracing::warn!(
                    client = item.name,
                    "stored client rules unreadable; skipped"
                );
                continue;
            }
        };
        let tenant = resolved.catalog.tenant(&item.name);
        match resolved.clients.iter_mut().find(|(t, _)| *t == tenant) {
            Some((_, trunks)) => *trunks = rules.trunks(),
            None => resolved.clients.push((tenant, rules.trunks())),
        }
        dir.clients.insert(item.name.clone(), rules);
        dir.operator_clients.insert(item.name.clone());
    }
}

/// Creates a client or changes its trunk rules: stored, then live in admission.
pub(crate) async fn put_client(
    router: &mut DurableRouter,
    telephony: Option<&mut Telephony>,
    now: Timestamp,
    name: &str,
    rules: ClientRules,
) -> Result<(AdminOutcome, Vec<Output>), AdminError> {
    check_name(name)?;
    rules.check()?;
    let dir = router.directory();
    let known = dir.clients.contains_key(name) || router.catalog().tenant_id(name).is_some();
    if dir.clients.get(name) == Some(&rules) && dir.operator_clients.contains(name) {
        return Ok((AdminOutcome::Unchanged, Vec::new()));
    }
    let definition = serde_json::to_string(&rules)
        .map_err(|e| AdminError::invalid("definition", e.to_string()))?;
    super::admin::store(
        router,
        CatalogKind::Client,
        name,
        OPERATOR_TENANT,
        Some(definition),
        now,
    )
    .await?;
    let (tenant, outputs) = router
        .change(|_, catalog, dir| {
            dir.clients.insert(name.to_owned(), rules);
            dir.operator_clients.insert(name.to_owned());
            Ok(catalog.tenant(name))
        })
        .await?;
    if let Some(t) = telephony {
        t.calls_mut()
            .admission_mut()
            .set_client(tenant, rules.trunks());
    }
    let outcome = if known {
        AdminOutcome::Updated
    } else {
        AdminOutcome::Created
    };
    Ok((outcome, outputs))
}

/// Every client: those with rules, and those that own queues or agents.
pub(crate) fn list(
    router: &DurableRouter,
    telephony: Option<&Telephony>,
    now: Timestamp,
) -> Vec<ClientView> {
    let dir = router.directory();
    let catalog = router.catalog();
    let mut queues: BTreeMap<&str, usize> = BTreeMap::new();
    for id in router.router().queue_ids() {
        if dir.is_closed(id) {
            continue;
        }
        if let Some(setup) = catalog.queue_setup(id) {
            *queues.entry(setup.tenant.as_str()).or_default() += 1;
        }
    }
    let mut agents: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, setup) in dir.agents() {
        *agents.entry(setup.tenant.as_str()).or_default() += 1;
    }
    let names: BTreeSet<&str> = dir
        .clients
        .keys()
        .map(String::as_str)
        .chain(queues.keys().copied())
        .chain(agents.keys().copied())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let admission = telephony
                .zip(catalog.tenant_id(name))
                .map(|(t, tenant)| t.calls().admission().decide(now, tenant))
                .filter(|d| d.rule != AdmissionRule::UnknownClient)
                .map(|d| ClientAdmission {
                    available_agents: d.agents,
                    calls: d.active,
                    permitted: d.permitted,
                });
            ClientView {
                name: name.to_owned(),
                rules: dir.clients.get(name).copied().unwrap_or_default(),
                set_by_operator: dir.operator_clients.contains(name),
                queues: queues.get(name).copied().unwrap_or(0),
                agents: agents.get(name).copied().unwrap_or(0),
                admission,
            }
        })
        .collect()
}

/// Gives the calls side the rules the operator set (after a restart). Only those: the
/// setup's own choices for the config file's clients stand.
pub(crate) fn prepare_calls(router: &DurableRouter, admission: &mut crate::admission::Admission) {
    let dir = router.directory();
    for name in &dir.operator_clients {
        if let (Some(rules), Some(tenant)) =
            (dir.clients.get(name), router.catalog().tenant_id(name))
        {
            admission.set_client(tenant, rules.trunks());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_admission_cannot_use_are_refused_with_the_field() {
        for ratio in [0.0, -1.0, f64::NAN, f64::INFINITY, TRUNK_RATIO_LIMIT * 2.0] {
            let rules = ClientRules {
                trunk_ratio: ratio,
                after_hours_trunks: 0,
            };
            let error = rules.check().expect_err("refused").to_string();
            assert!(error.starts_with("trunk_ratio:"), "{error}");
        }
        let fine = ClientRules {
            trunk_ratio: 0.5,
            after_hours_trunks: 0,
        };
        assert!(fine.check().is_ok());
    }

    #[test]
    fn the_operators_own_name_and_blank_names_are_not_clients() {
        for name in ["", "  ", OPERATOR_TENANT, &"x".repeat(201)] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name("initech").is_ok());
    }

    #[test]
    fn rules_left_out_of_a_body_take_the_defaults() {
        let rules: ClientRules = serde_json::from_str(r#"{"trunk_ratio": 2}"#).unwrap();
        assert_eq!(rules.after_hours_trunks, DEFAULT_AFTER_HOURS_TRUNKS);
        assert_eq!(rules.trunk_ratio, 2.0);
        assert!(serde_json::from_str::<ClientRules>(r#"{"trunks": 2}"#).is_err());
    }
}
