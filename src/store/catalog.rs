//! The systems and entitlement catalogue, mirrored from systems.toml so reports and the
//! console can join against it.

use super::{NewAuditEvent, Tx};
use crate::Result;
use crate::config::Catalog;
use rusqlite::params;
use serde_json::json;

impl Tx<'_> {
    /// Make the systems and entitlements tables match the configured catalogue. Audited
    /// (one event) when anything changed.
    pub fn sync_catalog(&mut self, catalog: &Catalog, actor: &str) -> Result<usize> {
        let mut changed = 0;
        for (name, e) in &catalog.systems {
            let deps = serde_json::to_string(&e.system.depends_on).unwrap_or_else(|_| "[]".into());
            changed += self.tx.execute(
                "INSERT INTO systems (name, kind, api_version, depends_on) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, api_version = excluded.api_version,
                   depends_on = excluded.depends_on
                 WHERE kind != excluded.kind OR api_version != excluded.api_version OR depends_on != excluded.depends_on",
                params![name, e.system.kind.as_str(), e.system.api_version, deps],
            )?;
            for ((kind, ename), ent) in &e.entitlements {
                changed += self.tx.execute(
                    "INSERT INTO entitlements (system, kind, name, external_id, risk, requires_approval) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(system, kind, name) DO UPDATE SET external_id = excluded.external_id, risk = excluded.risk,
                       requires_approval = excluded.requires_approval
                     WHERE external_id != excluded.external_id OR risk != excluded.risk OR requires_approval != excluded.requires_approval",
                    params![name, kind.as_str(), ename, ent.external_id, ent.risk.as_str(), ent.requires_approval],
                )?;
            }
        }
        // Systems no longer configured go (their entitlements with them).
        let names: Vec<String> = catalog.systems.keys().cloned().collect();
        let existing: Vec<String> = {
            let mut stmt = self.tx.prepare("SELECT name FROM systems")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()?
        };
        for old in existing.iter().filter(|n| !names.contains(n)) {
            changed += self
                .tx
                .execute("DELETE FROM systems WHERE name = ?1", [old])?;
        }
        if changed > 0 {
            self.audit(NewAuditEvent {
                actor,
                action: "catalog.synced",
                subject: "systems.toml",
                details: json!({"rows_changed": changed}),
            })?;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SystemsConfig;
    use crate::store::Store;
    use std::path::Path;

    #[test]
    fn catalog_is_mirrored_and_only_changes_are_audited() {
        let cfg = SystemsConfig::parse(Path::new("s.toml"), "[systems.okta]\nkind = \"okta\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"eng\"\nrisk = \"high\"\n").unwrap();
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.write(|tx| tx.sync_catalog(&cfg.catalog, "t")).unwrap(), 2);
        assert_eq!(s.write(|tx| tx.sync_catalog(&cfg.catalog, "t")).unwrap(), 0);
        let risk: String = s
            .conn()
            .query_row(
                "SELECT risk FROM entitlements WHERE name = 'eng'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(risk, "high");
        assert_eq!(s.audit_count().unwrap(), 1);
        let empty = SystemsConfig::parse(Path::new("s.toml"), "").unwrap();
        s.write(|tx| tx.sync_catalog(&empty.catalog, "t")).unwrap();
        let n: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM entitlements", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
