//! Console themes: the shipped files, inheritance, located errors for bad files (the
//! fixtures in tests/fixtures/themes/), colour modes, and a loader that never panics.

use accessdesk::tui::theme::{
    ColorMode, Role, Theme, ThemeError, available, builtin_names, resolve,
};
use proptest::prelude::*;
use ratatui::style::{Color, Modifier, Style};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> PathBuf {
    Path::new("tests/fixtures/themes").join(dir)
}

fn has_colour(s: Style) -> bool {
    s.fg.is_some() || s.bg.is_some()
}

/// The (section, key) pairs a theme file sets itself.
fn keys_set_by(file: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut keys = BTreeSet::new();
    for (section, v) in table {
        if let toml::Value::Table(t) = v {
            for k in t.keys() {
                keys.insert((section.clone(), k.clone()));
            }
        }
    }
    keys
}

fn is_set(keys: &BTreeSet<(String, String)>, role: Role) -> bool {
    keys.contains(&(role.section().to_string(), role.key().to_string()))
}

// ---- shipped themes ----

#[test]
fn every_shipped_theme_loads() {
    assert_eq!(
        builtin_names(),
        ["default", "light", "high-contrast", "none", "deuteranopia"]
    );
    assert_eq!(available(None), builtin_names());
    for name in builtin_names() {
        let t = Theme::load(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.name, *name);
        // The file on disk is the one compiled in.
        let on_disk = std::fs::read_to_string(format!("themes/{name}.toml")).unwrap();
        assert_eq!(Theme::parse(&format!("{name}.toml"), &on_disk, None), Ok(t));
    }
    assert_eq!(Theme::none(), Theme::load("none", None).unwrap());
}

#[test]
fn shipped_colour_themes_have_colour() {
    for name in ["default", "light", "high-contrast", "deuteranopia"] {
        let t = Theme::load(name, None).unwrap();
        for role in [Role::OpFailed, Role::AccessInSync, Role::AccessMissing] {
            assert!(has_colour(t.style(role)), "{name} {role}");
        }
    }
}

#[test]
fn shipped_children_inherit_exactly_the_keys_they_do_not_set() {
    let default = Theme::load("default", None).unwrap();
    for child in ["high-contrast", "deuteranopia"] {
        let keys = keys_set_by(&format!("themes/{child}.toml"));
        let t = Theme::load(child, None).unwrap();
        let mut overridden = 0;
        for role in Role::ALL {
            if is_set(&keys, role) {
                overridden += 1;
                assert!(
                    t.style(role) != default.style(role),
                    "{child} sets {role} to what default has"
                );
            } else {
                assert_eq!(t.style(role), default.style(role), "{child} {role}");
            }
        }
        assert!(overridden > 0 && overridden < Role::COUNT, "{child}");
    }
}

#[test]
fn none_sets_no_colour_on_any_role() {
    let none = Theme::load("none", None).unwrap();
    for role in Role::ALL {
        assert!(!has_colour(none.style(role)), "none colours {role}");
        assert_eq!(none.style(role).sub_modifier, Modifier::empty());
    }
}

/// Every state a view draws must look different from every other state of its kind, by
/// modifiers alone (the views add a symbol per state as well).
#[test]
fn none_tells_states_apart_by_modifiers() {
    let none = Theme::none();
    for section in ["access", "operation"] {
        let roles: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.section() == section)
            .collect();
        assert!(roles.len() >= 8, "{section}");
        for (i, a) in roles.iter().enumerate() {
            for b in &roles[i + 1..] {
                assert_ne!(none.style(*a), none.style(*b), "{a} looks like {b}");
            }
        }
    }
    assert!(
        none.style(Role::Selected)
            .add_modifier
            .contains(Modifier::REVERSED)
    );
    assert!(none.style(Role::Muted).add_modifier.contains(Modifier::DIM));
    assert_eq!(
        none.style(Role::AccessFailed).add_modifier,
        Modifier::BOLD | Modifier::UNDERLINED
    );
}

fn reddish(c: Color) -> bool {
    match c {
        Color::Red | Color::LightRed => true,
        Color::Indexed(n) => matches!(n, 1 | 9 | 52 | 88 | 124 | 160 | 196),
        Color::Rgb(r, g, b) => r >= 160 && g < 90 && b < 90,
        _ => false,
    }
}

fn greenish(c: Color) -> bool {
    match c {
        Color::Green | Color::LightGreen => true,
        Color::Indexed(n) => matches!(n, 2 | 10 | 22 | 28 | 34 | 40 | 46 | 82 | 118),
        Color::Rgb(r, g, b) => g >= 120 && r < 100 && b < 100,
        _ => false,
    }
}

#[test]
fn deuteranopia_never_sets_red_against_green() {
    let t = Theme::load("deuteranopia", None).unwrap();
    for role in Role::ALL {
        let s = t.style(role);
        for c in [s.fg, s.bg].into_iter().flatten() {
            assert!(!reddish(c) && !greenish(c), "{role} uses {c:?}");
        }
    }
    for (bad, good) in [
        (Role::OpFailed, Role::OpSucceeded),
        (Role::AccessFailed, Role::AccessInSync),
        (Role::AccessMissing, Role::AccessInSync),
        (Role::AlertError, Role::AlertOk),
        (Role::GaugeHigh, Role::Gauge),
    ] {
        let (b, g) = (t.style(bad).fg, t.style(good).fg);
        assert!(b.is_some() && g.is_some(), "{bad} / {good}");
        assert_ne!(b, g, "{bad} and {good} share a colour");
    }
    // The eight access states have eight colours.
    let colours: BTreeSet<String> = Role::ALL
        .into_iter()
        .filter(|r| r.section() == "access")
        .map(|r| format!("{:?}", t.style(r).fg))
        .collect();
    assert_eq!(colours.len(), 8, "{colours:?}");
    // The test itself can tell: default does set red against green.
    let default = Theme::load("default", None).unwrap();
    assert!(greenish(default.style(Role::OpSucceeded).fg.unwrap()));
    assert!(reddish(default.style(Role::OpFailed).fg.unwrap()));
}

// ---- inheritance ----

#[test]
fn inheritance_overrides_exactly_the_overridden_keys() {
    let dir = fixtures("family");
    let root = Theme::load("family_root", Some(&dir)).unwrap();
    let child = Theme::load("family_child", Some(&dir)).unwrap();
    let grandchild = Theme::load("family_grandchild", Some(&dir)).unwrap();
    let none = Theme::none();

    assert_eq!(root.name, "family_root");
    assert_eq!(child.name, "family_child");
    assert_eq!(grandchild.name, "Grandchild");

    assert_eq!(
        root.style(Role::OpFailed),
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    );
    // A key set in the child replaces the parent's style whole: no bold left over.
    assert_eq!(
        child.style(Role::OpFailed),
        Style::default().fg(Color::Rgb(0xff, 0x88, 0x00))
    );
    assert_eq!(
        grandchild.style(Role::Border),
        Style::default().bg(Color::Indexed(17))
    );
    for role in Role::ALL {
        let root_sets = matches!(
            role,
            Role::Title | Role::Border | Role::OpFailed | Role::OpSucceeded
        );
        if !root_sets {
            assert_eq!(
                root.style(role),
                none.style(role),
                "root falls back: {role}"
            );
        }
        if role != Role::OpFailed {
            assert_eq!(child.style(role), root.style(role), "child: {role}");
        }
        if role != Role::Border {
            assert_eq!(
                grandchild.style(role),
                child.style(role),
                "grandchild: {role}"
            );
        }
    }
}

#[test]
fn user_themes_come_first_and_can_extend_the_shipped_one_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.toml"),
        "parent = \"default\"\n[ui]\ntitle = \"red\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("mine.toml"), "parent = \"high-contrast\"\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a theme").unwrap();

    let shipped = Theme::load("default", None).unwrap();
    let mine = Theme::load("default", Some(dir.path())).unwrap();
    assert_eq!(mine.name, "default");
    for role in Role::ALL {
        if role == Role::Title {
            assert_eq!(mine.style(role), Style::default().fg(Color::Red));
        } else {
            assert_eq!(mine.style(role), shipped.style(role), "{role}");
        }
    }

    // mine -> high-contrast (shipped) -> default (the user's, which extends the shipped one).
    let chain = Theme::load("mine", Some(dir.path())).unwrap();
    let hc = Theme::load("high-contrast", Some(dir.path())).unwrap();
    assert_eq!(chain.name, "mine");
    assert_eq!(chain.style(Role::Breadcrumb), hc.style(Role::Breadcrumb));
    assert_eq!(hc.style(Role::Breadcrumb), shipped.style(Role::Breadcrumb));

    assert_eq!(
        available(Some(dir.path())),
        [
            "default",
            "light",
            "high-contrast",
            "none",
            "deuteranopia",
            "mine"
        ]
    );
}

// ---- errors ----

#[test]
fn parent_cycles_name_the_cycle() {
    let dir = fixtures("parents");
    let e = Theme::load("cycle_a", Some(&dir)).unwrap_err();
    assert!(matches!(e, ThemeError::ParentCycle { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "tests/fixtures/themes/parents/cycle_c.toml:2:10: parent cycle: cycle_a -> cycle_b -> cycle_c -> cycle_a"
    );
    assert_eq!(
        Theme::load("self_parent", Some(&dir))
            .unwrap_err()
            .to_string(),
        "tests/fixtures/themes/parents/self_parent.toml:1:10: parent cycle: self_parent -> self_parent"
    );
}

#[test]
fn unknown_parent_is_named_with_the_themes_there_are() {
    let dir = fixtures("parents");
    let e = Theme::load("unknown_parent", Some(&dir)).unwrap_err();
    assert!(matches!(e, ThemeError::UnknownParent { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "tests/fixtures/themes/parents/unknown_parent.toml:2:10: unknown parent theme \"defualt\" \
         (available: default, light, high-contrast, none, deuteranopia, bad_grandparent, \
         bad_parent, cycle_a, cycle_b, cycle_c, self_parent, unknown_parent)"
    );
    // Without a user directory only the shipped themes are offered.
    assert_eq!(
        Theme::parse("x.toml", "\nparent = \"nope\"", None)
            .unwrap_err()
            .to_string(),
        "x.toml:2:10: unknown parent theme \"nope\" (available: default, light, high-contrast, none, deuteranopia)"
    );
}

#[test]
fn a_problem_in_a_parent_is_reported_in_the_parents_file() {
    let dir = fixtures("parents");
    assert_eq!(
        Theme::load("bad_grandparent", Some(&dir))
            .unwrap_err()
            .to_string(),
        "tests/fixtures/themes/parents/bad_parent.toml:2:8: unknown colour \"purple\" for ui.base \
         (use a name such as red, #rrggbb, or 0-255)"
    );
}

#[test]
fn unknown_theme_lists_the_themes_there_are() {
    let e = Theme::load("solarized", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown theme \"solarized\" (available: default, light, high-contrast, none, deuteranopia)"
    );
    let e: accessdesk::Error = e.into();
    assert_eq!(e.exit_code(), 2);
    assert!(e.hint().unwrap().contains("high-contrast"), "{e:?}");
}

/// Each bad fixture and the exact error it gives.
const INVALID: &[(&str, &str)] = &[
    (
        "bad_colour",
        "bad_colour.toml:7:10: unknown colour \"redd\" for operation.failed (use a name such as red, #rrggbb, or 0-255)",
    ),
    (
        "bad_hex",
        "bad_hex.toml:2:15: bad colour \"#12345\" for ui.base.fg (a hex colour is # and six hex digits: #rrggbb)",
    ),
    (
        "bad_index",
        "bad_index.toml:2:19: colour 256 for ui.selected.bg is out of range (indexed colours are 0-255)",
    ),
    (
        "bad_modifier",
        "bad_modifier.toml:2:45: unknown modifier \"itallic\" for ui.title; did you mean \"italic\"? \
         (use bold, dim, italic, underlined, reversed, crossed_out, slow_blink)",
    ),
    (
        "duplicate_key",
        "duplicate_key.toml:3:1: invalid TOML: duplicate key base",
    ),
    (
        "misplaced_key",
        "misplaced_key.toml:2:1: unknown key \"in_sync\" in [ui]; did you mean access.in_sync?",
    ),
    (
        "modifiers_not_a_list",
        "modifiers_not_a_list.toml:2:23: modifiers for ui.title must be a list such as [\"bold\", \"italic\"], not a string",
    ),
    (
        "section_not_a_table",
        "section_not_a_table.toml:1:1: ui must be a section ([ui]), not a string",
    ),
    (
        "several",
        "several.toml:1:1: unknown key \"nmae\"; did you mean \"name\"?\n\
         tests/fixtures/themes/invalid/several.toml:5:8: unknown colour \"dark grey!\" for ui.hint (use a name such as red, #rrggbb, or 0-255)\n\
         tests/fixtures/themes/invalid/several.toml:8:41: unknown modifier \"blink\" for access.missing \
         (use bold, dim, italic, underlined, reversed, crossed_out, slow_blink)",
    ),
    (
        "syntax",
        "syntax.toml:2:12: invalid TOML: invalid basic string, expected `\"`",
    ),
    (
        "unknown_key",
        "unknown_key.toml:3:1: unknown key \"faild\" in [operation]; did you mean \"failed\"?",
    ),
    (
        "unknown_section",
        "unknown_section.toml:1:2: unknown section [opration]; did you mean [operation]?",
    ),
    (
        "unknown_style_key",
        "unknown_style_key.toml:2:24: unknown key \"modifier\" in the style for access.failed; \
         did you mean \"modifiers\"? (use fg, bg, modifiers)",
    ),
    (
        "wrong_type",
        "wrong_type.toml:2:9: style for alert.error must be a colour or a table like \
         { fg = \"red\", modifiers = [\"bold\"] }, not a boolean",
    ),
];

#[test]
fn bad_files_give_located_errors() {
    let dir = fixtures("invalid");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = INVALID.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        on_disk, listed,
        "every fixture needs an expected error, and only those"
    );

    for (name, expected) in INVALID {
        let e = Theme::load(name, Some(&dir)).unwrap_err();
        assert!(matches!(e, ThemeError::Invalid(_)), "{name}: {e:?}");
        assert_eq!(
            e.to_string(),
            format!("tests/fixtures/themes/invalid/{expected}"),
            "{name}"
        );
        // The crate error says the same and is an input error.
        let text = e.to_string();
        let e: accessdesk::Error = e.into();
        assert_eq!(e.to_string(), text);
        assert_eq!(e.exit_code(), 2);
    }
}

// ---- colour modes ----

#[test]
fn colour_is_stripped_by_never_no_color_and_pipes() {
    let coloured = Theme::load("deuteranopia", None).unwrap();
    let none = Theme::none();
    for (mode, no_color, tty, colour) in [
        (ColorMode::Auto, false, true, true),
        (ColorMode::Auto, true, true, false),
        (ColorMode::Auto, false, false, false),
        (ColorMode::Auto, true, false, false),
        (ColorMode::Always, true, false, true),
        (ColorMode::Always, false, true, true),
        (ColorMode::Never, false, true, false),
    ] {
        let t = resolve(Some("deuteranopia"), mode, no_color, tty, None).unwrap();
        assert_eq!(t.name, "deuteranopia");
        if colour {
            assert_eq!(t, coloured, "{mode:?} {no_color} {tty}");
        } else {
            for role in Role::ALL {
                assert!(
                    !has_colour(t.style(role)),
                    "{mode:?} {no_color} {tty}: {role}"
                );
                // The none rules, so states stay distinguishable.
                assert_eq!(t.style(role), none.style(role), "{role}");
            }
        }
    }
    assert_eq!(
        resolve(None, ColorMode::Always, false, true, None).unwrap(),
        Theme::load("default", None).unwrap()
    );
    assert!(matches!(
        resolve(Some("nope"), ColorMode::Never, false, true, None),
        Err(ThemeError::UnknownTheme { .. })
    ));
}

#[test]
fn without_colour_keeps_modifiers() {
    let t = Theme::load("high-contrast", None).unwrap().without_colour();
    assert_eq!(
        t.style(Role::Selected),
        Style::default().add_modifier(Modifier::BOLD)
    );
    for role in Role::ALL {
        assert!(!has_colour(t.style(role)), "{role}");
    }
}

#[test]
fn colour_mode_is_a_cli_value() {
    use clap::ValueEnum;
    let names: Vec<String> = ColorMode::value_variants()
        .iter()
        .map(|v| v.to_possible_value().unwrap().get_name().to_string())
        .collect();
    assert_eq!(names, ["auto", "always", "never"]);
    assert_eq!(ColorMode::default(), ColorMode::Auto);
}

// ---- never panics ----

const SEED: &str = "name = \"x\"\nparent = \"default\"\n[ui]\nbase = \"red\"\ntitle = { fg = \"#102030\", bg = 17, modifiers = [\"bold\"] }\n[operation]\nfailed = { fg = \"light_red\", modifiers = [\"bold\", \"underlined\"] }\n[access]\nin_sync = \"green\"\n";

fn mutated(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..12).prop_map(move |edits| {
        let mut b = seed.as_bytes().to_vec();
        for (pos, byte, op) in edits {
            let i = if b.is_empty() { 0 } else { pos % b.len() };
            match op {
                0 if !b.is_empty() => b[i] = byte,
                1 => b.insert(i, byte),
                _ if !b.is_empty() => {
                    b.remove(i);
                }
                _ => {}
            }
        }
        b
    })
}

/// Every line of the error starts with `x.toml:LINE:COL: `.
fn assert_located(e: &ThemeError) {
    let s = e.to_string();
    for line in s.lines() {
        let rest = line
            .strip_prefix("x.toml:")
            .unwrap_or_else(|| panic!("no file: {s}"));
        let mut parts = rest.splitn(3, ':');
        let l = parts.next().unwrap_or("");
        let c = parts.next().unwrap_or("");
        assert!(
            l.parse::<usize>().is_ok_and(|n| n >= 1) && c.parse::<usize>().is_ok_and(|n| n >= 1),
            "no line:col: {s}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = Theme::parse("x.toml", &text, None) {
            assert_located(&e);
        }
    }

    #[test]
    fn mutated_themes_never_panic(bytes in mutated(SEED)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Theme::parse("x.toml", &text, None) {
            assert_located(&e);
        }
    }

    #[test]
    fn theme_shaped_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("[ui]".to_string()),
                Just("[access]".to_string()),
                Just("[operation]".to_string()),
                "\\[[a-z]{1,9}\\]",
                "[a-z_]{1,12} = \"[a-z#0-9_]{0,8}\"",
                "[a-z_]{1,12} = \\{ fg = \"[a-z#0-9]{0,7}\", modifiers = \\[\"[a-z_]{0,8}\"\\] \\}",
                "[a-z_]{1,12} = -?[0-9]{1,4}",
                "parent = \"[a-z-]{1,14}\"",
            ],
            0..10,
        )
    ) {
        let text = lines.join("\n");
        if let Err(e) = Theme::parse("x.toml", &text, None) {
            assert_located(&e);
        }
    }
}
