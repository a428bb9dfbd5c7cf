-- Search, restore and export (issue 7).
--
-- Search never reads plaintext from the database: metadata stays sealed in
-- item_versions.metadata_sealed. The worker adds blind indexes, keyed with
-- a key derived from the tenant's dedup key (so they die with the tenant's
-- keys and never match across tenants):
--   terms      64-bit keyed hashes of the words of the title (subject, event
--              title, file name) and of the sender's and recipients'
--              addresses: `terms @> ARRAY[...]` finds the candidates of a
--              text search, which are then opened and checked;
--   from_hash  the keyed hash of the sender's address, for exact matches.
ALTER TABLE item_versions
    ADD COLUMN terms bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN from_hash bytea;
CREATE INDEX item_versions_terms_idx ON item_versions USING gin (terms);
CREATE INDEX item_versions_from_idx ON item_versions (tenant_id, from_hash)
    WHERE from_hash IS NOT NULL;
-- Search by account newest first, and point-in-time selection.
CREATE INDEX item_versions_account_date_idx
    ON item_versions (account_id, workload, item_date);
-- "What was deleted?", the question support hears most: the few versions
-- deleted at the source, newest first, for the tenant or one account.
CREATE INDEX item_versions_deleted_idx ON item_versions (tenant_id, item_date)
    WHERE deleted_at_source IS NOT NULL;
CREATE INDEX item_versions_account_deleted_idx ON item_versions (account_id, item_date)
    WHERE deleted_at_source IS NOT NULL;

-- Restore jobs run in the connector of the item's provider. A job that
-- restored some items and failed others is partially_failed; retrying it
-- restores only what is not done yet.
ALTER TABLE restore_jobs
    DROP CONSTRAINT restore_jobs_state_check,
    ADD CONSTRAINT restore_jobs_state_check
        CHECK (state IN ('queued', 'running', 'succeeded', 'partially_failed', 'failed')),
    ADD COLUMN connection_id  uuid REFERENCES connections (id) ON DELETE CASCADE,
    ADD COLUMN provider       text CHECK (provider IN ('m365', 'google')),
    ADD COLUMN items_skipped  bigint NOT NULL DEFAULT 0,
    ADD COLUMN items_failed   bigint NOT NULL DEFAULT 0,
    -- How often the job was started (a redelivery or a retry adds one).
    ADD COLUMN attempts       integer NOT NULL DEFAULT 0;

-- Each version a restore job writes back, and what became of it. A row is
-- `started` before the provider is written to and `restored` / `skipped`
-- after, so a job that is retried after a crash looks for the copy it may
-- have made instead of making a second one.
CREATE TABLE restore_items (
    job_id      uuid NOT NULL REFERENCES restore_jobs (id) ON DELETE CASCADE,
    version_id  uuid NOT NULL REFERENCES item_versions (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'started', 'restored', 'skipped', 'failed')),
    -- The provider's id of what was written (a message, file or event id).
    target_ref  text,
    -- A code and the provider's request id: no personal data.
    error       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, version_id)
);
CREATE INDEX restore_items_job_seq_idx ON restore_items (job_id, seq);

-- Exports are streamed by the API as they are made; the job row counts
-- their progress and records the outcome.
ALTER TABLE export_jobs
    ADD COLUMN account_id  uuid REFERENCES protected_accounts (id) ON DELETE SET NULL,
    ADD COLUMN workload    text CHECK (workload IN ('mail', 'calendar', 'drive')),
    ADD COLUMN started_at  timestamptz;
