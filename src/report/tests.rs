//! Rendering, escaping, section splitting and verification of evidence reports.

use super::data::{
    AccessRow, AuditHead, DIFFERS, Evidence, LastRead, MATCHES, OpEvidence, SystemInfo,
};
use super::verify::{SectionState, verify};
use super::*;
use crate::store::reconcile::{Checkpoint, FindingRow, RunRow};
use proptest::prelude::*;
use serde_json::json;

const ARABIC: &str = "نور الهدى";
const CJK: &str = "山田 太郎";
const NASTY: &str = "<script>alert(\"x\")</script> & 'q', \"quoted\"\nline two";

fn evidence() -> Evidence {
    let finding = FindingRow {
        id: 7,
        run_id: 3,
        key: "excess|okta|00u1|okta:group:admins".into(),
        class: "excess".into(),
        severity: "critical".into(),
        system: "okta".into(),
        person: Some("E1".into()),
        account: Some("nour@example.com".into()),
        account_id: Some("00u1".into()),
        entitlement: Some("okta:group:admins".into()),
        detail: format!("{ARABIC} holds okta:group:admins, {NASTY}"),
        status: "enforced".into(),
        decided_by: Some("cli:auditor".into()),
        decided_at: Some("2026-01-02T03:04:05Z".into()),
        reason: Some("least privilege".into()),
        until: None,
    };
    Evidence {
        generated_at: "2026-01-02T04:00:00Z".into(),
        generated_by: "cli:tester".into(),
        run: RunRow {
            id: 3,
            started_at: "2026-01-02T03:00:00Z".into(),
            finished_at: Some("2026-01-02T03:00:02Z".into()),
            scope: None,
            status: "complete".into(),
            actor: "cli:tester".into(),
        },
        reads: vec![Checkpoint {
            system: "okta".into(),
            status: "complete".into(),
            phase: "done".into(),
            ent_index: 0,
            cursor: None,
            accounts: 2,
            memberships: 3,
            pages: 4,
            all_groups: true,
            started_at: "2026-01-02T03:00:00Z".into(),
            observed_at: Some("2026-01-02T03:00:01.500Z".into()),
            error: None,
        }],
        policy_sha256: "ab".repeat(32),
        audit_head: AuditHead {
            recorded: Some((41, "cd".repeat(32))),
            last_event: Some((41, "cd".repeat(32))),
        },
        systems: vec![SystemInfo {
            name: "okta".into(),
            kind: Some("okta".into()),
            api_version: Some("v1".into()),
            read_status: "complete".into(),
            last_full_read: Some(LastRead {
                run: 3,
                started_at: "2026-01-02T03:00:00Z".into(),
                completed_at: "2026-01-02T03:00:01.500Z".into(),
                seconds: Some(1.5),
            }),
        }],
        access: vec![
            AccessRow {
                system: "okta".into(),
                person: Some("E1".into()),
                name: Some(ARABIC.into()),
                hr_status: Some("active".into()),
                accounts: vec!["nour@example.com".into()],
                linked_by: vec!["accounts table".into()],
                intended: vec!["okta:group:everyone".into()],
                actual: vec!["okta:group:admins".into(), "okta:group:everyone".into()],
                status: DIFFERS,
                note: String::new(),
            },
            AccessRow {
                system: "okta".into(),
                person: Some("E2".into()),
                name: Some(format!("{CJK} {NASTY}\u{202E}\u{0}")),
                hr_status: Some("active".into()),
                accounts: vec!["taro@example.com".into()],
                linked_by: vec!["finding #9".into()],
                intended: vec!["okta:group:everyone".into()],
                actual: vec!["okta:group:everyone".into()],
                status: MATCHES,
                note: String::new(),
            },
        ],
        finding_ops: [(7, vec![12])].into_iter().collect(),
        findings: vec![finding],
        operations: vec![OpEvidence {
            finding: 7,
            op: 12,
            kind: Some("remove_membership".into()),
            system: Some("okta".into()),
            person: Some("E1".into()),
            entitlement: Some("okta:group:admins".into()),
            status: Some("failed".into()),
            attempt: Some(1),
            outcome: Some("failed".into()),
            http_status: Some(403),
            vendor_code: Some("E0000006".into()),
            error_class: Some("permanent".into()),
            message: Some("You do not have permission & <more>".into()),
            request: Some("DELETE /api/v1/groups/00g1/users/00u1".into()),
            ..Default::default()
        }],
    }
}

fn text(r: &Rendered) -> String {
    String::from_utf8(r.bytes()).unwrap()
}

#[test]
fn every_format_is_the_concatenation_of_the_named_sections() {
    let ev = evidence();
    for f in [Format::Html, Format::Csv, Format::Json] {
        let r = render(&ev, f);
        let names: Vec<&str> = r.sections.iter().map(|s| s.name).collect();
        assert_eq!(names, SECTIONS, "{f:?}");
        let joined: String = r.sections.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined.as_bytes(), r.bytes().as_slice());
        let d = r.digests();
        assert_eq!(d.iter().map(|s| s.bytes).sum::<u64>(), r.len());
        for (s, dg) in r.sections.iter().zip(&d) {
            assert!(!s.text.is_empty(), "{f:?} {}", s.name);
            assert_eq!(dg.sha256, hex::encode(Sha256::digest(s.text.as_bytes())));
        }
        assert_eq!(r.sha256(), hex::encode(Sha256::digest(r.bytes())));
        // Rendering is a pure function of the evidence.
        assert_eq!(render(&ev, f), r);
    }
}

#[test]
fn html_escapes_every_value_and_keeps_unicode() {
    let html = text(&render(&evidence(), Format::Html));
    assert!(!html.contains("<script>alert"), "raw markup from data");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    assert!(html.contains(ARABIC) && html.contains(CJK));
    assert!(
        html.contains("[U+202E]") && html.contains("[U+0000]"),
        "hidden characters shown"
    );
    assert!(!html.contains('\u{202E}') && !html.contains('\u{0}'));
    assert!(html.contains("You do not have permission &amp; &lt;more&gt;"));
    assert_eq!(html.matches("<script>").count(), 1, "only the sort script");
}

#[test]
fn html_is_self_contained_printable_and_sortable() {
    let html = text(&render(&evidence(), Format::Html));
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    for banned in [
        "http://", "https://", "src=", "href=", "<link", "@import", "url(",
    ] {
        assert!(!html.contains(banned), "{banned}");
    }
    assert!(html.contains("@media print"));
    assert!(html.contains("table class=\"sortable\"") && html.contains("function sortTable"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    for s in SECTIONS {
        assert!(html.contains(&format!("<section id=\"{s}\">")), "{s}");
    }
}

#[test]
fn html_escape_covers_markup_characters() {
    assert_eq!(html::esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    assert_eq!(html::esc(ARABIC), ARABIC);
    assert_eq!(html::esc("x\u{1b}"), "x<span class=\"ctl\">[U+001B]</span>");
}

#[test]
fn csv_quotes_per_rfc4180_and_round_trips() {
    let r = render(&evidence(), Format::Csv);
    let raw = text(&r);
    assert!(raw.contains("\r\n") && !raw.replace("\r\n", "").contains('\r'));
    // A field with quotes is quoted, its quotes doubled.
    assert!(raw.contains("\"\"x\"\""), "{raw}");
    let mut rd = ::csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(raw.as_bytes());
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let sections: Vec<&str> = rows
        .iter()
        .filter(|r| r[0] == "section")
        .map(|r| r[1].as_str())
        .collect();
    assert_eq!(sections, SECTIONS);
    let finding = rows.iter().find(|r| r[0] == "7").unwrap();
    assert_eq!(
        finding[7],
        format!("{ARABIC} holds okta:group:admins, {NASTY}")
    );
    assert_eq!(finding[8], "enforced");
    let person = rows
        .iter()
        .find(|r| r.get(1).is_some_and(|p| p == "E1"))
        .unwrap();
    assert_eq!(
        person[7], "okta:group:admins\nokta:group:everyone",
        "a list: one item a line"
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "audit_head_hash" && r[1] == "cd".repeat(32))
    );
}

#[test]
fn json_parses_with_stable_key_order() {
    let r = render(&evidence(), Format::Json);
    let raw = text(&r);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["header"]["run_id"], 3);
    assert_eq!(
        v["header"]["observations"][0]["observed_at"],
        "2026-01-02T03:00:01.500Z"
    );
    assert_eq!(
        v["findings"][0]["detail"],
        format!("{ARABIC} holds okta:group:admins, {NASTY}")
    );
    assert_eq!(v["operations"][0]["http_status"], 403);
    assert_eq!(v["access"][0]["not_intended"], json!(["okta:group:admins"]));
    assert_eq!(v["systems"][0]["last_full_read_seconds"], 1.5);
    // Members in the order of the sections and the columns.
    let at = |k: &str| raw.find(k).unwrap();
    assert!(at("\"header\"") < at("\"systems\"") && at("\"access\"") < at("\"findings\""));
    assert!(
        at("\"finding\":7") < at("\"class\":\"excess\"") && at("\"class\"") < at("\"disposition\"")
    );
}

#[test]
fn delay_states_the_last_full_read_and_no_schedule() {
    let ev = evidence();
    assert_eq!(
        ev.systems[0].expected_delay(),
        "until the next observation; the last full read of this system took 1.5 s and completed at 2026-01-02T03:00:01.500Z"
    );
    let t = tables::systems(&ev);
    assert!(t.rows[0].contains(&tables::Cell::text(data::PATTERN)));
    assert!(t.rows[0].contains(&tables::Cell::text(data::TRIGGER)));
    assert!(data::TRIGGER.starts_with("none (no schedule)"));
    let all = format!("{t:?}").to_lowercase();
    for claim in [
        "hourly",
        "daily",
        "every hour",
        "every day",
        "cron",
        "minutes",
    ] {
        assert!(!all.contains(claim), "no schedule claimed: {claim}");
    }
}

/// A store with the fixture's report written to a file in `dir`.
fn written(dir: &Path, f: Format) -> (Store, std::path::PathBuf, Rendered) {
    let mut store = Store::open_in_memory().unwrap();
    let r = render(&evidence(), f);
    let path = dir.join(format!("report.{}", f.as_str()));
    let w = write(&mut store, &r, Some(&path), "test").unwrap();
    assert_eq!(w.sha256, r.sha256());
    (store, path, r)
}

fn offset_of(r: &Rendered, name: &str) -> usize {
    let i = r.sections.iter().position(|s| s.name == name).unwrap();
    r.sections[..i].iter().map(|s| s.text.len()).sum()
}

#[test]
fn verify_accepts_the_untouched_file_and_names_a_changed_section() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path, r) = written(dir.path(), Format::Html);
    let v = verify(&store, &path).unwrap();
    assert!(v.ok, "{:?}", v.lines());
    assert_eq!(v.recorded.as_ref().unwrap().run, Some(3));

    let mut bytes = r.bytes();
    let at = offset_of(&r, "findings") + 40;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let v = verify(&store, &path).unwrap();
    assert!(!v.ok);
    let res = v.resembles.as_ref().unwrap();
    let states: Vec<SectionState> = res.sections.iter().map(|s| s.state).collect();
    use SectionState::*;
    assert_eq!(states, [Matches, Matches, Matches, Differs, Matches]);
    let d = res.first_difference.as_ref().unwrap();
    assert_eq!(d.section, "findings");
    assert_eq!(d.start as usize, offset_of(&r, "findings"));
    assert_eq!(d.end as usize, offset_of(&r, "operations"));
    let text = v.lines().join("\n");
    assert!(
        text.contains("no recorded report has this digest"),
        "{text}"
    );
    assert!(
        text.contains("first difference: the findings section"),
        "{text}"
    );

    // One byte inserted: the sections after it are found further on.
    let mut grown = r.bytes();
    grown.insert(offset_of(&r, "access") + 3, b'x');
    std::fs::write(&path, &grown).unwrap();
    let v = verify(&store, &path).unwrap();
    let res = v.resembles.unwrap();
    let states: Vec<SectionState> = res.sections.iter().map(|s| s.state).collect();
    assert_eq!(states, [Matches, Matches, Differs, Moved, Moved]);
    assert_eq!(res.first_difference.unwrap().section, "access");
}

#[test]
fn verify_names_a_cut_file_and_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path, r) = written(dir.path(), Format::Csv);
    let bytes = r.bytes();
    std::fs::write(&path, &bytes[..offset_of(&r, "operations") + 5]).unwrap();
    let v = verify(&store, &path).unwrap();
    let res = v.resembles.as_ref().unwrap();
    assert_eq!(res.sections[4].state, SectionState::Missing);
    assert_eq!(res.first_difference.as_ref().unwrap().section, "operations");
    let text = v.lines().join("\n");
    assert!(
        text.contains("the file ends inside the operations section"),
        "{text}"
    );
    std::fs::write(&path, b"").unwrap();
    let v = verify(&store, &path).unwrap();
    assert!(!v.ok);
    assert!(
        v.lines()[0].contains("the file is empty"),
        "{:?}",
        v.lines()
    );
}

#[test]
fn verify_fails_on_a_broken_chain_even_for_a_recorded_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path, _) = written(dir.path(), Format::Json);
    store
        .conn()
        .execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit_events SET actor = 'forged' WHERE seq = 1;",
        )
        .unwrap();
    let v = verify(&store, &path).unwrap();
    assert!(v.recorded.is_some());
    assert!(!v.ok);
    let text = v.lines().join("\n");
    assert!(
        text.contains("audit chain BROKEN: first bad event #1"),
        "{text}"
    );
}

#[test]
fn verify_refuses_what_is_not_a_file_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_memory().unwrap();
    let e = verify(&store, dir.path()).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let e = verify(&store, &dir.path().join("nope.html")).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("nope.html"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the file holds and whatever the log claims, verify answers without
    /// panicking, and never calls arbitrary bytes verified.
    #[test]
    fn verify_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        lens in proptest::collection::vec(any::<u64>(), 0..6),
        small in proptest::collection::vec(0u64..400, 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, path, r) = written(dir.path(), Format::Html);
        let mut claims: Vec<serde_json::Value> = Vec::new();
        for (i, n) in lens.iter().chain(&small).enumerate() {
            claims.push(json!({"name": format!("s{i}"), "bytes": n, "sha256": "00"}));
        }
        store.write(|tx| tx.audit(crate::store::NewAuditEvent {
            actor: "fuzz",
            action: ACTION,
            subject: "run:1",
            details: json!({"sha256": "ff", "format": "html", "bytes": u64::MAX, "sections": claims}),
        })).unwrap();
        store.write(|tx| tx.audit(crate::store::NewAuditEvent {
            actor: "fuzz", action: ACTION, subject: "run:1", details: json!({"sections": 5}),
        })).unwrap();
        let mut file = bytes.clone();
        if bytes.first().is_some_and(|b| b % 2 == 0) {
            // Sometimes a real report's prefix, so section walks go deep.
            let mut real = r.bytes();
            real.truncate(real.len().min(bytes.len() * 7));
            real.extend_from_slice(&bytes);
            file = real;
        }
        std::fs::write(&path, &file).unwrap();
        let v = verify(&store, &path).unwrap();
        prop_assert!(!v.ok);
        prop_assert!(!v.lines().is_empty());
    }
}

#[test]
fn verify_says_when_nothing_resembles_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path, _) = written(dir.path(), Format::Html);
    std::fs::write(&path, [0u8, 159, 146, 150]).unwrap();
    let v = verify(&store, &path).unwrap();
    assert!(v.resembles.is_none());
    let text = v.lines().join("\n");
    assert!(text.contains("it resembles none of them"), "{text}");
    let empty = Store::open_in_memory().unwrap();
    let text = verify(&empty, &path).unwrap().lines().join("\n");
    assert!(
        text.contains("no report was ever written in this home"),
        "{text}"
    );
}

#[test]
fn verify_streams_a_large_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path, _) = written(dir.path(), Format::Json);
    // 64 MiB, sparse: hashed as a stream, never read whole into memory.
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let v = verify(&store, &big).unwrap();
    assert!(!v.ok);
    assert_eq!(v.file.bytes, 64 << 20);
    assert!(verify(&store, &path).unwrap().ok);
}
