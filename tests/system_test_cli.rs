//! `accessdesk system test NAME` against a real SCIM provider: the identity and scopes on
//! success; the classified error, exit 1, on a rejected credential.

#[path = "common/scim_server.rs"]
mod scim_server;

use scim_server::ScimServer;
use std::process::Command;

fn run(home: &std::path::Path, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ACCESSDESK_HOME")
        .env("APP_TOKEN", token)
        .env("ACCESSDESK_KEYCHAIN", "memory")
        .output()
        .unwrap()
}

#[tokio::test]
async fn system_test_prints_identity_or_the_classified_error() {
    let server = ScimServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join("systems.toml"),
        format!(
            "[systems.app]\nkind = \"scim\"\nbase_url = \"{}\"\ncredential = \"env:APP_TOKEN\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    std::fs::write(home.join("policies.toml"), "").unwrap();

    let o = run(home, &server.token, &["--json", "system", "test", "app"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(
        v["identity"]["principal"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    assert!(
        v["identity"]["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "patch"),
        "{v}"
    );

    let o = run(home, "wrong-token", &["system", "test", "app"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("app: unauthorized (HTTP 401)") && err.contains("env:APP_TOKEN"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-token"),
        "the credential leaked into the error: {err}"
    );

    let o = run(home, &server.token, &["system", "test", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}
