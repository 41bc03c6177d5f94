//! The config loader: arbitrary YAML, plus arbitrary `SC_*` environment values.
//! Input: environment lines `NAME=value` up to a NUL byte, then the YAML text.
//! Loading must return Ok or a named error, never panic or hang; a valid config must
//! survive `--print-config` and read back the same.

use sc_agent::config::Config;

pub fn run(data: &[u8]) {
    let (env_part, yaml) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let env_text = String::from_utf8_lossy(env_part);
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (format!("SC_{n}"), v.to_owned()))
        .collect();
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    if let Ok(mut config) = Config::from_yaml(yaml) {
        if config.apply_env(&lookup).is_ok() && config.check().is_ok() {
            // A valid config must survive --print-config and read back the same.
            let again = Config::from_yaml(&config.to_yaml()).expect("printed config reads back");
            assert_eq!(again, config);
        }
    }
}
