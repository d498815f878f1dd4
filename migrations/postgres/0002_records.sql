-- Records of issue 5 (PostgreSQL): call detail records, agent state history, API credentials.
-- Keep in step with ../sqlite/0002_records.sql: same tables, columns and meanings.
-- The conventions of 0001 hold: instants are BIGINT microseconds since the Unix epoch, codes
-- (media types, dispositions, agent states, roles) are short stable text, never CHECK-constrained;
-- the store validates every code it reads back and reports a corrupt row by id.

-- One call detail record per contact, written when the contact ends.
-- contact_id is the store's ContactId but not a foreign key: CDRs are kept (and contacts
-- pruned) on their own schedules. UNIQUE makes a second write for a contact a no-op that the
-- store reports as a duplicate.
CREATE TABLE cdrs (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    contact_id  BIGINT  NOT NULL UNIQUE,
    media       TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    caller      TEXT    NOT NULL, -- "from": the calling number, address or chat handle
    called      TEXT    NOT NULL, -- "to": the number or address the customer reached
    agent       TEXT,
    handler     BIGINT,           -- the media handler (HandlerId) that carried it
    arrived_at  BIGINT  NOT NULL,
    answered_at BIGINT,           -- when an agent answered
    ended_at    BIGINT  NOT NULL,
    wait_ms     BIGINT  NOT NULL,
    talk_ms     BIGINT  NOT NULL,
    wrap_up_ms  BIGINT  NOT NULL,
    recording   TEXT,             -- path of the recording on the media handler
    disposition TEXT    NOT NULL,
    cause       TEXT              -- why: an admission explanation, a hangup cause
);

-- Listing a tenant's CDRs by end time (the cursor is ended_at, id).
CREATE INDEX cdrs_tenant_ended ON cdrs (tenant, ended_at, id);

-- Every agent state change, stamped.
CREATE TABLE agent_states (
    id     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- the order changes were written in
    tenant TEXT    NOT NULL,
    agent  TEXT    NOT NULL,
    state  TEXT    NOT NULL, -- AgentState::code
    reason TEXT,
    at     BIGINT  NOT NULL
);

CREATE INDEX agent_states_by_agent ON agent_states (tenant, agent, at, id);
CREATE INDEX agent_states_by_time ON agent_states (tenant, at, id);

-- API keys of the HTTP API. The secret is shown once at creation; only its argon2id hash (a PHC
-- string, which carries its own parameters and salt) is kept.
CREATE TABLE api_keys (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id      TEXT    NOT NULL UNIQUE, -- public: the middle of sb_<key_id>_<secret>
    tenant      TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    role        TEXT    NOT NULL,        -- Role::code: client, supervisor, admin
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant, id);

-- People who sign in to the web faces. Usernames are unique across tenants (sign-in does not
-- ask for the tenant); the password is kept as an argon2id PHC string.
CREATE TABLE web_users (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    tenant        TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    disabled_at   BIGINT
);

CREATE INDEX web_users_by_tenant ON web_users (tenant, id);
