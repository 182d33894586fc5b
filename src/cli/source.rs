//! `accessdesk source list|test|preview|poll`: the HR sources of sources.toml.

use super::Ctx;
use super::SourceCmd;
use crate::serve::webhooks::SourceSet;
use crate::sources::config::{Source, SourcesConfig};
use crate::sources::ingest::{self, Context, Intent};
use crate::{Error, Result};
use serde_json::{Value, json};

pub fn run(ctx: &Ctx, cmd: SourceCmd) -> Result<i32> {
    match cmd {
        SourceCmd::List => list(ctx).map(|_| 0),
        SourceCmd::Test { name } => test(ctx, &name),
        SourceCmd::Preview { name, file, limit } => preview(ctx, &name, file.as_deref(), limit),
        SourceCmd::Poll {
            name,
            approve_mass_change,
            reason,
        } => poll(ctx, &name, approve_mass_change, reason.as_deref()),
    }
}

/// sources.toml with only `name` in it, its secrets resolved from the keychain.
fn load(ctx: &Ctx, name: &str) -> Result<SourceSet> {
    let mut cfg = SourcesConfig::load(&ctx.home.sources_path())?;
    let known: Vec<String> = cfg.sources.keys().cloned().collect();
    let Some(s) = cfg.sources.remove(name) else {
        return Err(Error::usage(
            format!(
                "no source {name:?} in {}",
                ctx.home.sources_path().display()
            ),
            if known.is_empty() {
                "add a [sources.NAME] table (see the README's sources.toml section)".to_string()
            } else {
                format!("known sources: {}", known.join(", "))
            },
        ));
    };
    cfg.sources.clear();
    cfg.sources.insert(name.to_string(), s);
    let keychain = crate::secrets::Keychain::from_env()?;
    Ok(SourceSet::new(cfg, &|c| keychain.resolve(c)))
}

fn source<'a>(set: &'a SourceSet, name: &str) -> Result<&'a Source> {
    set.get(name)
        .ok_or_else(|| Error::Failed(format!("source {name} vanished")))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
}

fn test(ctx: &Ctx, name: &str) -> Result<i32> {
    let set = load(ctx, name)?;
    let s = source(&set, name)?;
    let mut lines = vec![format!(
        "{name}: {} source; mapping compiles ({} fields)",
        s.kind.as_str(),
        s.mapping.fields().len()
    )];
    let mut ok = true;
    if let Some(c) = s.signing_secret() {
        match set.signing(name) {
            Ok(_) => lines.push(format!(
                "signing secret from {c} is set; deliveries go to POST /webhooks/{name}"
            )),
            Err(e) => {
                ok = false;
                lines.push(format!("signing secret: {e}"));
            }
        }
    }
    if s.kind.polled() {
        match set.api_key(name) {
            Err(e) => {
                ok = false;
                lines.push(format!("API credential: {e}"));
            }
            Ok(key) => {
                let feed = crate::serve::pollers::feed_for(s, key.clone())?;
                match runtime()?.block_on(feed.test()) {
                    Ok(msg) => lines.push(msg),
                    Err(e) => {
                        ok = false;
                        lines.push(format!("connection: {e}"));
                    }
                }
            }
        }
    }
    if ctx.json {
        ctx.print_json(&json!({"source": name, "ok": ok, "checks": lines}))?;
    } else {
        for l in &lines {
            println!("{l}");
        }
    }
    Ok(if ok { 0 } else { 1 })
}

fn preview(ctx: &Ctx, name: &str, file: Option<&std::path::Path>, limit: usize) -> Result<i32> {
    let set = load(ctx, name)?;
    let s = source(&set, name)?;
    let records: Vec<(String, Value, bool)> = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Error::usage(
                    format!(
                        "{}:{}:{}: not JSON: {e}",
                        path.display(),
                        e.line(),
                        e.column()
                    ),
                    "give a JSON object (one record) or an array of records",
                )
            })?;
            let list = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            list.into_iter()
                .enumerate()
                .map(|(i, r)| (format!("{}[{i}]", path.display()), r, false))
                .collect()
        }
        None if s.kind.polled() => {
            let key = set.api_key(name).map_err(Error::Failed)?.clone();
            let feed = crate::serve::pollers::feed_for(s, key)?;
            let page = runtime()?
                .block_on(feed.sample(limit))
                .map_err(|e| Error::Failed(e.to_string()))?;
            page.records
                .into_iter()
                .map(|r| (format!("record {}", r.id), r.record, r.deleted))
                .collect()
        }
        None => {
            return Err(Error::usage(
                format!(
                    "{name} is a {} source: it is pushed, not read",
                    s.kind.as_str()
                ),
                "give sample records with --file records.json",
            ));
        }
    };
    let store = ctx.store()?;
    let today = chrono::Utc::now().date_naive();
    let mut out = Vec::new();
    let mut bad = 0;
    for (r, record, deleted) in records.into_iter().take(limit) {
        let intent = if deleted {
            Intent::Terminate
        } else {
            Intent::Upsert
        };
        match ingest::to_person(s, &record, &r, intent, &store, today) {
            Ok(p) => {
                let old = store.find_person(&p.hris_id)?;
                let change = ingest::Change::of(old.as_ref(), &p, chrono::Utc::now());
                out.push(json!({"record": r, "change": change.as_str(),
                                "person": ingest::person_fields(&p)}));
            }
            Err(e) => {
                bad += 1;
                out.push(json!({"record": r, "refused": e.to_json()}));
            }
        }
    }
    if ctx.json {
        ctx.print_json(&out)?;
    } else {
        for o in &out {
            match o.get("person") {
                Some(p) => {
                    let name = format!(
                        "{} {}",
                        p["first_name"].as_str().unwrap_or(""),
                        p["last_name"].as_str().unwrap_or("")
                    );
                    println!(
                        "{:<24} {:<10} {:<12} {:<28} {:<28} {}",
                        o["record"].as_str().unwrap_or(""),
                        o["change"].as_str().unwrap_or(""),
                        p["employee_id"].as_str().unwrap_or(""),
                        crate::text::cut(name.trim(), 28),
                        p["email"].as_str().unwrap_or(""),
                        p["status"].as_str().unwrap_or("")
                    );
                }
                None => println!(
                    "{:<24} refused: {}",
                    o["record"].as_str().unwrap_or(""),
                    o["refused"]
                ),
            }
        }
        println!("(nothing was applied)");
    }
    Ok(if bad > 0 { 3 } else { 0 })
}

fn poll(ctx: &Ctx, name: &str, approve: bool, reason: Option<&str>) -> Result<i32> {
    let set = load(ctx, name)?;
    let s = source(&set, name)?;
    if !s.kind.polled() {
        return Err(Error::usage(
            format!(
                "{name} is a {} source: it is pushed, not polled",
                s.kind.as_str()
            ),
            "",
        ));
    }
    let approval = match (approve, reason.map(str::trim).filter(|r| !r.is_empty())) {
        (true, Some(r)) => Some(r.to_string()),
        (true, None) => {
            return Err(Error::usage(
                "--approve-mass-change needs --reason",
                "say why, e.g. --reason \"the Berlin office closed\"",
            ));
        }
        (false, _) => None,
    };
    let systems = ctx.systems()?;
    let policies = ctx.policies(&systems)?;
    let key = set.api_key(name).map_err(Error::Failed)?.clone();
    let feed = crate::serve::pollers::feed_for(s, key)?;
    let store = std::sync::Mutex::new(ctx.store()?);
    let actor = format!("source:{name}");
    let c = Context {
        catalog: &systems.catalog,
        policies: &policies,
        guard: &systems.guard,
        actor: &actor,
    };
    let report = runtime()?.block_on(crate::sources::poll::poll_once(
        feed.as_ref(),
        &store,
        &c,
        s,
        approval.as_deref(),
    ))?;
    if ctx.json {
        ctx.print_json(&report)?;
    } else if let Some(h) = &report.held {
        println!("held, nothing applied: {h}");
    } else {
        println!(
            "{name}: read {}, unchanged {}, applied {}, refused {}",
            report.read,
            report.unchanged,
            report.applied.len(),
            report.refused.len()
        );
        for r in &report.refused {
            println!("  refused: {r}");
        }
    }
    Ok(if report.held.is_some() { 3 } else { 0 })
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let cfg = crate::sources::config::SourcesConfig::load(&ctx.home.sources_path())?;
    if ctx.json {
        let rows: Vec<_> = cfg
            .sources
            .values()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "kind": s.kind.as_str(),
                    "credential": s.credential.to_string(),
                    "base_url": s.base_url,
                    "poll_every_secs": s.poll_every.map(|d| d.as_secs()),
                    "webhook": s.kind.scheme().map(|_| format!("/webhooks/{}", s.name)),
                    "line": s.line,
                })
            })
            .collect();
        return ctx.print_json(&rows);
    }
    if cfg.sources.is_empty() {
        println!(
            "no sources: {} does not exist or names none",
            ctx.home.sources_path().display()
        );
        return Ok(());
    }
    for s in cfg.sources.values() {
        let every = crate::text::duration_short(
            s.poll_every.unwrap_or(crate::serve::pollers::DEFAULT_EVERY),
        );
        let intake = match (s.kind.scheme().is_some(), s.kind.polled()) {
            (true, true) => format!("POST /webhooks/{} and polled every {every}", s.name),
            (true, false) => format!("POST /webhooks/{}", s.name),
            (false, _) => format!("polled every {every}"),
        };
        println!(
            "{:<16} {:<14} {:<28} {intake}",
            s.name,
            s.kind.as_str(),
            s.credential.to_string()
        );
    }
    Ok(())
}
