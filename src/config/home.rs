//! Where accessdesk keeps its files.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub const SYSTEMS_FILE: &str = "systems.toml";
pub const POLICIES_FILE: &str = "policies.toml";
pub const DB_FILE: &str = "accessdesk.db";

/// The home directory: `--home DIR`, else `$ACCESSDESK_HOME`, else the XDG data dir
/// (`$XDG_DATA_HOME/accessdesk`, usually `~/.local/share/accessdesk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }

    /// Resolve the home from an explicit flag, the environment, or the platform default.
    /// (clap already folds ACCESSDESK_HOME into `explicit`; this also reads it for library users.)
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        if let Some(p) = explicit {
            return Ok(Home::new(p));
        }
        if let Some(p) = std::env::var_os("ACCESSDESK_HOME").filter(|p| !p.is_empty()) {
            return Ok(Home::new(PathBuf::from(p)));
        }
        let dirs = directories::ProjectDirs::from("", "", "accessdesk").ok_or_else(|| {
            Error::usage(
                "cannot work out a home directory (no HOME set)",
                "pass --home DIR or set ACCESSDESK_HOME",
            )
        })?;
        Ok(Home::new(dirs.data_dir()))
    }

    pub fn systems_path(&self) -> PathBuf {
        self.dir.join(SYSTEMS_FILE)
    }

    pub fn policies_path(&self) -> PathBuf {
        self.dir.join(POLICIES_FILE)
    }

    /// `sources.toml`: the HR sources (optional).
    pub fn sources_path(&self) -> PathBuf {
        self.dir.join("sources.toml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// Fail with a hint to run `accessdesk init` when the home has not been set up.
    pub fn require_initialised(&self) -> Result<()> {
        if !self.systems_path().exists() {
            return Err(Error::usage(
                format!("{} does not exist", self.systems_path().display()),
                format!("run `accessdesk init --home {}` first", self.dir.display()),
            ));
        }
        Ok(())
    }
}
