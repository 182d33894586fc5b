//! The console in a real terminal (tmux): start `accessdesk demo`, approve a pending grant,
//! retry the failure group, filter people, open a person's access matrix, quit; then check
//! the terminal was restored and the audit log recorded the approval and the retry.
//! Needs tmux (.ci/test-all installs it; a missing tmux fails the test).

#[path = "common/tmux.rs"]
mod tmux;

use accessdesk::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};
use tmux::Tmux;

fn wait_file(path: &Path, text: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if s.contains(text) {
            return s;
        }
        if start.elapsed() > timeout {
            panic!("timed out waiting for {text:?} in {}: {s}", path.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn demo_console_approve_retry_filter_matrix_quit() {
    let bin = env!("CARGO_BIN_EXE_accessdesk");
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("stderr.txt");
    let after = dir.path().join("after.txt");
    let t = Tmux {
        name: format!("accessdesk-e2e-{}", std::process::id()),
    };
    // After the console exits: its exit code and the terminal's modes.
    let cmd = format!(
        "ACCESSDESK_KEYCHAIN=memory {bin} demo --keep-home --seed 7 2>{err}; echo EXIT=$? > {after}; stty -a >> {after}; sleep 600",
        err = err.display(),
        after = after.display()
    );
    Tmux::run(&[
        "new-session",
        "-d",
        "-s",
        &t.name,
        "-x",
        "140",
        "-y",
        "45",
        &cmd,
    ]);
    let long = Duration::from_secs(90);
    t.wait("the overview with pending approvals", long, |s| {
        s.contains("Overview") && s.contains("4 Approvals (")
    });

    // Approve the first pending grant, with a reason, confirmed.
    t.keys(&["4"]);
    t.wait_text("Pending approvals (", long);
    t.keys(&["a"]);
    t.wait_text("Reason for approving 1 grant(s)", long);
    t.text("e2e: on-call needs it");
    t.keys(&["Enter"]);
    t.wait_text("Approve 1 grant(s)?", long);
    t.keys(&["y"]);
    t.wait_text("approved 1 grant(s)", long);

    // Retry the failure group from the Queue. The failures come when the wave reaches
    // the payroll group's five people, which on a loaded 2-core machine running eight
    // simulators and a debug build can take a few minutes.
    t.keys(&["3"]);
    t.wait_text("Failures by root cause", Duration::from_secs(300));
    t.keys(&["g"]);
    t.keys(&["r"]);
    t.wait_text("Retry the whole group?", long);
    t.keys(&["y"]);
    // The result, or the job's error (shown as "Retry group failed: ..."), whichever comes.
    let screen = t.wait("the retry's result", long, |s| {
        (s.contains("Retry: ") && s.contains("operation(s) in")) || s.contains(" failed: ")
    });
    assert!(
        screen.contains("Retry: ") && screen.contains("operation(s) in"),
        "the retry did not succeed:\n{screen}"
    );

    // Filter people and open a matrix.
    t.keys(&["2"]);
    t.wait_text("People (500", long);
    t.keys(&["/"]);
    t.text("paul.schroder@");
    t.keys(&["Enter"]);
    // The filter has applied when the list is cut and Paul is on it (a slow machine may
    // still show the unfiltered list for a moment).
    t.wait("the filtered people list", long, |s| {
        s.contains(" of 500") && s.contains("Paul Schröder") && !s.contains("Aarav Iyer")
    });
    t.keys(&["Enter"]);
    t.wait_text("Access matrix", long);
    let screen = t.wait_text("account", long);
    assert!(screen.contains("Paul Schröder"), "{screen}");
    assert!(screen.contains("account"), "{screen}");

    // Quit: the demo exits 0 and the terminal is back to normal.
    t.keys(&["q"]);
    let modes = wait_file(&after, "EXIT=", Duration::from_secs(30));
    assert!(
        modes.contains("EXIT=0"),
        "{modes}\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    assert!(
        modes.contains(" icanon") && !modes.contains("-icanon"),
        "raw mode left on: {modes}"
    );
    assert!(
        modes.contains(" echo ") && !modes.contains("-echo "),
        "echo left off: {modes}"
    );
    assert_eq!(
        Tmux::run(&["display", "-p", "-t", &t.name, "#{alternate_on}"]).trim(),
        "0"
    );
    assert_eq!(
        Tmux::run(&["display", "-p", "-t", &t.name, "#{cursor_flag}"]).trim(),
        "1"
    );

    // The audit log has the approval and the retry, and its chain is intact.
    let stderr = std::fs::read_to_string(&err).unwrap();
    let home = stderr
        .lines()
        .find_map(|l| l.strip_prefix("demo home kept at "))
        .unwrap_or_else(|| panic!("no kept home in: {stderr}"));
    let store = Store::open(&Path::new(home).join("accessdesk.db")).unwrap();
    let events = store.audit_events(None, None).unwrap();
    assert!(
        events.iter().any(|e| e.action == "approval.approved"
            && e.details.to_string().contains("e2e: on-call needs it")),
        "no approval in the audit log"
    );
    let retried = events
        .iter()
        .filter(|e| {
            e.action == "op.status"
                && e.details
                    .to_string()
                    .contains("retry group from the console")
        })
        .count();
    assert!(retried >= 1, "no retry in the audit log");
    assert!(store.audit_verify().unwrap().is_ok());
    let _ = std::fs::remove_dir_all(home);
}
