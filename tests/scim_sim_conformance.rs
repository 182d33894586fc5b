//! The SCIM simulator checked by a third party: scim2-tester (from the peers venv, see
//! tests/common/scim_server.rs; missing, the test fails with the install command) runs its
//! RFC 7643/7644 compliance checks against the simulator, once with every feature
//! advertised (bulk included) and once with the least a provider can offer. Any ERROR or
//! CRITICAL check fails the test; SKIPPED is what scim2-tester reports for a feature the
//! provider does not advertise (PATCH checks against the minimal one), and it then exits 1,
//! so its exit status alone says nothing.

#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::sim::scim::{ScimSimOptions, spawn};

async fn check(opts: ScimSimOptions) {
    let bin = scim_server::venv_dir().join("bin/scim2");
    assert!(
        bin.is_file(),
        "scim2-tester is not installed at {}.\nInstall it from the repo root with:\n    {}",
        bin.display(),
        scim_server::INSTALL
    );
    let (server, handle) = spawn(opts.clone()).await.expect("start the SCIM simulator");
    let token = "conformance-token-8d1e";
    handle.add_token(token);
    let out = tokio::process::Command::new(&bin)
        .args(["--url", &handle.base_url(), "test", "-v"])
        // The token in the environment, not on a command line other users can read.
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {token}"))
        .output()
        .await
        .expect("run scim2-tester");
    let report = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("CRITICAL"))
        .collect();
    let passed = report.lines().filter(|l| l.starts_with("SUCCESS")).count();
    let skipped = report.lines().filter(|l| l.starts_with("SKIPPED")).count();
    assert!(
        report.contains("compliance check") && failures.is_empty() && passed > 40,
        "scim2-tester against the simulator ({opts:?}): {passed} SUCCESS, failures {failures:#?}\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("scim2-tester: {passed} checks passed, {skipped} skipped");
    if opts.patch && opts.filter && opts.bulk {
        assert!(out.status.success() && skipped == 0, "{report}");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_passes_with_every_feature() {
    check(ScimSimOptions {
        bulk: true,
        ..ScimSimOptions::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_passes_with_the_least_a_provider_offers() {
    check(ScimSimOptions::minimal(7)).await;
}
