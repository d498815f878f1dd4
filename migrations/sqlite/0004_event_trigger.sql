-- A contact's step in one statement (SQLite). Keep in step with ../postgres/0004_event_trigger.sql.
-- Setting a contact's state writes its event row here, from the row's new values, so that the
-- controller's journal write of one step is one statement (one round trip to the database,
-- atomic with its trigger) instead of BEGIN, UPDATE, INSERT and COMMIT.

-- The detail of the contact's last step, for its event row.
ALTER TABLE contacts ADD COLUMN last_detail TEXT;

CREATE TRIGGER contact_events_on_transition AFTER UPDATE OF state ON contacts
BEGIN
    INSERT INTO contact_events (contact_id, state, at, agent, queue, media, priority, detail)
    VALUES (NEW.id, NEW.state, NEW.updated_at, NEW.agent, NEW.queue, NEW.media, NEW.priority,
            NEW.last_detail);
END;
