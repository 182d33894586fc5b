//! A terminal for end-to-end console tests: a detached tmux session, keys sent to it, its
//! screen read back. Needs tmux (.ci/test-all installs it; a missing tmux fails the test).
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub name: String,
}

impl Tmux {
    pub fn run(args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is required for this test (apt-get install tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        Self::run(&args);
    }

    pub fn text(&self, text: &str) {
        Self::run(&["send-keys", "-t", &self.name, "-l", text]);
    }

    pub fn screen(&self) -> String {
        Self::run(&["capture-pane", "-p", "-t", &self.name])
    }

    /// Wait until the screen satisfies `pred`; fail with the screen if it never does.
    pub fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; the screen was:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn wait_text(&self, text: &str, timeout: Duration) -> String {
        self.wait(&format!("{text:?}"), timeout, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Self::run(&["kill-session", "-t", &self.name]);
    }
}

/// Start `cmd` in a new detached session `width` x `height`.
pub fn start(name: &str, width: u16, height: u16, cmd: &str) -> Tmux {
    Tmux::run(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        &width.to_string(),
        "-y",
        &height.to_string(),
        cmd,
    ]);
    Tmux {
        name: name.to_string(),
    }
}
