//! Names and set dates of the secrets accessdesk has stored. Never values.

use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use rusqlite::params;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretIndexRow {
    pub name: String,
    pub backend: String,
    pub set_at: String,
    pub last_auth_ok_at: Option<String>,
}

impl Tx<'_> {
    pub fn record_secret_set(&mut self, name: &str, backend: &str, actor: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO secrets_index (name, backend, set_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET backend = excluded.backend, set_at = excluded.set_at",
            params![name, backend, self.now.to_rfc3339()],
        )?;
        self.audit(NewAuditEvent {
            actor,
            action: "secret.set",
            subject: name,
            details: json!({"backend": backend}),
        })?;
        Ok(())
    }

    pub fn record_secret_removed(&mut self, name: &str, actor: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM secrets_index WHERE name = ?1", [name])?;
        self.audit(NewAuditEvent {
            actor,
            action: "secret.removed",
            subject: name,
            details: json!({}),
        })?;
        Ok(())
    }
}

impl Store {
    pub fn secrets_index(&self) -> Result<Vec<SecretIndexRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, backend, set_at, last_auth_ok_at FROM secrets_index ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SecretIndexRow {
                name: r.get(0)?,
                backend: r.get(1)?,
                set_at: r.get(2)?,
                last_auth_ok_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
