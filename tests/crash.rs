//! Crash safety: SIGKILL the engine at 20 random points during a wave of 1,000 operations
//! against a real SCIM provider (scim2-server). After each restart the engine settles what
//! was running by checking the target; at the end the provider's state equals the intended
//! state, every account was created exactly once, and the audit chain is intact.

#[path = "common/scim_server.rs"]
mod scim_server;

use scim_server::ScimServer;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PEOPLE: usize = 400; // 400 creations + 400 "everyone" + 200 "engineering" = 1,000 ops

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_accessdesk"));
    c.env_remove("ACCESSDESK_HOME").env("USER", "crash-test");
    c
}

fn run(home: &Path, token: &str, args: &[&str]) -> Output {
    bin()
        .arg("--home")
        .arg(home)
        .args(args)
        .env("APP_TOKEN", token)
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

fn http() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(server: &ScimServer, path: &str) -> Value {
    http()
        .get(format!("{}{path}", server.base_url()))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A small deterministic PRNG (xorshift) so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_random_points_loses_nothing_and_repeats_nothing() {
    let server = ScimServer::start().await;
    for g in ["everyone", "engineering"] {
        let r = http()
            .post(format!("{}/Groups", server.base_url()))
            .bearer_auth(&server.token)
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": g}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    assert!(run(home, "", &["init"]).status.success());
    std::fs::write(
        home.join("systems.toml"),
        format!("[systems.app]\nkind = \"scim\"\nbase_url = \"{}\"\ncredential = \"env:APP_TOKEN\"\nrate_limit = {{ requests_per_minute = 60000, concurrency = 4 }}\n", server.base_url()),
    )
    .unwrap();
    std::fs::write(
        home.join("policies.toml"),
        "[[rule]]\nname = \"everyone\"\nwhen = 'person.status == \"active\"'\ngrant = [\"app:group:everyone\"]\n\n\
         [[rule]]\nname = \"engineering\"\nwhen = 'person.department == \"Engineering\"'\ngrant = [\"app:group:engineering\"]\n",
    )
    .unwrap();
    let mut csv = String::from("employee_id,first_name,last_name,email,department,status\n");
    for i in 0..PEOPLE {
        csv.push_str(&format!(
            "E{i:04},Given{i},Crash,c{i}@example.com,{},active\n",
            if i % 2 == 0 { "Engineering" } else { "Sales" }
        ));
    }
    std::fs::write(home.join("hr.csv"), csv).unwrap();
    let o = run(
        home,
        &server.token,
        &["people", "import", home.join("hr.csv").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(home, &server.token, &["--json", "plan"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    assert_eq!(plan["ops"].as_array().unwrap().len(), 1000);
    let id = plan["id"].as_str().unwrap();
    let o = run(home, &server.token, &["apply", id, "--no-run"]);
    assert!(o.status.success(), "{}", text(&o));

    let seed = std::env::var("ACCESSDESK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    for kill in 0..20 {
        let mut child = bin()
            .arg("--home")
            .arg(home)
            .arg("run")
            .env("APP_TOKEN", &server.token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = Duration::from_millis(80 + rng.next() % 400);
        tokio::time::sleep(after).await;
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none() || status.success(),
            "run {kill} ended by itself with {status:?}"
        );
    }
    // Restart once more and let it finish.
    let o = run(home, &server.token, &["--json", "run"]);
    assert!(o.status.success(), "final run: {}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["failed"], 0, "{summary}");
    // The kills landed mid-wave: earlier runs did part of the work, and this one the rest.
    let rest = summary["succeeded"].as_u64().unwrap();
    assert!(
        rest > 0 && rest < 1000,
        "the kills did not interrupt the wave: {summary}"
    );

    // Nothing lost: the provider holds exactly the intended state.
    let users = get(&server, "/Users?count=2000").await;
    let users = users["Resources"].as_array().unwrap().clone();
    assert_eq!(users.len(), PEOPLE, "every person has exactly one account");
    let ids: BTreeMap<String, String> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["userName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let groups = get(&server, "/Groups?count=10").await;
    for g in groups["Resources"].as_array().unwrap() {
        let name = g["displayName"].as_str().unwrap();
        let mut members: Vec<&str> = g["members"]
            .as_array()
            .map(|m| m.iter().map(|x| x["value"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let n = members.len();
        members.sort();
        members.dedup();
        assert_eq!(n, members.len(), "duplicate members in {name}");
        let expect = if name == "everyone" {
            PEOPLE
        } else {
            PEOPLE / 2
        };
        assert_eq!(members.len(), expect, "{name}");
        assert!(members.iter().all(|m| ids.contains_key(*m)));
    }
    // Nothing repeated: no account was ever sent for creation twice. A second POST for an
    // existing userName would be refused with 409 and logged; none may appear. (POSTs whose
    // client was killed before the answer went out are not logged by wsgiref at all, which
    // is why the logged count can be below the number of accounts, never above.)
    let reqs = server.requests();
    let posts: Vec<&String> = reqs
        .iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/Users"))
        .collect();
    let conflicts = posts.iter().filter(|r| r.contains("\" 409")).count();
    assert_eq!(
        conflicts, 0,
        "an account creation was repeated: {conflicts} POSTs got 409"
    );
    assert!(
        posts.len() <= PEOPLE,
        "{} POSTs for {PEOPLE} accounts",
        posts.len()
    );
    // Nothing left to do, and the audit chain survived the kills.
    let o = run(home, &server.token, &["--json", "plan"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["ops"].as_array().unwrap().len(), 0);
    let o = run(home, &server.token, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!(
        "crash test: 20 kills, seed {seed:#x}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
