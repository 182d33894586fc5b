use clap::Parser;

fn main() {
    let cli = accessdesk::cli::Cli::parse();
    let _guard = accessdesk::cli::logging::init(cli.verbose, cli.log_file.as_deref());
    std::process::exit(accessdesk::cli::run(cli));
}
