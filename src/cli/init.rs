//! `accessdesk init`: a commented starter configuration and a fresh database.

use super::Ctx;
use crate::store::{NewAuditEvent, Store};
use crate::{Error, Result};
use serde_json::json;

pub const STARTER_SYSTEMS: &str = r#"# accessdesk systems: the target systems accessdesk provisions.
#
# Each [systems.NAME] table is one system. NAME appears in entitlements as
# NAME:kind:entitlement (for example okta:group:engineering), so keep it short:
# lowercase letters, digits, '-' and '_'.
#
#   kind        okta | scim | aws_iam | aws_identity_store | google_workspace |
#               slack | github | ldap | entra
#   base_url    the API endpoint
#   credential  where the API secret lives, never the secret itself:
#                 "keyring:NAME"  the OS keychain (accessdesk secret set NAME)
#                 "env:VAR"       an environment variable (headless servers)
#   depends_on  systems whose account must exist first (no cycles)
#   api_version the vendor API version to pin (each kind has a default)
#   rate_limit  { requests_per_minute = N, concurrency = N }: our own budget,
#               on top of what the vendor's headers say
#   [[systems.NAME.entitlements]]  the catalogue: kind (group|team|channel|role),
#               name, optional external_id, risk (low|medium|high|privileged),
#               requires_approval (true|false)

[systems.okta]
kind = "okta"
base_url = "https://example.okta.com"
credential = "keyring:okta-api-token"
rate_limit = { requests_per_minute = 600, concurrency = 8 }

[[systems.okta.entitlements]]
kind = "group"
name = "everyone"

[[systems.okta.entitlements]]
kind = "group"
name = "engineering"

[systems.github]
kind = "github"
base_url = "https://api.github.com"
credential = "keyring:github-token"
depends_on = ["okta"]

[[systems.github.entitlements]]
kind = "team"
name = "engineering"

[[systems.github.entitlements]]
kind = "team"
name = "org-admins"
risk = "privileged"
requires_approval = true

# How `accessdesk people import` reads your HR export: person field = CSV header.
# The defaults below match a typical HRIS export; change the right-hand sides.
# Custom attributes are mapped as custom.NAME = "Header".
[import.columns]
employee_id = "employee_id"
first_name = "first_name"
last_name = "last_name"
preferred_name = "preferred_name"
email = "email"
department = "department"
title = "title"
manager_id = "manager_id"
location = "location"
cost_center = "cost_center"
status = "status"
start_date = "start_date"
end_date = "end_date"
"#;

pub const STARTER_POLICIES: &str = r#"# accessdesk policies: birthright rules.
#
# Each [[rule]] grants entitlements (system:kind:name, declared in systems.toml)
# to every person its CEL condition is true for. Conditions see person.hris_id,
# person.given_name, person.family_name, person.email, person.department,
# person.title, person.manager_id, person.location, person.cost_center,
# person.status ("pending", "active", "leave", "terminated"), person.start_date,
# person.end_date and declared custom attributes as person.custom.NAME.
#
#   requires_approval = true   grants wait for an approver
#   duration = "90d"           grants expire (d, h or w)
#
# Check with `accessdesk policy check`; see why with `accessdesk policy explain ID`.

[[rule]]
name = "everyone"
when = 'person.status == "active"'
grant = ["okta:group:everyone"]

[[rule]]
name = "engineering"
when = 'person.department == "Engineering" && person.status == "active"'
grant = ["okta:group:engineering", "github:team:engineering"]

[[rule]]
name = "org-admins"
when = 'person.title.startsWith("Engineering Manager") && person.status == "active"'
grant = ["github:team:org-admins"]
requires_approval = true
duration = "90d"
"#;

pub fn run(ctx: &Ctx, force: bool) -> Result<()> {
    let home = &ctx.home;
    std::fs::create_dir_all(&home.dir)
        .map_err(|e| Error::io(format!("creating {}", home.dir.display()), e))?;
    let mut written = Vec::new();
    for (path, text) in [
        (home.systems_path(), STARTER_SYSTEMS),
        (home.policies_path(), STARTER_POLICIES),
    ] {
        if path.exists() && !force {
            println!("kept     {} (exists; --force overwrites)", path.display());
            continue;
        }
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        println!("wrote    {}", path.display());
        written.push(path.display().to_string());
    }
    let mut store = Store::open(&home.db_path())?;
    if !written.is_empty() {
        store.write(|tx| {
            tx.audit(NewAuditEvent {
                actor: &super::actor(),
                action: "config.initialised",
                subject: "home",
                details: json!({"files": written}),
            })
        })?;
    }
    println!("database {}", home.db_path().display());
    println!(
        "\nNext: edit systems.toml and policies.toml, then `accessdesk policy check` and `accessdesk people import FILE.csv`."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn starter_systems_file_is_valid() {
        let c = crate::config::SystemsConfig::parse(Path::new("systems.toml"), STARTER_SYSTEMS)
            .unwrap();
        assert_eq!(c.catalog.systems.len(), 2);
        assert_eq!(c.import, crate::config::ImportMapping::default());
    }
}
