//! `accessdesk account link|unlink|conflicts` end to end: the binary against our AWS
//! simulator (IAM). Linking reads the account from the target and refuses one carrying
//! another person's HR id unless --force --reason; both directions are audited.

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/moto.rs"]
mod moto;

use accessdesk::sim::aws::AwsSimOptions;
use contract::{AwsTarget, SLOW, SimAws, iam};
use std::path::Path;
use std::process::{Command, Output};

fn run(home: &Path, cred: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ACCESSDESK_HOME")
        .env("USER", "tester")
        // The credential reaches the CLI through the environment (env:VAR), never argv.
        .env("ACCOUNT_CLI_AWS", cred)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_reads_the_target_refuses_another_persons_account_and_audits() {
    let sim = SimAws::start(AwsSimOptions::default()).await;
    let admin = iam(&sim.url(), &sim.credential(), "", SLOW);
    admin
        .call("CreateUser", &[("UserName", "hand.made")])
        .await
        .unwrap();
    admin
        .call(
            "CreateUser",
            &[
                ("UserName", "tagged"),
                ("Tags.member.1.Key", "accessdesk:hris-id"),
                ("Tags.member.1.Value", "E2"),
            ],
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let cred = sim.credential();
    let url = sim.url();
    let ok = |args: &[&str]| {
        let o = run(home, &cred, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let refused = |args: &[&str]| {
        let o = run(home, &cred, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    ok(&["init"]);
    std::fs::write(
        home.join("systems.toml"),
        format!(
            "[systems.aws]\nkind = \"aws_iam\"\nbase_url = \"{url}\"\ncredential = \"env:ACCOUNT_CLI_AWS\"\nsettings = {{ region = \"us-east-1\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(home.join("policies.toml"), "").unwrap();
    std::fs::write(
        home.join("hr.csv"),
        "employee_id,first_name,last_name,email,status\nE1,Ada,Lovelace,ada@example.com,active\nE2,Bo,Diddley,bo@example.com,active\n",
    )
    .unwrap();
    ok(&["people", "import", home.join("hr.csv").to_str().unwrap()]);

    // An account made by hand carries no HR id: it may be linked.
    let out = ok(&[
        "account",
        "link",
        "aws",
        "hand.made",
        "E1",
        "--reason",
        "made for Ada before accessdesk",
    ]);
    assert!(out.contains("linked aws account hand.made"), "{out}");
    // One carrying E2's HR id is refused for E1, naming both.
    let err = refused(&["account", "link", "aws", "tagged", "ada@example.com"]);
    assert!(
        err.contains("E2") && err.contains("E1") && err.contains("--force"),
        "{err}"
    );
    // --force needs a reason.
    let err = refused(&["account", "link", "aws", "tagged", "E1", "--force"]);
    assert!(err.contains("--reason"), "{err}");
    // Unknown accounts and people are named.
    let err = refused(&["account", "link", "aws", "nobody", "E1"]);
    assert!(err.contains("nobody"), "{err}");
    let err = refused(&["account", "link", "aws", "hand.made", "E9"]);
    assert!(err.contains("E9"), "{err}");
    // Unlink needs a reason; then the forced link goes through.
    refused(&["account", "unlink", "aws", "hand.made"]);
    ok(&[
        "account",
        "unlink",
        "aws",
        "hand.made",
        "--reason",
        "wrong person",
    ]);
    ok(&[
        "account",
        "link",
        "aws",
        "tagged",
        "E1",
        "--force",
        "--reason",
        "HR id typo in the tag",
    ]);

    // The store: E1 holds "tagged"; hand.made belongs to nobody.
    let store = accessdesk::store::Store::open(&home.join("accessdesk.db")).unwrap();
    assert_eq!(
        store.account_for("aws", "E1").unwrap().unwrap().login,
        "tagged"
    );
    assert_eq!(
        store.login_of("aws", "E1").unwrap().unwrap().login,
        "tagged"
    );
    assert_eq!(
        store
            .find_account("aws", "hand.made")
            .unwrap()
            .unwrap()
            .person_id,
        None
    );
    // Audited with who, why and whether it was forced.
    let o = run(home, &cred, &["audit", "export", "--format", "json"]);
    let events: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let of = |action: &str| -> Vec<serde_json::Value> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    };
    let linked = of("account.linked");
    assert_eq!(linked.len(), 2, "{linked:#?}");
    assert_eq!(linked[1]["details"]["forced"], true);
    assert_eq!(linked[1]["details"]["reason"], "HR id typo in the tag");
    assert_eq!(linked[1]["actor"], "cli:tester");
    let unlinked = of("account.unlinked");
    assert_eq!(unlinked[0]["details"]["reason"], "wrong person");
    ok(&["audit", "verify"]);
    // The secret never reached the output or the database.
    let secret = sim.secret();
    let db = std::fs::read(home.join("accessdesk.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&secret));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&secret));
}
