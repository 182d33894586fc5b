//! Running `accessdesk serve` for end-to-end tests: a process killed if the test ends (or
//! panics) without stopping it, its base URL read from its first line, and plain HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A serve process, killed if the test ends (or panics) without stopping it. Its stderr
/// (JSON logs) goes to `log`, a file in the home: a pipe nobody drains would stop serve
/// once it filled.
pub struct Serve(pub Child, pub std::path::PathBuf);

impl Serve {
    /// Everything serve has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Serve {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Serve {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Start serve on a free port with `env`; returns the process and its base URL.
pub fn serve_with(home: &Path, env: &[(&str, &str)]) -> (Serve, String) {
    let n = std::fs::read_dir(home).map_or(0, |d| d.count());
    let log = home.join(format!("serve-{n}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_accessdesk"))
        .arg("--home")
        .arg(home)
        .args(["serve", "--listen", "127.0.0.1:0", "--grace", "5"])
        .env_remove("ACCESSDESK_HOME")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child = Serve(child, log);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve's first line: {line:?}"))
        .to_string();
    (child, url)
}

/// A plain client (no proxy).
pub fn client() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
