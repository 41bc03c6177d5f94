//! `node_bonding_slaves` and `node_bonding_active` from the Linux bonding driver's
//! files under `<sysfs>/class/net/`, as node_exporter 1.12's bonding collector
//! exports them. node-mixin's NodeBondingDegraded fires when the two differ.
//!
//! `bonding_masters` lists the bonds (label `master`); each bond's `bonding/slaves`
//! lists its slaves, and a slave is active when its
//! `<bond>/lower_<slave>/bonding_slave/mii_status` reads `up` (kernels before 4.13
//! name the link `slave_<slave>`, which is tried when `lower_<slave>` does not exist).
//! `node_bonding_slaves` counts every listed slave, a name listed twice twice, as
//! node_exporter does.
//!
//! Errors, as node_exporter's: a file that does not exist anywhere on the way (no
//! `bonding_masters` because the bonding module is not loaded, most machines; a bond
//! or slave that went away between two reads) makes the collector "no data"
//! (ErrNoData); any other read failure fails it. No bond at all (an empty
//! `bonding_masters`) succeeds with no series.
//!
//! node_exporter 1.5 has the same families, HELP and TYPE. Difference: a bond or
//! slave name that cannot be an interface name (`.`, `..`, one containing `/`) fails
//! the collector here, with the file it came from, where node_exporter would follow
//! it to another path. A bond listed twice is reported once.

use super::{
    read_optional_file, read_value, set_path, Build, CollectError, Collector, Context, Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One bond: its name in `Bonding::masters` and its slave counts.
struct Bond {
    name: Range<usize>,
    slaves: u64,
    active: u64,
}

pub struct Bonding {
    /// `<sysfs>/class/net`.
    dir: PathBuf,
    /// `bonding_masters`.
    masters_path: PathBuf,
    masters: String,
    slaves: String,
    state: String,
    path: PathBuf,
    link: String,
    bonds: Vec<Bond>,
    seen: Seen,
}

impl Bonding {
    pub fn new(sysfs: &Path) -> Self {
        let dir = sysfs.join("class/net");
        Bonding {
            masters_path: dir.join("bonding_masters"),
            dir,
            masters: String::new(),
            slaves: String::new(),
            state: String::new(),
            path: PathBuf::new(),
            link: String::new(),
            bonds: Vec::new(),
            seen: Seen::default(),
        }
    }

    fn read(&mut self) -> Result<(), CollectError> {
        self.bonds.clear();
        self.seen.clear();
        read_listing(&self.masters_path, &mut self.masters)?;
        let base = self.masters.as_ptr() as usize;
        for master in self.masters.split_ascii_whitespace() {
            if !is_interface_name(master) {
                return Err(not_an_interface(&self.masters_path, master));
            }
            if !self.seen.first(master) {
                continue;
            }
            set_path(&mut self.path, &self.dir, &[master, "bonding", "slaves"]);
            read_listing(&self.path, &mut self.slaves)?;
            let (mut slaves, mut active) = (0, 0);
            for slave in self.slaves.split_ascii_whitespace() {
                if !is_interface_name(slave) {
                    set_path(&mut self.path, &self.dir, &[master, "bonding", "slaves"]);
                    return Err(not_an_interface(&self.path, slave));
                }
                let mut state = Err(io::ErrorKind::NotFound.into());
                for prefix in ["lower_", "slave_"] {
                    self.link.clear();
                    self.link.push_str(prefix);
                    self.link.push_str(slave);
                    set_path(
                        &mut self.path,
                        &self.dir,
                        &[master, &self.link, "bonding_slave", "mii_status"],
                    );
                    state = read_value(&self.path, &mut self.state).map(|s| s == "up");
                    if !matches!(&state, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                        break;
                    }
                }
                let up = state.map_err(|e| CollectError::io_or_no_data(&self.path, &e))?;
                slaves += 1;
                active += u64::from(up);
            }
            let start = master.as_ptr() as usize - base;
            self.bonds.push(Bond {
                name: start..start + master.len(),
                slaves,
                active,
            });
        }
        Ok(())
    }

    fn write(&self, out: &mut Batch) {
        for (name, help, active) in [
            (
                "node_bonding_slaves",
                "Number of configured slaves per bonding interface.",
                false,
            ),
            (
                "node_bonding_active",
                "Number of active slaves per bonding interface.",
                true,
            ),
        ] {
            let mut family = out.family(name, help, Kind::Gauge);
            for bond in &self.bonds {
                let value = if active { bond.active } else { bond.slaves };
                family
                    .series()
                    .label("master", &self.masters[bond.name.clone()])
                    .value(value as f64);
            }
        }
    }
}

/// Reads a list of interfaces; a missing one is "no data", as in node_exporter.
fn read_listing(path: &Path, buf: &mut String) -> Result<(), CollectError> {
    match read_optional_file(path, buf)? {
        true => Ok(()),
        false => Err(CollectError::no_data(format!(
            "{} does not exist: no bonding interfaces",
            path.display()
        ))),
    }
}

/// Whether `name`, read from a file, can be a network interface: not one that would
/// lead out of the bond's directory.
fn is_interface_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/')
}

fn not_an_interface(file: &Path, name: &str) -> CollectError {
    CollectError::parse(file, 1, format!("{name:?} is not a network interface name"))
}

impl Build for Bonding {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/net/bonding_masters",
        "sys/class/net/int/bonding/slaves",
        "sys/class/net/int/slave_eth1/bonding_slave/mii_status",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Bonding::new(&context.paths.sysfs)
    }
}

impl Collector for Bonding {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read()?;
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn write_bond(dir: &TempDir, bond: &str, prefix: &str, slaves: &[(&str, &str)]) {
        let names: Vec<&str> = slaves.iter().map(|(name, _)| *name).collect();
        dir.write(
            &format!("class/net/{bond}/bonding/slaves"),
            &format!("{}\n", names.join(" ")),
        );
        for (slave, state) in slaves {
            dir.write(
                &format!("class/net/{bond}/{prefix}{slave}/bonding_slave/mii_status"),
                &format!("{state}\n"),
            );
        }
    }

    #[test]
    fn counts_configured_and_active_slaves() {
        let dir = TempDir::new();
        dir.write("class/net/bonding_masters", "bond0 dmz int bond1 dmz\n");
        write_bond(&dir, "bond0", "slave_", &[]);
        write_bond(&dir, "dmz", "slave_", &[("eth0", "up"), ("eth4", "up")]);
        write_bond(&dir, "int", "slave_", &[("eth5", "up"), ("eth1", "down")]);
        write_bond(&dir, "bond1", "lower_", &[("ens1f0", "up"), ("ens1f1", "going back")]);
        let text = render(&mut Bonding::new(dir.path())).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_bonding_slaves{master=\"bond0\"} 0",
                "node_bonding_slaves{master=\"dmz\"} 2",
                "node_bonding_slaves{master=\"int\"} 2",
                "node_bonding_slaves{master=\"bond1\"} 2",
                "node_bonding_active{master=\"bond0\"} 0",
                "node_bonding_active{master=\"dmz\"} 2",
                "node_bonding_active{master=\"int\"} 1",
                "node_bonding_active{master=\"bond1\"} 1",
            ]
        );
        assert!(text.contains(
            "# HELP node_bonding_slaves Number of configured slaves per bonding interface.\n\
             # TYPE node_bonding_slaves gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_bonding_active Number of active slaves per bonding interface.\n"
        ));
    }

    #[test]
    fn missing_files_are_no_data_other_failures_errors() {
        let dir = TempDir::new();
        assert!(render(&mut Bonding::new(dir.path())).unwrap_err().is_no_data());
        dir.write("class/net/bonding_masters", "\n");
        assert_eq!(
            series(&render(&mut Bonding::new(dir.path())).unwrap()),
            Vec::<&str>::new()
        );
        // A slave without its bonding_slave directory (it just left the bond).
        dir.write("class/net/bonding_masters", "bond0\n");
        dir.write("class/net/bond0/bonding/slaves", "eth0\n");
        let err = render(&mut Bonding::new(dir.path())).unwrap_err();
        assert!(err.is_no_data(), "{err}");
        assert!(err.to_string().contains("slave_eth0/bonding_slave/mii_status"), "{err}");
        // A directory where mii_status should be is a real failure.
        std::fs::create_dir_all(dir.path().join("class/net/bond0/lower_eth0/bonding_slave/mii_status"))
            .unwrap();
        let err = render(&mut Bonding::new(dir.path())).unwrap_err();
        assert!(!err.is_no_data(), "{err}");
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let dir = TempDir::new();
        dir.write("class/net/bonding_masters", "bond0 ../../..\n");
        write_bond(&dir, "bond0", "lower_", &[]);
        let err = render(&mut Bonding::new(dir.path())).unwrap_err().to_string();
        assert!(
            err.ends_with("bonding_masters line 1: \"../../..\" is not a network interface name"),
            "{err}"
        );
        dir.write("class/net/bonding_masters", "bond0\n");
        dir.write("class/net/bond0/bonding/slaves", "eth0/x\n");
        let err = render(&mut Bonding::new(dir.path())).unwrap_err().to_string();
        assert!(err.contains("bond0/bonding/slaves line 1"), "{err}");
    }
}
