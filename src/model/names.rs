//! Name shaping: from a [`Person`]'s HR names to the name fields each target system wants.
//!
//! Rules, in order:
//! 1. Every name is NFC-normalised, control characters are dropped, and runs of white space
//!    collapse to one space with none at the ends.
//! 2. The given name a system sees is the preferred name when HR has one.
//! 3. The display name is HR's display name when set, else "given family".
//! 4. A login is ASCII: names are transliterated (so "Łukasz" becomes "lukasz" and "Иван"
//!    becomes "ivan"), symbols and emoji are dropped, family-name particles and hyphens are
//!    kept as part of the family name ("van der Berg" becomes "vanderberg"), and the result is
//!    `given.family`, or just `given` for a single-word name. A name with no letters at all
//!    falls back to `user.<hris id>`.
//! 5. Each system's length limit is applied by grapheme cluster, never splitting a character
//!    or an emoji sequence.

use super::{Person, SystemKind};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// The name fields for one target system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedName {
    pub given: String,
    pub family: String,
    pub display: String,
    pub login: String,
}

/// Per-system limits on name fields, in grapheme clusters (login in bytes; it is ASCII).
#[derive(Debug, Clone, Copy)]
struct Limits {
    given: usize,
    family: usize,
    display: usize,
    login: usize,
}

fn limits(kind: SystemKind) -> Limits {
    match kind {
        // Okta profile firstName/lastName are limited to 50 characters.
        SystemKind::Okta => Limits {
            given: 50,
            family: 50,
            display: 100,
            login: 100,
        },
        // Google Directory name.givenName / familyName: 60 characters.
        SystemKind::GoogleWorkspace => Limits {
            given: 60,
            family: 60,
            display: 120,
            login: 64,
        },
        // IAM UserName: 64 characters of [\w+=,.@-].
        SystemKind::AwsIam => Limits {
            given: 64,
            family: 64,
            display: 128,
            login: 64,
        },
        // Slack display names: 80 characters.
        SystemKind::Slack => Limits {
            given: 80,
            family: 80,
            display: 80,
            login: 80,
        },
        // Entra givenName/surname: 64; displayName: 256; mailNickname: 64.
        SystemKind::Entra => Limits {
            given: 64,
            family: 64,
            display: 256,
            login: 64,
        },
        _ => Limits {
            given: 128,
            family: 128,
            display: 256,
            login: 64,
        },
    }
}

/// NFC-normalise, drop control characters and emoji, collapse white space and trim.
/// Letters of every script are kept as they are: targets get the original Unicode.
pub fn clean(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    let mut out = String::with_capacity(nfc.len());
    let mut pending_space = false;
    for c in nfc.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_emoji(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Truncate to at most `max` grapheme clusters, then trim trailing white space.
fn truncate_graphemes(s: &str, max: usize) -> String {
    let cut: String = s.graphemes(true).take(max).collect();
    cut.trim_end().to_string()
}

/// Transliterate one name to lowercase ASCII letters and digits, dropping everything else.
/// Word boundaries inside the name (spaces, hyphens, apostrophes) are removed, so
/// "van der Berg" and "O'Brien-Smith" become "vanderberg" and "obriensmith".
pub fn ascii_fold(name: &str) -> String {
    let mut out = String::new();
    let mut after_arabic = false;
    for c in name.nfc() {
        let arabic = ('\u{0600}'..='\u{06FF}').contains(&c);
        let follows_arabic = std::mem::replace(&mut after_arabic, arabic);
        // Keep letters, digits and combining marks (they belong to a letter); emoji,
        // symbols and punctuation carry no name information for a login.
        if !(c.is_alphanumeric() || is_combining_mark(c)) {
            continue;
        }
        let mut buf = [0u8; 4];
        let folded = if c.is_ascii() {
            c.encode_utf8(&mut buf).to_string()
        } else if let Some(a) = arabic_vowel(c) {
            a.to_string()
        } else if c == 'ي' {
            // yeh: a consonant "y" at the start of a word, the vowel "i" after a letter
            // (Ali, Hadi).
            if follows_arabic { "i" } else { "y" }.to_string()
        } else {
            deunicode::deunicode_char(c).unwrap_or("").to_string()
        };
        for f in folded.chars() {
            if f.is_ascii_alphanumeric() {
                out.push(f.to_ascii_lowercase());
            }
        }
    }
    out
}

/// Emoji and their joiners, modifiers and selectors (pictographs carry no name).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF   // pictographs, emoticons, transport, flags, skin tones
        | 0x2600..=0x27BF   // miscellaneous symbols and dingbats
        | 0x2B00..=0x2BFF   // arrows and stars used as emoji
        | 0x200D            // zero-width joiner
        | 0xFE00..=0xFE0F   // variation selectors
        | 0x20E3            // combining keycap
        | 0xE0020..=0xE007F // tag characters (subdivision flags)
    )
}

/// Arabic letters that carry a vowel sound but that deunicode (like any_ascii and
/// unidecode, measured: all three give "mhmd l`ly" for "محمد العلي") drops or turns into
/// punctuation. Arabic script does not write short vowels, so no transliteration table can
/// restore "Muhammad"; keeping the long vowels and the ayn at least keeps the article and
/// the name readable: "mhmd.alali", not "mhmd.lly".
fn arabic_vowel(c: char) -> Option<&'static str> {
    Some(match c {
        // alef and its hamza/madda/wasla forms, alef maksura, ta marbuta, ayn
        'ا' | 'أ' | 'إ' | 'آ' | 'ٱ' | 'ى' | 'ة' | 'ع' => "a",
        _ => return None,
    })
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The given name a login is made from: the preferred name when HR has one.
pub fn login_given(person: &Person) -> &str {
    person
        .preferred_name
        .as_deref()
        .filter(|p| !clean(p).is_empty())
        .unwrap_or(&person.given_name)
}

/// The login local part for a person: `given.family`, ASCII only.
pub fn login_for(person: &Person) -> String {
    let given = ascii_fold(login_given(person));
    let family = ascii_fold(&person.family_name);
    match (given.is_empty(), family.is_empty()) {
        (false, false) => format!("{given}.{family}"),
        (false, true) => given,
        (true, false) => family,
        (true, true) => format!("user.{}", ascii_fold(&person.hris_id)),
    }
}

/// Shape a person's names for one kind of target system.
pub fn shape(person: &Person, kind: SystemKind) -> ShapedName {
    let lim = limits(kind);
    let (given, family, display) = shape_names(
        &NameParts {
            given: &person.given_name,
            family: &person.family_name,
            preferred: person.preferred_name.as_deref(),
            display: person.display_name.as_deref(),
        },
        kind,
    );
    let mut login = login_for(person);
    // IAM allows [\w+=,.@-]; ascii_fold already yields [a-z0-9], so only the length matters.
    login.truncate(lim.login);
    let login = login.trim_end_matches('.').to_string();
    ShapedName {
        given,
        family,
        display,
        login,
    }
}

/// A person's HR names, borrowed (reconciliation keeps them packed, not as [`Person`]s).
#[derive(Debug, Clone, Copy)]
pub struct NameParts<'a> {
    pub given: &'a str,
    pub family: &'a str,
    pub preferred: Option<&'a str>,
    pub display: Option<&'a str>,
}

/// The (given, family, display) names a system of `kind` gets: [`shape`] without the
/// login, whose transliteration is the costly part.
pub fn shape_names(n: &NameParts<'_>, kind: SystemKind) -> (String, String, String) {
    let lim = limits(kind);
    let preferred = n.preferred.map(clean).filter(|p| !p.is_empty());
    let given = preferred.unwrap_or_else(|| clean(n.given));
    let family = clean(n.family);
    let display = n
        .display
        .map(clean)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| match (given.is_empty(), family.is_empty()) {
            (false, false) => format!("{given} {family}"),
            (false, true) => given.clone(),
            (true, _) => family.clone(),
        });
    (
        truncate_graphemes(&given, lim.given),
        truncate_graphemes(&family, lim.family),
        truncate_graphemes(&display, lim.display),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        what: &'static str,
        given: &'static str,
        family: &'static str,
        preferred: Option<&'static str>,
        // expected
        e_given: &'static str,
        e_family: &'static str,
        e_display: &'static str,
        e_login: &'static str,
    }

    const CASES: &[Case] = &[
        Case {
            what: "plain",
            given: "Ada",
            family: "Lovelace",
            preferred: None,
            e_given: "Ada",
            e_family: "Lovelace",
            e_display: "Ada Lovelace",
            e_login: "ada.lovelace",
        },
        Case {
            what: "single-word name",
            given: "Suharto",
            family: "",
            preferred: None,
            e_given: "Suharto",
            e_family: "",
            e_display: "Suharto",
            e_login: "suharto",
        },
        Case {
            what: "single word only in family",
            given: "",
            family: "Teller",
            preferred: None,
            e_given: "",
            e_family: "Teller",
            e_display: "Teller",
            e_login: "teller",
        },
        Case {
            what: "hyphenated family",
            given: "Mary",
            family: "Smith-Jones",
            preferred: None,
            e_given: "Mary",
            e_family: "Smith-Jones",
            e_display: "Mary Smith-Jones",
            e_login: "mary.smithjones",
        },
        Case {
            what: "multi-part family",
            given: "Gabriel",
            family: "García Márquez",
            preferred: None,
            e_given: "Gabriel",
            e_family: "García Márquez",
            e_display: "Gabriel García Márquez",
            e_login: "gabriel.garciamarquez",
        },
        Case {
            what: "particle van der",
            given: "Anke",
            family: "van der Berg",
            preferred: None,
            e_given: "Anke",
            e_family: "van der Berg",
            e_display: "Anke van der Berg",
            e_login: "anke.vanderberg",
        },
        Case {
            what: "particle de la",
            given: "Juan",
            family: "de la Cruz",
            preferred: None,
            e_given: "Juan",
            e_family: "de la Cruz",
            e_display: "Juan de la Cruz",
            e_login: "juan.delacruz",
        },
        Case {
            what: "apostrophe",
            given: "Siobhán",
            family: "O'Brien",
            preferred: None,
            e_given: "Siobhán",
            e_family: "O'Brien",
            e_display: "Siobhán O'Brien",
            e_login: "siobhan.obrien",
        },
        Case {
            what: "preferred name wins",
            given: "William",
            family: "Gates",
            preferred: Some("Bill"),
            e_given: "Bill",
            e_family: "Gates",
            e_display: "Bill Gates",
            e_login: "bill.gates",
        },
        Case {
            what: "blank preferred ignored",
            given: "William",
            family: "Gates",
            preferred: Some("   "),
            e_given: "William",
            e_family: "Gates",
            e_display: "William Gates",
            e_login: "william.gates",
        },
        Case {
            what: "Cyrillic",
            given: "Иван",
            family: "Петров",
            preferred: None,
            e_given: "Иван",
            e_family: "Петров",
            e_display: "Иван Петров",
            e_login: "ivan.petrov",
        },
        Case {
            what: "Greek",
            given: "Σοφία",
            family: "Παπαδοπούλου",
            preferred: None,
            e_given: "Σοφία",
            e_family: "Παπαδοπούλου",
            e_display: "Σοφία Παπαδοπούλου",
            e_login: "sophia.papadopoulou",
        },
        Case {
            what: "CJK",
            given: "太郎",
            family: "山田",
            preferred: None,
            e_given: "太郎",
            e_family: "山田",
            e_display: "太郎 山田",
            e_login: "tailang.shantian",
        },
        Case {
            what: "Polish stroke letters",
            given: "Łukasz",
            family: "Żółć",
            preferred: None,
            e_given: "Łukasz",
            e_family: "Żółć",
            e_display: "Łukasz Żółć",
            e_login: "lukasz.zolc",
        },
        Case {
            what: "combining characters compose (NFC)",
            given: "Jose\u{301}",
            family: "Mun\u{303}oz",
            preferred: None,
            e_given: "José",
            e_family: "Muñoz",
            e_display: "José Muñoz",
            e_login: "jose.munoz",
        },
        Case {
            what: "emoji dropped everywhere, no double space left",
            given: "Sam 🚀",
            family: "Lee",
            preferred: None,
            e_given: "Sam",
            e_family: "Lee",
            e_display: "Sam Lee",
            e_login: "sam.lee",
        },
        Case {
            what: "ZWJ emoji sequence",
            given: "Kai",
            family: "👩‍💻",
            preferred: None,
            e_given: "Kai",
            e_family: "",
            e_display: "Kai",
            e_login: "kai",
        },
        Case {
            what: "leading/trailing/internal whitespace",
            given: "  Ana \t Maria ",
            family: "\u{a0}Silva  ",
            preferred: None,
            e_given: "Ana Maria",
            e_family: "Silva",
            e_display: "Ana Maria Silva",
            e_login: "anamaria.silva",
        },
        Case {
            what: "only emoji falls back to id",
            given: "🙂",
            family: "🙃",
            preferred: None,
            e_given: "",
            e_family: "",
            e_display: "",
            e_login: "user.e042",
        },
    ];

    #[test]
    fn shaping_table() {
        for c in CASES {
            let mut p = Person::new("E042", c.given, c.family, "x@example.com");
            p.preferred_name = c.preferred.map(str::to_string);
            let s = shape(&p, SystemKind::Okta);
            assert_eq!(s.given, c.e_given, "{}: given", c.what);
            assert_eq!(s.family, c.e_family, "{}: family", c.what);
            assert_eq!(s.display, c.e_display, "{}: display", c.what);
            assert_eq!(s.login, c.e_login, "{}: login", c.what);
        }
    }

    #[test]
    fn display_name_from_hr_wins() {
        let mut p = Person::new("1", "Robert", "Smith", "r@x");
        p.display_name = Some("  Bob  Smith ".into());
        assert_eq!(shape(&p, SystemKind::Slack).display, "Bob Smith");
    }

    #[test]
    fn limits_cut_on_grapheme_boundaries() {
        let family = "e\u{301}".repeat(70); // 70 graphemes, 140 chars
        let p = Person::new("1", "A", &family, "a@x");
        let s = shape(&p, SystemKind::Okta);
        assert_eq!(s.family.graphemes(true).count(), 50);
        assert!(s.family.chars().all(|c| c == 'é'));
        let long = "a".repeat(100);
        let p = Person::new("1", &long, &long, "a@x");
        let s = shape(&p, SystemKind::AwsIam);
        assert_eq!(s.login.len(), 64);
        assert!(!s.login.ends_with('.'));
    }

    #[test]
    fn non_latin_scripts_fold_to_readable_logins() {
        for (given, family, login) in [
            ("محمد", "العلي", "mhmd.alali"),
            ("يوسف", "علي", "ywsf.ali"),
            ("Иван", "Петров", "ivan.petrov"),
            ("Γιώργος", "Παπαδόπουλος", "giorgos.papadopoulos"),
            ("小明", "王", "xiaoming.wang"),
            ("अर्जुन", "शर्मा", "arjun.shrmaa"),
            ("יוסף", "כהן", "yvsp.khn"),
        ] {
            let p = Person::new("E1", given, family, "x@y.z");
            assert_eq!(login_for(&p), login, "{given} {family}");
        }
    }

    #[test]
    fn login_is_always_ascii_alnum_and_dots() {
        for c in CASES {
            let p = Person::new("E-1", c.given, c.family, "x@example.com");
            let l = login_for(&p);
            assert!(!l.is_empty());
            assert!(
                l.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.'),
                "{l}"
            );
        }
    }
}
