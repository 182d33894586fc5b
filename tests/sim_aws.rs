//! The AWS simulator (src/sim/aws.rs: IAM and STS over the query protocol, the identity
//! store over JSON 1.1) against our AWS adapters, built from systems.toml entries as for
//! real AWS. (No model of the identity store is in specs/, so its conformance is checked
//! by the contract and the behaviour tests only.)
//!
//! The contract bodies are the ones tests/aws_peer.rs runs against moto
//! (tests/common/aws_contract.rs); then what only the simulator has: real paging, its own
//! faults under the engine, permanent rejections, rate limits, SigV4 checks, and its
//! answers checked against IAM's model (`specs/aws/service-2.json`).

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/moto.rs"]
mod moto;

use accessdesk::adapters::prelude::*;
use accessdesk::adapters::{ErrorClass, collect_all};
use accessdesk::model::SystemKind;
use accessdesk::sim::aws::AwsSimOptions;
use accessdesk::sim::aws::{iam as aws_iam, identitystore as aws_identitystore};
use accessdesk::sim::fault::FaultProfile;
use contract::{AwsTarget, SLOW, SimAws, group, iam, idstore, names, person};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

async fn sim() -> SimAws {
    SimAws::start(AwsSimOptions::default()).await
}

/// Every vendor code the IAM simulator answered with is one it declares.
fn declared(e: &accessdesk::adapters::AdapterError) {
    if let Some(code) = &e.vendor_code {
        assert!(
            aws_iam::ERROR_CODES.iter().any(|(c, _)| c == code),
            "undeclared error code {code}: {e}"
        );
        let status = aws_iam::ERROR_CODES
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, s)| *s);
        assert_eq!(e.status, status, "{e}");
    }
}

// -- the shared contract -------------------------------------------------------------------

#[tokio::test]
async fn contract_iam() {
    contract::iam_contract(&sim().await).await;
}

#[tokio::test]
async fn contract_wrong_secret_and_unknown_key() {
    contract::wrong_secret(&sim().await).await;
}

#[tokio::test]
async fn contract_deactivation_and_reactivation() {
    contract::deactivation(&sim().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_faults_through_the_proxy_converge() {
    let s = sim().await;
    contract::faults_converge(&s, true).await;
    for counts in [s.handle.iam_counts(), s.handle.store_counts()] {
        assert_eq!(counts.max_creates(), 1, "a user was created twice");
        assert_eq!(counts.max_adds(), 1, "a membership was added twice");
    }
}

#[tokio::test]
async fn contract_identitystore() {
    let s = sim().await;
    contract::identitystore_contract(&s).await;
    assert_eq!(s.handle.store_counts().max_creates(), 1);
}

#[tokio::test]
async fn contract_iam_reconciliation_reads() {
    contract::iam_reconciliation_reads(&sim().await, true).await;
}

#[tokio::test]
async fn contract_identitystore_reconciliation_reads() {
    contract::identitystore_reconciliation_reads(&sim().await).await;
}

#[tokio::test]
async fn contract_throttling() {
    contract::throttling(&sim().await).await;
}

// -- what only the simulator has -----------------------------------------------------------

#[tokio::test]
async fn listings_page_with_max_items_and_markers() {
    let s = sim().await;
    let a = iam(&s.url(), &s.credential(), "page_size = 2", SLOW);
    for g in ["eng", "ops", "sales", "support", "zeta"] {
        s.handle.seed_iam_group(g);
    }
    for i in 0..7 {
        let login = format!("user{i}");
        a.create_account(&person(&format!("P{i}"), &login, "U", &format!("N{i}")))
            .await
            .unwrap();
        a.add_membership(&login, &group("eng")).await.unwrap();
    }
    for g in ["ops", "sales", "support", "zeta"] {
        a.add_membership("user0", &group(g)).await.unwrap();
    }
    // ListUsers: 7 users and the admin, two a page.
    let first = a.list_accounts(None).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next.is_some());
    let all = collect_all(|c| a.list_accounts(c), 0).await.unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(
        all.iter().filter(|x| x.hris_id.is_some()).count(),
        7,
        "tags read with GetUser"
    );
    let rest = collect_all(|c| a.list_accounts(c.or_else(|| first.next.clone())), 0)
        .await
        .unwrap();
    assert_eq!(rest.len(), 6, "resuming from a marker gives the rest");
    // GetGroup and ListGroupsForUser page too.
    let eng = group("eng");
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(members.len(), 7);
    assert_eq!(
        names(a.list_memberships("user0").await.unwrap()),
        ["eng", "ops", "sales", "support", "zeta"]
    );
    // A marker this service did not issue is a validation error, not a panic.
    let e = a
        .call("ListUsers", &[("Marker", "not-hex"), ("MaxItems", "2")])
        .await
        .unwrap_err();
    assert_eq!(e.vendor_code.as_deref(), Some("ValidationError"));
    declared(&e);
    let e = a.call("ListUsers", &[("MaxItems", "0")]).await.unwrap_err();
    declared(&e);
}

#[tokio::test]
async fn the_registry_builds_the_adapter_and_a_rejected_user_is_permanent() {
    let s = sim().await;
    s.handle.reject_user(
        "blocked.user",
        "The user name is reserved by the organization.",
    );
    let text = format!(
        "[systems.aws]\nkind = \"aws_iam\"\nbase_url = \"{}\"\ncredential = \"keyring:aws\"\n[systems.aws.settings]\nregion = \"eu-west-1\"\n",
        s.url()
    );
    let cfg = accessdesk::config::SystemsConfig::parse(std::path::Path::new("systems.toml"), &text)
        .unwrap();
    let secrets = engine::Secrets([("aws".to_string(), s.credential())].into());
    let a = accessdesk::adapters::registry::build(&cfg.catalog.systems["aws"], &secrets)
        .expect("the registry builds the IAM adapter");
    let id = a.authenticate().await.unwrap();
    assert_eq!(id.principal, s.handle.admin_arn());
    assert_eq!(id.details["account"], s.handle.account_id());
    let e = a
        .create_account(&person("E9", "blocked.user", "B", "U"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert_eq!(
        (e.status, e.vendor_code.as_deref()),
        (Some(400), Some("InvalidInput"))
    );
    assert!(e.message.contains("reserved"), "{e}");
    declared(&e);
    assert_eq!(s.handle.iam_counts().creates_for("blocked.user"), 0);
}

#[tokio::test]
async fn signatures_dates_and_keys_are_checked() {
    let s = sim().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let form = "Action=ListUsers&Version=2010-05-08";
    let post = |authz: Option<&str>, date: &str| {
        let mut r = http
            .post(format!("{}/", s.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-amz-date", date)
            .body(form);
        if let Some(a) = authz {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let code = |body: &str| {
        let doc = roxmltree::Document::parse(body).unwrap();
        doc.descendants()
            .find(|n| n.has_tag_name("Code"))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string()
    };
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let r = post(None, &now).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(code(&r.text().await.unwrap()), "MissingAuthenticationToken");
    let r = post(Some("AWS4-HMAC-SHA256 Credential=nonsense"), &now)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(code(&r.text().await.unwrap()), "IncompleteSignature");
    // Well-formed, right key, made-up signature.
    let day = &now[..8];
    let fake = format!(
        "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={}",
        s.key_id(),
        "0".repeat(64)
    );
    let r = post(Some(&fake), &now).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(code(&r.text().await.unwrap()), "SignatureDoesNotMatch");
    // A date 10 minutes off.
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .format("%Y%m%dT%H%M%SZ")
        .to_string();
    let r = post(Some(&fake.replace(day, &old[..8])), &old)
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert_eq!(code(&body), "SignatureDoesNotMatch");
    assert!(body.contains("expired"), "{body}");
    // An inactive key is unknown.
    let (key, secret) = s.handle.add_access_key("accessdesk-admin").unwrap();
    let a = iam(&s.url(), &format!("{key}:{secret}"), "", SLOW);
    a.authenticate()
        .await
        .expect("a second key of the admin works");
    let admin = iam(&s.url(), &s.credential(), "", SLOW);
    admin
        .call(
            "UpdateAccessKey",
            &[
                ("UserName", "accessdesk-admin"),
                ("AccessKeyId", &key),
                ("Status", "Inactive"),
            ],
        )
        .await
        .unwrap();
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(
        (e.class.clone(), e.vendor_code.as_deref()),
        (ErrorClass::Unauthorized, Some("InvalidClientTokenId"))
    );
    declared(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_throttles_and_the_adapter_backs_off() {
    let s = SimAws::start(AwsSimOptions {
        rate_limit: Some(5),
        rate_window: Duration::from_secs(1),
        ..AwsSimOptions::default()
    })
    .await;
    let a = iam(&s.url(), &s.credential(), "", SLOW);
    // 12 requests in at most two one-second windows: one of them gets 6 or more.
    for i in 0..12 {
        a.create_account(&person(&format!("R{i}"), &format!("rl{i}"), "R", "L"))
            .await
            .unwrap();
    }
    assert!(s.handle.limits().refused() > 0, "the limit never bit");
    assert!(a.http().limiter.snapshot().throttled > 0);
    assert_eq!(s.handle.iam_counts().max_creates(), 1);
}

/// The engine against the simulator's own faults (10% mixed, lost responses): everything
/// converges, nothing is created or added twice, and the one person IAM refuses fails
/// Permanent with the reason. (Reads lagging writes are tested without lost responses:
/// see `a_lost_create_answer_while_reads_lag_is_not_lost_by_the_engine`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_converges_through_the_sims_own_faults_without_duplicates() {
    let s = SimAws::start(AwsSimOptions {
        faults: FaultProfile {
            timeout_delay: Duration::from_secs(2),
            ..FaultProfile::mixed(0.10, 77)
        },
        lost_response_rate: 0.02,
        ..AwsSimOptions::default()
    })
    .await;
    for g in ["everyone", "engineering"] {
        s.handle.seed_iam_group(g);
    }
    // The login the engine will assign person 7 (the kind's default template).
    let refused = accessdesk::model::login::LoginTemplate::default_for(SystemKind::AwsIam)
        .render(&engine::person(7), SystemKind::AwsIam);
    s.handle
        .reject_user(&refused, "The user name is on the account's block list.");
    let entry = engine::Entry::new("aws", "aws_iam", &s.url(), "aws-iam")
        .verify(true)
        .settings("region = \"us-east-1\"");
    let run = engine::Run::new(&[entry], &[("aws-iam", &s.credential())]);
    run.intend(20, &["aws"]);
    run.run_with_one_refusal(19 + 19 + 10, "block list").await;
    let (_, injected) = s.handle.faults().counts();
    assert!(injected > 0, "no faults were injected");
    let counts = s.handle.iam_counts();
    assert_eq!(counts.max_creates(), 1, "a user was created twice");
    assert_eq!(counts.max_adds(), 1, "a membership was added twice");
    assert_eq!(
        s.handle.iam_users().len(),
        19 + 1,
        "19 people and the admin"
    );
    assert_eq!(s.handle.iam_group_members("engineering").len(), 10);
    assert_eq!(s.handle.iam_group_members("everyone").len(), 19);
    let hris = s
        .handle
        .iam_user(
            &accessdesk::model::login::LoginTemplate::default_for(SystemKind::AwsIam)
                .render(&engine::person(3), SystemKind::AwsIam),
        )
        .and_then(|u| u.tag("accessdesk:hris-id").map(str::to_string));
    assert_eq!(hris.as_deref(), Some("E003"));
}

/// The identity store's own behaviour: JSON errors with `__type` and their extra members,
/// the store id checked, a rejected user Permanent, reads lagging writes, its own
/// throttling shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_store_errors_visibility_and_throttling() {
    let s = SimAws::start(AwsSimOptions {
        faults: FaultProfile {
            visibility_delay: Duration::from_millis(500),
            ..FaultProfile::none()
        },
        ..AwsSimOptions::default()
    })
    .await;
    s.handle.seed_store_group("eng");
    s.handle
        .reject_user("blocked", "The user name is reserved by policy.");
    let a = idstore(&s.url(), &s.credential(), "", SLOW);
    let code = |e: &accessdesk::adapters::AdapterError| {
        let c = e.vendor_code.clone().unwrap_or_default();
        assert!(aws_identitystore::ERROR_CODES.contains(&c.as_str()), "{e}");
        c
    };
    // A JSON error: __type, Message, and the exception's own members.
    let r = a
        .call(
            "DescribeUser",
            serde_json::json!({"UserId": "1234567890-00000000-0000-4000-8000-000000000000"}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&r), "ResourceNotFoundException");
    let v: Value = serde_json::from_str(&r.excerpt).unwrap();
    assert_eq!(
        (v["ResourceType"].as_str(), v["Message"].is_string()),
        (Some("USER"), true)
    );
    // Another store.
    let other = a
        .call(
            "ListUsers",
            serde_json::json!({"IdentityStoreId": "d-9999999999"}),
        )
        .await
        .unwrap_err();
    assert!(other.excerpt.contains("IDENTITY_STORE"), "{other}");
    // ... which is a configuration error naming the setting, not a missing user.
    assert_eq!(other.class, ErrorClass::Permanent, "{other}");
    assert!(
        other.message.contains("settings.identity_store_id"),
        "{other}"
    );
    // A rejected user.
    let e = a
        .create_account(&person("E1", "blocked", "B", "U"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.clone(), code(&e).as_str()),
        (ErrorClass::Permanent, "ValidationException")
    );
    assert!(e.message.contains("reserved by policy"), "{e}");
    // Reads lag writes; writes see the truth.
    let ada = a
        .create_account(&person("E2", "ada", "Ada", "L"))
        .await
        .unwrap();
    assert!(a.get_account(&ada.external_id).await.unwrap().is_none());
    let e = a
        .create_account(&person("E2", "ADA", "Ada", "L"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.clone(), code(&e).as_str()),
        (ErrorClass::Conflict, "ConflictException")
    );
    a.add_membership(&ada.external_id, &group("eng"))
        .await
        .unwrap();
    assert_eq!(
        s.handle.store_group_members("eng"),
        vec![ada.external_id.clone()]
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(a.get_account(&ada.external_id).await.unwrap().is_some());
    assert_eq!(
        names(a.list_memberships(&ada.external_id).await.unwrap()),
        ["eng"]
    );
    // Garbage and unknown operations.
    let e = a
        .call("Frobnicate", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnknownOperationException");
    let e = a
        .call("ListUsers", serde_json::json!({"MaxResults": 500}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");

    // Throttling in the JSON shape: 400 ThrottlingException with RetryAfterSeconds.
    let limited = SimAws::start(AwsSimOptions {
        rate_limit: Some(3),
        rate_window: Duration::from_secs(2),
        ..AwsSimOptions::default()
    })
    .await;
    let mut signed = idstore(&limited.url(), &limited.credential(), "", SLOW);
    // One attempt a call: the refusal itself is what is looked at.
    signed.set_retry(accessdesk::adapters::http::RetryPolicy {
        max_attempts: 1,
        ..contract::fast_retry()
    });
    let mut throttled = None;
    for _ in 0..10 {
        match signed.call("ListUsers", serde_json::json!({})).await {
            Err(e) if e.vendor_code.as_deref() == Some("ThrottlingException") => {
                throttled = Some(e);
                break;
            }
            _ => {}
        }
    }
    let e = throttled.expect("the identity store's window never refused");
    assert!(
        matches!(
            e.class,
            ErrorClass::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{e}"
    );
    assert_eq!(e.status, Some(400));
}

/// The engine provisioning the identity store through the simulator's own faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_converges_on_the_identity_store_without_duplicates() {
    let s = SimAws::start(AwsSimOptions {
        faults: FaultProfile {
            timeout_delay: Duration::from_secs(2),
            ..FaultProfile::mixed(0.10, 99)
        },
        lost_response_rate: 0.02,
        ..AwsSimOptions::default()
    })
    .await;
    for g in ["everyone", "engineering"] {
        s.handle.seed_store_group(g);
    }
    let refused =
        accessdesk::model::login::LoginTemplate::default_for(SystemKind::AwsIdentityStore)
            .render(&engine::person(7), SystemKind::AwsIdentityStore);
    s.handle
        .reject_user(&refused, "The user name is on the directory's block list.");
    let entry = engine::Entry::new("sso", "aws_identity_store", &s.url(), "aws-sso")
        .verify(true)
        .settings(&format!(
            "region = \"us-east-1\"\nidentity_store_id = \"{}\"",
            s.handle.identity_store_id()
        ));
    let run = engine::Run::new(&[entry], &[("aws-sso", &s.credential())]);
    run.intend(20, &["sso"]);
    run.run_with_one_refusal(19 + 19 + 10, "block list").await;
    let (_, injected) = s.handle.faults().counts();
    assert!(injected > 0, "no faults were injected");
    let counts = s.handle.store_counts();
    assert_eq!(counts.max_creates(), 1, "a user was created twice");
    assert_eq!(counts.max_adds(), 1, "a membership was created twice");
    assert_eq!(s.handle.store_users().len(), 19);
    assert_eq!(s.handle.store_group_members("engineering").len(), 10);
    assert_eq!(s.handle.store_group_members("everyone").len(), 19);
}

// -- conformance with IAM's model ----------------------------------------------------------

fn service_model() -> Value {
    let specs = match std::env::var_os("ACCESSDESK_SPECS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/specs"),
    };
    let path = specs.join("aws/service-2.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("IAM's model is needed at {}: {e}", path.display()));
    serde_json::from_str(&text).expect("service-2.json is JSON")
}

/// Errors every AWS query API may answer with, outside any operation's list:
/// https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html (status as
/// documented there; `Throttling` is the code IAM sends for ThrottlingException).
const COMMON_ERRORS: &[(&str, u16)] = &[
    ("IncompleteSignature", 400),
    ("InvalidAction", 400),
    ("InvalidClientTokenId", 403),
    ("MissingAction", 400),
    ("MissingAuthenticationToken", 403),
    ("MissingParameter", 400),
    ("ValidationError", 400),
    ("Throttling", 400),
    ("ServiceUnavailable", 503),
    ("SignatureDoesNotMatch", 403),
];

/// Check an XML element against a shape of the model; problems are collected.
fn check_shape(
    model: &Value,
    shape: &str,
    node: roxmltree::Node<'_, '_>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let s = &model["shapes"][shape];
    let elements = || node.children().filter(|n| n.is_element());
    match s["type"].as_str().unwrap_or("") {
        "structure" => {
            for child in elements() {
                let name = child.tag_name().name();
                match s["members"].get(name) {
                    Some(m) => check_shape(
                        model,
                        m["shape"].as_str().unwrap_or(""),
                        child,
                        &format!("{at}.{name}"),
                        problems,
                    ),
                    None => problems.push(format!("{at}: {name} is not a member of {shape}")),
                }
            }
            for req in s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !elements().any(|c| c.tag_name().name() == req) {
                    problems.push(format!("{at}: required {req} of {shape} is missing"));
                }
            }
        }
        "list" => {
            for child in elements() {
                if child.tag_name().name() != "member" {
                    problems.push(format!("{at}: list element {}", child.tag_name().name()));
                }
                check_shape(
                    model,
                    s["member"]["shape"].as_str().unwrap_or(""),
                    child,
                    &format!("{at}[]"),
                    problems,
                );
            }
        }
        "boolean" if !matches!(node.text(), Some("true" | "false")) => {
            problems.push(format!("{at}: {:?} is not a boolean", node.text()))
        }
        "timestamp"
            if node
                .text()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_none() =>
        {
            problems.push(format!("{at}: {:?} is not a timestamp", node.text()))
        }
        "string" => {
            let text = node.text().unwrap_or("");
            if let Some(values) = s["enum"].as_array()
                && !values.iter().any(|v| v == text)
            {
                problems.push(format!("{at}: {text:?} is not one of {shape}'s values"));
            }
            let len = text.chars().count() as u64;
            if s["min"].as_u64().is_some_and(|m| len < m)
                || s["max"].as_u64().is_some_and(|m| len > m)
            {
                problems.push(format!("{at}: {text:?} has the wrong length for {shape}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn actions_errors_and_answers_conform_to_iams_model() {
    let model = service_model();
    assert_eq!(model["metadata"]["apiVersion"], "2010-05-08");
    let ops = model["operations"].as_object().unwrap();
    // Every action the simulator answers is an IAM operation.
    for action in aws_iam::ACTIONS {
        assert!(
            ops.contains_key(*action),
            "{action} is not in service-2.json"
        );
    }
    // Every error code it sends is declared by some operation (with that status) or is a
    // documented common error.
    let declared: Vec<(String, u16)> = model["shapes"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|s| {
            let e = s.get("error")?;
            Some((
                e["code"].as_str()?.to_string(),
                e["httpStatusCode"].as_u64()? as u16,
            ))
        })
        .collect();
    for (code, status) in aws_iam::ERROR_CODES {
        let in_model = declared.iter().find(|(c, _)| c == code);
        let common = COMMON_ERRORS.iter().find(|(c, _)| c == code);
        match (in_model, common) {
            (Some((_, s)), _) => assert_eq!(s, status, "{code}"),
            (None, Some((_, s))) => assert_eq!(s, status, "{code}"),
            (None, None) => {
                panic!("{code} is neither declared in service-2.json nor a common error")
            }
        }
    }

    // Every action, answered: the Result element matches the operation's output shape.
    let s = sim().await;
    let a = iam(&s.url(), &s.credential(), "", SLOW);
    let key = s
        .handle
        .add_access_key("accessdesk-admin")
        .map(|(k, _)| k)
        .unwrap_or_default();
    let script: &[(&str, &[(&str, &str)])] = &[
        (
            "CreateUser",
            &[
                ("UserName", "ada"),
                ("Path", "/staff/"),
                ("Tags.member.1.Key", "k"),
                ("Tags.member.1.Value", "v"),
            ],
        ),
        ("GetUser", &[("UserName", "ada")]),
        ("GetUser", &[]),
        (
            "TagUser",
            &[
                ("UserName", "ada"),
                ("Tags.member.1.Key", "k2"),
                ("Tags.member.1.Value", "v2"),
            ],
        ),
        ("ListUserTags", &[("UserName", "ada")]),
        (
            "UntagUser",
            &[("UserName", "ada"), ("TagKeys.member.1", "k2")],
        ),
        ("CreateGroup", &[("GroupName", "eng")]),
        (
            "AddUserToGroup",
            &[("GroupName", "eng"), ("UserName", "ada")],
        ),
        ("GetGroup", &[("GroupName", "eng")]),
        ("ListGroups", &[]),
        ("ListGroupsForUser", &[("UserName", "ada")]),
        ("ListUsers", &[("PathPrefix", "/staff/"), ("MaxItems", "1")]),
        ("CreateAccessKey", &[("UserName", "ada")]),
        ("ListAccessKeys", &[("UserName", "accessdesk-admin")]),
        (
            "UpdateAccessKey",
            &[
                ("UserName", "accessdesk-admin"),
                ("AccessKeyId", &key),
                ("Status", "Inactive"),
            ],
        ),
        (
            "DeleteAccessKey",
            &[("UserName", "accessdesk-admin"), ("AccessKeyId", &key)],
        ),
        (
            "CreateLoginProfile",
            &[("UserName", "ada"), ("Password", "Correct-Horse-9!")],
        ),
        ("GetLoginProfile", &[("UserName", "ada")]),
        ("DeleteLoginProfile", &[("UserName", "ada")]),
        ("UpdateUser", &[("UserName", "ada"), ("NewPath", "/")]),
        (
            "RemoveUserFromGroup",
            &[("GroupName", "eng"), ("UserName", "ada")],
        ),
        ("DeleteGroup", &[("GroupName", "eng")]),
    ];
    let mut answered: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for (action, params) in script {
        let r = a
            .call(action, params)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), format!("{action}Response"));
        assert_eq!(
            root.tag_name().namespace(),
            Some("https://iam.amazonaws.com/doc/2010-05-08/")
        );
        let output = &ops[*action]["output"];
        match (
            output["resultWrapper"].as_str(),
            root.children()
                .find(|n| n.is_element() && n.tag_name().name() != "ResponseMetadata"),
        ) {
            (Some(wrapper), Some(result)) => {
                assert_eq!(result.tag_name().name(), wrapper, "{action}");
                check_shape(
                    &model,
                    output["shape"].as_str().unwrap(),
                    result,
                    action,
                    &mut problems,
                );
            }
            (None, None) => {}
            (w, r) => problems.push(format!(
                "{action}: result {:?} where the model has {w:?}",
                r.map(|n| n.tag_name().name().to_string())
            )),
        }
        answered.push(action);
    }
    // DeleteUser last: a user with a key is a DeleteConflict first.
    let e = a
        .call("DeleteUser", &[("UserName", "ada")])
        .await
        .unwrap_err();
    assert_eq!(e.vendor_code.as_deref(), Some("DeleteConflict"));
    declared_in_model(&declared, &e);
    let keys = a
        .call("ListAccessKeys", &[("UserName", "ada")])
        .await
        .unwrap();
    let text = String::from_utf8(keys.body.to_vec()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let id = doc
        .descendants()
        .find(|n| n.has_tag_name("AccessKeyId"))
        .and_then(|n| n.text())
        .unwrap()
        .to_string();
    a.call(
        "DeleteAccessKey",
        &[("UserName", "ada"), ("AccessKeyId", &id)],
    )
    .await
    .unwrap();
    a.call("DeleteUser", &[("UserName", "ada")]).await.unwrap();
    answered.push("DeleteUser");
    assert!(problems.is_empty(), "{problems:#?}");
    for action in aws_iam::ACTIONS {
        assert!(answered.contains(action), "{action} was not exercised");
    }
    // Error documents: ErrorResponse / Error / Type, Code, Message (the excerpt is cut
    // after a few hundred bytes).
    for (action, params) in [
        ("GetUser", vec![("UserName", "nobody")]),
        ("CreateUser", vec![("UserName", "accessdesk-admin")]),
        ("CreateUser", vec![("UserName", "bad name")]),
        ("Frobnicate", vec![]),
    ] {
        let e = a.call(action, &params).await.unwrap_err();
        declared_in_model(&declared, &e);
        let code = e.vendor_code.clone().unwrap_or_default();
        let head = format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>"
        );
        assert!(e.excerpt.starts_with(&head), "{action}: {}", e.excerpt);
    }
}

fn declared_in_model(declared: &[(String, u16)], e: &accessdesk::adapters::AdapterError) {
    let code = e.vendor_code.clone().unwrap_or_default();
    let ok = declared
        .iter()
        .any(|(c, s)| *c == code && Some(*s) == e.status)
        || COMMON_ERRORS
            .iter()
            .any(|(c, s)| *c == code && Some(*s) == e.status);
    assert!(ok, "{code} (HTTP {:?}) is not declared: {e}", e.status);
}

/// A create whose answer is lost, retried into `EntityAlreadyExists` while the new user is
/// not yet visible to reads (IAM is eventually consistent): the engine must not count the
/// create as done without the account, or the person's memberships fail for good with
/// "has no account". The engine treats "exists but not readable yet" as transient
/// (src/engine/workers/execute.rs, CreateAccount on Conflict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_while_reads_lag_is_not_lost_by_the_engine() {
    let s = SimAws::start(AwsSimOptions {
        faults: FaultProfile {
            visibility_delay: Duration::from_millis(1500),
            ..FaultProfile::none()
        },
        ..AwsSimOptions::default()
    })
    .await;
    s.handle.seed_iam_group("everyone");
    s.handle.seed_iam_group("engineering");
    s.handle.fail(
        accessdesk::sim::rules::FailRule::new(
            None,
            "/",
            accessdesk::sim::rules::BodyFault::LostResponse,
            1,
        )
        .with_body("Action=CreateUser"),
    );
    let entry = engine::Entry::new("aws", "aws_iam", &s.url(), "aws-iam");
    let run = engine::Run::new(&[entry], &[("aws-iam", &s.credential())]);
    run.intend(1, &["aws"]);
    let summary = run
        .engine(engine::fast())
        .run_until_idle(None)
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?} {:#?}", run.failed());
    assert_eq!(s.handle.iam_group_members("everyone").len(), 1);
    assert_eq!(s.handle.iam_group_members("engineering").len(), 1);
    assert_eq!(s.handle.iam_counts().max_creates(), 1, "created twice");
}
