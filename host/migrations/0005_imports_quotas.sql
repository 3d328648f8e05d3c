-- Storage quotas per organisation. `storage_used` is a counter kept in the same transaction
-- as every change of a file's size (the conditional increment is the quota check, atomic on
-- SQLite and PostgreSQL alike); `storage_quota` NULL means the server's default.

ALTER TABLE orgs ADD COLUMN storage_used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN storage_quota BIGINT CHECK (storage_quota >= 0);

UPDATE orgs SET storage_used = (
    SELECT COALESCE(SUM(f.size), 0)
    FROM files f JOIN workspaces w ON w.id = f.workspace_id
    WHERE w.org_id = orgs.id
);
