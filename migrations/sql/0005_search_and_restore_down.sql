ALTER TABLE export_jobs
    DROP COLUMN account_id,
    DROP COLUMN workload,
    DROP COLUMN started_at;
DROP TABLE restore_items;
DELETE FROM restore_jobs WHERE state = 'partially_failed';
ALTER TABLE restore_jobs
    DROP COLUMN connection_id,
    DROP COLUMN provider,
    DROP COLUMN items_skipped,
    DROP COLUMN items_failed,
    DROP COLUMN attempts,
    DROP CONSTRAINT restore_jobs_state_check,
    ADD CONSTRAINT restore_jobs_state_check
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed'));
DROP INDEX item_versions_account_deleted_idx;
DROP INDEX item_versions_deleted_idx;
DROP INDEX item_versions_account_date_idx;
DROP INDEX item_versions_from_idx;
DROP INDEX item_versions_terms_idx;
ALTER TABLE item_versions
    DROP COLUMN terms,
    DROP COLUMN from_hash;
