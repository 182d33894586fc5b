//! Turning TOML and serde errors into [`InputProblem`]s with file:line.

use crate::error::{InputProblem, Location, line_col};
use std::path::Path;

/// Build an input problem at a byte span of `text`.
pub fn problem_at(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    key: impl Into<String>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> InputProblem {
    let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 0));
    InputProblem {
        location: Location {
            file: path.to_path_buf(),
            line,
            column,
        },
        key: key.into(),
        message: message.into(),
        hint: hint.into(),
    }
}

/// Convert a `toml` deserialisation error into an input problem with its position.
pub fn from_toml_error(path: &Path, text: &str, err: &toml::de::Error, hint: &str) -> InputProblem {
    // toml's message is multi-line with a source excerpt; keep the first meaningful line.
    let message = err
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .to_string();
    let key = key_from_message(&message);
    problem_at(path, text, err.span(), key, message, hint)
}

fn key_from_message(msg: &str) -> String {
    // serde messages look like "missing field `kind`" or "unknown field `foo`, expected ...".
    if let Some(start) = msg.find('`')
        && let Some(len) = msg[start + 1..].find('`')
    {
        return msg[start + 1..start + 1 + len].to_string();
    }
    String::new()
}
