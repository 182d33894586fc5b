//! The event loop: terminal set-up and restore (also on panic and Ctrl-Z), input on its own
//! thread, the loader, jobs, ticks, and coalesced drawing.

use super::core::{Backend, spawn_job, spawn_loader};
use super::reducer::{self, Effect, Msg};
use super::state::AppState;
use super::theme::{self, ColorMode, Theme};
use crate::{Error, Result};
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How the console looks and behaves (the CLI's flags).
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    pub theme: Option<String>,
    pub color: ColorMode,
    pub readonly: bool,
    pub mouse: bool,
    /// Append one line per frame (draw time in µs) to this file.
    pub frame_log: Option<PathBuf>,
}

/// How often live data is re-read.
pub const TICK: Duration = Duration::from_millis(500);

static MOUSE_ON: AtomicBool = AtomicBool::new(false);

/// Refuse to start a full-screen UI where there is no terminal.
pub fn require_terminal() -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            "the console needs an interactive terminal",
            "run it in a terminal, or use the subcommands (accessdesk --help) in scripts",
        ));
    }
    Ok(())
}

/// Put the terminal back the way we found it. Safe to call more than once.
pub fn restore_terminal() {
    let mut out = std::io::stdout();
    if MOUSE_ON.swap(false, Ordering::SeqCst) {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, LeaveAlternateScreen, cursor::Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

fn enter_terminal(mouse: bool) -> Result<()> {
    enable_raw_mode().map_err(|e| Error::io("switching the terminal to raw mode", e))?;
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen, cursor::Hide)
        .map_err(|e| Error::io("entering the alternate screen", e))?;
    if mouse {
        execute!(out, EnableMouseCapture).map_err(|e| Error::io("enabling the mouse", e))?;
        MOUSE_ON.store(true, Ordering::SeqCst);
    }
    Ok(())
}

/// Restore the terminal before any panic message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        crate::logging::pause_stderr(false);
        previous(info);
    }));
}

/// Resolve the theme from the flag (or config), NO_COLOR and whether stdout is a terminal.
pub fn pick_theme(opts: &ConsoleOptions, backend: &Backend) -> Result<Theme> {
    Ok(resolve_theme(opts.theme.as_deref(), opts, backend)?)
}

/// One way to turn a theme name into a theme, at start-up and when switching: the colour
/// rules (`--color`, NO_COLOR, whether stdout is a terminal) apply the same both times.
fn resolve_theme(
    name: Option<&str>,
    opts: &ConsoleOptions,
    backend: &Backend,
) -> std::result::Result<Theme, theme::ThemeError> {
    use std::io::IsTerminal;
    theme::resolve(
        name,
        opts.color,
        theme::no_color_env(),
        std::io::stdout().is_terminal(),
        backend.theme_dir.as_deref(),
    )
}

/// Build the initial state for a backend.
pub fn initial_state(backend: &Backend, theme: Theme, opts: &ConsoleOptions) -> AppState {
    let mut s = AppState::new(theme, opts.readonly);
    s.notices = backend.notices.clone();
    s.themes = theme::available(backend.theme_dir.as_deref());
    s.system_info = super::state::SystemInfo::from_catalog(&backend.catalog);
    s.mouse = opts.mouse;
    s.actor = backend.actor.clone();
    s.utc_offset = *chrono::Local::now().offset();
    s
}

/// Run the console until the admin quits. The engine (if any) keeps running meanwhile.
pub async fn run(backend: Backend, opts: ConsoleOptions) -> Result<()> {
    let theme = pick_theme(&opts, &backend)?;
    let mut state = initial_state(&backend, theme, &opts);
    let loader = backend.loader()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let queries = spawn_loader(loader, tx.clone());

    install_panic_hook();
    crate::logging::pause_stderr(true);
    enter_terminal(opts.mouse)?;
    let result = event_loop(&backend, &opts, &mut state, &tx, &mut rx, &queries).await;
    restore_terminal();
    crate::logging::pause_stderr(false);
    result
}

/// Read terminal input on a thread (crossterm's reads block) until `stop`.
fn spawn_input(tx: mpsc::UnboundedSender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("console-input".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => break,
                }
                let msg = match event::read() {
                    Ok(Event::Key(k)) => Msg::Key(k),
                    Ok(Event::Mouse(m)) => Msg::Mouse(m),
                    Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .ok();
}

async fn event_loop(
    backend: &Backend,
    opts: &ConsoleOptions,
    state: &mut AppState,
    tx: &mpsc::UnboundedSender<Msg>,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    queries: &std::sync::mpsc::Sender<super::data::Query>,
) -> Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| Error::io("opening the terminal", e))?;
    let size = terminal
        .size()
        .map_err(|e| Error::io("reading the terminal size", e))?;
    state.size = (size.width, size.height);
    let stop_input = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), stop_input.clone());
    let mut frame_log = match &opts.frame_log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("opening the frame log {}", p.display()), e))?,
        ),
        None => None,
    };
    // Ticks: re-read live data.
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(TICK);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                iv.tick().await;
                if tx.send(Msg::Tick).is_err() {
                    break;
                }
            }
        });
    }
    let started = Instant::now();
    let mut first_frame_logged = false;
    let _ = queries.send(reducer::query(state));
    let mut feed_seen = 0usize;
    loop {
        // Draw, then wait for the next message and take everything that is already there.
        let t0 = Instant::now();
        let mut hits = Default::default();
        terminal
            .draw(|f| hits = super::views::draw(f, state))
            .map_err(|e| Error::io("drawing the console", e))?;
        state.hits = hits;
        if let Some(log) = frame_log.as_mut() {
            let _ = writeln!(
                log,
                "{} draw_us={}{}",
                started.elapsed().as_millis(),
                t0.elapsed().as_micros(),
                if first_frame_logged {
                    ""
                } else {
                    " first_frame"
                }
            );
            first_frame_logged = true;
        }
        let Some(first) = rx.recv().await else { break };
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let mut effects = Vec::new();
        if let Some(feed) = &backend.feed
            && batch.iter().any(|m| matches!(m, Msg::Tick))
        {
            let new = feed(feed_seen);
            feed_seen += new.len();
            batch.extend(new.into_iter().map(Msg::Event));
        }
        for m in batch {
            effects.extend(reducer::update(state, m, chrono::Utc::now()));
        }
        for e in effects {
            match e {
                Effect::Load(q) => {
                    let _ = queries.send(q);
                }
                Effect::Run(job) => spawn_job(backend, job, tx.clone()),
                Effect::LoadTheme(name) => {
                    let t = resolve_theme(Some(&name), opts, backend).map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Theme(Box::new(t)));
                }
                Effect::Suspend => {
                    suspend(opts.mouse);
                    terminal
                        .clear()
                        .map_err(|e| Error::io("redrawing after resume", e))?;
                }
                Effect::Quit => {}
            }
        }
        if state.quit {
            break;
        }
    }
    stop_input.store(true, Ordering::SeqCst);
    Ok(())
}

/// Ctrl-Z: give the terminal back, stop, and take it again when continued.
fn suspend(mouse: bool) {
    restore_terminal();
    crate::logging::pause_stderr(false);
    #[cfg(unix)]
    // SAFETY: raising SIGTSTP on our own process is how a job-control shell expects a
    // program to stop itself; execution resumes here on SIGCONT.
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
    crate::logging::pause_stderr(true);
    let _ = enter_terminal(mouse);
}
