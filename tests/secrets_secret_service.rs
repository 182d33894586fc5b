//! `accessdesk secret …` against a real Secret Service: gnome-keyring in a private D-Bus
//! session (`dbus-run-session`), started unlocked with a throwaway password, as in
//! PEERS.md. No mocks.
//!
//! Needs: `apt-get install dbus gnome-keyring libsecret-tools keyutils`, and (for the
//! locked-keyring fallback to the kernel keyring) a session keyring, so run as
//! `keyctl session - cargo test --test secrets_secret_service`.
//! When a tool is missing the test fails (it does not skip) and says what to install.
//!
//! Each scenario runs in its own D-Bus session with HOME and XDG_RUNTIME_DIR in temp dirs,
//! so nothing reaches the real user's keyrings.

#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &str = "this test needs a Secret Service to talk to: \
`apt-get install dbus gnome-keyring libsecret-tools keyutils`, then \
`keyctl session - cargo test --test secrets_secret_service`";

/// Steps run inside the D-Bus session. `step NAME CMD…` saves CMD's stdout, stderr and exit
/// code as $OUT/NAME.{out,err,rc}. `ad` is the binary with the test home and trace logging.
const PRELUDE: &str = r#"
set -u
step() { n=$1; shift; "$@" >"$OUT/$n.out" 2>"$OUT/$n.err"; echo $? >"$OUT/$n.rc"; }
ad() { "$BIN" --home "$ADHOME" -vvv --log-file "$OUT/accessdesk.log" "$@"; }
"#;

const UNLOCKED: &str = r#"
echo -n throwaway-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
  || { echo "gnome-keyring-daemon --unlock failed" >&2; exit 90; }
export ACCESSDESK_KEYCHAIN=secret-service
printf '%s\n' "$TEST_SECRET" | step set ad secret set ss-token
step reveal ad secret get ss-token --reveal
step get ad secret get ss-token
step list ad secret list
step tool secret-tool lookup service "$ACCESSDESK_KEYRING_SERVICE" username ss-token
step rm ad secret rm ss-token
step get_after_rm ad secret get ss-token
step tool_after_rm secret-tool lookup service "$ACCESSDESK_KEYRING_SERVICE" username ss-token
export ACCESSDESK_KEYCHAIN=auto
printf 'auto-value\n' | step auto_set ad secret set auto-token
step auto_rm ad secret rm auto-token
"#;

const LOCKED: &str = r#"
gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1 \
  || { echo "gnome-keyring-daemon --start failed" >&2; exit 90; }
printf 'v\n' | ACCESSDESK_KEYCHAIN=secret-service step explicit_set ad secret set locked-token
printf 'v\n' | ACCESSDESK_KEYCHAIN=auto step auto_set ad secret set locked-token
ACCESSDESK_KEYCHAIN=keyutils step keyutils_rm ad secret rm locked-token
"#;

struct Session {
    out: tempfile::TempDir,
    results: BTreeMap<String, (i32, String, String)>,
}

impl Session {
    fn step(&self, name: &str) -> &(i32, String, String) {
        self.results
            .get(name)
            .unwrap_or_else(|| panic!("step {name} did not run; ran {:?}", self.results.keys()))
    }
}

fn require_tools() {
    for tool in [
        "dbus-run-session",
        "gnome-keyring-daemon",
        "secret-tool",
        "keyctl",
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "{tool} is not installed. {NEEDS}");
    }
}

/// Run `script` in a fresh D-Bus session and collect its steps.
fn in_dbus_session(script: &str, service: &str, secret: &str) -> Session {
    require_tools();
    let out = tempfile::tempdir().expect("out dir");
    // gnome-keyring's own files go to a home outside the scanned tree.
    let keyring_home = tempfile::tempdir().expect("keyring home");
    let runtime = keyring_home.path().join("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .expect("chmod runtime dir");
    }
    let adhome = make_home(out.path(), "");

    let mut cmd = Command::new("dbus-run-session");
    cmd.args(["--", "bash", "-c", &format!("{PRELUDE}{script}")])
        .env("HOME", keyring_home.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("BIN", BIN)
        .env("ADHOME", &adhome)
        .env("OUT", out.path())
        .env("TEST_SECRET", secret)
        .env("ACCESSDESK_KEYRING_SERVICE", service)
        .env("USER", "tester")
        .env_remove("ACCESSDESK_HOME")
        .env_remove("ACCESSDESK_LOG")
        .env_remove("ACCESSDESK_KEYCHAIN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start dbus-run-session: {e}. {NEEDS}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait().expect("wait for dbus-run-session") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let o = child.wait_with_output().expect("collect output");
                panic!("the D-Bus session did not finish in 60 s\n{}", show(&o));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let o = child.wait_with_output().expect("collect output");
    assert_eq!(
        o.status.code(),
        Some(0),
        "the D-Bus session script failed. {NEEDS}\n{}",
        show(&o)
    );

    let mut results = BTreeMap::new();
    for path in files_under(out.path()) {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if let Some(step) = file.strip_suffix(".rc") {
            let read = |ext: &str| {
                std::fs::read_to_string(out.path().join(format!("{step}.{ext}")))
                    .unwrap_or_default()
            };
            let rc: i32 = read("rc").trim().parse().expect("exit code");
            results.insert(step.to_string(), (rc, read("out"), read("err")));
        }
    }
    Session { out, results }
}

#[test]
fn secret_service_round_trip_auto_choice_and_no_leaks() {
    let service = format!("accessdesk-test-{}", random_hex(6));
    let random_part = random_hex(16);
    let secret = format!("sk-ss-{random_part}");
    let s = in_dbus_session(UNLOCKED, &service, &secret);

    let (rc, out, err) = s.step("set");
    assert_eq!(*rc, 0, "{out}{err}");
    assert_eq!(out, "stored ss-token in secret-service\n");

    let (rc, out, err) = s.step("reveal");
    assert_eq!(
        (*rc, out.as_str()),
        (0, format!("{secret}\n").as_str()),
        "{err}"
    );

    let (rc, out, err) = s.step("get");
    assert_eq!(*rc, 0, "{err}");
    assert!(out.contains("ss-token is set in secret-service"), "{out}");

    let (rc, out, _) = s.step("list");
    assert_eq!(*rc, 0);
    assert!(
        out.contains("ss-token") && out.contains("secret-service"),
        "{out}"
    );

    // libsecret's own client finds the item under our service and name.
    let (rc, out, err) = s.step("tool");
    assert_eq!(
        (*rc, out.as_str()),
        (0, secret.as_str()),
        "secret-tool: {err}"
    );

    let (rc, out, err) = s.step("rm");
    assert_eq!(*rc, 0, "{err}");
    assert_eq!(out, "removed ss-token from secret-service\n");
    let (rc, _, err) = s.step("get_after_rm");
    assert_eq!(*rc, 1, "{err}");
    assert!(
        err.contains("not found in the secret-service keychain")
            && err.contains("accessdesk secret set ss-token"),
        "{err}"
    );
    assert_ne!(s.step("tool_after_rm").0, 0, "item still in gnome-keyring");

    // With a working Secret Service on the bus, auto picks it.
    let (rc, out, err) = s.step("auto_set");
    assert_eq!(*rc, 0, "{err}");
    assert_eq!(out, "stored auto-token in secret-service\n");
    assert_eq!(s.step("auto_rm").0, 0);

    // Nothing but the --reveal and secret-tool stdout holds the value: not the trace log
    // (which includes zbus's own tracing), other outputs, the database or its WAL.
    let patterns = leak_patterns(&secret, &random_part);
    let log = std::fs::read_to_string(s.out.path().join("accessdesk.log")).expect("log");
    assert!(
        log.contains("ss-token"),
        "log does not name the secret:\n{log}"
    );
    for allowed in ["reveal.out", "tool.out"] {
        std::fs::remove_file(s.out.path().join(allowed)).expect("remove expected output");
    }
    let hits = scan_for(s.out.path(), &patterns);
    assert!(hits.is_empty(), "the secret leaked into {hits:?}");
}

#[test]
fn locked_secret_service_is_refused_and_auto_falls_back_to_kernel_keyring() {
    let service = format!("accessdesk-test-{}", random_hex(6));
    let s = in_dbus_session(LOCKED, &service, "unused");

    let (rc, _, err) = s.step("explicit_set");
    assert_eq!(*rc, 1, "{err}");
    assert!(err.contains("keychain secret-service: not usable"), "{err}");
    assert!(err.contains("hint:") && err.contains("--unlock"), "{err}");

    let (rc, out, err) = s.step("auto_set");
    assert_eq!(
        (*rc, out.as_str()),
        (0, "stored locked-token in keyutils\n"),
        "auto should skip a locked Secret Service for the kernel keyring \
         (run under `keyctl session -`): {err}"
    );
    assert_eq!(s.step("keyutils_rm").0, 0, "{}", s.step("keyutils_rm").2);
}
