//! Login templates: how a person's login in one system is made, once.
//!
//! A system's `login` setting in systems.toml is a template such as `"{email_local}"` or
//! `"{given}.{family}"`. It is rendered once, when the person's first account in that
//! system is about to be created; the result is then *assigned* (stored with the person,
//! see `store/identity.rs`) and never rendered again, so a later name or e-mail change
//! never moves a person onto somebody else's login. A rendered login that another person
//! already holds (or once held: a leaver's login stays reserved) gets a deterministic
//! suffix: `john.smith`, `john.smith2`, `john.smith3`, ... (before the `@` of an e-mail
//! style login: `john.smith2@example.com`).
//!
//! Placeholders:
//!
//! | Placeholder | Value |
//! |---|---|
//! | `{email}` | the work e-mail, lowercased |
//! | `{email_local}` | the part of the work e-mail before `@`, lowercased |
//! | `{given}` | the preferred (else given) name, transliterated to ASCII |
//! | `{family}` | the family name, transliterated to ASCII |
//! | `{given_initial}` / `{family_initial}` | the first letter of those |
//! | `{hris_id}` | the HR id |
//!
//! Uniqueness is case-insensitive: Okta logins, SCIM userNames and IAM user names all are.

use super::names::{ascii_fold, login_given};
use super::{Person, SystemKind};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Email,
    EmailLocal,
    Given,
    Family,
    GivenInitial,
    FamilyInitial,
    HrisId,
}

const PLACEHOLDERS: &[(&str, Part)] = &[
    ("email", Part::Email),
    ("email_local", Part::EmailLocal),
    ("given", Part::Given),
    ("family", Part::Family),
    ("given_initial", Part::GivenInitial),
    ("family_initial", Part::FamilyInitial),
    ("hris_id", Part::HrisId),
];

/// A parsed login template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTemplate {
    source: String,
    parts: Vec<Part>,
}

impl fmt::Display for LoginTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for LoginTemplate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('{') {
                None => {
                    parts.push(Part::Lit(rest.to_string()));
                    break;
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Lit(rest[..i].to_string()));
                    }
                    let after = &rest[i + 1..];
                    let Some(j) = after.find('}') else {
                        return Err(format!("login template {s:?} has a '{{' with no '}}'"));
                    };
                    let name = &after[..j];
                    let Some((_, part)) = PLACEHOLDERS.iter().find(|(n, _)| *n == name) else {
                        let names: Vec<&str> = PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
                        let hint = crate::error::did_you_mean(name, names.iter().copied())
                            .map(|d| format!(" (did you mean {{{d}}}?)"))
                            .unwrap_or_default();
                        return Err(format!(
                            "unknown placeholder {{{name}}} in login template {s:?}{hint}; known: {}",
                            names
                                .iter()
                                .map(|n| format!("{{{n}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    };
                    parts.push(part.clone());
                    rest = &after[j + 1..];
                }
            }
        }
        if !parts.iter().any(|p| !matches!(p, Part::Lit(_))) {
            return Err(format!(
                "login template {s:?} has no placeholder, so every person would get the same login"
            ));
        }
        Ok(LoginTemplate {
            source: s.to_string(),
            parts,
        })
    }
}

impl LoginTemplate {
    /// The default per kind of system: the work e-mail where the vendor logs people in
    /// by e-mail, else its local part.
    pub fn default_for(kind: SystemKind) -> LoginTemplate {
        let src = match kind {
            SystemKind::AwsIam
            | SystemKind::AwsIdentityStore
            | SystemKind::Github
            | SystemKind::Ldap => "{email_local}",
            SystemKind::Okta
            | SystemKind::Scim
            | SystemKind::GoogleWorkspace
            | SystemKind::Slack
            | SystemKind::Entra => "{email}",
        };
        src.parse().unwrap_or_else(|_| LoginTemplate {
            source: src.into(),
            parts: vec![Part::Email],
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the login follows the work e-mail (`{email}`, `{email_local}`): only
    /// then does an e-mail change ask for a rename.
    pub fn uses_email(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Email | Part::EmailLocal))
    }

    /// The login this template gives `person` in a system of `kind`, without a suffix.
    pub fn render(&self, person: &Person, kind: SystemKind) -> String {
        let email = person.email.trim().to_lowercase();
        let local = email.split('@').next().unwrap_or("").to_string();
        let given = ascii_fold(login_given(person));
        let family = ascii_fold(&person.family_name);
        let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Email => out.push_str(&email),
                Part::EmailLocal => out.push_str(&local),
                Part::Given => out.push_str(&given),
                Part::Family => out.push_str(&family),
                Part::GivenInitial => out.push_str(&initial(&given)),
                Part::FamilyInitial => out.push_str(&initial(&family)),
                Part::HrisId => out.push_str(&ascii_fold(&person.hris_id)),
            }
        }
        let login = sanitize(kind, &out);
        if login.split('@').next().is_none_or(str::is_empty) {
            // Nothing usable (a name with no letters at all, no e-mail): fall back to the
            // HR id, which is unique by definition.
            return sanitize(kind, &format!("user.{}", ascii_fold(&person.hris_id)));
        }
        login
    }
}

/// The longest login a kind of system takes.
pub fn max_len(kind: SystemKind) -> usize {
    match kind {
        SystemKind::AwsIam | SystemKind::Entra => 64,
        SystemKind::AwsIdentityStore => 128,
        SystemKind::Github => 39,
        _ => 100,
    }
}

/// Make a rendered login acceptable to the target: lowercase ASCII letters, digits and
/// `.`, `_`, `-`, `+`, `@` (non-ASCII letters transliterated, everything else dropped),
/// no leading, trailing or doubled dots, and within the system's length. GitHub
/// usernames take only letters, digits and single inner hyphens: there every separator
/// becomes a hyphen (`ada.lovelace` → `ada-lovelace`).
pub fn sanitize(kind: SystemKind, raw: &str) -> String {
    if kind == SystemKind::Github {
        return github_username(raw);
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if matches!(c, '.' | '_' | '-' | '+' | '@') {
            out.push(c);
        } else if c.is_alphanumeric() {
            out.push_str(&ascii_fold(&c.to_string()));
        }
    }
    // One '@' at most (keep the last, the domain separator).
    if out.matches('@').count() > 1
        && let Some(at) = out.rfind('@')
    {
        let (l, d) = out.split_at(at);
        out = format!("{}{d}", l.replace('@', ""));
    }
    let mut tidy = String::with_capacity(out.len());
    for c in out.chars() {
        if c == '.' && (tidy.is_empty() || tidy.ends_with('.') || tidy.ends_with('@')) {
            continue;
        }
        if c == '@' && tidy.ends_with('.') {
            tidy.pop();
        }
        tidy.push(c);
    }
    while tidy.ends_with('.') {
        tidy.pop();
    }
    fit(kind, &tidy, "")
}

/// `login` with a collision suffix (`n` ≥ 2), shortened if needed to stay within the
/// system's length: `john.smith` → `john.smith2`, `jo@x.io` → `jo2@x.io`.
pub fn with_suffix(kind: SystemKind, login: &str, n: u32) -> String {
    if n <= 1 {
        return login.to_string();
    }
    fit(kind, login, &n.to_string())
}

/// A GitHub username: ASCII letters and digits (others transliterated), separators as
/// single hyphens, none leading or trailing, at most 39 characters.
fn github_username(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let piece = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase().to_string()
        } else if c.is_alphanumeric() {
            ascii_fold(&c.to_string())
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect()
        } else if matches!(c, '.' | '_' | '-' | '+' | '@' | ' ') {
            "-".to_string()
        } else {
            String::new()
        };
        for p in piece.chars() {
            if p == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(p);
        }
    }
    out.truncate(max_len(SystemKind::Github));
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Put `suffix` at the end of the local part, cutting the local part so the whole fits.
fn fit(kind: SystemKind, login: &str, suffix: &str) -> String {
    let max = max_len(kind);
    let (local, domain) = match login.rfind('@') {
        Some(at) => login.split_at(at),
        None => (login, ""),
    };
    let room = max.saturating_sub(domain.len() + suffix.len()).max(1);
    let mut local = local.to_string();
    if local.len() > room {
        local.truncate(room); // ASCII by now, so any byte index is a char boundary
        while local.ends_with('.') && local.len() > 1 {
            local.pop();
        }
    }
    format!("{local}{suffix}{domain}")
}

/// The key under which a login is unique in its system (case-insensitive).
pub fn login_key(login: &str) -> String {
    login.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(given: &str, family: &str, email: &str) -> Person {
        Person::new("E1", given, family, email)
    }

    #[test]
    fn defaults_per_kind() {
        let ada = p("Ada", "Lovelace", "Ada.Lovelace@Example.com");
        let iam = LoginTemplate::default_for(SystemKind::AwsIam);
        assert_eq!(iam.render(&ada, SystemKind::AwsIam), "ada.lovelace");
        let okta = LoginTemplate::default_for(SystemKind::Okta);
        assert_eq!(
            okta.render(&ada, SystemKind::Okta),
            "ada.lovelace@example.com"
        );
        assert_eq!(
            LoginTemplate::default_for(SystemKind::AwsIdentityStore)
                .render(&ada, SystemKind::AwsIdentityStore),
            "ada.lovelace"
        );
    }

    #[test]
    fn templates_render_names() {
        let t: LoginTemplate = "{given}.{family}".parse().unwrap();
        assert_eq!(
            t.render(&p("José", "Ñúñez", "x@y.z"), SystemKind::AwsIam),
            "jose.nunez"
        );
        let t: LoginTemplate = "{given_initial}{family}".parse().unwrap();
        assert_eq!(
            t.render(&p("Anke", "van der Berg", "x@y.z"), SystemKind::AwsIam),
            "avanderberg"
        );
        // No letters at all: the HR id.
        let t: LoginTemplate = "{given}.{family}".parse().unwrap();
        assert_eq!(
            t.render(&p("🙂", "", "x@y.z"), SystemKind::AwsIam),
            "user.e1"
        );
    }

    #[test]
    fn bad_templates_are_explained() {
        let e = "{givn}.{family}".parse::<LoginTemplate>().unwrap_err();
        assert!(e.contains("did you mean {given}"), "{e}");
        assert!("{given".parse::<LoginTemplate>().is_err());
        let e = "admin".parse::<LoginTemplate>().unwrap_err();
        assert!(e.contains("no placeholder"), "{e}");
    }

    #[test]
    fn suffixes_go_before_the_domain_and_fit() {
        assert_eq!(
            with_suffix(SystemKind::AwsIam, "john.smith", 2),
            "john.smith2"
        );
        assert_eq!(
            with_suffix(SystemKind::Okta, "john.smith@x.io", 3),
            "john.smith3@x.io"
        );
        let long = "a".repeat(64);
        let s = with_suffix(SystemKind::AwsIam, &long, 12);
        assert_eq!(s.len(), 64);
        assert!(s.ends_with("12"));
    }

    #[test]
    fn github_usernames_take_single_inner_hyphens_only() {
        let gh = |raw: &str| sanitize(SystemKind::Github, raw);
        assert_eq!(gh("ada.lovelace"), "ada-lovelace");
        assert_eq!(gh(".-Ada__Lovelace+x@"), "ada-lovelace-x");
        assert_eq!(gh("José Ñúñez"), "jose-nunez");
        let long = gh(&format!("{}.b", "a".repeat(38)));
        assert_eq!(long, "a".repeat(38), "cut at 39 without a trailing hyphen");
        let t = LoginTemplate::default_for(SystemKind::Github);
        let ada = p("Ada", "Lovelace", "Ada.Lovelace@Example.com");
        assert_eq!(t.render(&ada, SystemKind::Github), "ada-lovelace");
        assert_eq!(
            with_suffix(SystemKind::Github, "ada-lovelace", 2),
            "ada-lovelace2"
        );
    }

    #[test]
    fn sanitize_keeps_what_targets_accept() {
        assert_eq!(sanitize(SystemKind::AwsIam, "..A b!c..d."), "abc.d");
        assert_eq!(sanitize(SystemKind::Okta, "a@b@c.io"), "ab@c.io");
        assert_eq!(sanitize(SystemKind::Okta, "jörg.@x.io"), "jorg@x.io");
    }
}
