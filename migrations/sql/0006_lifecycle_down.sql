DROP INDEX erasure_requests_open_idx;
DROP TABLE tenant_notifications;
DROP INDEX upload_chunks_account_idx;
ALTER TABLE upload_chunks DROP COLUMN account_id;
ALTER TABLE tenants DROP COLUMN inactive_notified_at;
ALTER TABLE tenant_tombstones DROP COLUMN final_sweep_at;
DROP INDEX packs_retired_idx;
ALTER TABLE packs DROP COLUMN retired_at;
DROP TABLE scheduler_leases;
