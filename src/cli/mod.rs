//! The command line: clap definitions and dispatch. Each subcommand is a thin call into the
//! library; handlers live one file per command group.

pub mod account;
pub mod audit;
pub mod bench;
pub mod console;
pub mod demo;
pub mod engine;
pub mod init;
pub mod people;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod secret;
pub mod serve;
pub mod source;

/// Logging moved to [`crate::logging`] (the console uses it too); kept here for callers.
pub use crate::logging;

use crate::config::{Home, SystemsConfig};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::{Error, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "accessdesk",
    version,
    about = "Policy-based access provisioning: engine and terminal console"
)]
pub struct Cli {
    /// Home directory holding systems.toml, policies.toml and accessdesk.db.
    #[arg(long, global = true, env = "ACCESSDESK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log verbosity on stderr (repeat for more). ACCESSDESK_LOG overrides (e.g. "debug").
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Also write logs to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter systems.toml and policies.toml and create the database.
    Init {
        /// Overwrite existing configuration files.
        #[arg(long)]
        force: bool,
    },
    /// People from HR.
    #[command(subcommand)]
    People(PeopleCmd),
    /// Check, explain and test the access policies.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Credentials in the OS keychain.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Configured target systems.
    #[command(subcommand)]
    System(SystemCmd),
    /// Which account in a system is whose: link, unlink, identity conflicts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Run a benchmark and print its figures.
    Bench(BenchArgs),
    /// Show what would change: intended access against actual access, as a stored plan.
    Plan {
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
        /// Only this person (HRIS id or email).
        #[arg(long)]
        person: Option<String>,
        /// List every operation, not just the first 50.
        #[arg(long)]
        all: bool,
    },
    /// Apply exactly a stored plan, then run the queue until it settles.
    Apply {
        plan: String,
        /// Apply a plan the mass-change guard held (needs --reason).
        #[arg(long)]
        approve_mass_change: bool,
        #[arg(long)]
        reason: Option<String>,
        /// Only enqueue; do not run the workers.
        #[arg(long)]
        no_run: bool,
    },
    /// Run the queue until nothing is runnable (after a crash, or to drain retries).
    Run,
    /// Read every account and membership of each system (paginated, within its rate
    /// limit), store the run, and correlate and classify it. An interrupted run resumes.
    Observe {
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
        /// Start a new run instead of resuming an unfinished one.
        #[arg(long)]
        fresh: bool,
    },
    /// Observe, correlate and classify in one step, for scripts. Exit 0: no findings;
    /// 3: findings; 1: failure or a system not read in full.
    Reconcile {
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
        /// Start a new run instead of resuming an unfinished one.
        #[arg(long)]
        fresh: bool,
    },
    /// Reconciliation findings: list, and remediate (enforce, accept, ignore).
    #[command(subcommand)]
    Findings(FindingsCmd),
    /// Audit-evidence reports of reconciliation runs, and their verification.
    #[command(subcommand)]
    Report(report::ReportCmd),
    /// The provisioning queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Grants waiting for an approver.
    #[command(subcommand)]
    Approvals(ApprovalsCmd),
    /// Open the terminal console (the default when no command is given).
    Console(console::ConsoleArgs),
    /// Run the whole product against embedded simulators: a seeded company of 500 people,
    /// an onboarding wave with 429 bursts, transient errors, a flaky system, approvals,
    /// failures to triage and a leaver. Uses a temporary home; nothing else is needed.
    Demo(DemoArgs),
    /// The headless daemon: the engine's workers and an HTTP listener (/healthz, /metrics)
    /// on this home, with JSON logs, until SIGTERM. The console may run beside it.
    Serve(serve::ServeArgs),
    /// HR sources configured in sources.toml.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// No console: run the scenario, print progress and a summary (for scripts and CI).
    #[arg(long)]
    pub headless: bool,
    /// How long to run headless, e.g. 30s, 2m (default: 2m, the whole scenario).
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::demo::parse_duration)]
    pub run_for: Option<std::time::Duration>,
    /// Seed for the situations: storm times, outages, the leaver, the injected faults.
    #[arg(long, default_value_t = crate::demo::DEFAULT_SEED)]
    pub seed: u64,
    /// Keep the temporary home (database, audit log, configuration) afterwards.
    #[arg(long)]
    pub keep_home: bool,
    /// How the console looks and behaves.
    #[command(flatten)]
    pub console: console::ConsoleArgs,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCmd {
    /// Upsert people from an HR CSV export (header row required).
    Import {
        file: PathBuf,
        /// A TOML file with an [import.columns] table overriding systems.toml's mapping.
        #[arg(long, value_name = "FILE")]
        mapping: Option<PathBuf>,
        /// Validate and report what would change without writing.
        #[arg(long)]
        dry_run: bool,
        /// Go ahead with a feed the mass-change guard held (needs --reason).
        #[arg(long)]
        approve_mass_change: bool,
        /// Let this leaver (HRIS id or e-mail) come back although the record has no new
        /// start date after their end date (needs --reason). Repeat for several.
        #[arg(long, value_name = "PERSON")]
        approve_rehire: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
        /// The file is the whole population: people missing from it become leavers
        /// (through the mass-change guard). Without it, import only adds and updates.
        #[arg(long)]
        snapshot: bool,
        /// Import an export older than the last one imported (needs --reason).
        #[arg(long)]
        force_older: bool,
    },
    /// List people.
    List {
        /// Only people whose id, name, email or department contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// How many to show (text output; --json lists every match).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Show every match.
        #[arg(long)]
        all: bool,
    },
    /// Show one person (HRIS id or email).
    Show { person: String },
}

#[derive(Debug, Subcommand)]
pub enum FindingsCmd {
    /// Findings of a run (default: the newest), leavers first, then by severity.
    List {
        #[arg(long)]
        run: Option<i64>,
        /// Only this class (missing, excess, orphan, leaver_with_access, attribute_drift,
        /// unmanaged, ambiguous).
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        system: Option<String>,
        /// Only findings still open.
        #[arg(long)]
        open: bool,
        /// Show every finding (text output shows 50).
        #[arg(long)]
        all: bool,
    },
    /// Queue the operations that remove the drift, through the engine and its guards.
    Enforce {
        #[command(flatten)]
        target: FindingsTarget,
    },
    /// Accept as an exception until a date; the finding returns when it expires.
    Accept {
        #[command(flatten)]
        target: FindingsTarget,
        /// Why this access is allowed (required).
        #[arg(long)]
        reason: Option<String>,
        /// When the exception expires: YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        until: String,
    },
    /// Close the finding this once; a later run reports it again if it is still there.
    Ignore {
        #[command(flatten)]
        target: FindingsTarget,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Which findings `findings enforce|accept|ignore` act on.
#[derive(Debug, Args)]
pub struct FindingsTarget {
    /// One finding; or use --class (and --system) for a group of the newest run.
    pub id: Option<i64>,
    #[arg(long)]
    pub class: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long)]
    pub run: Option<i64>,
    /// Do not ask before acting on several findings.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// Operations by status (default: everything not yet succeeded).
    List {
        #[arg(long)]
        status: Vec<String>,
        /// How many to show (text output; --json lists every match).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Show every match.
        #[arg(long)]
        all: bool,
    },
    /// One operation with its attempts and dependencies.
    Show { id: i64 },
    /// Failed operations grouped by root cause (system + error class + vendor code).
    Failures,
    /// Retry an operation, or every failed one sharing a root cause (--group KEY).
    Retry(ActArgs),
    /// Give up on an operation (what depends on it stays blocked).
    Skip(ActArgs),
    /// Cancel an operation and everything that depends on it.
    Cancel(ActArgs),
}

#[derive(Debug, Args)]
pub struct ActArgs {
    pub id: Option<i64>,
    /// A root-cause key from `queue failures`.
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCmd {
    /// Pending approvals; with --rejected, rejected grants that still stick.
    List {
        #[arg(long)]
        rejected: bool,
    },
    /// Let a rejected grant be requested again at the next plan.
    Reopen {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    Approve {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Validate policies.toml against systems.toml.
    Check,
    /// List every entitlement a person should have and why, and which rules did not match.
    Explain {
        /// HRIS id or work email.
        person: String,
    },
    /// Evaluate the rules against fixture people and diff against a golden file.
    Test {
        #[arg(long, value_name = "FILE.csv")]
        people: PathBuf,
        #[arg(long, value_name = "GOLDEN.json")]
        expect: PathBuf,
        /// Write the current result to the golden file instead of comparing.
        #[arg(long)]
        update: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain; exit 1 naming the first bad event.
    Verify,
    /// Export events in a time range.
    Export {
        /// Start (RFC 3339 or YYYY-MM-DD), inclusive.
        #[arg(long)]
        since: Option<String>,
        /// End (RFC 3339 or YYYY-MM-DD), exclusive.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Store a secret: read from a no-echo prompt, or from stdin when it is not a terminal.
    Set { name: String },
    /// Show whether a secret is set; --reveal prints its value.
    Get {
        name: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Remove a secret.
    Rm { name: String },
    /// List secret names and when they were set (never values).
    List,
}

#[derive(Debug, Subcommand)]
pub enum SourceCmd {
    /// List the sources in sources.toml: kind, credential reference, polling, mapping.
    List,
    /// Test a source: its secrets resolve, its mapping compiles, and (polled sources) its
    /// API accepts the credential.
    Test { name: String },
    /// Show mapped people for a sample of records without applying anything: a polled
    /// source's own records, or a file of records (a JSON object or array; a webhook
    /// source's `data`).
    Preview {
        name: String,
        /// Records to map instead of reading the source.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// How many records to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Poll a polled source once now (as serve does), applying the changes. With
    /// --approve-mass-change and --reason, a poll the mass-change guard holds goes ahead.
    Poll {
        name: String,
        #[arg(long)]
        approve_mass_change: bool,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// List configured systems with their dependencies and credential references.
    List,
    /// Authenticate against one system and print who we are and the scopes granted.
    Test { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Link an existing account (login or vendor id) to a person. Refuses an account that
    /// carries another person's HR id unless --force --reason is given.
    Link {
        system: String,
        account: String,
        /// HRIS id or work e-mail.
        person: String,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Detach an account from its person (it stays in the system, and its login reserved).
    Unlink {
        system: String,
        account: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Accounts that were not attached to anyone because the target did not prove whose
    /// they are.
    Conflicts {
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// policy | store | limiter | plan | wave | leaver | console | engine | reconcile |
    /// observe | observe-memory | webhooks | leaver-e2e | proxy
    pub name: String,
    /// Scale: number of people (defaults to the target size); for the limiter
    /// bench, N requests per window; for observe, Okta accounts (memberships are 4 ×).
    #[arg(long)]
    pub people: Option<usize>,
    /// Number of rules (policy bench).
    #[arg(long)]
    pub rules: Option<usize>,
    /// Engine bench: people in the company-scale enqueue (default 100,000; 0 skips it).
    #[arg(long)]
    pub company: Option<usize>,
    /// Limiter bench: window length in seconds (default 5) and number of windows (default 6).
    #[arg(long)]
    pub window_secs: Option<u64>,
    #[arg(long)]
    pub windows: Option<u64>,
    /// Runs to take the median over.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// What every handler gets: where the home is and how to print.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub home: Home,
    pub json: bool,
}

impl Ctx {
    pub fn systems(&self) -> Result<SystemsConfig> {
        self.home.require_initialised()?;
        SystemsConfig::load(&self.home.systems_path())
    }

    pub fn policies(&self, systems: &SystemsConfig) -> Result<PolicySet> {
        PolicySet::load(&self.home.policies_path(), systems)
    }

    pub fn store(&self) -> Result<Store> {
        self.home.require_initialised()?;
        Store::open(&self.home.db_path())
    }

    /// Print a value as pretty JSON.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> Result<()> {
        let s = serde_json::to_string_pretty(value)
            .map_err(|e| Error::Failed(format!("encoding JSON output: {e}")))?;
        println!("{s}");
        Ok(())
    }
}

const NO_COMMAND_HELP: &str = "\
accessdesk: this home has no configuration yet, so there is nothing for the console to show.
  accessdesk demo                      try the console on built-in simulators (no set-up)
  accessdesk init                      write starter systems.toml and policies.toml
  accessdesk people import FILE.csv    load people from an HR export
  accessdesk policy check              validate the policies
  accessdesk plan                      what would change, as a stored plan
  accessdesk apply PLAN_ID             apply it and run the queue
  accessdesk demo --headless --for 30s the demo scenario without the console, for scripts
  accessdesk --help                    everything else";

pub use crate::text::pad;

/// Say on stderr that a list was cut, and how to see all of it.
pub fn say_cut(shown: usize, total: usize, what: &str) {
    if shown < total {
        eprintln!("{shown} of {total} {what} shown; --all for all");
    }
}

/// Whether the command is the daemon, whose logs are JSON lines at info level.
pub fn is_daemon(cli: &Cli) -> bool {
    matches!(cli.command, Some(Command::Serve(_)))
}

/// Whether the command takes over the terminal (the console, the demo's console).
pub fn owns_terminal(cli: &Cli) -> bool {
    match &cli.command {
        None | Some(Command::Console(_)) => true,
        Some(Command::Demo(a)) => !a.headless,
        _ => false,
    }
}

/// Run a parsed command line. Returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let home = match Home::resolve(cli.home.as_deref()) {
        Ok(h) => h,
        Err(e) => return report(&e),
    };
    let ctx = Ctx {
        home,
        json: cli.json,
    };
    let result = match cli.command {
        None if !ctx.home.systems_path().exists() => {
            println!("{NO_COMMAND_HELP}");
            Ok(0)
        }
        None => console::run(&ctx, console::ConsoleArgs::default()),
        Some(Command::Console(a)) => console::run(&ctx, a),
        Some(Command::Init { force }) => init::run(&ctx, force).map(|_| 0),
        Some(Command::People(c)) => people::run(&ctx, c),
        Some(Command::Policy(c)) => policy::run(&ctx, c),
        Some(Command::Audit(c)) => audit::run(&ctx, c),
        Some(Command::Secret(c)) => secret::run(&ctx, c),
        Some(Command::Account(c)) => account::run(&ctx, c),
        Some(Command::System(SystemCmd::List)) => system_list(&ctx).map(|_| 0),
        Some(Command::System(SystemCmd::Test { name })) => system_test(&ctx, &name),
        Some(Command::Bench(a)) => bench::run(&ctx, a).map(|_| 0),
        Some(Command::Plan {
            system,
            person,
            all,
        }) => engine::plan(&ctx, system, person, all),
        Some(Command::Apply {
            plan,
            approve_mass_change,
            reason,
            no_run,
        }) => engine::apply(&ctx, &plan, approve_mass_change, reason, no_run),
        Some(Command::Run) => engine::run(&ctx),
        Some(Command::Observe { system, fresh }) => reconcile::observe(&ctx, system, fresh),
        Some(Command::Reconcile { system, fresh }) => reconcile::reconcile(&ctx, system, fresh),
        Some(Command::Findings(c)) => reconcile::findings(&ctx, c),
        Some(Command::Report(c)) => report::run(&ctx, c),
        Some(Command::Queue(c)) => engine::queue(&ctx, c),
        Some(Command::Approvals(c)) => engine::approvals(&ctx, c),
        Some(Command::Demo(a)) => demo::run(&ctx, a),
        Some(Command::Serve(a)) => serve::run(&ctx, a),
        Some(Command::Source(cmd)) => source::run(&ctx, cmd),
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "accessdesk",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Print an error as a one-line cause (one line per input problem) plus a hint.
pub fn report(e: &Error) -> i32 {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    e.exit_code()
}

fn system_list(ctx: &Ctx) -> Result<()> {
    let cfg = ctx.systems()?;
    let store = ctx.store()?;
    let health = crate::engine::hygiene::hygiene(&store, &cfg.catalog, chrono::Utc::now())?;
    if ctx.json {
        let rows: Vec<_> = cfg
            .catalog
            .systems
            .values()
            .zip(&health)
            .map(|(s, h)| {
                serde_json::json!({
                    "name": s.system.name,
                    "kind": s.system.kind,
                    "api_version": s.system.api_version,
                    "depends_on": s.system.depends_on,
                    "credential": s.credential.as_ref().map(|c| c.to_string()),
                    "entitlements": s.entitlements.len(),
                    "status": h.status(),
                    "credential_hygiene": {
                        "set_at": h.set_at,
                        "last_used_ok_at": h.last_used_ok_at,
                        "expires_at": h.expires_at,
                        "expiry_source": h.expiry_source,
                        "expiry": h.expiry,
                        "rotate_after_days": h.rotate_after_days,
                        "rotation_due_at": h.rotation_due_at,
                        "rotation": h.rotation,
                        "token_lifetime_secs": h.token_lifetime_secs,
                        "scopes_granted": h.scopes_granted,
                        "scopes_needed": h.scopes_needed,
                        "scopes": h.scopes,
                    },
                    "api_watch": h.deprecations,
                })
            })
            .collect();
        return ctx.print_json(&rows);
    }
    for (s, h) in cfg.catalog.systems.values().zip(&health) {
        println!(
            "{:<16} {:<20} api {:<12} deps [{}]  credential {}  {} entitlements  {}",
            s.system.name,
            s.system.kind,
            s.system.api_version,
            s.system.depends_on.join(", "),
            s.credential
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            s.entitlements.len(),
            h.status()
        );
        for line in h.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// Who is acting, for the audit log: `cli:$USER`.
pub fn actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".to_string(),
    }
}

/// One system's adapter (credential from the keychain) and a runtime to drive it, for
/// commands that talk to a single system.
pub fn one_adapter(
    ctx: &Ctx,
    name: &str,
) -> Result<(
    std::sync::Arc<dyn crate::adapters::Adapter>,
    tokio::runtime::Runtime,
)> {
    let cfg = ctx.systems()?;
    let entry = cfg.catalog.systems.get(name).ok_or_else(|| {
        let names: Vec<&str> = cfg.catalog.systems.keys().map(String::as_str).collect();
        Error::usage(
            format!("no system named {name:?}"),
            format!("configured systems: {}", names.join(", ")),
        )
    })?;
    let keychain = crate::secrets::Keychain::from_env()?;
    let adapter = crate::adapters::registry::build(entry, &keychain)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    Ok((adapter, rt))
}

fn system_test(ctx: &Ctx, name: &str) -> Result<i32> {
    let (adapter, rt) = one_adapter(ctx, name)?;
    let result = rt.block_on(adapter.authenticate());
    // What the vendor said (scopes, expiry, deprecations, success) is kept for
    // `system list` and the console's Systems view.
    if let (Ok(id), Some(w)) = (&result, adapter.watch())
        && !id.scopes.is_empty()
    {
        w.scopes_granted(id.scopes.clone());
    }
    let mut store = ctx.store()?;
    crate::engine::status::persist_signals(&mut store, [(name, adapter.as_ref())])?;
    match result {
        Ok(id) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"system": name, "ok": true, "identity": id}))?;
            } else {
                println!("{name}: authenticated as {}", id.principal);
                println!(
                    "  scopes: {}",
                    if id.scopes.is_empty() {
                        "-".to_string()
                    } else {
                        id.scopes.join(", ")
                    }
                );
                for (k, v) in &id.details {
                    println!("  {k}: {v}");
                }
            }
            Ok(0)
        }
        Err(e) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({"system": name, "ok": false, "error": e}))?;
            } else {
                eprintln!("error: {e}");
                if !e.excerpt.is_empty() {
                    eprintln!("  response: {}", e.excerpt);
                }
            }
            Ok(1)
        }
    }
}
