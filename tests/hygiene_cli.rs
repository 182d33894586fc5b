//! Credential hygiene and the API-version watch through the CLI, end to end: a Google
//! Workspace system whose key is set with `secret set` (the kernel keyring), tested with
//! `system test` against the simulator sending Deprecation and Sunset headers, then read
//! back from `system list --json` and `system list`: when the key was set and last
//! worked, rotation due from `rotate_after`, the scopes granted against those needed, the
//! token lifetime, and both deprecation signals with their dates.

use accessdesk::sim::google::{self, Deprecation, GoogleSimOptions};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

const SA: &str = "hygiene@acme-iam.iam.gserviceaccount.com";

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/okta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"))
}

fn cli(home: &std::path::Path, service: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ACCESSDESK_HOME")
        .env("ACCESSDESK_KEYCHAIN", "keyutils")
        .env("ACCESSDESK_KEYRING_SERVICE", service)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_list_shows_hygiene_and_the_vendors_deprecation_signals() {
    let now = SystemTime::now();
    let (server, h) = google::spawn(GoogleSimOptions {
        deprecation: Some(Deprecation {
            since: now - Duration::from_secs(86_400),
            sunset: now + Duration::from_secs(86_400 * 120),
            link: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    h.register_service_account(
        SA,
        &fixture("test-rsa-public.pem"),
        &accessdesk::adapters::google_workspace::SCOPES,
    );
    let base = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let service = format!("accessdesk-hygiene-test-{}", std::process::id());
    std::fs::write(
        home.join("systems.toml"),
        format!(
            "[systems.gw]\nkind = \"google_workspace\"\nbase_url = \"{base}\"\n\
             credential = \"keyring:gw-key\"\nrotate_after = \"30d\"\n\
             settings = {{ admin = \"{}\" }}\n",
            h.admin_email()
        ),
    )
    .unwrap();
    std::fs::write(home.join("policies.toml"), "").unwrap();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": SA,
        "private_key": fixture("test-rsa-private.pem"),
        "token_uri": format!("{base}/token"),
    })
    .to_string();
    let o = cli(home, &service, &["secret", "set", "gw-key"], Some(&key));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Before any contact, nothing is claimed about the vendor.
    let o = cli(home, &service, &["--json", "system", "list"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["api_watch"], serde_json::json!([]));
    assert_eq!(v[0]["credential_hygiene"]["rotation"], "ok");
    assert!(v[0]["credential_hygiene"]["set_at"].is_string());

    let o = cli(home, &service, &["system", "test", "gw"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = cli(home, &service, &["--json", "system", "list"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gw = &v[0];
    assert_eq!(gw["name"], "gw");
    assert_eq!(
        gw["status"], "warning",
        "a deprecation signal is a warning: {gw}"
    );
    let hy = &gw["credential_hygiene"];
    assert!(hy["last_used_ok_at"].is_string(), "{hy}");
    assert!(hy["rotation_due_at"].is_string(), "{hy}");
    assert_eq!(hy["rotate_after_days"], 30);
    assert_eq!(
        hy["expiry"], "unknown",
        "Google says nothing of the key's expiry"
    );
    assert_eq!(hy["token_lifetime_secs"], 3599);
    assert_eq!(hy["scopes"]["status"], "ok", "{hy}");
    assert_eq!(hy["scopes_granted"].as_array().unwrap().len(), 3);
    let watch = gw["api_watch"].as_array().unwrap();
    let signals: Vec<&str> = watch
        .iter()
        .map(|d| d["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals, ["Deprecation", "Sunset"], "{watch:?}");
    assert!(watch.iter().all(|d| d["date"].is_string()), "{watch:?}");
    assert!(
        watch[0]["request"]
            .as_str()
            .unwrap()
            .starts_with("GET /admin/directory/v1/users/"),
        "{watch:?}"
    );

    let o = cli(home, &service, &["system", "list"], None);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("warning"), "{text}");
    assert!(text.contains("Sunset"), "{text}");
    assert!(!text.contains("BEGIN"), "no key material: {text}");
    let o = cli(home, &service, &["secret", "rm", "gw-key"], None);
    assert!(o.status.success());
}
