//! End-to-end tests of the `accessdesk` binary: init, import, audit, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_accessdesk"))
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env_remove("ACCESSDESK_HOME")
            .env("USER", "tester")
            .output()
            .unwrap()
    }
    fn init(&self) {
        let o = self.run(&["init"]);
        assert!(o.status.success(), "init failed: {}", text(&o));
    }
    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

const HEADER: &str = "employee_id,first_name,last_name,preferred_name,email,department,title,manager_id,location,cost_center,status,start_date,end_date\n";

fn hr_csv(rows: &[&str]) -> String {
    let mut s = HEADER.to_string();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

#[test]
fn no_command_prints_what_to_run() {
    let h = Home::new();
    let o = h.run(&[]);
    assert_eq!(code(&o), 0);
    assert!(text(&o).contains("accessdesk init"));
}

#[test]
fn init_writes_config_and_a_private_database() {
    let h = Home::new();
    h.init();
    assert!(h.file("systems.toml").exists());
    assert!(h.file("policies.toml").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h.file("accessdesk.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A second init keeps the files.
    let before = std::fs::read_to_string(h.file("systems.toml")).unwrap();
    h.write("systems.toml", &format!("{before}\n# edited\n"));
    let o = h.run(&["init"]);
    assert!(text(&o).contains("kept"));
    assert!(
        std::fs::read_to_string(h.file("systems.toml"))
            .unwrap()
            .ends_with("# edited\n")
    );
}

#[test]
fn commands_before_init_say_what_to_do() {
    let h = Home::new();
    let o = h.run(&["people", "list"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("accessdesk init"), "{}", text(&o));
}

#[test]
fn import_is_validated_whole_and_idempotent() {
    let h = Home::new();
    h.init();
    let bad = h.write(
        "bad.csv",
        &hr_csv(&[
            "E1,Ada,Lovelace,,ada@example.com,Engineering,Engineer,,London,CC1,active,2024-01-02,",
            "E2,Bob,Marley,,bob-at-example,Sales,Rep,,Berlin,CC2,active,,",
            "E3,Cy,Young,,cy@example.com,Sales,Rep,,Berlin,CC2,fired,,",
        ]),
    );
    let o = h.run(&["people", "import", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("bad.csv:3: email"), "{t}");
    assert!(t.contains("bad.csv:4: status"), "{t}");
    let o = h.run(&["--json", "people", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "[]",
        "a bad file wrote people"
    );

    let good = h.write(
        "good.csv",
        &hr_csv(&[
            "E1,Ada,Lovelace,,ada@example.com,Engineering,Engineer,,London,CC1,active,2024-01-02,",
            "E2,Иван,Петров,Ваня,ivan@example.com,Sales,Rep,E1,Berlin,CC2,active,,",
        ]),
    );
    let o = h.run(&["--json", "people", "import", good.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["created"], 2);
    let audit_before = h.run(&["--json", "audit", "verify"]);
    let o = h.run(&["--json", "people", "import", good.to_str().unwrap()]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            r["created"].as_i64(),
            r["updated"].as_i64(),
            r["unchanged"].as_i64()
        ),
        (Some(0), Some(0), Some(2))
    );
    assert_eq!(
        audit_before.stdout,
        h.run(&["--json", "audit", "verify"]).stdout,
        "second import wrote audit events"
    );

    let o = h.run(&["--json", "people", "show", "IVAN@example.com"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["person"]["given_name"], "Иван");
    // The import evaluated policy for the new people.
    let intended: Vec<&str> = r["intended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["entitlement"].as_str().unwrap())
        .collect();
    assert_eq!(intended, ["okta:group:everyone"]);
    let o = h.run(&["--json", "people", "show", "E1"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let intended: Vec<&str> = r["intended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["entitlement"].as_str().unwrap())
        .collect();
    assert_eq!(
        intended,
        [
            "github:team:engineering",
            "okta:group:engineering",
            "okta:group:everyone"
        ]
    );
    let o = h.run(&["people", "show", "nobody"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn audit_verify_names_the_first_tampered_event() {
    let h = Home::new();
    h.init();
    let good = h.write(
        "good.csv",
        &hr_csv(&[
            "E1,Ada,Lovelace,,ada@example.com,Engineering,Engineer,,London,CC1,active,,",
            "E2,Bo,Li,,bo@example.com,Sales,Rep,,Berlin,CC2,active,,",
            "E3,Cy,Young,,cy@example.com,Sales,Rep,,Berlin,CC2,active,,",
        ]),
    );
    assert_eq!(
        code(&h.run(&["people", "import", good.to_str().unwrap()])),
        0
    );
    let o = h.run(&["--json", "audit", "verify"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    // init + the catalogue mirrored + 3 people + their intended grants (everyone, and
    // engineering for Ada).
    assert_eq!(v["events"], 1 + 1 + 3 + 3 + 2);

    let db = rusqlite::Connection::open(h.file("accessdesk.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit_events SET actor = 'mallory' WHERE seq = 3;",
    )
    .unwrap();
    drop(db);
    let o = h.run(&["audit", "verify"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("first bad event: #3"), "{}", text(&o));
}

#[test]
fn audit_export_filters_by_time_in_both_formats() {
    let h = Home::new();
    h.init();
    let good = h.write(
        "good.csv",
        &hr_csv(&["E1,Ada,Lovelace,,ada@example.com,Engineering,Engineer,,London,CC1,active,,"]),
    );
    assert_eq!(
        code(&h.run(&["people", "import", good.to_str().unwrap()])),
        0
    );
    let o = h.run(&[
        "audit",
        "export",
        "--format",
        "json",
        "--since",
        "2000-01-01",
    ]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "config.initialised",
            "catalog.synced",
            "person.created",
            "grant.intended",
            "grant.intended",
            "grant.intended"
        ]
    );
    assert_eq!(events[2]["actor"], "cli:tester");
    assert_eq!(events[3]["details"]["rule"], "engineering");
    let total = events.len();
    let o = h.run(&[
        "audit",
        "export",
        "--format",
        "json",
        "--until",
        "2000-01-01",
    ]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(events.is_empty());
    let out = h.file("audit.csv");
    let o = h.run(&[
        "audit",
        "export",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let csv = std::fs::read_to_string(out).unwrap();
    assert!(
        csv.starts_with("seq,ts,actor,action,subject,details,prev_hash,hash\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + total);
    let o = h.run(&["audit", "export", "--since", "yesterday"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn malformed_config_exits_2_with_location() {
    let h = Home::new();
    h.init();
    h.write("systems.toml", "[systems.okta]\nkind = \"okta\"\ndepends_on = [\"github\"]\n[systems.github]\nkind = \"github\"\ndepends_on = [\"okta\"]\n");
    let o = h.run(&["system", "list"]);
    assert_eq!(code(&o), 2);
    let t = text(&o);
    assert!(
        t.contains("systems.toml:") && t.contains("dependency cycle: github -> okta -> github"),
        "{t}"
    );
    h.write("systems.toml", "[systems.okta\n");
    let o = h.run(&["system", "list"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o).contains("systems.toml:1:"), "{}", text(&o));
}

#[test]
fn newer_database_is_refused() {
    let h = Home::new();
    h.init();
    let db = rusqlite::Connection::open(h.file("accessdesk.db")).unwrap();
    db.pragma_update(None, "user_version", 42).unwrap();
    drop(db);
    let o = h.run(&["people", "list"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("newer accessdesk"), "{}", text(&o));
}

#[test]
fn completions_are_generated() {
    let h = Home::new();
    let o = h.run(&["completions", "bash"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("accessdesk"));
}

#[test]
fn bad_arguments_exit_2() {
    let h = Home::new();
    let o = h.run(&["people", "frobnicate"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn the_console_refuses_to_start_without_a_terminal_and_names_bad_settings() {
    let h = Home::new();
    h.init();
    let o = h.run(&["console"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("the console needs an interactive terminal"),
        "{}",
        text(&o)
    );
    h.write("console.toml", "theme = \"light\"\ncolour = \"never\"\n");
    let o = h.run(&["console"]);
    assert_eq!(code(&o), 2);
    let t = text(&o);
    assert!(
        t.contains("console.toml:2:1") && t.contains("colour"),
        "{t}"
    );
    h.write("console.toml", "theme = \"nosuch\"\n");
    let o = h.run(&["console", "--theme", "nosuch"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("nosuch"), "{}", text(&o));
    std::fs::create_dir_all(h.file("themes")).unwrap();
    h.write("themes/broken.toml", "[operation]\nfailed = \"redd\"\n");
    let o = h.run(&["console", "--theme", "broken"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("broken.toml:2:"), "{}", text(&o));
    let o = h.run(&["demo", "--for", "3 parsecs", "--headless"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
}

/// `accessdesk ... | head -1`: the reader goes away early; the command ends quietly (no
/// panic, nothing on stderr) instead of complaining about the broken pipe.
#[test]
fn commands_end_quietly_when_their_reader_goes_away() {
    let h = Home::new();
    h.init();
    let mut csv = String::from("employee_id,first_name,last_name,email,department,status\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "E{i:04},Given{i},Family,p{i}@example.com,Sales,active\n"
        ));
    }
    let f = h.write("hr.csv", &csv);
    assert!(
        h.run(&["people", "import", f.to_str().unwrap()])
            .status
            .success()
    );
    let bin = env!("CARGO_BIN_EXE_accessdesk");
    for args in [
        "completions bash",
        "people list --all",
        "plan --all",
        "audit export --format csv",
    ] {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; '{bin}' --home '{}' {args} | head -1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\" >&2",
                h.path().display()
            ))
            .env_remove("ACCESSDESK_HOME")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args}: {err}"
        );
        // Either it finished before head left (0) or SIGPIPE ended it (141), like `yes | head`.
        assert!(
            err.contains("status=0") || err.contains("status=141"),
            "{args}: {err}"
        );
    }
}

/// Lists say when they cut their output; --all and --json never cut.
#[test]
fn lists_say_when_they_cut_and_json_never_does() {
    let h = Home::new();
    h.init();
    let f = h.write(
        "hr.csv",
        "employee_id,first_name,last_name,email,status\nE1,Ada,L,a@example.com,active\nE2,山田,太郎,y@example.com,active\nE3,Cy,Y,c@example.com,active\n",
    );
    assert!(
        h.run(&["people", "import", f.to_str().unwrap()])
            .status
            .success()
    );
    let o = h.run(&["people", "list", "--limit", "1"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 of 3 people shown; --all for all"),
        "{}",
        text(&o)
    );
    let o = h.run(&["people", "list", "--limit", "1", "--all"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let o = h.run(&["--json", "people", "list", "--limit", "1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3, "--json is never cut");
    // CJK names take two columns each: the e-mail column still starts at one place.
    let o = h.run(&["people", "list", "--all"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let cols: Vec<usize> = out
        .lines()
        .map(|l| {
            let at = l.find("@example.com").unwrap();
            let start = l[..at].rfind(' ').unwrap() + 1;
            unicode_width::UnicodeWidthStr::width(&l[..start])
        })
        .collect();
    assert!(cols.windows(2).all(|w| w[0] == w[1]), "{out}");
}
