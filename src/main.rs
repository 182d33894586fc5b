use clap::Parser;

fn main() {
    let cli = accessdesk::cli::Cli::parse();
    // A command whose reader goes away (`accessdesk plan | head -1`) ends quietly, as Unix
    // tools do, instead of panicking on the broken pipe. Not for the console and the demo,
    // which own the terminal and restore it on the way out. Sockets are unaffected: Rust
    // writes to them with MSG_NOSIGNAL.
    if !accessdesk::cli::owns_terminal(&cli) {
        // SAFETY: restoring the default disposition of one signal at start-up, before any
        // other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let _guard = if accessdesk::cli::is_daemon(&cli) {
        accessdesk::logging::init_json(cli.verbose.max(1), cli.log_file.as_deref())
    } else {
        accessdesk::logging::init(cli.verbose, cli.log_file.as_deref())
    };
    std::process::exit(accessdesk::cli::run(cli));
}
