//! The payloads pushed to `POST /webhooks/{source}`, per kind, read into what each asks
//! for. Parsing is total: any body gives events or a [`BadPayload`] naming what is wrong
//! and where (a JSON path), never a panic (`tests/source_payloads.rs` fuzzes it).
//!
//! - `webhook`: `{"type": "person.upserted" | "person.terminated", "data": {...}}`; `data`
//!   is one HR record in the source's format (its mapping reads it as `record`).
//! - `bamboohr`: `{"employees": [{"id": "123", "action": "Created" | "Updated" |
//!   "Deleted", "fields": {...}, ...}]}`: each employee's fields (with its `id`) laid over
//!   the person the store knows; `Deleted` terminates.
//! - `okta_events`: `{"data": {"events": [{"uuid", "eventType": "user.lifecycle...",
//!   "target": [{"type": "User", "id", "alternateId"}]}]}}`: each user event asks for a
//!   look at that user's account.
//! - `github_events`: `organization` (member_added / member_removed / member_invited) and
//!   `membership` (team added / removed) events: a look at that member.
//! - `slack_events`: `event_callback` with `member_joined_channel` / `member_left_channel`
//!   / `team_join` / `user_change`: a look at that user; `url_verification` is answered
//!   at once with its challenge.

use super::config::SourceKind;
use super::ingest::Intent;
use serde_json::Value;

/// What one pushed payload asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An HR record to apply.
    Record {
        intent: Intent,
        record: Value,
        /// How errors name it: `data`, `employees[2] (id 123)`.
        record_ref: String,
    },
    /// A change made in a target system: look at this account now (its id or login in
    /// that system, as the event names it).
    Observe { account: String, why: String },
    /// A handshake answered at once (Slack's url_verification): the challenge.
    Challenge(String),
    /// Something the source sends that asks for nothing (a ping, an event type we do not
    /// act on): why it is ignored.
    Ignored(String),
}

/// Why a payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPayload {
    /// Where in the body (`$`, `$.data`, `$.employees[2].id`).
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for BadPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

fn bad(at: impl Into<String>, message: impl Into<String>) -> BadPayload {
    BadPayload {
        at: at.into(),
        message: message.into(),
    }
}

/// A string or number as text (vendors send ids either way).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Read a payload of `kind`. `event_header` is the vendor's event-type header where it
/// sends one (GitHub's `X-GitHub-Event`).
pub fn parse(
    kind: SourceKind,
    body: &[u8],
    event_header: Option<&str>,
) -> Result<Vec<Event>, BadPayload> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            "$",
            format!("not JSON: {e} (line {}, column {})", e.line(), e.column()),
        )
    })?;
    if !v.is_object() {
        return Err(bad("$", "the body is not a JSON object"));
    }
    match kind {
        SourceKind::Webhook => standard(&v),
        SourceKind::BambooHr => bamboohr(&v),
        SourceKind::OktaEvents => okta(&v),
        SourceKind::GitHubEvents => github(&v, event_header),
        SourceKind::SlackEvents => slack(&v),
        SourceKind::Workday => Err(bad("$", "a workday source is polled; it takes no webhooks")),
    }
}

fn standard(v: &Value) -> Result<Vec<Event>, BadPayload> {
    let t = v.get("type").and_then(Value::as_str).ok_or_else(|| {
        bad(
            "$.type",
            "missing; expected \"person.upserted\" or \"person.terminated\"",
        )
    })?;
    let intent = match t {
        "person.upserted" => Intent::Upsert,
        "person.terminated" => Intent::Terminate,
        other => {
            return Err(bad(
                "$.type",
                format!(
                    "{other:?} is not an event type; expected \"person.upserted\" or \"person.terminated\""
                ),
            ));
        }
    };
    let data = v.get("data").ok_or_else(|| bad("$.data", "missing"))?;
    if !data.is_object() {
        return Err(bad("$.data", "not a JSON object"));
    }
    Ok(vec![Event::Record {
        intent,
        record: data.clone(),
        record_ref: "data".into(),
    }])
}

fn bamboohr(v: &Value) -> Result<Vec<Event>, BadPayload> {
    let list = v
        .get("employees")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("$.employees", "missing or not a list"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let at = format!("$.employees[{i}]");
        let id = e
            .get("id")
            .and_then(text)
            .ok_or_else(|| bad(format!("{at}.id"), "missing"))?;
        let action = e.get("action").and_then(Value::as_str).unwrap_or("Updated");
        let mut record = match e.get("fields") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            // BambooHR sends an empty list for no fields.
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(Value::Array(a)) if a.is_empty() => Value::Object(Default::default()),
            Some(_) => return Err(bad(format!("{at}.fields"), "not a JSON object")),
        };
        if record.as_object().is_some_and(|m| m.is_empty()) && action != "Deleted" {
            // A Created (or Updated) notice without fields names nobody accessdesk knows:
            // the next poll reads the employee whole.
            out.push(Event::Ignored(format!(
                "employees[{i}] (id {id}): {action} with no fields; the next poll reads it"
            )));
            continue;
        }
        record["id"] = Value::String(id.clone());
        let intent = match action {
            "Deleted" => Intent::Terminate,
            "Created" | "Inserted" | "Updated" => Intent::Patch,
            other => {
                return Err(bad(
                    format!("{at}.action"),
                    format!("{other:?} is not Created, Updated or Deleted"),
                ));
            }
        };
        out.push(Event::Record {
            intent,
            record,
            record_ref: format!("employees[{i}] (id {id})"),
        });
    }
    Ok(out)
}

fn okta(v: &Value) -> Result<Vec<Event>, BadPayload> {
    let events = v
        .pointer("/data/events")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("$.data.events", "missing or not a list"))?;
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let t = e.get("eventType").and_then(Value::as_str).unwrap_or("");
        let user = e
            .get("target")
            .and_then(Value::as_array)
            .and_then(|ts| {
                ts.iter()
                    .find(|t| t.get("type").and_then(Value::as_str) == Some("User"))
            })
            .and_then(|t| t.get("id").and_then(text));
        match user {
            Some(id) if t.starts_with("user.") || t.starts_with("group.user_membership.") => out
                .push(Event::Observe {
                    account: id,
                    why: t.to_string(),
                }),
            _ => out.push(Event::Ignored(format!(
                "$.data.events[{i}]: {t:?} names no user"
            ))),
        }
    }
    Ok(out)
}

fn github(v: &Value, event: Option<&str>) -> Result<Vec<Event>, BadPayload> {
    let action = v.get("action").and_then(Value::as_str).unwrap_or("");
    let login = |path: &str| v.pointer(path).and_then(text);
    let (who, why) = match event.unwrap_or("") {
        "ping" => return Ok(vec![Event::Ignored("ping".into())]),
        "organization" => (
            login("/membership/user/login").or_else(|| login("/invitation/login")),
            format!("organization.{action}"),
        ),
        "membership" => (login("/member/login"), format!("membership.{action}")),
        "member" => (login("/member/login"), format!("member.{action}")),
        other => {
            return Ok(vec![Event::Ignored(format!(
                "GitHub event {other:?} is not a membership change"
            ))]);
        }
    };
    match who {
        Some(account) => Ok(vec![Event::Observe { account, why }]),
        None => Err(bad("$", format!("{why}: no member login in the event"))),
    }
}

fn slack(v: &Value) -> Result<Vec<Event>, BadPayload> {
    match v.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let c = v
                .get("challenge")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("$.challenge", "missing"))?;
            Ok(vec![Event::Challenge(c.to_string())])
        }
        Some("event_callback") => {
            let e = v.get("event").ok_or_else(|| bad("$.event", "missing"))?;
            let t = e.get("type").and_then(Value::as_str).unwrap_or("");
            let user = match e.get("user") {
                Some(Value::Object(u)) => u.get("id").and_then(text),
                Some(u) => text(u),
                None => None,
            };
            match (t, user) {
                (
                    "member_joined_channel" | "member_left_channel" | "team_join" | "user_change",
                    Some(account),
                ) => Ok(vec![Event::Observe {
                    account,
                    why: t.to_string(),
                }]),
                (
                    "member_joined_channel" | "member_left_channel" | "team_join" | "user_change",
                    None,
                ) => Err(bad("$.event.user", format!("{t}: missing"))),
                _ => Ok(vec![Event::Ignored(format!(
                    "Slack event {t:?} is not a membership change"
                ))]),
            }
        }
        Some(other) => Ok(vec![Event::Ignored(format!("Slack {other:?}"))]),
        None => Err(bad("$.type", "missing")),
    }
}

/// The delivery id a payload carries when its headers carry none (Slack's `event_id`;
/// Okta's first event `uuid`).
pub fn body_delivery_id(kind: SourceKind, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match kind {
        SourceKind::SlackEvents => v.get("event_id").and_then(text),
        SourceKind::OktaEvents => v.pointer("/data/events/0/uuid").and_then(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(kind: SourceKind, v: Value) -> Result<Vec<Event>, BadPayload> {
        parse(kind, v.to_string().as_bytes(), None)
    }

    #[test]
    fn standard_webhook_events() {
        let e = p(
            SourceKind::Webhook,
            json!({"type": "person.terminated", "data": {"employee_id": "E1"}}),
        )
        .unwrap();
        assert!(matches!(
            &e[0],
            Event::Record {
                intent: Intent::Terminate,
                ..
            }
        ));
        let e = p(
            SourceKind::Webhook,
            json!({"type": "person.moved", "data": {}}),
        )
        .unwrap_err();
        assert_eq!(e.at, "$.type");
        let e = p(
            SourceKind::Webhook,
            json!({"type": "person.upserted", "data": 3}),
        )
        .unwrap_err();
        assert_eq!(e.at, "$.data");
        let e = parse(SourceKind::Webhook, b"{\"type\":", None).unwrap_err();
        assert!(e.message.contains("not JSON"), "{e}");
    }

    #[test]
    fn bamboohr_employees_each_become_a_record() {
        let e = p(
            SourceKind::BambooHr,
            json!({"employees": [
                {"id": "7", "action": "Updated", "fields": {"department": "Finance"}},
                {"id": 8, "action": "Deleted"}
            ]}),
        )
        .unwrap();
        let Event::Record {
            intent,
            record,
            record_ref,
        } = &e[0]
        else {
            panic!()
        };
        assert_eq!((*intent, record["id"].as_str()), (Intent::Patch, Some("7")));
        assert_eq!(record["department"], "Finance");
        assert_eq!(record_ref, "employees[0] (id 7)");
        assert!(matches!(
            &e[1],
            Event::Record {
                intent: Intent::Terminate,
                ..
            }
        ));
        let e = p(
            SourceKind::BambooHr,
            json!({"employees": [{"id": "9", "action": "Created", "fields": []}]}),
        )
        .unwrap();
        assert!(
            matches!(&e[0], Event::Ignored(why) if why.contains("next poll")),
            "{e:?}"
        );
        let e = p(
            SourceKind::BambooHr,
            json!({"employees": [{"action": "Updated"}]}),
        )
        .unwrap_err();
        assert_eq!(e.at, "$.employees[0].id");
    }

    #[test]
    fn vendor_events_ask_for_a_look_at_the_account() {
        let okta = json!({"data": {"events": [
            {"uuid": "u1", "eventType": "user.lifecycle.deactivate",
             "target": [{"type": "User", "id": "00u1", "alternateId": "ada@x.io"}]},
            {"uuid": "u2", "eventType": "system.log.something", "target": []}
        ]}});
        let e = p(SourceKind::OktaEvents, okta.clone()).unwrap();
        assert_eq!(
            e[0],
            Event::Observe {
                account: "00u1".into(),
                why: "user.lifecycle.deactivate".into()
            }
        );
        assert!(matches!(e[1], Event::Ignored(_)));
        assert_eq!(
            body_delivery_id(SourceKind::OktaEvents, okta.to_string().as_bytes()).as_deref(),
            Some("u1")
        );
        let gh = json!({"action": "member_added", "membership": {"user": {"login": "ada-l"}}});
        let e = parse(
            SourceKind::GitHubEvents,
            gh.to_string().as_bytes(),
            Some("organization"),
        )
        .unwrap();
        assert_eq!(
            e[0],
            Event::Observe {
                account: "ada-l".into(),
                why: "organization.member_added".into()
            }
        );
        let slack = json!({"type": "event_callback", "event_id": "Ev1",
            "event": {"type": "member_left_channel", "user": "U1", "channel": "C1"}});
        let e = p(SourceKind::SlackEvents, slack).unwrap();
        assert!(matches!(&e[0], Event::Observe { account, .. } if account == "U1"));
        let e = p(
            SourceKind::SlackEvents,
            json!({"type": "url_verification", "challenge": "abc"}),
        )
        .unwrap();
        assert_eq!(e, vec![Event::Challenge("abc".into())]);
    }
}
