-- Content too large for one work item arrives as chunk messages, then a
-- commit naming the upload. The worker records each stored chunk here
-- until the commit assembles the version from them. Rows are ids only.
CREATE TABLE upload_chunks (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    upload_id   uuid NOT NULL,
    seq         integer NOT NULL CHECK (seq >= 0),
    chunk_id    bytea NOT NULL,
    plain_size  integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, upload_id, seq),
    FOREIGN KEY (tenant_id, chunk_id) REFERENCES chunks (tenant_id, id)
);
-- Garbage collection drops staging rows of uploads never committed.
CREATE INDEX upload_chunks_age_idx ON upload_chunks (created_at);
