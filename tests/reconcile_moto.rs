//! Reconciliation against moto (a real IAM implementation): users and group memberships
//! changed with boto3 behind accessdesk's back are reported as exactly those findings, and
//! enforcing them brings IAM back to intended, as boto3 then sees it.

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::engine::findings;
use accessdesk::model::Person;
use contract::{ADMIN, MotoTarget, SLOW, iam};
use engine::{Entry, Run, fast};
use reconcile::{seen, summary};
use serde_json::Value;

/// Run a boto3 script against moto (`iam` is the client); what it prints, as JSON.
fn boto3(t: &MotoTarget, body: &str) -> Value {
    let script = format!(
        "import json, os, boto3\niam = boto3.client(\"iam\", endpoint_url=os.environ[\"MOTO_URL\"], region_name=\"us-east-1\")\n{body}"
    );
    let py = moto::python();
    assert!(
        py.exists(),
        "{} is missing: {}",
        py.display(),
        moto::INSTALL
    );
    // The admin key reaches boto3 through its environment, never argv.
    let out = std::process::Command::new(&py)
        .args(["-c", &script])
        .env("MOTO_URL", &t.moto.url)
        .env("AWS_ACCESS_KEY_ID", &t.admin.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &t.admin.secret)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Each user's groups, as boto3 sees them.
fn groups(t: &MotoTarget) -> Value {
    boto3(
        t,
        r#"
out = {}
for page in iam.get_paginator("list_users").paginate():
    for u in page["Users"]:
        out[u["UserName"]] = sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=u["UserName"])["Groups"])
print(json.dumps(out))
"#,
    )
}

fn catalogue() -> &'static str {
    "region = \"us-east-1\"\n\
     [[systems.aws.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
     [[systems.aws.entitlements]]\nkind = \"group\"\nname = \"engineering\"\n\
     [[systems.aws.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_changed_with_boto3_is_found_and_enforced_back() {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    for g in ["everyone", "engineering", "admins", "break-glass"] {
        admin
            .call("CreateGroup", &[("GroupName", g)])
            .await
            .unwrap();
    }
    let run = Run::new(
        &[Entry::new("aws", "aws_iam", &t.moto.url, "aws-test").settings(catalogue())],
        &[("aws-test", &t.admin.credential())],
    );
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    ada.department = "Engineering".into();
    let bob = Person::new("E2", "Bob", "Ng", "bob@example.com");
    let mut cy = Person::new("E3", "Cy", "Ho", "cy@example.com");
    cy.department = "Engineering".into();
    run.set_people(&[
        (ada, vec!["aws:group:everyone", "aws:group:engineering"]),
        (bob, vec!["aws:group:everyone"]),
        (cy, vec!["aws:group:everyone", "aws:group:engineering"]),
    ]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());

    // Only the API's own admin user is nobody's.
    let (_, f) = reconcile::reconcile(&run, "aws").await;
    assert_eq!(
        summary(&f),
        vec![seen("orphan", None, Some(ADMIN), None)],
        "{f:#?}"
    );

    // Behind accessdesk's back, with boto3: bob into admins, ada out of engineering, a
    // user made by hand, and cy into a group the catalogue does not list.
    boto3(
        &t,
        r#"
iam.add_user_to_group(GroupName="admins", UserName="bob")
iam.remove_user_from_group(GroupName="engineering", UserName="ada")
iam.create_user(UserName="hand.made")
iam.add_user_to_group(GroupName="break-glass", UserName="cy")
"#,
    );
    let (_, f) = reconcile::reconcile(&run, "aws").await;
    assert_eq!(
        summary(&f),
        vec![
            seen("excess", Some("E2"), Some("bob"), Some("aws:group:admins")),
            seen("orphan", None, Some(ADMIN), None),
            seen("orphan", None, Some("hand.made"), None),
            seen(
                "unmanaged",
                Some("E3"),
                Some("cy"),
                Some("aws:group:break-glass")
            ),
            seen(
                "missing",
                Some("E1"),
                Some("ada"),
                Some("aws:group:engineering")
            ),
        ],
        "{f:#?}"
    );
    // The next plan already carries the drift as work.
    let out = {
        let mut s = run.store.lock().unwrap();
        findings::enforce(&mut s, &run.cfg.catalog, &f, "test").unwrap()
    };
    let enforced: Vec<&str> = out
        .iter()
        .filter(|o| o.status == "enforced")
        .map(|o| o.class.as_str())
        .collect();
    assert_eq!(
        enforced,
        vec!["excess", "orphan", "orphan", "missing"],
        "{out:#?}"
    );
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());

    // boto3 sees IAM back to intended; the hand-made user is deactivated (tagged, still
    // there), the credentials' own admin is not, and the unmanaged group is untouched.
    let tags = boto3(
        &t,
        &format!(
            r#"
out = {{u: {{t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=u)["Tags"]}} for u in ["hand.made", "{ADMIN}"]}}
print(json.dumps(out))
"#
        ),
    );
    assert!(
        tags["hand.made"]
            .as_object()
            .is_some_and(|t| t.contains_key("accessdesk:deactivated")),
        "{tags}"
    );
    assert!(
        tags[ADMIN]
            .as_object()
            .is_some_and(|t| !t.contains_key("accessdesk:deactivated")),
        "{tags}"
    );
    let g = groups(&t);
    assert_eq!(
        g["ada"],
        serde_json::json!(["engineering", "everyone"]),
        "{g}"
    );
    assert_eq!(g["bob"], serde_json::json!(["everyone"]), "{g}");
    assert_eq!(
        g["cy"],
        serde_json::json!(["break-glass", "engineering", "everyone"]),
        "{g}"
    );
    assert_eq!(g["hand.made"], serde_json::json!([]), "{g}");
    let (_, f) = reconcile::reconcile(&run, "aws").await;
    assert_eq!(
        summary(&f),
        vec![
            seen("orphan", None, Some(ADMIN), None),
            seen(
                "unmanaged",
                Some("E3"),
                Some("cy"),
                Some("aws:group:break-glass")
            ),
        ],
        "{f:#?}"
    );
    assert_eq!(run.plan_apply(), 0, "nothing left to do");
    run.audit_ok();
}
