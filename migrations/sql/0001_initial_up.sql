-- Arkiv's initial schema (DESIGN.md §3).
--
-- Rules every table follows:
-- * Personal data (names, e-mail addresses, subjects, file names, paths,
--   event titles) is never stored in plaintext: it lives in *_sealed columns
--   (AES-256-GCM) and, where lookups need it, in *_hash blind indexes
--   (BLAKE3 keyed with a key derived from the master key).
-- * Every row of a tenant's data reaches `tenants` through ON DELETE CASCADE,
--   so purging a tenant is one DELETE after its keys are destroyed. The audit
--   log and tombstones deliberately do not: they outlive the tenant.
-- * Closed vocabularies are text with CHECK constraints spelling exactly the
--   strings of arkiv-domain's enums.

CREATE TABLE partners (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX partners_name_key ON partners (lower(name));

CREATE TABLE tenants (
    id                   uuid PRIMARY KEY,
    partner_id           uuid NOT NULL REFERENCES partners (id),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region               text NOT NULL CHECK (region ~ '^[a-z0-9]{2,16}$'),
    plan                 text NOT NULL DEFAULT 'standard',
    subscription_state   text NOT NULL DEFAULT 'trial'
                         CHECK (subscription_state IN ('trial', 'active', 'ended', 'purged')),
    trial_ends_at        timestamptz,
    ended_at             timestamptz,
    -- When an ended tenant is purged; cleared on reactivation.
    purge_after          timestamptz,
    -- Whether accounts discovered later are backed up without being asked.
    include_new_accounts boolean NOT NULL DEFAULT true,
    last_login_at        timestamptz,
    last_successful_run_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (subscription_state <> 'ended' OR ended_at IS NOT NULL)
);
CREATE INDEX tenants_partner_idx ON tenants (partner_id);
CREATE INDEX tenants_purge_due_idx ON tenants (purge_after) WHERE subscription_state = 'ended';

-- Each tenant's data key and dedup key, wrapped by the master key. Deleting
-- this row is the crypto-shredding step of a purge.
CREATE TABLE tenant_keys (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    wrapped_data_key   bytea NOT NULL,
    wrapped_dedup_key  bytea NOT NULL,
    key_version        integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE principals (
    id                  uuid PRIMARY KEY,
    role                text NOT NULL
                        CHECK (role IN ('operator', 'partner-admin', 'tenant-admin', 'support')),
    partner_id          uuid REFERENCES partners (id) ON DELETE CASCADE,
    tenant_id           uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email_hash          bytea NOT NULL UNIQUE,
    email_sealed        bytea NOT NULL,
    password_hash       text,
    totp_secret_sealed  bytea,
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    last_login_at       timestamptz,
    disabled_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (role = 'operator'      AND partner_id IS NULL     AND tenant_id IS NULL) OR
        (role = 'partner-admin' AND partner_id IS NOT NULL AND tenant_id IS NULL) OR
        (role = 'tenant-admin'  AND tenant_id IS NOT NULL) OR
        (role = 'support'       AND tenant_id IS NULL)
    )
);
CREATE INDEX principals_partner_idx ON principals (partner_id);
CREATE INDEX principals_tenant_idx ON principals (tenant_id);

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    principal_id  uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash    bytea NOT NULL UNIQUE,
    label         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_tokens_principal_idx ON api_tokens (principal_id);

CREATE TABLE login_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_id  uuid REFERENCES principals (id) ON DELETE SET NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    -- IPv4 truncated to /24, IPv6 to /48: never a full address.
    ip_anon       text NOT NULL,
    outcome       text NOT NULL
                  CHECK (outcome IN ('success', 'bad_password', 'bad_totp', 'locked', 'unknown_principal'))
);
CREATE INDEX login_events_principal_idx ON login_events (principal_id, at);

CREATE TABLE connections (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider            text NOT NULL CHECK (provider IN ('m365', 'google')),
    -- Microsoft tenant id or Google Workspace domain; null while pending.
    external_id         text,
    credentials_sealed  bytea,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'active', 'error', 'revoked')),
    status_detail       text,
    schedule_minutes    integer NOT NULL DEFAULT 240 CHECK (schedule_minutes >= 60),
    next_run_at         timestamptz,
    -- The connector instance holding this connection, and until when.
    lease_owner         text,
    lease_expires_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_tenant_idx ON connections (tenant_id);
CREATE UNIQUE INDEX connections_external_key ON connections (tenant_id, provider, external_id)
    WHERE external_id IS NOT NULL AND status <> 'revoked';
CREATE INDEX connections_due_idx ON connections (next_run_at) WHERE status = 'active';

-- The single-use `state` of an OAuth consent round trip.
CREATE TABLE consent_states (
    nonce          bytea PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id  uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    created_by     uuid REFERENCES principals (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

CREATE TABLE protected_accounts (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id      uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- The provider's immutable user id (a GUID or a numeric id), not an address.
    external_id        text NOT NULL,
    email_hash         bytea NOT NULL,
    email_sealed       bytea NOT NULL,
    included           boolean NOT NULL,
    excluded_at        timestamptz,
    -- Data of an excluded account is purged after this, unless re-included.
    purge_after        timestamptz,
    removed_at_source  timestamptz,
    discovered_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, external_id)
);
CREATE INDEX protected_accounts_tenant_email_idx ON protected_accounts (tenant_id, email_hash);
CREATE INDEX protected_accounts_purge_due_idx ON protected_accounts (purge_after) WHERE NOT included;

-- Delta tokens / history ids / page tokens, per account, workload and scope
-- (a mail folder, a calendar, a shared drive; '' when the workload has one).
CREATE TABLE cursors (
    account_id  uuid NOT NULL REFERENCES protected_accounts (id) ON DELETE CASCADE,
    workload    text NOT NULL CHECK (workload IN ('mail', 'calendar', 'drive')),
    scope       text NOT NULL DEFAULT '',
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, workload, scope)
);

CREATE TABLE runs (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connection_id    uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    trigger          text NOT NULL CHECK (trigger IN ('api', 'schedule')),
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'partially_failed', 'failed')),
    requested_by     uuid REFERENCES principals (id) ON DELETE SET NULL,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    items            bigint NOT NULL DEFAULT 0,
    new_versions     bigint NOT NULL DEFAULT 0,
    bytes            bigint NOT NULL DEFAULT 0,
    errors           integer NOT NULL DEFAULT 0,
    throttled_ms     bigint NOT NULL DEFAULT 0,
    -- {"mail": {"items": n, "new_versions": n, "bytes": n}, ...}
    workload_counts  jsonb NOT NULL DEFAULT '{}'::jsonb
);
-- Never two runs of one connection at once.
CREATE UNIQUE INDEX runs_one_active_per_connection ON runs (connection_id)
    WHERE state IN ('queued', 'running');
CREATE INDEX runs_tenant_idx ON runs (tenant_id, requested_at DESC);

CREATE TABLE run_errors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id  uuid REFERENCES protected_accounts (id) ON DELETE CASCADE,
    workload    text CHECK (workload IN ('mail', 'calendar', 'drive')),
    -- The provider's id of the item that failed, if one did.
    item_ref    text,
    code        text NOT NULL,
    -- The provider's request id, for support cases with Microsoft or Google.
    request_id  text,
    message     text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_errors_run_idx ON run_errors (run_id);

-- Pack objects: many small sealed chunks in one S3 object.
CREATE TABLE packs (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    region       text NOT NULL,
    object_key   text NOT NULL UNIQUE,
    size         bigint NOT NULL,
    chunk_count  integer NOT NULL,
    live_bytes   bigint NOT NULL,
    state        text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'rewriting', 'deleted')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX packs_tenant_idx ON packs (tenant_id);

-- Content-addressed chunks. A chunk is either in a pack (pack_id, offset)
-- or a standalone object (pack_id null, key t/{tenant}/c/{id}).
CREATE TABLE chunks (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- BLAKE3 of the plaintext, keyed with the tenant's dedup key.
    id            bytea NOT NULL CHECK (length(id) = 32),
    pack_id       uuid REFERENCES packs (id),
    pack_offset   bigint,
    stored_size   integer NOT NULL,
    plain_size    integer NOT NULL,
    -- Versions referencing this chunk; changed in the same transaction as
    -- the version_chunks rows that imply it.
    refcount      integer NOT NULL DEFAULT 0 CHECK (refcount >= 0),
    -- Set when refcount reaches zero; garbage collection deletes only after
    -- a grace delay, so a concurrent backup can still claim the chunk.
    deletable_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((pack_id IS NULL) = (pack_offset IS NULL))
);
CREATE INDEX chunks_pack_idx ON chunks (pack_id);
CREATE INDEX chunks_deletable_idx ON chunks (deletable_at) WHERE deletable_at IS NOT NULL;

CREATE TABLE items (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id         uuid NOT NULL REFERENCES protected_accounts (id) ON DELETE CASCADE,
    workload           text NOT NULL CHECK (workload IN ('mail', 'calendar', 'drive')),
    -- The provider's item id (message id, drive item id, event id).
    source_id          text NOT NULL,
    latest_version     integer NOT NULL DEFAULT 0,
    deleted_at_source  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, workload, source_id)
);
CREATE INDEX items_tenant_idx ON items (tenant_id, workload);

CREATE TABLE item_versions (
    id                  uuid PRIMARY KEY,
    item_id             uuid NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id          uuid NOT NULL REFERENCES protected_accounts (id) ON DELETE CASCADE,
    workload            text NOT NULL CHECK (workload IN ('mail', 'calendar', 'drive')),
    version             integer NOT NULL CHECK (version >= 1),
    captured_at         timestamptz NOT NULL,
    -- The item's own date (received, modified, start), for search by date.
    item_date           timestamptz,
    deleted_at_source   timestamptz,
    -- etag / changeKey / historyId as the provider gave it.
    change_marker       text,
    size                bigint NOT NULL,
    -- Keyed hash over the chunk list: equal content, equal id.
    content_id          bytea NOT NULL,
    -- Keyed hash of the metadata plaintext: a new version only on change.
    metadata_hash       bytea NOT NULL,
    metadata_sealed     bytea NOT NULL,
    UNIQUE (item_id, version)
);
CREATE INDEX item_versions_scope_idx
    ON item_versions (tenant_id, account_id, workload, captured_at);
CREATE INDEX item_versions_date_idx ON item_versions (tenant_id, item_date);

CREATE TABLE version_chunks (
    version_id  uuid NOT NULL REFERENCES item_versions (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    tenant_id   uuid NOT NULL,
    chunk_id    bytea NOT NULL,
    PRIMARY KEY (version_id, seq),
    -- No cascade: the database itself refuses to delete a chunk a version
    -- still references, whatever garbage collection gets wrong.
    FOREIGN KEY (tenant_id, chunk_id) REFERENCES chunks (tenant_id, id)
);
CREATE INDEX version_chunks_chunk_idx ON version_chunks (tenant_id, chunk_id);

-- Per tenant, with per-workload overrides ('*' is the tenant default).
-- Null days mean "keep forever".
CREATE TABLE retention_policies (
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workload            text NOT NULL DEFAULT '*' CHECK (workload IN ('*', 'mail', 'calendar', 'drive')),
    keep_versions_days  integer CHECK (keep_versions_days > 0),
    keep_deleted_days   integer CHECK (keep_deleted_days > 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workload)
);

-- A tenant's time-limited permission for support to see its backup data.
CREATE TABLE support_grants (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    granted_by  uuid REFERENCES principals (id) ON DELETE SET NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK (expires_at > granted_at)
);
CREATE INDEX support_grants_tenant_idx ON support_grants (tenant_id, expires_at);

CREATE TABLE erasure_requests (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    account_id        uuid REFERENCES protected_accounts (id) ON DELETE SET NULL,
    -- Blind index of the erased address: the certificate names it without
    -- keeping it.
    account_hash      bytea NOT NULL,
    requested_by      uuid REFERENCES principals (id) ON DELETE SET NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    state             text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    completed_at      timestamptz,
    deleted_items     bigint NOT NULL DEFAULT 0,
    deleted_versions  bigint NOT NULL DEFAULT 0,
    deleted_chunks    bigint NOT NULL DEFAULT 0,
    list_hash         bytea,
    certificate       jsonb
);
CREATE INDEX erasure_requests_tenant_idx ON erasure_requests (tenant_id, requested_at);

CREATE TABLE restore_jobs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    requested_by    uuid REFERENCES principals (id) ON DELETE SET NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    -- What to restore and where (may name a target mailbox): sealed.
    request_sealed  bytea NOT NULL,
    items_total     bigint NOT NULL DEFAULT 0,
    items_done      bigint NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX restore_jobs_tenant_idx ON restore_jobs (tenant_id, created_at);

CREATE TABLE export_jobs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    requested_by    uuid REFERENCES principals (id) ON DELETE SET NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    format          text NOT NULL CHECK (format IN ('eml', 'mbox', 'ics', 'zip')),
    request_sealed  bytea NOT NULL,
    items_total     bigint NOT NULL DEFAULT 0,
    items_done      bigint NOT NULL DEFAULT 0,
    bytes_written   bigint NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX export_jobs_tenant_idx ON export_jobs (tenant_id, created_at);

-- Append-only and hash-chained: each entry's hash covers its content and the
-- previous entry's hash in the same chain ('global', or one per tenant), so
-- editing or deleting an entry breaks every hash after it.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain       text NOT NULL,
    seq         bigint NOT NULL,
    -- No foreign key: the log outlives a purged tenant.
    tenant_id   uuid,
    at          timestamptz NOT NULL,
    actor_id    uuid,
    actor_role  text,
    action      text NOT NULL,
    target      text,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- What remains of a purged tenant: ids, dates and counts, nothing personal.
CREATE TABLE tenant_tombstones (
    tenant_id   uuid PRIMARY KEY,
    partner_id  uuid NOT NULL,
    region      text NOT NULL,
    created_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    purged_at   timestamptz NOT NULL,
    counts      jsonb NOT NULL DEFAULT '{}'::jsonb
);
