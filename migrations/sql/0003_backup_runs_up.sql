-- Backup runs end to end (connectors → RabbitMQ → worker).
--
-- Work items carry their run: connectors count what they published, the
-- worker counts what it settled and the versions it created, so a run
-- finishes once its items are indexed, not merely queued.
ALTER TABLE runs
    ADD COLUMN published  bigint NOT NULL DEFAULT 0,
    ADD COLUMN settled    bigint NOT NULL DEFAULT 0,
    -- Which connector instance runs it (for operators; the lease itself is
    -- on the connection).
    ADD COLUMN runner     text,
    -- Why a run failed as a whole (per-item and per-account errors are in
    -- run_errors).
    ADD COLUMN detail     text;

-- The container an item was last seen in (a mail folder), as a keyed hash
-- under the tenant's dedup key: a "removed from this folder" change marks
-- the item deleted only if it has not since appeared in another folder.
ALTER TABLE items ADD COLUMN container_hash bytea;

-- The last run that saw the item, changed or not: after a container is
-- listed again in full (its cursor expired), what that run did not see in
-- it is gone at the source.
ALTER TABLE items ADD COLUMN last_seen_run uuid;

-- The items of a run in flight: the connector adds each item once its page
-- is confirmed (settled = false unless the worker got there first), the
-- worker marks it settled. A run is complete when none is unsettled;
-- redeliveries and replayed pages touch the same row, so nothing is
-- counted twice. Rows are dropped when the run finishes.
CREATE TABLE run_items (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL,
    workload    text NOT NULL,
    source_id   text NOT NULL,
    settled     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, account_id, workload, source_id)
);
