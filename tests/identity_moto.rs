//! Identity end to end against moto (a real IAM implementation, signatures checked): the
//! engine never puts one person's access on another person's account.
//!
//! The people: two John Smiths, José Ñúñez and Jose Nunez (diacritic twins), a leaver
//! Mary Major followed by a new hire also called Mary Major, and an IAM user `john.smith`
//! made by hand with no HR tag. The login template is `{given}.{family}`, so every pair
//! collides. Afterwards boto3 (moto's own client) must show exactly one user per person
//! with the intended groups, the hand-made user untouched and reported as a conflict, the
//! leaver's keys still inactive, and a second plan with nothing to do.

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/moto.rs"]
mod moto;

use accessdesk::model::{EmploymentStatus, Person};
use contract::{MotoTarget, SLOW, iam, xml_all};
use engine::{Entry, Run, fast};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every IAM user with its tags, groups and access-key statuses, as boto3 sees them.
fn boto3_users(t: &MotoTarget) -> BTreeMap<String, Value> {
    const SCRIPT: &str = r#"
import json, os, boto3
iam = boto3.client("iam", endpoint_url=os.environ["MOTO_URL"], region_name="us-east-1")
out = {}
for page in iam.get_paginator("list_users").paginate():
    for u in page["Users"]:
        name = u["UserName"]
        tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=name)["Tags"]}
        groups = sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"])
        keys = [k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
        out[name] = {"tags": tags, "groups": groups, "keys": keys}
print(json.dumps(out))
"#;
    let py = moto::python();
    assert!(
        py.exists(),
        "{} is missing: {}",
        py.display(),
        moto::INSTALL
    );
    // The admin key reaches boto3 through its environment, never argv.
    let out = std::process::Command::new(&py)
        .args(["-c", SCRIPT])
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
    serde_json::from_slice(&out.stdout).expect("boto3 printed JSON")
}

fn person(id: &str, given: &str, family: &str, email: &str, dept: &str) -> Person {
    let mut p = Person::new(id, given, family, email);
    p.department = dept.into();
    p
}

fn ents(p: &Person) -> Vec<&'static str> {
    if p.status == EmploymentStatus::Terminated {
        return vec![];
    }
    let mut e = vec!["aws:group:everyone"];
    if p.department == "Engineering" {
        e.push("aws:group:engineering");
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homonyms_twins_leavers_and_hand_made_accounts_never_share_an_account() {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    for g in ["everyone", "engineering"] {
        admin
            .call("CreateGroup", &[("GroupName", g)])
            .await
            .unwrap();
    }
    // Made by hand before accessdesk: same name as the John Smiths' login, no HR tag.
    admin
        .call("CreateUser", &[("UserName", "john.smith")])
        .await
        .unwrap();

    let run = Run::new(
        &[Entry::new("aws", "aws_iam", &t.moto.url, "aws-test")
            .top("login = \"{given}.{family}\"")
            .settings("region = \"us-east-1\"")],
        &[("aws-test", &t.admin.credential())],
    );

    // Wave 1: everyone but the second Mary.
    let mut people = vec![
        person(
            "E1",
            "John",
            "Smith",
            "john.smith@example.com",
            "Engineering",
        ),
        person("E2", "John", "Smith", "john.smith2@example.com", "Sales"),
        person(
            "E3",
            "José",
            "Ñúñez",
            "jose.nunez@example.com",
            "Engineering",
        ),
        person("E4", "Jose", "Nunez", "jnunez@example.com", "Sales"),
        person(
            "E5",
            "Mary",
            "Major",
            "mary.major@example.com",
            "Engineering",
        ),
    ];
    let set = |people: &[Person]| {
        let rows: Vec<(Person, Vec<&str>)> = people.iter().map(|p| (p.clone(), ents(p))).collect();
        run.set_people(&rows)
    };
    assert!(set(&people) > 0);
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?} {:#?}", run.failed());

    // Mary has a working access key; then she leaves.
    let login_of = |id: &str| {
        run.store
            .lock()
            .unwrap()
            .login_of("aws", id)
            .unwrap()
            .map(|l| l.login)
    };
    let mary = login_of("E5").expect("Mary has a login");
    assert_eq!(mary, "mary.major");
    let r = admin
        .call("CreateAccessKey", &[("UserName", &mary)])
        .await
        .unwrap();
    assert_eq!(xml_all(&r.body, "Status"), ["Active"]);
    people[4].status = EmploymentStatus::Terminated;
    assert!(set(&people) > 0);
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?} {:#?}", run.failed());

    // Wave 2: a new hire with the leaver's name.
    people.push(person(
        "E6",
        "Mary",
        "Major",
        "mary.major2@example.com",
        "Engineering",
    ));
    assert!(set(&people) > 0);
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?} {:#?}", run.failed());

    // Settled: a second plan has nothing to do.
    assert_eq!(run.plan_apply(), 0, "a second plan must have 0 operations");

    let users = boto3_users(&t);
    // Exactly one user per person, found by the HR id tag.
    let mut by_person: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, u) in &users {
        if let Some(h) = u["tags"]["accessdesk:hris-id"].as_str() {
            by_person
                .entry(h.to_string())
                .or_default()
                .push(name.clone());
        }
    }
    for p in &people {
        let accounts = by_person.get(&p.hris_id).cloned().unwrap_or_default();
        assert_eq!(
            accounts.len(),
            1,
            "{}: {accounts:?} in {users:#?}",
            p.hris_id
        );
        let u = &users[&accounts[0]];
        let groups: BTreeSet<String> = u["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = ents(p)
            .iter()
            .map(|e| e.rsplit(':').next().unwrap().to_string())
            .collect();
        assert_eq!(groups, want, "{}'s groups on {}", p.hris_id, accounts[0]);
        // The store's login is that user.
        assert_eq!(login_of(&p.hris_id).as_deref(), Some(accounts[0].as_str()));
    }
    // The homonyms and twins got distinct, suffixed logins; the leaver's stays hers.
    let logins = |a: &str, b: &str| -> BTreeSet<String> {
        [login_of(a).unwrap(), login_of(b).unwrap()].into()
    };
    assert_eq!(
        logins("E1", "E2"),
        ["john.smith2".to_string(), "john.smith3".to_string()].into()
    );
    assert_eq!(
        logins("E3", "E4"),
        ["jose.nunez".to_string(), "jose.nunez2".to_string()].into()
    );
    assert_eq!(login_of("E5").as_deref(), Some("mary.major"));
    assert_eq!(login_of("E6").as_deref(), Some("mary.major2"));

    // The hand-made user is untouched: no tags, no groups.
    let hand = &users["john.smith"];
    assert!(hand["tags"].as_object().unwrap().is_empty(), "{hand}");
    assert!(hand["groups"].as_array().unwrap().is_empty(), "{hand}");
    // ... and reported as a conflict, naming the account and who wanted it.
    let conflicts = run.store.lock().unwrap().identity_conflicts(false).unwrap();
    assert!(
        conflicts.iter().any(|c| c.login == "john.smith"
            && c.owner_hris_id.is_none()
            && (c.person_id == "E1" || c.person_id == "E2")),
        "{conflicts:#?}"
    );
    // The leaver's keys stay inactive; her user was not handed to the new Mary.
    let leaver = &users["mary.major"];
    assert_eq!(leaver["keys"], serde_json::json!(["Inactive"]), "{leaver}");
    assert!(leaver["groups"].as_array().unwrap().is_empty(), "{leaver}");
    assert_eq!(leaver["tags"]["accessdesk:hris-id"], "E5");
    run.audit_ok();
}

/// The race the pre-check cannot see: an account appears under a person's assigned login
/// after it was assigned. The create's "already exists" is read back; it carries another
/// person's HR id, so the create fails as `identity_conflict` naming both sides, and
/// nothing is attached to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_appears_after_assignment_is_an_identity_conflict() {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    admin
        .call("CreateGroup", &[("GroupName", "everyone")])
        .await
        .unwrap();
    let run =
        Run::new(
            &[Entry::new("aws", "aws_iam", &t.moto.url, "aws-test")
                .settings("region = \"us-east-1\"")],
            &[("aws-test", &t.admin.credential())],
        );
    let ada = Person::new("E7", "Ada", "Lovelace", "ada@example.com");
    // The login was assigned earlier (a create that never got sent).
    run.store
        .lock()
        .unwrap()
        .write(|tx| {
            tx.upsert_person(&ada, "test")?;
            tx.claim_login("aws", "E7", "ada", "test").map(|_| ())
        })
        .unwrap();
    // Meanwhile somebody else's tooling made "ada" for another person.
    admin
        .call(
            "CreateUser",
            &[
                ("UserName", "ada"),
                ("Tags.member.1.Key", "accessdesk:hris-id"),
                ("Tags.member.1.Value", "X99"),
            ],
        )
        .await
        .unwrap();
    run.set_people(&[(ada, vec!["aws:group:everyone"])]);
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 1, "{summary:?}");
    let failed = run.failed();
    assert_eq!(
        failed[0].last_error_class.as_deref(),
        Some("identity_conflict"),
        "{failed:#?}"
    );
    let msg = failed[0].last_error_message.clone().unwrap_or_default();
    assert!(
        msg.contains("E7") && msg.contains("X99") && msg.contains("ada"),
        "{msg}"
    );
    // Nothing attached: the account is not linked, and has no groups.
    assert!(
        run.store
            .lock()
            .unwrap()
            .account_for("aws", "E7")
            .unwrap()
            .is_none()
    );
    let users = boto3_users(&t);
    assert!(users["ada"]["groups"].as_array().unwrap().is_empty());
    // Its own root-cause group.
    let groups = accessdesk::engine::admin::failure_groups(&run.store.lock().unwrap()).unwrap();
    assert!(
        groups.keys().any(|g| g.class == "identity_conflict"
            && g.key() == "aws/identity_conflict/identity_conflict"),
        "{groups:#?}"
    );
}
