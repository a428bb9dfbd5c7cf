-- The data lifecycle (issue 9): retention, garbage collection, purges,
-- erasure requests and inactive tenants, carried out by the scheduler.

-- Work that only one scheduler instance at a time may do (the lifecycle
-- pass): held until `expires_at`, renewed by its holder.
CREATE TABLE scheduler_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- A pack rewritten by garbage collection: its live chunks now live in a
-- new pack; the old object is deleted once no reader can still be using
-- the old locations (or at once, for an erasure).
ALTER TABLE packs ADD COLUMN retired_at timestamptz;
CREATE INDEX packs_retired_idx ON packs (retired_at) WHERE retired_at IS NOT NULL;

-- A purge deletes the tenant's prefix, then once more after workers have
-- forgotten the tenant's keys (a pack sealed just before the purge may land
-- after the first pass): that second pass is recorded here.
ALTER TABLE tenant_tombstones ADD COLUMN final_sweep_at timestamptz;

-- Inactivity: when the tenant's admins were told that the tenant will be
-- ended, and the notifications themselves (kept with the tenant; the
-- audit log keeps that they were sent).
ALTER TABLE tenants ADD COLUMN inactive_notified_at timestamptz;
CREATE TABLE tenant_notifications (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('inactive')),
    -- Ids and dates only: the recipients are the tenant's admins.
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_notifications_tenant_idx ON tenant_notifications (tenant_id, created_at);

-- The account a staged chunk of a large upload belongs to, so that an
-- erasure or an account's purge also drops its uploads in flight.
ALTER TABLE upload_chunks ADD COLUMN account_id uuid;
CREATE INDEX upload_chunks_account_idx ON upload_chunks (account_id) WHERE account_id IS NOT NULL;

-- Erasures in flight are picked up by the scheduler.
CREATE INDEX erasure_requests_open_idx ON erasure_requests (requested_at)
    WHERE state IN ('queued', 'running');
