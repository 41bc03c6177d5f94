//! The command line: `sc-agent [--config PATH] [--once] [--check-config] [--print-config]
//! [--version] [--help]`.

use std::path::PathBuf;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub once: bool,
    pub check_config: bool,
    pub print_config: bool,
    pub version: bool,
    pub help: bool,
}

pub const USAGE: &str = "\
Usage: sc-agent [--config PATH] [--once] [--check-config] [--print-config] [--version] [--help]

Collects node_exporter-compatible metrics from /proc and /sys every collection_interval
and pushes them with Prometheus remote write to ingestor_endpoint; without an endpoint,
prints them to stdout in the Prometheus text format.

Options:
  --config PATH     YAML config file (default: $SC_AGENT_CONFIG, else built-in defaults)
  --once            run one cycle, print it to stdout and exit
  --check-config    validate the config; exit 0 if valid, else 1 with the reason
  --print-config    print the effective config (secrets masked) and exit
  --version         print the version and exit
  --help            print this help and exit

Signals: SIGTERM/SIGINT stop after the current cycle (flushing what is queued);
SIGHUP reloads the config, keeping the running one if the new one is invalid.
Exit codes: 0 success, 1 invalid config, 2 bad command line, 3 runtime failure.
";

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let path = args
                    .next()
                    .filter(|p| !p.is_empty())
                    .ok_or("--config needs a path")?;
                parsed.config = Some(PathBuf::from(path));
            }
            "--once" => parsed.once = true,
            "--check-config" => parsed.check_config = true,
            "--print-config" => parsed.print_config = true,
            "--version" | "-V" => parsed.version = true,
            "--help" | "-h" => parsed.help = true,
            other => match other.strip_prefix("--config=") {
                Some("") => return Err("--config needs a path".to_owned()),
                Some(path) => parsed.config = Some(PathBuf::from(path)),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    let modes = [parsed.once, parsed.check_config, parsed.print_config];
    if modes.iter().filter(|m| **m).count() > 1 {
        return Err("--once, --check-config and --print-config exclude each other".to_owned());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_and_config_forms() {
        assert_eq!(args(&[]).unwrap(), Args::default());
        let a = args(&["--config", "/etc/sc.yaml", "--once"]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/etc/sc.yaml")));
        assert!(a.once);
        assert_eq!(
            args(&["--config=/x.yaml"]).unwrap().config,
            Some(PathBuf::from("/x.yaml"))
        );
        assert!(args(&["--check-config"]).unwrap().check_config);
        assert!(args(&["--print-config"]).unwrap().print_config);
        assert!(args(&["--version"]).unwrap().version);
        assert!(args(&["-h"]).unwrap().help);
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert_eq!(
            args(&["--conf"]).unwrap_err(),
            "unknown argument \"--conf\""
        );
        assert_eq!(args(&["--config"]).unwrap_err(), "--config needs a path");
        assert_eq!(args(&["--config="]).unwrap_err(), "--config needs a path");
        assert!(args(&["--once", "--check-config"]).is_err());
    }
}
