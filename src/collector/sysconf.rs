//! System constants from sysconf(3), read once when a collector is built.

use nix::unistd::{sysconf, SysconfVar};

/// The memory page size in bytes (node_exporter uses Go's `os.Getpagesize()`).
pub fn page_size() -> u64 {
    read(SysconfVar::PAGE_SIZE, "page size", 4096)
}

/// Clock ticks per second, the unit of /proc/<pid>/stat times (`USER_HZ`).
pub fn clock_ticks() -> u64 {
    read(SysconfVar::CLK_TCK, "clock ticks per second", 100)
}

/// Linux always answers; the fallbacks are the values of every Linux platform
/// this agent builds for, used (with a warning) only if sysconf ever fails.
fn read(var: SysconfVar, what: &str, fallback: u64) -> u64 {
    match sysconf(var) {
        Ok(Some(value)) if value > 0 => value as u64,
        other => {
            log::warn!("sysconf({what}) gave {other:?}; assuming {fallback}");
            fallback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_answers() {
        assert!(page_size().is_power_of_two() && page_size() >= 4096);
        assert!(clock_ticks() > 0);
    }
}
