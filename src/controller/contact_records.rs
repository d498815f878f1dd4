//! The records of contacts that are not calls: chats, emails, tasks and other contacts created
//! over the API. The calls side writes the records of calls and voicemails (it knows their
//! legs, recordings and wrap-up); this follows the router's outputs for the rest and makes one
//! record per contact when it ends. Sans-IO: outputs in, records out.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::model::{AgentId, ContactId, Disposition, MediaType, Outcome, Timestamp};
use crate::routing::{Catalog, ContactSpec, Output, OverflowTarget};
use crate::store::NewCdr;

/// The attribute that names who contacted (a chat handle, an address), for the record's caller.
pub const FROM_ATTRIBUTE: &str = "from";
/// The attribute that names what was contacted (an address, a page), for the record's called.
pub const TO_ATTRIBUTE: &str = "to";

/// What is known of one open contact.
#[derive(Debug, Clone)]
struct Open {
    tenant: String,
    media: MediaType,
    queue: String,
    arrived: Timestamp,
    attributes: BTreeMap<String, String>,
    answered: Option<Timestamp>,
    agent: Option<AgentId>,
    overflow: Option<OverflowTarget>,
}

/// Open contacts followed until they end, and the records of those that ended.
#[derive(Debug, Default)]
pub struct ContactRecords {
    open: FxHashMap<ContactId, Open>,
    ended: Vec<NewCdr>,
}

impl ContactRecords {
    /// Whether the calls side writes the records of this media type (when there is one).
    pub fn belongs_to_calls(media: MediaType) -> bool {
        matches!(media, MediaType::Voice | MediaType::Voicemail)
    }

    /// Follows `spec` from now on (it arrived, or came back at a restart).
    pub fn follow(
        &mut self,
        spec: &ContactSpec,
        attributes: &BTreeMap<String, String>,
        catalog: &Catalog,
    ) {
        self.open.insert(
            spec.id,
            Open {
                tenant: catalog.tenant_name(spec.tenant).to_owned(),
                media: spec.media,
                queue: catalog.queue_name(spec.queue).to_owned(),
                arrived: spec.arrival,
                attributes: attributes.clone(),
                answered: None,
                agent: None,
                overflow: None,
            },
        );
    }

    /// Marks a followed contact connected since `at` (after a restart).
    pub fn connected_since(&mut self, contact: ContactId, agent: AgentId, at: Timestamp) {
        if let Some(open) = self.open.get_mut(&contact) {
            open.answered = Some(at);
            open.agent = Some(agent);
        }
    }

    /// Stops following a contact without a record (it was refused or dropped).
    pub fn forget(&mut self, contact: ContactId) {
        self.open.remove(&contact);
    }

    /// Takes in one of the router's outputs.
    pub fn observe(&mut self, output: &Output, catalog: &Catalog) {
        let Some(open) = self.open.get_mut(&output.contact()) else {
            return;
        };
        match *output {
            Output::Connected { agent, at, .. } => {
                open.answered.get_or_insert(at);
                open.agent = Some(agent);
            }
            Output::Overflowed { target, .. } => {
                if let OverflowTarget::Queue(queue) = target {
                    open.queue = catalog.queue_name(queue).to_owned();
                }
                open.overflow = Some(target);
            }
            Output::Ended {
                contact,
                outcome,
                agent,
                at,
            } => {
                if let Some(open) = self.open.remove(&contact) {
                    let agent = agent
                        .or(open.agent)
                        .map(|a| catalog.agent_name(a).to_owned());
                    self.ended.push(record(contact, open, outcome, agent, at));
                }
            }
            _ => {}
        }
    }

    /// The records of contacts that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<NewCdr> {
        std::mem::take(&mut self.ended)
    }

    /// Contacts followed now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no contact is followed.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

fn record(
    contact: ContactId,
    open: Open,
    outcome: Outcome,
    agent: Option<String>,
    ended: Timestamp,
) -> NewCdr {
    let ended = ended.max(open.arrived);
    let answered = open.answered.map(|t| t.clamp(open.arrived, ended));
    let ms = |from: Timestamp, to: Timestamp| {
        u64::try_from(to.0.saturating_sub(from.0).max(0) / 1000).unwrap_or(u64::MAX)
    };
    let (disposition, cause) = match outcome {
        Outcome::Completed => (Disposition::Answered, None),
        Outcome::Abandoned => (Disposition::Abandoned, None),
        Outcome::Overflowed => match open.overflow {
            Some(OverflowTarget::Voicemail) => (Disposition::OverflowedVoicemail, None),
            Some(OverflowTarget::Callback) => (Disposition::OverflowedCallback, None),
            _ => (
                Disposition::OverflowedDisconnect,
                Some(format!(
                    "the queue {:?} overflowed it: no agent served it in time",
                    open.queue
                )),
            ),
        },
    };
    let attribute = |key: &str| open.attributes.get(key).cloned().unwrap_or_default();
    NewCdr {
        caller: attribute(FROM_ATTRIBUTE),
        called: attribute(TO_ATTRIBUTE),
        tenant: open.tenant,
        contact,
        media: open.media,
        queue: open.queue,
        agent,
        handler: None,
        arrived_at: open.arrived,
        answered_at: answered,
        ended_at: ended,
        wait_ms: ms(open.arrived, answered.unwrap_or(ended)),
        talk_ms: answered.map_or(0, |a| ms(a, ended)),
        wrap_up_ms: 0,
        recording: None,
        disposition,
        cause,
        attributes: open.attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QueueId;

    const MS: i64 = 1000;

    fn setup() -> (Catalog, ContactSpec, BTreeMap<String, String>) {
        let mut catalog = Catalog::new();
        catalog.declare_queues(["chat", "chat-overflow"]);
        let tenant = catalog.tenant("acme");
        let queue = catalog.queue_id("chat").unwrap();
        let mut spec = ContactSpec::new(ContactId(7), tenant, queue, Timestamp(1_000 * MS));
        spec.media = MediaType::Chat;
        let attributes = BTreeMap::from([
            (FROM_ATTRIBUTE.to_owned(), "ana@example.com".to_owned()),
            ("topic".to_owned(), "billing".to_owned()),
        ]);
        (catalog, spec, attributes)
    }

    #[test]
    fn a_chat_served_by_an_agent_is_recorded_with_its_wait_and_talk() {
        let (catalog, spec, attributes) = setup();
        let mut records = ContactRecords::default();
        records.follow(&spec, &attributes, &catalog);
        let (contact, agent) = (spec.id, AgentId(3));
        records.observe(
            &Output::Connected {
                contact,
                agent,
                at: Timestamp(1_250 * MS),
            },
            &catalog,
        );
        assert!(
            records.take_ended().is_empty(),
            "nothing ends before it ends"
        );
        records.observe(
            &Output::Ended {
                contact,
                outcome: Outcome::Completed,
                agent: Some(agent),
                at: Timestamp(4_250 * MS),
            },
            &catalog,
        );
        let ended = records.take_ended();
        assert_eq!(ended.len(), 1);
        let cdr = &ended[0];
        assert_eq!(cdr.contact, contact);
        assert_eq!((cdr.tenant.as_str(), cdr.queue.as_str()), ("acme", "chat"));
        assert_eq!(cdr.media, MediaType::Chat);
        assert_eq!(cdr.caller, "ana@example.com");
        assert_eq!(cdr.disposition, Disposition::Answered);
        assert_eq!((cdr.wait_ms, cdr.talk_ms), (250, 3_000));
        assert_eq!(cdr.answered_at, Some(Timestamp(1_250 * MS)));
        assert_eq!(
            cdr.attributes.get("topic").map(String::as_str),
            Some("billing")
        );
        assert!(records.is_empty(), "an ended contact is no longer followed");
        // Outputs about it after the end make no second record.
        records.observe(
            &Output::Ended {
                contact,
                outcome: Outcome::Completed,
                agent: None,
                at: Timestamp(5_000 * MS),
            },
            &catalog,
        );
        assert!(records.take_ended().is_empty());
    }

    #[test]
    fn an_email_that_overflowed_to_another_queue_and_was_left_is_recorded_there() {
        let (catalog, mut spec, attributes) = setup();
        spec.media = MediaType::Email;
        let mut records = ContactRecords::default();
        records.follow(&spec, &attributes, &catalog);
        let contact = spec.id;
        let other = catalog.queue_id("chat-overflow").unwrap();
        records.observe(
            &Output::Overflowed {
                contact,
                from: spec.queue,
                target: OverflowTarget::Queue(other),
                at: Timestamp(2_000 * MS),
            },
            &catalog,
        );
        records.observe(
            &Output::Ended {
                contact,
                outcome: Outcome::Abandoned,
                agent: None,
                at: Timestamp(3_000 * MS),
            },
            &catalog,
        );
        let cdr = &records.take_ended()[0];
        assert_eq!(cdr.queue, "chat-overflow");
        assert_eq!(cdr.disposition, Disposition::Abandoned);
        assert_eq!(
            (cdr.wait_ms, cdr.talk_ms, cdr.answered_at),
            (2_000, 0, None)
        );
    }

    #[test]
    fn an_overflow_out_of_the_queues_says_where_it_went() {
        let (catalog, spec, attributes) = setup();
        let mut records = ContactRecords::default();
        for (target, disposition) in [
            (OverflowTarget::Voicemail, Disposition::OverflowedVoicemail),
            (
                OverflowTarget::Disconnect,
                Disposition::OverflowedDisconnect,
            ),
        ] {
            records.follow(&spec, &attributes, &catalog);
            let contact = spec.id;
            records.observe(
                &Output::Overflowed {
                    contact,
                    from: QueueId(0),
                    target,
                    at: Timestamp(2_000 * MS),
                },
                &catalog,
            );
            records.observe(
                &Output::Ended {
                    contact,
                    outcome: Outcome::Overflowed,
                    agent: None,
                    at: Timestamp(2_000 * MS),
                },
                &catalog,
            );
            assert_eq!(records.take_ended()[0].disposition, disposition);
        }
    }

    #[test]
    fn contacts_not_followed_make_no_record() {
        let (catalog, spec, _) = setup();
        let mut records = ContactRecords::default();
        records.observe(
            &Output::Ended {
                contact: spec.id,
                outcome: Outcome::Completed,
                agent: None,
                at: Timestamp(2_000 * MS),
            },
            &catalog,
        );
        assert!(records.take_ended().is_empty());
    }
}
