-- Contacts and their lifecycle events (PostgreSQL).
-- Keep in step with ../sqlite/0001_contacts.sql: same tables, columns and meanings.
--
-- Conventions shared by both trees:
--   * instants are BIGINT microseconds since the Unix epoch (model::Timestamp.0);
--   * states and media types are their short stable codes (ContactState::code, MediaType::code);
--   * JSON is TEXT.
-- The codes are not CHECK-constrained, as in SQLite, so that both stores accept the same rows.
-- The store validates every code it reads back and reports a corrupt row by id.

CREATE TABLE contacts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    media         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    arrived_at    BIGINT  NOT NULL,
    attributes    TEXT    NOT NULL, -- JSON object of string to string
    criteria_json TEXT    NOT NULL, -- opaque JSON from the router layer
    customer      TEXT,
    state         TEXT    NOT NULL,
    agent         TEXT,
    connected_at  BIGINT,           -- first connection to an agent
    ended_at      BIGINT,           -- set when the state becomes final
    updated_at    BIGINT  NOT NULL
);

-- The queue as it is rebuilt after a restart: open contacts in serving order.
CREATE INDEX contacts_open_order ON contacts (priority DESC, arrived_at, id)
    WHERE state NOT IN ('completed', 'abandoned', 'overflowed');

CREATE INDEX contacts_tenant_state ON contacts (tenant, state);

CREATE TABLE contact_events (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- the order events were written in
    contact_id BIGINT  NOT NULL REFERENCES contacts (id),
    state      TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    agent      TEXT,             -- the contact's agent after this event
    queue      TEXT    NOT NULL, -- the contact's queue after this event
    media      TEXT    NOT NULL, -- the contact's media type after this event
    priority   INTEGER NOT NULL, -- the contact's priority after this event
    detail     TEXT
);

CREATE INDEX contact_events_by_contact ON contact_events (contact_id, id);

-- Customer affinity after a restart: recent connections.
CREATE INDEX contact_events_connected ON contact_events (at)
    WHERE state = 'connected';
