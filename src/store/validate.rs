//! Checks at the store's boundary: bad input is refused with the field's name before any SQL
//! runs, so that both backends refuse the same things (PostgreSQL cannot store NUL characters,
//! SQLite could).

use crate::model::Timestamp;

use super::StoreError;
use super::records::{AgentStateChange, CatalogItem, NewCdr, NewContact, Transition};

/// The longest tenant, queue, agent, customer or attribute name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The most attributes one contact may carry.
pub const MAX_ATTRIBUTES: usize = 64;
/// The longest attribute value, in characters.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 1_000;
/// The largest criteria JSON, in bytes.
pub const MAX_CRITERIA_BYTES: usize = 64 * 1024;
/// The longest transition detail, in characters.
pub const MAX_DETAIL_CHARS: usize = 1_000;
/// The largest definition of a catalog item (a queue, agent or flow as JSON), in bytes.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// The longest caller or called address of a CDR (a number, SIP URI, email address), in characters.
pub const MAX_ADDRESS_CHARS: usize = 256;
/// The longest recording path of a CDR, in characters.
pub const MAX_PATH_CHARS: usize = 1_024;
/// The longest CDR cause or agent state reason, in characters.
pub const MAX_CAUSE_CHARS: usize = 1_000;
/// The number of rows a listing returns when the caller does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The most rows one listing may return.
pub const MAX_LIST_LIMIT: u32 = 1_000;
/// The most agent state changes one batch may write.
pub const MAX_AGENT_STATE_BATCH: usize = 10_000;
/// The shortest web user password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest web user password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks every field of a new contact.
pub(crate) fn new_contact(contact: &NewContact) -> Result<(), StoreError> {
    name("tenant", &contact.tenant)?;
    name("queue", &contact.queue)?;
    if let Some(customer) = &contact.customer {
        name("customer", customer)?;
    }
    attributes("attributes", &contact.attributes)?;
    criteria(&contact.criteria_json)
}

/// Routing attributes: at most [`MAX_ATTRIBUTES`], names 1 to 200 characters, values at most
/// [`MAX_ATTRIBUTE_VALUE_CHARS`]. Public so that a caller can check attributes before it acts
/// on them (a flow's collected attributes, before the contact is queued).
pub fn attributes(
    field: &str,
    attributes: &std::collections::BTreeMap<String, String>,
) -> Result<(), StoreError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(StoreError::invalid(
            field,
            format!(
                "{} entries, at most {MAX_ATTRIBUTES} allowed",
                attributes.len()
            ),
        ));
    }
    for (key, value) in attributes {
        let entry = format!("{field}[{:?}]", shorten(key));
        name(&format!("{entry} (its name)"), key)?;
        text(&entry, value, MAX_ATTRIBUTE_VALUE_CHARS)?;
    }
    Ok(())
}

/// Checks every field of transition number `index` of a batch.
pub(crate) fn transition(index: usize, transition: &Transition) -> Result<(), StoreError> {
    let field = |name: &str| format!("transitions[{index}].{name} ({})", transition.contact);
    if let Some(agent) = &transition.agent {
        name(&field("agent"), agent)?;
    }
    if let Some(queue) = &transition.queue {
        name(&field("queue"), queue)?;
    }
    if let Some(detail) = &transition.detail {
        text(&field("detail"), detail, MAX_DETAIL_CHARS)?;
    }
    if let Some(map) = &transition.attributes {
        attributes(&field("attributes"), map)?;
    }
    Ok(())
}

/// Checks every field of a call detail record.
pub(crate) fn new_cdr(cdr: &NewCdr) -> Result<(), StoreError> {
    name("tenant", &cdr.tenant)?;
    name("queue", &cdr.queue)?;
    text("caller", &cdr.caller, MAX_ADDRESS_CHARS)?;
    text("called", &cdr.called, MAX_ADDRESS_CHARS)?;
    if let Some(agent) = &cdr.agent {
        name("agent", agent)?;
    }
    if let Some(recording) = &cdr.recording {
        text("recording", recording, MAX_PATH_CHARS)?;
    }
    if let Some(cause) = &cdr.cause {
        text("cause", cause, MAX_CAUSE_CHARS)?;
    }
    attributes("attributes", &cdr.attributes)?;
    if cdr.ended_at < cdr.arrived_at {
        return Err(StoreError::invalid(
            "ended_at",
            format!("{} is before arrived_at {}", cdr.ended_at, cdr.arrived_at),
        ));
    }
    let answered = cdr.answered_at;
    if let Some(answered) = answered.filter(|t| !(cdr.arrived_at..=cdr.ended_at).contains(t)) {
        return Err(StoreError::invalid(
            "answered_at",
            format!(
                "{answered} is outside arrived_at {} to ended_at {}",
                cdr.arrived_at, cdr.ended_at
            ),
        ));
    }
    for (field, ms) in [
        ("wait_ms", cdr.wait_ms),
        ("talk_ms", cdr.talk_ms),
        ("wrap_up_ms", cdr.wrap_up_ms),
    ] {
        millis(field, ms)?;
    }
    Ok(())
}

/// Checks every field of agent state change number `index` of a batch.
pub(crate) fn agent_state_change(
    index: usize,
    change: &AgentStateChange,
) -> Result<(), StoreError> {
    let field = |name: &str| format!("changes[{index}].{name}");
    name(&field("tenant"), &change.tenant)?;
    name(&field("agent"), &change.agent)?;
    if let Some(reason) = &change.reason {
        text(&field("reason"), reason, MAX_CAUSE_CHARS)?;
    }
    Ok(())
}

/// Checks every field of a catalog item; its definition must be well-formed JSON.
pub(crate) fn catalog_item(item: &CatalogItem) -> Result<(), StoreError> {
    name("name", &item.name)?;
    name("tenant", &item.tenant)?;
    if let Some(definition) = &item.definition {
        json("definition", definition, MAX_DEFINITION_BYTES)?;
    }
    Ok(())
}

/// The size of a batch of agent state changes.
pub(crate) fn agent_state_batch(len: usize) -> Result<(), StoreError> {
    if len > MAX_AGENT_STATE_BATCH {
        return Err(StoreError::invalid(
            "changes",
            format!("{len} changes in one batch, at most {MAX_AGENT_STATE_BATCH} allowed"),
        ));
    }
    Ok(())
}

/// A listing's limit: [`DEFAULT_LIST_LIMIT`] if unset, else 1 to [`MAX_LIST_LIMIT`].
pub(crate) fn limit(field: &str, limit: Option<u32>) -> Result<u32, StoreError> {
    match limit {
        None => Ok(DEFAULT_LIST_LIMIT),
        Some(n @ 1..=MAX_LIST_LIMIT) => Ok(n),
        Some(n) => Err(StoreError::invalid(
            field,
            format!("is {n}, expected 1 to {MAX_LIST_LIMIT}"),
        )),
    }
}

/// A window `[from, to)`: `from` (named `field`) not after `to`.
pub(crate) fn window(field: &str, from: Timestamp, to: Timestamp) -> Result<(), StoreError> {
    if from > to {
        return Err(StoreError::invalid(
            field,
            format!("{from} is after to {to}"),
        ));
    }
    Ok(())
}

/// A duration in milliseconds that fits the database's BIGINT.
fn millis(field: &str, ms: u64) -> Result<i64, StoreError> {
    i64::try_from(ms)
        .map_err(|_| StoreError::invalid(field, format!("is {ms}, at most {} allowed", i64::MAX)))
}

/// A web user's password: [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters, no NUL.
pub(crate) fn password(value: &str) -> Result<(), StoreError> {
    let chars = value.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        // Never echo the password itself.
        return Err(StoreError::invalid(
            "password",
            format!("is {chars} characters long, at least {MIN_PASSWORD_CHARS} required"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(StoreError::invalid(
            "password",
            format!("is {chars} characters long, at most {MAX_PASSWORD_CHARS} allowed"),
        ));
    }
    if value.contains('\0') {
        return Err(StoreError::invalid("password", "contains a NUL character"));
    }
    Ok(())
}

/// A name: not blank, at most [`MAX_NAME_CHARS`] characters, no NUL.
pub(crate) fn name(field: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() {
        return Err(StoreError::invalid(field, "is empty"));
    }
    text(field, value, MAX_NAME_CHARS)
}

/// Free text: at most `max_chars` characters, no NUL.
pub(crate) fn text(field: &str, value: &str, max_chars: usize) -> Result<(), StoreError> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(StoreError::invalid(
            field,
            format!("is {chars} characters long, at most {max_chars} allowed"),
        ));
    }
    no_nul(field, value)
}

/// The criteria: well-formed JSON of bounded size.
fn criteria(text: &str) -> Result<(), StoreError> {
    json("criteria_json", text, MAX_CRITERIA_BYTES)
}

/// Well-formed JSON of at most `max_bytes`, no NUL.
fn json(field: &str, text: &str, max_bytes: usize) -> Result<(), StoreError> {
    if text.len() > max_bytes {
        return Err(StoreError::invalid(
            field,
            format!("is {} bytes long, at most {max_bytes} allowed", text.len()),
        ));
    }
    no_nul(field, text)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| StoreError::invalid(field, format!("is not valid JSON: {e}")))
}

fn no_nul(field: &str, value: &str) -> Result<(), StoreError> {
    match value.find('\0') {
        Some(at) => Err(StoreError::invalid(
            field,
            format!("contains a NUL character at byte {at}"),
        )),
        None => Ok(()),
    }
}

/// At most 40 characters of `s`, for naming a field by a possibly huge key.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(name("tenant", &"é".repeat(MAX_NAME_CHARS)).is_ok());
        let err = name("tenant", &"é".repeat(MAX_NAME_CHARS + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid tenant: is 201 characters long, at most 200 allowed"
        );
    }

    #[test]
    fn blank_and_nul_are_refused() {
        assert!(name("queue", " \t").is_err());
        assert!(name("queue", "sales\0").is_err());
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit("limit", None).unwrap(), DEFAULT_LIST_LIMIT);
        assert_eq!(
            limit("limit", Some(MAX_LIST_LIMIT)).unwrap(),
            MAX_LIST_LIMIT
        );
        for bad in [0, MAX_LIST_LIMIT + 1, u32::MAX] {
            let err = limit("filter.limit", Some(bad)).unwrap_err();
            assert!(err.to_string().starts_with("invalid filter.limit"), "{err}");
        }
    }

    #[test]
    fn passwords_are_bounded_and_never_echoed() {
        assert!(password("12345678").is_ok());
        let err = password("hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert!(password("12345678\0").is_err());
    }

    #[test]
    fn huge_keys_are_shortened_in_messages() {
        assert_eq!(shorten(&"k".repeat(100)).chars().count(), 41);
        assert_eq!(shorten("lang"), "lang");
    }
}
