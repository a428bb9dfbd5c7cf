-- Foreign keys the index checks on every row it writes, where another key
-- already implies them. Each check is a lookup and a row lock in the
-- referenced table, paid per version and per chunk on the worker's hot
-- path.
--
-- item_versions.tenant_id and .account_id copy the item's (for the scope
-- and date indexes); the key to items already ties a version to its item,
-- and through it to the account and tenant, and deleting either cascades
-- through items to its versions.
ALTER TABLE item_versions
    DROP CONSTRAINT item_versions_tenant_id_fkey,
    DROP CONSTRAINT item_versions_account_id_fkey;

-- An item's row is updated by every run that sees it and by each of its
-- new versions: room on its page keeps those updates heap-only, with no
-- new index entries.
ALTER TABLE items SET (fillfactor = 90);
