DROP TABLE run_items;
ALTER TABLE items DROP COLUMN container_hash;
ALTER TABLE runs
    DROP COLUMN published,
    DROP COLUMN settled,
    DROP COLUMN runner,
    DROP COLUMN detail;
