ALTER TABLE items RESET (fillfactor);

ALTER TABLE item_versions
    ADD CONSTRAINT item_versions_tenant_id_fkey
        FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    ADD CONSTRAINT item_versions_account_id_fkey
        FOREIGN KEY (account_id) REFERENCES protected_accounts (id) ON DELETE CASCADE;
