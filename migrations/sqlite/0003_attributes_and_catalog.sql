-- Contact attributes on call detail records, and the catalog administrators edit over the API
-- (SQLite). Keep in step with ../postgres/0003_attributes_and_catalog.sql: same tables, columns
-- and meanings. The conventions of 0001 hold: instants are BIGINT microseconds since the Unix
-- epoch, codes are short stable text, never CHECK-constrained, JSON is TEXT.

-- The contact's attributes when its call ended (what the caller chose in the flow's menus):
-- a JSON object of string to string. Records written before this migration have none.
ALTER TABLE cdrs ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';

-- Queues, agents and flows that administrators created, changed or deleted through the API.
-- The config file gives the initial catalog; at startup these rows are laid over it, in id
-- order. One row per (kind, name): queue and agent names are one namespace across tenants, as
-- in the router; a flow is named after its queue.
CREATE TABLE catalog_items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- the order items were first written in
    kind       TEXT    NOT NULL, -- CatalogKind::code: queue, agent, flow
    name       TEXT    NOT NULL,
    tenant     TEXT    NOT NULL, -- the client that owns the item
    definition TEXT,             -- JSON of the item; NULL: deleted (hides the config file's item)
    updated_at BIGINT  NOT NULL,
    UNIQUE (kind, name)
);

CREATE INDEX catalog_items_by_tenant ON catalog_items (tenant, kind, name);
