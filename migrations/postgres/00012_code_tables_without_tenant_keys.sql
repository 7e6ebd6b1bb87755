-- The tables a GitHub push writes lose their foreign key to tenants. Each
-- row inserted into them made PostgreSQL run a check that looks up the
-- tenant's row and locks it (SELECT ... FOR KEY SHARE); a push of 10
-- commits inserts 16 such rows, and the checks were about a seventh of
-- PostgreSQL's CPU per push (docs/benchmarks.md).
--
-- Nothing is lost in practice: every store method writes the tenant it was
-- given, which exists, and tenant rows are never deleted by the app (an
-- uninstall only marks the row). Whoever deletes a tenant must use
-- store.DeleteTenant, which deletes these tables' rows itself, in the same
-- transaction, instead of relying on ON DELETE CASCADE. The other tables
-- keep their keys; deliveries' key to sources is what keeps a delivery
-- being written from committing rows of a tenant deleted meanwhile.

-- +goose Up
ALTER TABLE repositories DROP CONSTRAINT repositories_tenant_id_fkey;
ALTER TABLE commits DROP CONSTRAINT commits_tenant_id_fkey;
ALTER TABLE commit_parents DROP CONSTRAINT commit_parents_tenant_id_fkey;
ALTER TABLE pushes DROP CONSTRAINT pushes_tenant_id_fkey;
ALTER TABLE branches DROP CONSTRAINT branches_tenant_id_fkey;
ALTER TABLE issue_links DROP CONSTRAINT issue_links_tenant_id_fkey;

-- +goose Down
-- Rows of tenants deleted without store.DeleteTenant would fail the keys;
-- they are what ON DELETE CASCADE would have removed.
DELETE FROM repositories x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
DELETE FROM commits x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
DELETE FROM commit_parents x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
DELETE FROM pushes x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
DELETE FROM branches x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
DELETE FROM issue_links x WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant_id);
ALTER TABLE repositories ADD CONSTRAINT repositories_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE commits ADD CONSTRAINT commits_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE commit_parents ADD CONSTRAINT commit_parents_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE pushes ADD CONSTRAINT pushes_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE branches ADD CONSTRAINT branches_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE issue_links ADD CONSTRAINT issue_links_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
