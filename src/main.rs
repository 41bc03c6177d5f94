//! `sc-agent`: see `--help` and README.md.

use sc_agent::agent::{self, Agent};
use sc_agent::{cli, config, logging};
use std::process::ExitCode;

/// Exit codes, as documented in `--help` and the README.
const EXIT_CONFIG: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_RUNTIME: u8 = 3;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("sc-agent: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("sc-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let env = |name: &str| std::env::var(name).ok();
    let source = config::ConfigPath::resolve(args.config.clone(), &env);
    let mut config = match config::Config::load(&source, &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sc-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check_config {
        let what = match &source.path {
            Some(path) => format!("config {}", path.display()),
            None => "built-in default config".to_owned(),
        };
        println!("sc-agent: {what} is valid");
        return ExitCode::SUCCESS;
    }
    if args.print_config {
        print!("{}", config.to_yaml());
        return ExitCode::SUCCESS;
    }
    if args.once {
        // One cycle printed to stdout: nothing is pushed, so no delivery is set up.
        config.ingestor_endpoint = None;
    }
    logging::init(config.log_format, config.log_level);
    let identity = match sc_agent::identity::resolve(&config) {
        Ok(identity) => identity,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut agent = Agent::new(source, config, &identity);
    let result = if args.once {
        agent
            .cycle()
            .map_err(|e| agent::Fatal(format!("cannot write metrics: {e}")))
    } else {
        agent::run(agent)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(agent::Fatal(e)) => {
            log::error!("{e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
