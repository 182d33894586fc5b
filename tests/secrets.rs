//! `accessdesk secret …` against the real Linux kernel keyring (keyutils), no mocks.
//!
//! Run with a session keyring:
//!
//! ```text
//! apt-get install keyutils
//! keyctl session - cargo test --test secrets
//! ```
//!
//! When the kernel keyring cannot be reached these tests fail (they do not skip) and say
//! how to run them. Each test uses its own service namespace (`accessdesk-test-<random>`)
//! and removes what it stored.

#![cfg(target_os = "linux")]

mod common;

use accessdesk::config::systems::CredentialRef;
use accessdesk::secrets::{BackendChoice, BackendKind, Keychain, Secret};
use accessdesk::store::Store;
use common::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HOW_TO_RUN: &str = "these tests need the Linux kernel keyring with a session keyring: \
install keyutils (`apt-get install keyutils`) and run them as \
`keyctl session - cargo test --test secrets`";

/// A home in a temp dir, a unique service namespace in the kernel keyring, and cleanup.
struct Fixture {
    tmp: tempfile::TempDir,
    home: PathBuf,
    service: String,
    keychain: Keychain,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_systems("")
    }

    fn with_systems(systems_toml: &str) -> Fixture {
        let service = format!("accessdesk-test-{}", random_hex(6));
        let keychain = Keychain::open(BackendChoice::Keyutils, &service).unwrap_or_else(|e| {
            panic!(
                "the kernel keyring is not reachable: {e} (hint: {})\n{HOW_TO_RUN}",
                e.hint().unwrap_or("")
            )
        });
        assert_eq!(keychain.backend(), BackendKind::Keyutils);
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = make_home(tmp.path(), systems_toml);
        Fixture {
            tmp,
            home,
            service,
            keychain,
        }
    }

    /// The binary with this fixture's home and keychain settings, and nothing inherited that
    /// could change them.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--home").arg(&self.home).args(args);
        c.env("ACCESSDESK_KEYCHAIN", "keyutils")
            .env("ACCESSDESK_KEYRING_SERVICE", &self.service)
            .env("USER", "tester")
            .env_remove("ACCESSDESK_HOME")
            .env_remove("ACCESSDESK_LOG");
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(self.cmd(args), stdin)
    }

    fn set(&self, name: &str, value: &str) {
        let o = self.run(
            &["secret", "set", name],
            Some(format!("{value}\n").as_bytes()),
        );
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }

    fn store(&self) -> Store {
        Store::open(&self.home.join("accessdesk.db")).expect("open store")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Keys are also linked into the user's persistent keyring, which outlives the
        // `keyctl session`; remove whatever the index still names, plus the usual names.
        let mut names: Vec<String> = ["api/okta-prod", "leak-token", "t", "over", "x"]
            .map(String::from)
            .to_vec();
        if let Ok(store) = Store::open(&self.home.join("accessdesk.db"))
            && let Ok(rows) = store.secrets_index()
        {
            names.extend(rows.into_iter().map(|r| r.name));
        }
        for n in names {
            let _ = self.keychain.remove(&n);
        }
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

#[test]
fn set_get_list_rm_round_trip() {
    let fx = Fixture::new();
    let name = "api/okta-prod";
    let value = format!("s3cr3t-{}", random_hex(12));

    let o = fx.run(
        &["secret", "set", name],
        Some(format!("{value}\n").as_bytes()),
    );
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), format!("stored {name} in keyutils\n"));

    // It really is in the kernel keyring, under our service, newline stripped.
    let direct = fx.keychain.get(name).expect("read back from keyutils");
    assert_eq!(direct.expose(), value);

    let o = fx.run(&["secret", "get", name, "--reveal"], None);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), format!("{value}\n"));

    let o = fx.run(&["secret", "get", name], None);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains(&format!("{name} is set in keyutils")), "{out}");
    assert!(out.contains(&fx.service), "{out}");
    assert!(!out.contains(&value) && !text(&o.stderr).contains(&value));

    let o = fx.run(&["secret", "list"], None);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains(name) && out.contains("keyutils"), "{out}");
    assert!(!out.contains(&value), "{out}");

    let o = fx.run(&["secret", "list", "--json"], None);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("list --json is JSON");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], name);
    assert_eq!(rows[0]["backend"], "keyutils");
    assert!(rows[0]["set_at"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(!text(&o.stdout).contains(&value));

    let o = fx.run(&["secret", "rm", name], None);
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), format!("removed {name} from keyutils\n"));
    assert_eq!(fx.keychain.lookup(name).expect("lookup"), None);

    for args in [
        &["secret", "get", name][..],
        &["secret", "get", name, "--reveal"][..],
    ] {
        let o = fx.run(args, None);
        assert_eq!(code(&o), Some(1), "{}", show(&o));
        assert!(o.stdout.is_empty(), "{}", show(&o));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!(
                "secret {name}: not found in the keyutils keychain"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("accessdesk secret set {name}")),
            "{err}"
        );
    }

    let o = fx.run(&["secret", "rm", name], None);
    assert_eq!(code(&o), Some(1), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("nothing to remove"),
        "{}",
        show(&o)
    );

    let o = fx.run(&["secret", "list"], None);
    assert!(!text(&o.stdout).contains(name), "{}", show(&o));

    // Both changes are in the audit log, by name and actor, without the value.
    let events = fx.store().audit_events(None, None).expect("audit events");
    let ours: Vec<_> = events
        .iter()
        .filter(|e| e.subject == name)
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        ours,
        [
            ("secret.set", "cli:tester"),
            ("secret.removed", "cli:tester")
        ]
    );
    assert_eq!(
        events
            .iter()
            .find(|e| e.action == "secret.set")
            .map(|e| &e.details),
        Some(&serde_json::json!({"backend": "keyutils"}))
    );
}

#[test]
fn set_prompts_for_the_value_on_a_terminal() {
    let fx = Fixture::new();
    let value = format!("tty-{}", random_hex(8));
    // script(1) (util-linux) runs the command on a fresh pseudo-terminal fed from our stdin,
    // so stdin is a TTY and the value must come through rpassword's prompt. (Whether the
    // typed line is echoed depends on when it reaches the terminal, so that is not asserted.)
    let inner = format!(
        "exec {} --home {} secret set t",
        sh_quote(Path::new(BIN)),
        sh_quote(&fx.home)
    );
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env("ACCESSDESK_KEYCHAIN", "keyutils")
        .env("ACCESSDESK_KEYRING_SERVICE", &fx.service)
        .env_remove("ACCESSDESK_HOME")
        .env_remove("ACCESSDESK_LOG");
    let o = run(c, Some(format!("{value}\r").as_bytes()));
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains("value for t (not echoed): "), "{out}");
    assert!(out.contains("stored t in keyutils"), "{out}");
    assert_eq!(fx.keychain.get("t").expect("get").expose(), value);
}

#[test]
fn set_replaces_and_keeps_inner_whitespace() {
    let fx = Fixture::new();
    fx.set("over", "first");
    // CRLF is stripped as a line ending; no newline at all is fine; inner spaces stay.
    for (input, stored) in [
        ("second value\r\n", "second value"),
        ("  third ", "  third "),
    ] {
        let o = fx.run(&["secret", "set", "over"], Some(input.as_bytes()));
        assert_eq!(code(&o), Some(0), "{}", show(&o));
        assert_eq!(fx.keychain.get("over").expect("get").expose(), stored);
    }
    assert_eq!(fx.store().secrets_index().expect("index").len(), 1);
}

#[test]
fn empty_or_multiline_input_exits_2_and_stores_nothing() {
    let fx = Fixture::new();
    for input in [
        &b""[..],
        b"\n",
        b"\r\n",
        b"line one\nline two\n",
        b"\xff\xfe\n",
    ] {
        let o = fx.run(&["secret", "set", "t"], Some(input));
        assert_eq!(code(&o), Some(2), "input {input:?}: {}", show(&o));
        assert!(text(&o.stderr).starts_with("error: "), "{}", show(&o));
        assert_eq!(fx.keychain.lookup("t").expect("lookup"), None);
    }
    let o = fx.run(&["secret", "set", "t"], Some(b""));
    assert!(
        text(&o.stderr).contains("empty value for t"),
        "{}",
        show(&o)
    );
    assert!(fx.store().secrets_index().expect("index").is_empty());
}

#[test]
fn bad_names_exit_2() {
    let fx = Fixture::new();
    let long = "x".repeat(129);
    for name in ["bad name", "user@host", "", "semi;colon", long.as_str()] {
        for args in [
            vec!["secret", "set", name],
            vec!["secret", "get", name],
            vec!["secret", "get", name, "--reveal"],
            vec!["secret", "rm", name],
        ] {
            let o = fx.run(&args, Some(b"value\n"));
            assert_eq!(code(&o), Some(2), "{args:?}: {}", show(&o));
            assert!(
                text(&o.stderr).contains("not a valid secret name"),
                "{args:?}: {}",
                show(&o)
            );
            // A rejected name may be a pasted value: it is not repeated back.
            assert!(
                name.is_empty() || !text(&o.stderr).contains(name),
                "{args:?}: {}",
                show(&o)
            );
        }
    }
    assert!(fx.store().secrets_index().expect("index").is_empty());
}

#[test]
fn uninitialised_home_fails_before_touching_the_keychain() {
    let fx = Fixture::new();
    std::fs::remove_file(fx.home.join("systems.toml")).expect("remove systems.toml");
    let o = fx.run(&["secret", "set", "t"], Some(b"value\n"));
    assert_eq!(code(&o), Some(2), "{}", show(&o));
    assert!(text(&o.stderr).contains("accessdesk init"), "{}", show(&o));
    assert_eq!(fx.keychain.lookup("t").expect("lookup"), None);
}

#[test]
fn resolve_reads_the_kernel_keyring_and_the_environment() {
    let fx = Fixture::new();
    let value = format!("tok-{}", random_hex(12));
    fx.set("x", &value);

    let got = fx
        .keychain
        .resolve(&CredentialRef::Keyring("x".into()))
        .expect("resolve keyring:x");
    assert_eq!(got.expose(), value);

    let env_value = format!("env-{}", random_hex(12));
    let env = |v: &str| (v == "OKTA_TOKEN").then(|| OsString::from(&env_value));
    let got = fx
        .keychain
        .resolve_with(&CredentialRef::Env("OKTA_TOKEN".into()), env)
        .expect("resolve env:OKTA_TOKEN");
    assert_eq!(got, Secret::new(env_value.clone()));

    // A missing entry names the entry, the backend, the service and the fix.
    let e = fx
        .keychain
        .resolve(&CredentialRef::Keyring("absent".into()))
        .unwrap_err();
    let msg = format!("{e} / {}", e.hint().unwrap_or(""));
    assert!(msg.contains("secret absent"), "{msg}");
    assert!(msg.contains("keyutils"), "{msg}");
    assert!(msg.contains(&fx.service), "{msg}");
    assert!(msg.contains("accessdesk secret set absent"), "{msg}");

    let e = fx
        .keychain
        .resolve_with(&CredentialRef::Env("UNSET_VAR".into()), |_| None)
        .unwrap_err();
    assert!(e.to_string().contains("env:UNSET_VAR"), "{e}");
    assert!(!format!("{e:?}").contains(&value) && !format!("{e:?}").contains(&env_value));
}

#[test]
fn auto_falls_back_to_the_kernel_keyring_without_a_secret_service() {
    let fx = Fixture::new();
    let missing_bus = format!("unix:path={}", fx.tmp.path().join("no-bus").display());
    let mut c = fx.cmd(&["secret", "set", "t"]);
    c.env("ACCESSDESK_KEYCHAIN", "auto")
        .env("DBUS_SESSION_BUS_ADDRESS", &missing_bus);
    let o = run(c, Some(b"auto-value\n"));
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), "stored t in keyutils\n");
    assert_eq!(fx.keychain.get("t").expect("get").expose(), "auto-value");

    let mut c = fx.cmd(&["secret", "get", "t", "--reveal"]);
    c.env("ACCESSDESK_KEYCHAIN", "auto")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let o = run(c, None);
    assert_eq!(text(&o.stdout), "auto-value\n", "{}", show(&o));
}

#[test]
fn unreachable_keychains_fail_naming_backend_and_fix() {
    let fx = Fixture::new();
    let value = format!("never-{}", random_hex(8));

    // A Secret Service asked for by name but not running.
    let missing_bus = format!("unix:path={}", fx.tmp.path().join("no-bus").display());
    let mut c = fx.cmd(&["secret", "set", "t"]);
    c.env("ACCESSDESK_KEYCHAIN", "secret-service")
        .env("DBUS_SESSION_BUS_ADDRESS", &missing_bus);
    let o = run(c, Some(format!("{value}\n").as_bytes()));
    assert_eq!(code(&o), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("keychain secret-service: not usable"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("gnome-keyring-daemon"),
        "{err}"
    );
    assert!(!err.contains(&value), "{err}");

    // The kernel keyring with a session keyring this process may not use.
    let script = format!(
        "keyctl setperm @s 0 >/dev/null && exec \"$0\" --home {} secret set t",
        sh_quote(&fx.home)
    );
    let mut c = Command::new("keyctl");
    c.args(["session", "-", "sh", "-c", &script, BIN])
        .env("ACCESSDESK_KEYCHAIN", "keyutils")
        .env("ACCESSDESK_KEYRING_SERVICE", &fx.service)
        .env_remove("ACCESSDESK_HOME")
        .env_remove("ACCESSDESK_LOG");
    let o = run(c, Some(format!("{value}\n").as_bytes()));
    assert_eq!(code(&o), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("keychain keyutils: not usable"), "{err}");
    assert!(err.contains("keyctl session -"), "{err}");
    assert!(!err.contains(&value), "{err}");

    // Neither recorded anything.
    assert!(fx.store().secrets_index().expect("index").is_empty());
}

#[test]
fn memory_backend_is_refused_by_set_and_unknown_backends_are_bad_input() {
    let fx = Fixture::new();
    let mut c = fx.cmd(&["secret", "set", "t"]);
    c.env("ACCESSDESK_KEYCHAIN", "memory");
    let o = run(c, Some(b"v\n"));
    assert_eq!(code(&o), Some(2), "{}", show(&o));
    assert!(text(&o.stderr).contains("memory keychain"), "{}", show(&o));

    let mut c = fx.cmd(&["secret", "get", "t"]);
    c.env("ACCESSDESK_KEYCHAIN", "vault");
    let o = run(c, None);
    assert_eq!(code(&o), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("ACCESSDESK_KEYCHAIN"),
        "{}",
        show(&o)
    );
}

/// Commands run with trace logging in the leak test, as argv after `--home HOME -vvv
/// --log-file LOG`. `{tmp}` is a scratch directory that is scanned too. The flag says
/// whether the command must succeed on this branch (stubs may not; they are listed so the
/// merged build scans them). Adding a command is one line.
const LEAK_COMMANDS: &[(&[&str], bool)] = &[
    (&["secret", "list"], true),
    (&["secret", "list", "--json"], true),
    (&["secret", "get", "leak-token"], true),
    (&["secret", "get", "leak-token", "--json"], true),
    (&["system", "list"], true),
    (&["system", "list", "--json"], true),
    (&["policy", "check"], true),
    (&["people", "import", "{tmp}/people.csv"], true),
    (&["audit", "verify"], true),
    (&["policy", "explain", "E1"], true),
    (&["people", "show", "E1", "--json"], true),
    (
        &[
            "audit",
            "export",
            "--format",
            "json",
            "--output",
            "{tmp}/audit.json",
        ],
        true,
    ),
    (
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--output",
            "{tmp}/audit.csv",
        ],
        true,
    ),
    (&["audit", "export", "--format", "json"], false),
];

const LEAK_SYSTEMS: &str = r#"
[systems.github]
kind = "github"
credential = "keyring:leak-token"

[systems.okta]
kind = "okta"
base_url = "https://example.okta.com"
credential = "env:ACCESSDESK_TEST_LEAK_TOKEN"
"#;

const LEAK_POLICIES: &str = r#"
[[rule]]
name = "engineering"
when = 'person.department == "Engineering" && person.status == "active"'
grant = ["okta:group:engineering", "github:team:eng"]
"#;

const LEAK_PEOPLE: &str = "\
employee_id,first_name,last_name,email,department,title,manager_id,location,status,start_date
E1,Ada,Lovelace,ada@example.com,Engineering,Engineer,,London,active,2024-01-02
";

#[test]
fn secret_value_never_reaches_logs_outputs_database_or_audit() {
    let fx = Fixture::with_systems(LEAK_SYSTEMS);
    let random_part = random_hex(16);
    let secret = format!("sk-leak-{random_part}");
    let patterns = leak_patterns(&secret, &random_part);
    let scratch = fx.tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    std::fs::write(scratch.join("people.csv"), LEAK_PEOPLE).expect("people.csv");
    std::fs::write(fx.home.join("policies.toml"), LEAK_POLICIES).expect("policies.toml");
    let log = scratch.join("accessdesk.log");

    // The scanner must be able to see a leak: a control file with the secret buried in
    // binary noise, outside the scanned tree.
    let control = tempfile::tempdir().expect("control dir");
    let mut noise = vec![0u8, 159, 146, 150];
    noise.extend_from_slice(secret.as_bytes());
    noise.extend_from_slice(&[0, 255, 1]);
    std::fs::write(control.path().join("control.bin"), &noise).expect("control file");
    let control_hits = scan_for(control.path(), &patterns);
    assert!(
        control_hits
            .iter()
            .any(|(p, i)| p.ends_with("control.bin") && *i == 0),
        "the scanner missed the secret in its control file: {control_hits:?}"
    );

    // Hold a connection open so the children are never the last to close the database:
    // SQLite then leaves the -wal file in place for the scan instead of deleting it.
    let db = fx.store();

    let traced = |args: &[&str]| -> Command {
        let argv: Vec<String> = args
            .iter()
            .map(|a| a.replace("{tmp}", &scratch.display().to_string()))
            .collect();
        let mut c = fx.cmd(&[]);
        c.arg("-vvv")
            .arg("--log-file")
            .arg(&log)
            .args(&argv)
            .env("ACCESSDESK_TEST_LEAK_TOKEN", &secret);
        c
    };
    let keep = |i: usize, o: &Output| {
        std::fs::write(scratch.join(format!("{i:02}.stdout")), &o.stdout).expect("save stdout");
        std::fs::write(scratch.join(format!("{i:02}.stderr")), &o.stderr).expect("save stderr");
    };

    // Store it (the riskiest moment for a log line), then read it back with --reveal: its
    // stdout is the one place the value belongs, so it is checked and not saved.
    let o = run(
        traced(&["secret", "set", "leak-token"]),
        Some(format!("{secret}\n").as_bytes()),
    );
    assert_eq!(code(&o), Some(0), "{}", show(&o));
    keep(0, &o);
    let o = run(traced(&["secret", "get", "leak-token", "--reveal"]), None);
    assert_eq!(text(&o.stdout), format!("{secret}\n"), "{}", show(&o));
    std::fs::write(scratch.join("reveal.stderr"), &o.stderr).expect("save stderr");

    for (i, (args, must_succeed)) in LEAK_COMMANDS.iter().enumerate() {
        let o = run(traced(args), None);
        if *must_succeed {
            assert_eq!(code(&o), Some(0), "{args:?}: {}", show(&o));
        }
        keep(i + 1, &o);
    }

    // serve, with the secret as a GitHub webhook source's signing secret and as its API
    // token: a signed delivery, an unsigned one, a wrong signature, the proxy with the
    // right and a wrong token, /metrics, then SIGTERM. Its trace log and what it stored
    // are scanned with the rest.
    std::fs::write(
        fx.home.join("sources.toml"),
        "[sources.gh]\nkind = \"github_events\"\ncredential = \"keyring:leak-token\"\n\
         api_token = \"env:ACCESSDESK_TEST_LEAK_TOKEN\"\nsystem = \"okta\"\n",
    )
    .expect("sources.toml");
    serve_and_poke(
        traced(&["serve", "--listen", "127.0.0.1:0", "--grace", "2"]),
        &secret,
        &scratch,
    );

    // The scan covers what it should: a trace-level log that mentions the secret by name,
    // the database and its WAL.
    let log_text = std::fs::read_to_string(&log).expect("log file written");
    assert!(
        log_text.contains("TRACE") || log_text.contains("DEBUG"),
        "-vvv wrote no debug/trace lines:\n{log_text}"
    );
    assert!(
        log_text.contains("leak-token"),
        "log never names the secret:\n{log_text}"
    );
    let db_path = fx.home.join("accessdesk.db");
    let wal = fx.home.join("accessdesk.db-wal");
    assert!(db_path.is_file(), "no database at {db_path:?}");
    assert!(
        wal.metadata().is_ok_and(|m| m.len() > 0),
        "no -wal file to scan at {wal:?}"
    );
    let scanned = files_under(fx.tmp.path());
    for must in [&log, &db_path, &wal] {
        assert!(scanned.contains(must), "{must:?} not scanned: {scanned:?}");
    }

    let hits = scan_for(fx.tmp.path(), &patterns);
    assert!(
        hits.is_empty(),
        "the secret leaked into: {}",
        hits.iter()
            .map(|(p, i)| format!("{} (pattern {i})", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // And the index and audit log name it without holding it.
    let events = db.audit_events(None, None).expect("audit events");
    assert!(
        events
            .iter()
            .any(|e| e.action == "secret.set" && e.subject == "leak-token")
    );
    let dump = serde_json::to_string(&events).expect("events to JSON");
    assert!(!dump.contains(&secret) && !dump.contains(&random_part));
}

/// One HTTP/1.1 request on loopback; the whole answer (status line, headers, body).
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).expect("connect to serve");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).expect("send");
    c.write_all(body).expect("send body");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// Start serve (`cmd`), send it webhooks and proxy calls that carry `secret` as a key or
/// token, save every answer in `scratch` (scanned), and stop it with SIGTERM.
fn serve_and_poke(mut cmd: Command, secret: &str, scratch: &Path) {
    use hmac::{Hmac, Mac};
    use std::io::BufRead;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(scratch.join("serve.stderr")).expect("serve stderr"))
        .spawn()
        .expect("start serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve's first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("serve said {line:?}"))
        .to_string();
    let body = br#"{"action":"member_added","membership":{"user":{"login":"ada-l"}}}"#;
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac");
    m.update(body);
    let sig = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
    let gh = |sig: &str, id: &str| {
        vec![
            ("X-Hub-Signature-256", sig.to_string()),
            ("X-GitHub-Event", "organization".to_string()),
            ("X-GitHub-Delivery", id.to_string()),
        ]
    };
    let answers = [
        http(&addr, "POST", "/webhooks/gh", &gh(&sig, "d-1"), body),
        http(&addr, "POST", "/webhooks/gh", &gh(&sig, "d-1"), body),
        http(&addr, "POST", "/webhooks/gh", &gh("sha256=00", "d-2"), body),
        http(&addr, "POST", "/webhooks/gh", &[], body),
        http(
            &addr,
            "POST",
            "/api/v1/sources/gh/people",
            &[("Authorization", format!("Bearer {secret}"))],
            br#"{"employee_id":"E9","first_name":"X","email":"nope","status":"active"}"#,
        ),
        http(
            &addr,
            "POST",
            "/api/v1/sources/gh/people",
            &[("Authorization", format!("Bearer {secret}x"))],
            b"{}",
        ),
        http(&addr, "GET", "/metrics", &[], b""),
    ];
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(
        answers[1].starts_with("HTTP/1.1 401"),
        "a replay: {}",
        answers[1]
    );
    assert!(answers[2].starts_with("HTTP/1.1 401"), "{}", answers[2]);
    assert!(answers[3].starts_with("HTTP/1.1 401"), "{}", answers[3]);
    assert!(answers[4].starts_with("HTTP/1.1 422"), "{}", answers[4]);
    assert!(answers[5].starts_with("HTTP/1.1 401"), "{}", answers[5]);
    assert!(
        answers[6].contains("accessdesk_webhook_rejections_total"),
        "{}",
        answers[6]
    );
    for (i, a) in answers.iter().enumerate() {
        std::fs::write(scratch.join(format!("serve-{i}.http")), a).expect("save answer");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("serve exits");
    assert!(
        status.success(),
        "serve did not exit 0 on SIGTERM: {status:?}"
    );
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The id of the key `keyring:NAME@SERVICE` that `keyctl`, in a brand-new session that
/// has joined the user's persistent keyring, finds: what any process of the user could
/// read after the demo is gone.
fn found_from_a_new_session(name: &str, service: &str) -> Option<String> {
    let out = Command::new("keyctl")
        .args([
            "session",
            "-",
            "sh",
            "-c",
            "keyctl get_persistent @s >/dev/null && keyctl search @s user \"$0\"",
        ])
        .arg(format!("keyring:{name}@{service}"))
        .output()
        .expect("running keyctl (package keyutils)");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !id.is_empty()).then_some(id)
}

/// The id of the key `keyring:NAME@SERVICE` linked directly in this process's session
/// keyring (not found through the keyrings linked into it, which other runs share).
fn in_this_session(name: &str, service: &str) -> Option<String> {
    let keyctl = |args: &[&str]| {
        Command::new("keyctl")
            .args(args)
            .output()
            .expect("running keyctl (package keyutils)")
    };
    let list = keyctl(&["rlist", "@s"]);
    let want = format!(";keyring:{name}@{service}");
    String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .find(|id| {
            let d = keyctl(&["rdescribe", id]);
            d.status.success() && String::from_utf8_lossy(&d.stdout).trim().ends_with(&want)
        })
        .map(str::to_string)
}

fn keyutils_env(k: &str) -> Option<OsString> {
    (k == "ACCESSDESK_KEYCHAIN").then(|| OsString::from("keyutils"))
}

#[test]
fn session_scoped_credentials_stay_out_of_the_persistent_keyring() {
    let service = format!("accessdesk-test-{}", random_hex(6));
    let value = Secret::new(format!("sk-session-{}", random_hex(12)));

    // The regular kernel-keyring store links keys into the persistent keyring, which a new
    // session can join: the check below does see such a key.
    let regular = Keychain::open(BackendChoice::Keyutils, &service).expect(HOW_TO_RUN);
    regular.set("regular", &value).unwrap();
    let seen = found_from_a_new_session("regular", &service);
    regular.remove("regular").unwrap();
    assert!(seen.is_some(), "the persistent keyring check is meaningful");

    // The keychain for credentials that must not outlive the session: the session keyring
    // only.
    let (k, why) = Keychain::session_or_memory_with(&service, keyutils_env);
    assert!(why.is_none(), "{why:?}: {HOW_TO_RUN}");
    assert_eq!(k.backend(), BackendKind::Keyutils);
    k.set("demo-okta-token", &value).unwrap();
    assert_eq!(k.get("demo-okta-token").unwrap().expose(), value.expose());
    assert!(in_this_session("demo-okta-token", &service).is_some());
    let leaked = found_from_a_new_session("demo-okta-token", &service);
    k.remove("demo-okta-token").unwrap();
    assert_eq!(
        leaked, None,
        "a new session read the credential through the persistent keyring"
    );
}

/// The issue as reported: the demo killed with SIGKILL (no clean-up) must not leave its
/// credentials where a new session can read them.
#[test]
fn a_killed_demo_leaves_no_credential_a_new_session_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .args(["demo", "--headless", "--for", "2m"])
        .env("ACCESSDESK_KEYCHAIN", "keyutils")
        .env("TMPDIR", tmp.path())
        .env_remove("ACCESSDESK_HOME")
        .env_remove("ACCESSDESK_KEYRING_SERVICE")
        .env_remove("ACCESSDESK_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting accessdesk demo");
    let service = accessdesk::demo::KEYRING_SERVICE;
    let names = [
        "demo-okta-token",
        "demo-zoom-token",
        "demo-aws-keys",
        "demo-aws-sso-keys",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let ids: Vec<String> = loop {
        let ids: Vec<String> = names
            .iter()
            .filter_map(|n| in_this_session(n, service))
            .collect();
        if ids.len() == names.len() {
            break ids;
        }
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo exited ({status}) before storing its credentials");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo stored no credentials in the session keyring: {HOW_TO_RUN}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    demo.kill().expect("SIGKILL");
    let _ = demo.wait();
    // Only these keys count (other runs on the machine may hold keys of the same name).
    let leaked: Vec<&str> = names
        .into_iter()
        .zip(&ids)
        .filter(|(n, id)| found_from_a_new_session(n, service).as_ref() == Some(*id))
        .map(|(n, _)| n)
        .collect();
    // This session still holds them (it is the demo's session): clean up.
    for id in &ids {
        let _ = Command::new("keyctl").args(["invalidate", id]).output();
    }
    assert!(
        leaked.is_empty(),
        "after kill -9, a new session read {leaked:?} through the persistent keyring"
    );
}
