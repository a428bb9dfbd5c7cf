DROP TABLE run_items;
ALTER TABLE items DROP COLUMN container_hash, DROP COLUMN last_seen_run;
ALTER TABLE runs
    DROP COLUMN published,
    DROP COLUMN settled,
    DROP COLUMN runner,
    DROP COLUMN detail;
