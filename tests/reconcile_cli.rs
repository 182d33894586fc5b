//! `accessdesk reconcile --json` and `findings` end to end against the Okta simulator:
//! the JSON shape, exit codes (0 no findings, 3 findings, 1 a system not read), and a
//! bulk action that asks first unless --yes.

#[path = "common/cli.rs"]
mod cli;

use accessdesk::sim::okta::{OktaSimOptions, spawn};
use cli::{json, text};
use std::path::Path;
use std::process::Output;

const TOKEN: &str = "00sim-reconcile-cli";
const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";

fn run(home: &Path, args: &[&str]) -> Output {
    cli::run(home, args, &[("RECONCILE_OKTA_TOKEN", TOKEN)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_json_exit_codes_and_bulk_confirmation() {
    let (server, okta) = spawn(OktaSimOptions::default()).await.unwrap();
    okta.add_api_token(TOKEN);
    okta.seed_group("everyone");
    okta.seed_group("admins");
    // An account made by hand in Okta: nobody's.
    okta.seed_user("stray@example.com", "Stray", "Account");
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let base = server.base_url();
    tokio::task::spawn_blocking(move || {
        assert!(run(&h, &["init"]).status.success());
        std::fs::write(
            h.join("systems.toml"),
            format!(
                "[systems.okta]\nkind = \"okta\"\nbase_url = \"{base}\"\ncredential = \"env:RECONCILE_OKTA_TOKEN\"\n\
                 [[systems.okta.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
                 [[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            h.join("policies.toml"),
            "[[rule]]\nname = \"everyone\"\nwhen = 'person.status == \"active\"'\ngrant = [\"okta:group:everyone\"]\n",
        )
        .unwrap();
        let csv = h.join("hr.csv");
        std::fs::write(&csv, format!("{HEADER}E1,Ada,Lovelace,,ada@example.com,Eng,Engineer,,London,CC1,active,,\nE2,Bo,Ng,,bo@example.com,Eng,Engineer,,London,CC1,active,,\n")).unwrap();
        assert!(run(&h, &["people", "import", csv.to_str().unwrap()]).status.success());
        let plan = json(&run(&h, &["--json", "plan"]));
        let id = plan["id"].as_str().unwrap().to_string();
        let o = run(&h, &["apply", &id]);
        assert!(o.status.success(), "{}", text(&o));

        // Findings: the API's own admin user and the hand-made account are nobody's
        // (orphans): exit 3, and the JSON has the documented shape.
        let o = run(&h, &["--json", "reconcile"]);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        let v = json(&o);
        assert!(v["run"].as_i64().is_some(), "{v}");
        assert_eq!(v["complete"], true, "{v}");
        let sys = &v["systems"][0];
        assert_eq!(sys["system"], "okta");
        assert_eq!(sys["complete"], true);
        assert_eq!(sys["accounts"], 4, "two people, the admin, the stray: {v}");
        assert_eq!(sys["memberships"], 2, "{v}");
        assert!(sys["observed_at"].as_str().is_some(), "{v}");
        let f = v["findings"].as_array().unwrap();
        assert_eq!(f.len(), 2, "{v}");
        for key in ["id", "class", "severity", "system", "person", "account", "entitlement", "detail"] {
            assert!(f[0].get(key).is_some(), "{key} missing: {v}");
        }
        assert!(f.iter().all(|f| f["class"] == "orphan" && f["person"].is_null()), "{v}");

        // A bulk action without --yes and without a terminal refuses, saying how.
        let o = run(&h, &["findings", "ignore", "--class", "orphan"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("2 findings") && text(&o).contains("--yes"), "{}", text(&o));
        // Accepting needs a reason.
        let o = run(&h, &["findings", "accept", "--class", "orphan", "--yes", "--until", "2099-01-01"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("reason"), "{}", text(&o));
        let o = run(&h, &["findings", "accept", "--class", "orphan", "--yes", "--reason", "service users", "--until", "2099-01-01"]);
        assert!(o.status.success(), "{}", text(&o));
        // Accepted: nothing open, exit 0; the listing shows the disposition.
        let o = run(&h, &["--json", "reconcile"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(json(&o)["findings"].as_array().unwrap().len(), 0);
        let o = run(&h, &["findings", "list"]);
        assert!(text(&o).contains("accepted by") && text(&o).contains("service users"), "{}", text(&o));

        // A system that cannot be read (wrong token): exit 1, marked incomplete.
        std::fs::write(
            h.join("systems.toml"),
            std::fs::read_to_string(h.join("systems.toml")).unwrap().replace("env:RECONCILE_OKTA_TOKEN", "env:NO_SUCH_TOKEN_VAR"),
        )
        .unwrap();
        let o = run(&h, &["--json", "reconcile", "--fresh"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let v = json(&o);
        assert_eq!(v["complete"], false, "{v}");
        assert_eq!(v["systems"][0]["complete"], false, "{v}");
        assert_eq!(v["findings"].as_array().unwrap().len(), 0, "nothing concluded from an unread system: {v}");
    })
    .await
    .unwrap();
    drop(server);
}
