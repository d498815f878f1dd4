//! Checks at the store's boundary: bad input is refused with the field's name before any SQL
//! runs, so that both backends refuse the same things (PostgreSQL cannot store NUL characters,
//! SQLite could).

use super::StoreError;
use super::records::{NewContact, Transition};

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

/// Checks every field of a new contact.
pub(crate) fn new_contact(contact: &NewContact) -> Result<(), StoreError> {
    name("tenant", &contact.tenant)?;
    name("queue", &contact.queue)?;
    if let Some(customer) = &contact.customer {
        name("customer", customer)?;
    }
    if contact.attributes.len() > MAX_ATTRIBUTES {
        return Err(StoreError::invalid(
            "attributes",
            format!(
                "{} entries, at most {MAX_ATTRIBUTES} allowed",
                contact.attributes.len()
            ),
        ));
    }
    for (key, value) in &contact.attributes {
        let field = format!("attributes[{:?}]", shorten(key));
        name(&format!("attribute name {}", shorten(key)), key)?;
        text(&field, value, MAX_ATTRIBUTE_VALUE_CHARS)?;
    }
    criteria(&contact.criteria_json)
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
fn text(field: &str, value: &str, max_chars: usize) -> Result<(), StoreError> {
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
fn criteria(json: &str) -> Result<(), StoreError> {
    if json.len() > MAX_CRITERIA_BYTES {
        return Err(StoreError::invalid(
            "criteria_json",
            format!(
                "is {} bytes long, at most {MAX_CRITERIA_BYTES} allowed",
                json.len()
            ),
        ));
    }
    no_nul("criteria_json", json)?;
    serde_json::from_str::<serde::de::IgnoredAny>(json)
        .map(|_| ())
        .map_err(|e| StoreError::invalid("criteria_json", format!("is not valid JSON: {e}")))
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
    fn huge_keys_are_shortened_in_messages() {
        assert_eq!(shorten(&"k".repeat(100)).chars().count(), 41);
        assert_eq!(shorten("lang"), "lang");
    }
}
