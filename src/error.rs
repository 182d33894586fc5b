//! Library-wide error type. Each variant is a failure class; the binary maps a class to an
//! exit code (2 for bad input, 1 for runtime failure) and prints a one-line cause and hint.

use std::fmt;
use std::path::PathBuf;

/// Where in an input file something went wrong. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 0 {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub location: Location,
    /// The key, field or column the problem is about (may be empty).
    pub key: String,
    pub message: String,
    /// What to do about it (may be empty).
    pub hint: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, " (hint: {})", self.hint)?;
        }
        Ok(())
    }
}

/// A list of input problems, displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblems(pub Vec<InputProblem>);

impl fmt::Display for InputProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from a file the user gave us (config, policy, CSV, theme). Exit code 2.
    #[error("{0}")]
    Input(InputProblems),
    /// Bad input that has no file position (an argument, an unknown person). Exit code 2.
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// The database cannot be used as it is. Exit code 1.
    #[error("database {path}: {message}")]
    Database { path: PathBuf, message: String },
    /// SQLite failed underneath us.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A credential could not be resolved or stored. Never carries the secret itself.
    #[error("secret {name}: {message}")]
    Secret {
        name: String,
        message: String,
        hint: String,
    },
    /// No usable OS keychain: the one asked for (or every one `auto` tried) cannot be reached.
    /// Exit code 1.
    #[error("keychain {backend}: {message}")]
    Keychain {
        backend: String,
        message: String,
        hint: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Something ran and failed (a verify that found tampering, a policy test with a diff).
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn input(problems: Vec<InputProblem>) -> Self {
        Error::Input(InputProblems(problems))
    }

    /// Process exit code for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Usage { .. } => 2,
            _ => 1,
        }
    }

    /// A hint for the user, where one is known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. }
            | Error::Secret { hint, .. }
            | Error::Keychain { hint, .. }
                if !hint.is_empty() =>
            {
                Some(hint)
            }
            _ => None,
        }
    }
}

/// Edit distance, for suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest of `options` to a misspelt `word`, if it is close enough to be a guess.
pub fn did_you_mean<'a>(word: &str, options: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    options
        .into_iter()
        .map(|o| (levenshtein(word, o), o))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

/// Map a byte offset in `text` to a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|nl| before[nl + 1..].chars().count())
        .unwrap_or_else(|| before.chars().count())
        + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 9), (2, 3));
        assert_eq!(line_col(t, 1000), (3, 1));
    }

    #[test]
    fn exit_codes_follow_class() {
        assert_eq!(Error::usage("x", "").exit_code(), 2);
        assert_eq!(Error::Failed("x".into()).exit_code(), 1);
    }
}
