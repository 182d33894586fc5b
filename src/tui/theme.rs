//! Console themes: semantic roles mapped to styles, loaded from `themes/*.toml`.
//!
//! Views ask for a [`Role`] ("an operation that failed"), never for a colour; a [`Theme`]
//! maps every role to a ratatui [`Style`]. Themes are TOML files with four sections
//! (`[ui]`, `[alert]`, `[operation]`, `[access]`) whose keys are the roles; see
//! themes/README.md for the format.
//!
//! The shipped themes are compiled into the binary. A user directory (the home's `themes/`)
//! is searched first, so users can add themes or override a shipped one. A theme may name a
//! `parent` and inherit every key it does not set; keys no file in the chain sets come from
//! the built-in `none` theme. Problems in a file are reported at file:line:col.
//!
//! [`resolve`] applies `--color auto|always|never` and `NO_COLOR` on top of loading.

use crate::config::toml_errors::problem_at;
use crate::error::{InputProblem, InputProblems, Location, line_col};
use ratatui::style::{Color, Modifier, Style};
use serde_spanned::Spanned;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use toml::de::{DeTable, DeValue};

/// Every semantic key a theme can set. Views ask for a role, never for a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    // ui
    Base,
    Muted,
    Title,
    Border,
    BorderFocused,
    Header,
    Selected,
    Marked,
    Hint,
    HintKey,
    Breadcrumb,
    Input,
    Gauge,
    GaugeHigh,
    Changed,
    // alerts
    AlertInfo,
    AlertOk,
    AlertWarn,
    AlertError,
    // operation states
    OpPendingApproval,
    OpQueued,
    OpRunning,
    OpRetryWait,
    OpVerifying,
    OpBlocked,
    OpSucceeded,
    OpFailed,
    OpCancelled,
    // access states (the access matrix)
    AccessInSync,
    AccessMissing,
    AccessExcess,
    AccessQueued,
    AccessRunning,
    AccessFailed,
    AccessAwaitingApproval,
    AccessBlocked,
}

impl Role {
    /// How many roles there are.
    pub const COUNT: usize = 36;

    /// Every role, in declaration order (`Role::ALL[r as usize] == r`).
    pub const ALL: [Role; Role::COUNT] = [
        Role::Base,
        Role::Muted,
        Role::Title,
        Role::Border,
        Role::BorderFocused,
        Role::Header,
        Role::Selected,
        Role::Marked,
        Role::Hint,
        Role::HintKey,
        Role::Breadcrumb,
        Role::Input,
        Role::Gauge,
        Role::GaugeHigh,
        Role::Changed,
        Role::AlertInfo,
        Role::AlertOk,
        Role::AlertWarn,
        Role::AlertError,
        Role::OpPendingApproval,
        Role::OpQueued,
        Role::OpRunning,
        Role::OpRetryWait,
        Role::OpVerifying,
        Role::OpBlocked,
        Role::OpSucceeded,
        Role::OpFailed,
        Role::OpCancelled,
        Role::AccessInSync,
        Role::AccessMissing,
        Role::AccessExcess,
        Role::AccessQueued,
        Role::AccessRunning,
        Role::AccessFailed,
        Role::AccessAwaitingApproval,
        Role::AccessBlocked,
    ];

    /// The theme file sections, in the order they are documented.
    pub const SECTIONS: [&'static str; 4] = ["ui", "alert", "operation", "access"];

    /// The section of a theme file this role is set in.
    pub fn section(self) -> &'static str {
        use Role::*;
        match self {
            Base | Muted | Title | Border | BorderFocused | Header | Selected | Marked | Hint
            | HintKey | Breadcrumb | Input | Gauge | GaugeHigh | Changed => "ui",
            AlertInfo | AlertOk | AlertWarn | AlertError => "alert",
            OpPendingApproval | OpQueued | OpRunning | OpRetryWait | OpVerifying | OpBlocked
            | OpSucceeded | OpFailed | OpCancelled => "operation",
            AccessInSync
            | AccessMissing
            | AccessExcess
            | AccessQueued
            | AccessRunning
            | AccessFailed
            | AccessAwaitingApproval
            | AccessBlocked => "access",
        }
    }

    /// The key of this role within its section.
    pub fn key(self) -> &'static str {
        use Role::*;
        match self {
            Base => "base",
            Muted => "muted",
            Title => "title",
            Border => "border",
            BorderFocused => "border_focused",
            Header => "header",
            Selected => "selected",
            Marked => "marked",
            Hint => "hint",
            HintKey => "hint_key",
            Breadcrumb => "breadcrumb",
            Input => "input",
            Gauge => "gauge",
            GaugeHigh => "gauge_high",
            Changed => "changed",
            AlertInfo => "info",
            AlertOk => "ok",
            AlertWarn => "warn",
            AlertError => "error",
            OpPendingApproval => "pending_approval",
            OpQueued | AccessQueued => "queued",
            OpRunning | AccessRunning => "running",
            OpRetryWait => "retry_wait",
            OpVerifying => "verifying",
            OpBlocked | AccessBlocked => "blocked",
            OpSucceeded => "succeeded",
            OpFailed | AccessFailed => "failed",
            OpCancelled => "cancelled",
            AccessInSync => "in_sync",
            AccessMissing => "missing",
            AccessExcess => "excess",
            AccessAwaitingApproval => "awaiting_approval",
        }
    }

    /// The role set by `key` in `[section]`.
    pub fn from_key(section: &str, key: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.section() == section && r.key() == key)
    }

    fn keys_of(section: &str) -> impl Iterator<Item = &'static str> + '_ {
        Role::ALL
            .into_iter()
            .filter(move |r| r.section() == section)
            .map(Role::key)
    }
}

impl fmt::Display for Role {
    /// `section.key`, as in error messages: `operation.failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.section(), self.key())
    }
}

/// The shipped themes, compiled in so the console works from any directory.
const BUILTIN: [(&str, &str); 5] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("none", include_str!("../../themes/none.toml")),
    (
        "deuteranopia",
        include_str!("../../themes/deuteranopia.toml"),
    ),
];

const BUILTIN_NAMES: [&str; 5] = [
    BUILTIN[0].0,
    BUILTIN[1].0,
    BUILTIN[2].0,
    BUILTIN[3].0,
    BUILTIN[4].0,
];

/// The theme used when none is named.
pub const DEFAULT_THEME: &str = "default";

/// The names of the shipped themes, `default` first.
pub fn builtin_names() -> &'static [&'static str] {
    &BUILTIN_NAMES
}

/// Every theme that can be loaded: the shipped ones, then the user's own (`*.toml` in
/// `user_dir`) sorted by name. A user file that overrides a shipped theme is listed once.
/// Lists names only; a listed user theme may still fail to load.
pub fn available(user_dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_NAMES.iter().map(|n| n.to_string()).collect();
    let mut user: Vec<String> = user_dir
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let stem = path.file_stem()?.to_str()?.to_string();
            (path.extension()? == "toml" && valid_name(&stem) && path.is_file()).then_some(stem)
        })
        .filter(|n| !names.contains(n))
        .collect();
    user.sort();
    user.dedup();
    names.extend(user);
    names
}

/// A theme name is also a file stem: letters, digits, `-` and `_` (no paths).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// How to decide whether to use colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorMode {
    /// Colour on a terminal unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always colour, even when not a terminal or `NO_COLOR` is set.
    Always,
    /// Never colour: the theme's name is kept but styles come from the `none` theme.
    Never,
}

impl std::str::FromStr for ColorMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <ColorMode as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown colour mode {s:?} (use auto, always or never)"))
    }
}

/// Whether the environment asks for no colour: `NO_COLOR` set and not empty (no-color.org).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The theme the console should use: `theme_name` (default `default`) loaded from
/// `user_dir` or the shipped themes, with colour removed under `Never`, or under `Auto`
/// when `NO_COLOR` is set (`no_color_env`) or the output is not a terminal (`is_tty`).
///
/// Without colour the styles are those of the `none` theme (the user's `none.toml` if they
/// have one; any colour in it is stripped too), so every state stays distinguishable by
/// modifiers; the theme's name is kept. The named theme is still loaded, so a broken file
/// is reported either way.
pub fn resolve(
    theme_name: Option<&str>,
    mode: ColorMode,
    no_color_env: bool,
    is_tty: bool,
    user_dir: Option<&Path>,
) -> Result<Theme, ThemeError> {
    let theme = Theme::load(theme_name.unwrap_or(DEFAULT_THEME), user_dir)?;
    let colour = match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => is_tty && !no_color_env,
    };
    if colour {
        return Ok(theme);
    }
    let mono = if theme.name == "none" {
        theme.clone()
    } else {
        Theme::load("none", user_dir)?
    };
    Ok(Theme {
        name: theme.name,
        styles: mono.without_colour().styles,
    })
}

/// A theme: a style for every [`Role`].
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: [Style; Role::COUNT],
}

impl Theme {
    /// The monochrome theme: modifiers only, no colour (the shipped `none.toml`).
    pub fn none() -> Theme {
        builtin_none().clone()
    }

    /// The style for a role.
    pub fn style(&self, role: Role) -> Style {
        self.styles[role as usize]
    }

    /// Load a theme by name: `user_dir/NAME.toml` if it exists, else the shipped theme.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        let first = candidates(name, user_dir)?
            .into_iter()
            .next()
            .ok_or_else(|| ThemeError::UnknownTheme {
                name: name.to_string(),
                available: available(user_dir),
            })?;
        resolve_chain(first, user_dir, &builtin_none().styles)
    }

    /// Parse a theme from text. `source_name` is the file name used in error positions (its
    /// stem is the theme's name unless the text sets `name`); a `parent` is looked up like
    /// [`Theme::load`] does.
    pub fn parse(
        source_name: &str,
        text: &str,
        user_dir: Option<&Path>,
    ) -> Result<Theme, ThemeError> {
        let path = PathBuf::from(source_name);
        let source = Source {
            lookup_name: stem(&path),
            origin: Origin::Text,
            path,
            text: Cow::Owned(text.to_string()),
        };
        resolve_chain(source, user_dir, &builtin_none().styles)
    }

    /// The same theme with every colour removed and the modifiers kept.
    pub fn without_colour(&self) -> Theme {
        let mut t = self.clone();
        for s in &mut t.styles {
            *s = Style::default()
                .add_modifier(s.add_modifier)
                .remove_modifier(s.sub_modifier);
        }
        t
    }
}

fn builtin_none() -> &'static Theme {
    static NONE: OnceLock<Theme> = OnceLock::new();
    NONE.get_or_init(|| {
        let source = builtin_source("none").expect("none is a shipped theme");
        resolve_chain(source, None, &[Style::default(); Role::COUNT])
            .unwrap_or_else(|e| panic!("the shipped none theme is invalid: {e}"))
    })
}

/// Why a theme could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThemeError {
    /// Problems at positions in a theme file (syntax, unknown section or key, bad colour or
    /// modifier), in file order.
    Invalid(Vec<InputProblem>),
    /// `parent` names a theme that does not exist.
    UnknownParent {
        location: Location,
        parent: String,
        available: Vec<String>,
    },
    /// Following `parent` comes back to a theme already in the chain; `cycle` is the
    /// chain of names from that theme back to itself.
    ParentCycle {
        location: Location,
        cycle: Vec<String>,
    },
    /// The theme asked for does not exist.
    UnknownTheme {
        name: String,
        available: Vec<String>,
    },
    /// A user theme file exists but cannot be read.
    Read {
        path: PathBuf,
        kind: std::io::ErrorKind,
        message: String,
    },
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThemeError::Invalid(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            ThemeError::UnknownParent {
                location,
                parent,
                available,
            } => write!(
                f,
                "{location}: unknown parent theme {parent:?} (available: {})",
                available.join(", ")
            ),
            ThemeError::ParentCycle { location, cycle } => {
                write!(f, "{location}: parent cycle: {}", cycle.join(" -> "))
            }
            ThemeError::UnknownTheme { name, available } => write!(
                f,
                "unknown theme {name:?} (available: {})",
                available.join(", ")
            ),
            ThemeError::Read { path, message, .. } => {
                write!(f, "cannot read theme {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ThemeError {}

impl From<ThemeError> for crate::Error {
    /// Problems in a file become input problems (exit 2, same text); an unknown theme name a
    /// usage error; an unreadable file an I/O error.
    fn from(e: ThemeError) -> Self {
        let located = |location: &Location, text: &str| {
            // The Display text after "file:line:col: ".
            let prefix = format!("{location}: ");
            InputProblem {
                location: location.clone(),
                key: String::new(),
                message: text.strip_prefix(&prefix).unwrap_or(text).to_string(),
                hint: String::new(),
            }
        };
        match &e {
            ThemeError::Invalid(problems) => crate::Error::Input(InputProblems(problems.clone())),
            ThemeError::UnknownParent { location, .. }
            | ThemeError::ParentCycle { location, .. } => {
                crate::Error::input(vec![located(location, &e.to_string())])
            }
            ThemeError::UnknownTheme { name, available } => crate::Error::usage(
                format!("unknown theme {name:?}"),
                format!(
                    "available themes: {}; add your own as themes/NAME.toml in the home directory",
                    available.join(", ")
                ),
            ),
            ThemeError::Read {
                path,
                kind,
                message,
            } => crate::Error::io(
                format!("reading theme {}", path.display()),
                std::io::Error::new(*kind, message.clone()),
            ),
        }
    }
}

// ---- finding theme files ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    User(PathBuf),
    Builtin(&'static str),
    /// Text handed to [`Theme::parse`]; never found again by name.
    Text,
}

struct Source {
    /// The name it was found by (the file stem).
    lookup_name: String,
    origin: Origin,
    /// Shown in error positions.
    path: PathBuf,
    text: Cow<'static, str>,
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn builtin_source(name: &str) -> Option<Source> {
    let (n, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    Some(Source {
        lookup_name: n.to_string(),
        origin: Origin::Builtin(n),
        path: PathBuf::from(format!("themes/{n}.toml")),
        text: Cow::Borrowed(text),
    })
}

/// The files a name can refer to, in lookup order: the user's, then the shipped one.
fn candidates(name: &str, user_dir: Option<&Path>) -> Result<Vec<Source>, ThemeError> {
    let mut found = Vec::new();
    if !valid_name(name) {
        return Ok(found);
    }
    if let Some(dir) = user_dir {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => found.push(Source {
                lookup_name: name.to_string(),
                origin: Origin::User(path.clone()),
                path,
                text: Cow::Owned(text),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ThemeError::Read {
                    path,
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
    }
    found.extend(builtin_source(name));
    Ok(found)
}

/// Parse `first` and its parents and lay their rules over `base`, root first.
///
/// A parent name is looked up like a theme name, skipping files already in the chain: a
/// user's `default.toml` with `parent = "default"` extends the shipped `default`. Only when
/// every file of that name is already in the chain is it a cycle.
fn resolve_chain(
    first: Source,
    user_dir: Option<&Path>,
    base: &[Style; Role::COUNT],
) -> Result<Theme, ThemeError> {
    let mut visited = vec![first.origin.clone()];
    let mut chain = vec![ThemeFile::parse(&first)?];
    loop {
        let current = chain.last().expect("chain starts with one file");
        let Some((parent, location)) = current.parent.clone() else {
            break;
        };
        let found = candidates(&parent, user_dir)?;
        if found.is_empty() {
            return Err(ThemeError::UnknownParent {
                location,
                parent,
                available: available(user_dir),
            });
        }
        let Some(next) = found.into_iter().find(|s| !visited.contains(&s.origin)) else {
            let names: Vec<&str> = chain.iter().map(|f| f.lookup_name.as_str()).collect();
            let start = names.iter().position(|n| *n == parent).unwrap_or(0);
            let mut cycle: Vec<String> = names[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(parent);
            return Err(ThemeError::ParentCycle { location, cycle });
        };
        visited.push(next.origin.clone());
        chain.push(ThemeFile::parse(&next)?);
    }

    let mut styles = *base;
    for file in chain.iter().rev() {
        for (role, style) in &file.rules {
            styles[*role as usize] = *style;
        }
    }
    let leaf = &chain[0];
    Ok(Theme {
        name: leaf
            .name
            .clone()
            .unwrap_or_else(|| leaf.lookup_name.clone()),
        styles,
    })
}

// ---- parsing one file ----

/// What one theme file says, before inheritance.
#[derive(Debug)]
struct ThemeFile {
    lookup_name: String,
    name: Option<String>,
    parent: Option<(String, Location)>,
    /// The roles this file sets; a set role replaces the parent's style for it entirely.
    rules: Vec<(Role, Style)>,
}

const COLOUR_HINT: &str = "use a name such as red, #rrggbb, or 0-255";
const MODIFIERS: [(&str, Modifier); 7] = [
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
    ("slow_blink", Modifier::SLOW_BLINK),
];
const STYLE_KEYS: [&str; 3] = ["fg", "bg", "modifiers"];
const TOP_KEYS: [&str; 2] = ["name", "parent"];

/// Problems found in one file, with their byte offsets for ordering.
struct Problems<'a> {
    path: &'a Path,
    text: &'a str,
    found: Vec<(usize, InputProblem)>,
}

impl Problems<'_> {
    fn add(&mut self, span: Range<usize>, message: String) {
        let p = problem_at(self.path, self.text, Some(span.clone()), "", message, "");
        self.found.push((span.start, p));
    }

    fn location(&self, span: Range<usize>) -> Location {
        let (line, column) = line_col(self.text, span.start);
        Location {
            file: self.path.to_path_buf(),
            line,
            column,
        }
    }
}

use crate::error::did_you_mean as suggest;

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

impl ThemeFile {
    fn parse(source: &Source) -> Result<ThemeFile, ThemeError> {
        let text: &str = &source.text;
        let path = source.path.as_path();
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                // Not `from_toml_error`: its key-from-backticks guess suits serde messages,
                // and parser messages quote the expected token instead.
                let first = e.message().lines().next().unwrap_or("").trim();
                // Without a position from the parser, point at the end of the file.
                let span = e.span().unwrap_or(text.len()..text.len());
                let message = match text.get(span.clone()) {
                    Some(key) if first == "duplicate key" && !key.is_empty() => {
                        format!("invalid TOML: duplicate key {key}")
                    }
                    _ => format!("invalid TOML: {first}"),
                };
                let p = problem_at(path, text, Some(span), "", message, "");
                return Err(ThemeError::Invalid(vec![p]));
            }
        };
        let mut problems = Problems {
            path,
            text,
            found: Vec::new(),
        };
        let mut file = ThemeFile {
            lookup_name: source.lookup_name.clone(),
            name: None,
            parent: None,
            rules: Vec::new(),
        };
        for (key, value) in root.get_ref() {
            let k: &str = key.get_ref();
            match k {
                "name" | "parent" => match value.get_ref() {
                    DeValue::String(s) if !s.trim().is_empty() => {
                        if k == "name" {
                            file.name = Some(s.to_string());
                        } else {
                            let location = problems.location(value.span());
                            file.parent = Some((s.to_string(), location));
                        }
                    }
                    DeValue::String(_) => {
                        problems.add(value.span(), format!("{k} must not be empty"));
                    }
                    other => problems.add(
                        value.span(),
                        format!("{k} must be a string, not {}", type_name(other)),
                    ),
                },
                section if Role::SECTIONS.contains(&section) => match value.get_ref() {
                    DeValue::Table(table) => {
                        parse_section(section, table, &mut file.rules, &mut problems)
                    }
                    other => problems.add(
                        key.span(),
                        format!(
                            "{section} must be a section ([{section}]), not {}",
                            type_name(other)
                        ),
                    ),
                },
                other => problems.add(key.span(), unknown_top_level(other, value.get_ref())),
            }
        }
        if problems.found.is_empty() {
            Ok(file)
        } else {
            problems.found.sort_by_key(|(offset, _)| *offset);
            Err(ThemeError::Invalid(
                problems.found.into_iter().map(|(_, p)| p).collect(),
            ))
        }
    }
}

fn unknown_top_level(key: &str, value: &DeValue<'_>) -> String {
    if matches!(value, DeValue::Table(_)) {
        return match suggest(key, Role::SECTIONS) {
            Some(s) => format!("unknown section [{key}]; did you mean [{s}]?"),
            None => format!(
                "unknown section [{key}] (sections: {})",
                Role::SECTIONS.map(|s| format!("[{s}]")).join(", ")
            ),
        };
    }
    let homes: Vec<String> = Role::ALL
        .iter()
        .filter(|r| r.key() == key)
        .map(|r| r.to_string())
        .collect();
    if !homes.is_empty() {
        return format!(
            "unknown key {key:?} outside any section; did you mean {}?",
            homes.join(" or ")
        );
    }
    match suggest(key, TOP_KEYS) {
        Some(s) => format!("unknown key {key:?}; did you mean {s:?}?"),
        None => format!(
            "unknown key {key:?} (use name, parent and the sections {})",
            Role::SECTIONS.map(|s| format!("[{s}]")).join(", ")
        ),
    }
}

fn parse_section(
    section: &str,
    table: &DeTable<'_>,
    rules: &mut Vec<(Role, Style)>,
    problems: &mut Problems<'_>,
) {
    for (key, value) in table {
        let k: &str = key.get_ref();
        if let Some(role) = Role::from_key(section, k) {
            if let Some(style) = parse_style(role, value, problems) {
                rules.push((role, style));
            }
            continue;
        }
        let message = if let Some(s) = suggest(k, Role::keys_of(section)) {
            format!("unknown key {k:?} in [{section}]; did you mean {s:?}?")
        } else {
            let elsewhere: Vec<String> = Role::ALL
                .iter()
                .filter(|r| r.key() == k)
                .map(|r| r.to_string())
                .collect();
            if elsewhere.is_empty() {
                format!(
                    "unknown key {k:?} in [{section}] (keys: {})",
                    Role::keys_of(section).collect::<Vec<_>>().join(", ")
                )
            } else {
                format!(
                    "unknown key {k:?} in [{section}]; did you mean {}?",
                    elsewhere.join(" or ")
                )
            }
        };
        problems.add(key.span(), message);
    }
}

/// A style: a bare colour (the foreground) or `{ fg, bg, modifiers }`.
fn parse_style(
    role: Role,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Problems<'_>,
) -> Option<Style> {
    match value.get_ref() {
        DeValue::String(_) | DeValue::Integer(_) => {
            let fg = parse_colour(value, &role.to_string(), problems)?;
            Some(Style::default().fg(fg))
        }
        DeValue::Table(table) => {
            let mut style = Style::default();
            let mut ok = true;
            for (key, v) in table {
                let k: &str = key.get_ref();
                match k {
                    "fg" | "bg" => match parse_colour(v, &format!("{role}.{k}"), problems) {
                        Some(c) if k == "fg" => style = style.fg(c),
                        Some(c) => style = style.bg(c),
                        None => ok = false,
                    },
                    "modifiers" => match parse_modifiers(role, v, problems) {
                        Some(m) => style = style.add_modifier(m),
                        None => ok = false,
                    },
                    _ => {
                        ok = false;
                        let guess = suggest(k, STYLE_KEYS)
                            .map(|s| format!("; did you mean {s:?}?"))
                            .unwrap_or_default();
                        problems.add(
                            key.span(),
                            format!(
                                "unknown key {k:?} in the style for {role}{guess} (use fg, bg, modifiers)"
                            ),
                        );
                    }
                }
            }
            ok.then_some(style)
        }
        other => {
            problems.add(
                value.span(),
                format!(
                    "style for {role} must be a colour or a table like {{ fg = \"red\", modifiers = [\"bold\"] }}, not {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn parse_colour(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    problems: &mut Problems<'_>,
) -> Option<Color> {
    let result = match value.get_ref() {
        DeValue::String(s) => colour_from_str(s, what),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n @ 0..=255) => Ok(Color::Indexed(n as u8)),
            _ => Err(format!(
                "colour {i} for {what} is out of range (indexed colours are 0-255)"
            )),
        },
        other => Err(format!(
            "colour for {what} must be a string or 0-255, not {}",
            type_name(other)
        )),
    };
    result.map_err(|m| problems.add(value.span(), m)).ok()
}

/// A colour: a ratatui colour name (`dark_gray`, `light_red`, ...), `#rrggbb`, or an index
/// 0-255 (as a string).
fn colour_from_str(s: &str, what: &str) -> Result<Color, String> {
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let n = u32::from_str_radix(hex, 16).expect("six hex digits");
            return Ok(Color::Rgb((n >> 16) as u8, (n >> 8) as u8, n as u8));
        }
        return Err(format!(
            "bad colour {s:?} for {what} (a hex colour is # and six hex digits: #rrggbb)"
        ));
    }
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return match s.parse::<u16>() {
            Ok(n) if n <= 255 => Ok(Color::Indexed(n as u8)),
            _ => Err(format!(
                "colour {s:?} for {what} is out of range (indexed colours are 0-255)"
            )),
        };
    }
    // Like ratatui's own parser: any case, `_`, `-` or space between words, or none.
    let plain: String = s
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let colour = match plain.as_str() {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return Err(format!("unknown colour {s:?} for {what} ({COLOUR_HINT})")),
    };
    Ok(colour)
}

fn parse_modifiers(
    role: Role,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Problems<'_>,
) -> Option<Modifier> {
    let DeValue::Array(items) = value.get_ref() else {
        problems.add(
            value.span(),
            format!(
                "modifiers for {role} must be a list such as [\"bold\", \"italic\"], not {}",
                type_name(value.get_ref())
            ),
        );
        return None;
    };
    let mut mods = Modifier::empty();
    let mut ok = true;
    for item in items.iter() {
        let DeValue::String(name) = item.get_ref() else {
            problems.add(
                item.span(),
                format!(
                    "modifiers for {role} must be names such as \"bold\", not {}",
                    type_name(item.get_ref())
                ),
            );
            ok = false;
            continue;
        };
        match MODIFIERS.iter().find(|(n, _)| *n == name.as_ref()) {
            Some((_, m)) => mods |= *m,
            None => {
                ok = false;
                let guess = suggest(name, MODIFIERS.map(|(n, _)| n))
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default();
                problems.add(
                    item.span(),
                    format!(
                        "unknown modifier {name:?} for {role}{guess} (use {})",
                        MODIFIERS.map(|(n, _)| n).join(", ")
                    ),
                );
            }
        }
    }
    ok.then_some(mods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        Theme::parse("t.toml", text, None).unwrap_err().to_string()
    }

    #[test]
    fn roles_are_listed_in_order_and_keys_are_unique_per_section() {
        for (i, r) in Role::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
            assert_eq!(Role::from_key(r.section(), r.key()), Some(*r));
        }
    }

    #[test]
    fn every_builtin_parses_on_its_own() {
        for (name, text) in BUILTIN {
            let source = builtin_source(name).unwrap();
            let f = ThemeFile::parse(&source).unwrap_or_else(|e| panic!("{e}"));
            assert!(!f.rules.is_empty(), "{name} sets nothing");
            assert!(text.contains("[access]"), "{name}");
            assert_eq!(Theme::load(name, None).unwrap().name, name);
        }
    }

    #[test]
    fn none_sets_every_role_itself() {
        let f = ThemeFile::parse(&builtin_source("none").unwrap()).unwrap();
        for r in Role::ALL {
            assert!(f.rules.iter().any(|(x, _)| *x == r), "none.toml lacks {r}");
        }
    }

    #[test]
    fn style_forms() {
        let t = Theme::parse(
            "t.toml",
            "[ui]\nbase = \"red\"\ntitle = { fg = \"#102030\", bg = 17, modifiers = [\"bold\", \"italic\"] }\nmuted = \"244\"\nheader = {}\n",
            None,
        )
        .unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(t.style(Role::Base), Style::default().fg(Color::Red));
        assert_eq!(
            t.style(Role::Title),
            Style::default()
                .fg(Color::Rgb(0x10, 0x20, 0x30))
                .bg(Color::Indexed(17))
                .add_modifier(Modifier::BOLD | Modifier::ITALIC)
        );
        assert_eq!(
            t.style(Role::Muted),
            Style::default().fg(Color::Indexed(244))
        );
        // An empty table sets the plain style, not the fallback.
        assert_eq!(t.style(Role::Header), Style::default());
        // Unset keys fall back to the none rules.
        assert_eq!(t.style(Role::Selected), Theme::none().style(Role::Selected));
    }

    #[test]
    fn errors_are_located_and_suggest() {
        assert_eq!(
            parse_err("[operation]\nfailed = \"redd\"\n"),
            "t.toml:2:10: unknown colour \"redd\" for operation.failed (use a name such as red, #rrggbb, or 0-255)"
        );
        assert_eq!(
            parse_err("[operation]\nfaild = \"red\"\n"),
            "t.toml:2:1: unknown key \"faild\" in [operation]; did you mean \"failed\"?"
        );
        assert_eq!(
            parse_err("[opration]\nfailed = \"red\"\n"),
            "t.toml:1:2: unknown section [opration]; did you mean [operation]?"
        );
        assert_eq!(
            parse_err("[ui]\nfailed = \"red\"\n"),
            "t.toml:2:1: unknown key \"failed\" in [ui]; did you mean operation.failed or access.failed?"
        );
        assert_eq!(
            parse_err("[ui]\ntitle = { modifiers = [\"blod\"] }\n"),
            "t.toml:2:24: unknown modifier \"blod\" for ui.title; did you mean \"bold\"? (use bold, dim, italic, underlined, reversed, crossed_out, slow_blink)"
        );
        assert_eq!(
            parse_err("[ui]\ntitle = { fg = 256 }\n"),
            "t.toml:2:16: colour 256 for ui.title.fg is out of range (indexed colours are 0-255)"
        );
    }

    #[test]
    fn several_problems_come_in_file_order() {
        let e = parse_err(
            "[ui]\nbase = \"x\"\n[alert]\nok = true\n[access]\nfailed = { fg = \"#1\" }\n",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("t.toml:2:8: unknown colour"), "{e}");
        assert!(
            lines[1].starts_with("t.toml:4:6: style for alert.ok"),
            "{e}"
        );
        assert!(
            lines[2].starts_with("t.toml:6:17: bad colour \"#1\""),
            "{e}"
        );
    }

    #[test]
    fn colour_mode_parses() {
        assert_eq!("never".parse::<ColorMode>(), Ok(ColorMode::Never));
        assert_eq!("Always".parse::<ColorMode>(), Ok(ColorMode::Always));
        assert!("sometimes".parse::<ColorMode>().is_err());
    }

    #[test]
    fn maps_into_the_crate_error() {
        let e = Theme::parse("t.toml", "[ui]\nbase = \"redd\"\n", None).unwrap_err();
        let text = e.to_string();
        let ce: crate::Error = e.into();
        assert_eq!(ce.to_string(), text);
        assert_eq!(ce.exit_code(), 2);
        let e = Theme::parse("t.toml", "parent = \"nope\"\n", None).unwrap_err();
        let text = e.to_string();
        let ce: crate::Error = e.into();
        assert_eq!(ce.to_string(), text);
        assert_eq!(ce.exit_code(), 2);
        let ce: crate::Error = Theme::load("nope", None).unwrap_err().into();
        assert_eq!(ce.exit_code(), 2);
        assert_eq!(ce.to_string(), "unknown theme \"nope\"");
    }

    #[test]
    fn names_with_paths_are_unknown() {
        assert!(matches!(
            Theme::load("../default", None),
            Err(ThemeError::UnknownTheme { .. })
        ));
    }
}
