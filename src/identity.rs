//! Who this machine is: the `vm_id`, `job` and `instance` labels every series carries.
//!
//! With `vm_id: auto-detect` the first usable ID wins, in this order:
//! 1. `dmidecode -s system-uuid` (the hypervisor's UUID for the VM),
//! 2. `<sysfs>/class/dmi/id/product_uuid` (the same, without dmidecode; root only),
//! 3. `<rootfs>/etc/machine-id` (set once per installed image),
//! 4. `<procfs>/sys/kernel/random/boot_id` (changes at every boot).

use crate::config::{Config, AUTO_DETECT};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the `vm_id` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmIdSource {
    Config,
    Dmidecode,
    ProductUuid,
    MachineId,
    BootId,
}

impl fmt::Display for VmIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VmIdSource::Config => "the config",
            VmIdSource::Dmidecode => "dmidecode -s system-uuid",
            VmIdSource::ProductUuid => "DMI product_uuid",
            VmIdSource::MachineId => "/etc/machine-id",
            VmIdSource::BootId => "the kernel boot ID",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub vm_id: String,
    pub source: VmIdSource,
    pub job: String,
    pub instance: String,
}

impl Identity {
    /// The labels every series carries: identity first, then the custom ones.
    pub fn common_labels(&self, config: &Config) -> Vec<(String, String)> {
        let mut labels = vec![
            ("vm_id".to_owned(), self.vm_id.clone()),
            ("job".to_owned(), self.job.clone()),
            ("instance".to_owned(), self.instance.clone()),
        ];
        labels.extend(config.labels.iter().map(|(n, v)| (n.clone(), v.clone())));
        labels
    }
}

/// How long dmidecode may take before the next source is tried.
const DMIDECODE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves the identity for `config`, running `dmidecode` from `PATH`.
pub fn resolve(config: &Config) -> Result<Identity, String> {
    resolve_with(config, "dmidecode")
}

/// As [`resolve`], with the dmidecode command given (for tests).
pub fn resolve_with(config: &Config, dmidecode: &str) -> Result<Identity, String> {
    let (vm_id, source) = if config.vm_id == AUTO_DETECT {
        detect_vm_id(config, dmidecode)?
    } else {
        (config.vm_id.clone(), VmIdSource::Config)
    };
    let instance = match &config.instance {
        Some(instance) => instance.clone(),
        None => host_name(&config.paths.procfs)?,
    };
    Ok(Identity {
        vm_id,
        source,
        job: config.job.clone(),
        instance,
    })
}

fn detect_vm_id(config: &Config, dmidecode: &str) -> Result<(String, VmIdSource), String> {
    let paths = &config.paths;
    let mut tried = Vec::new();
    let mut attempt = |source: VmIdSource, raw: Result<String, String>| match raw {
        Ok(raw) => match normalise(&raw) {
            Some(id) => Some((id, source)),
            None => {
                tried.push(format!("{source}: unusable value {:?}", raw.trim()));
                None
            }
        },
        Err(e) => {
            tried.push(format!("{source}: {e}"));
            None
        }
    };
    let found = attempt(VmIdSource::Dmidecode, run_dmidecode(dmidecode))
        .or_else(|| {
            let path = paths.sysfs.join("class/dmi/id/product_uuid");
            attempt(VmIdSource::ProductUuid, read_small(&path))
        })
        .or_else(|| {
            let path = paths.rootfs.join("etc/machine-id");
            attempt(VmIdSource::MachineId, read_small(&path))
        })
        .or_else(|| {
            let path = paths.procfs.join("sys/kernel/random/boot_id");
            attempt(VmIdSource::BootId, read_small(&path))
        });
    for reason in &tried {
        log::debug!("vm_id: not from {reason}");
    }
    found.ok_or_else(|| {
        format!(
            "vm_id: auto-detect found no usable ID ({}); set vm_id in the config or SC_VM_ID",
            tried.join("; ")
        )
    })
}

/// Lower-cases a UUID or machine ID and rejects placeholders firmware is known to report.
pub fn normalise(raw: &str) -> Option<String> {
    let id = raw.trim().to_ascii_lowercase();
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let uuid_shape = id.len() == 36
        && id
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    let machine_id_shape = id.len() == 32;
    let all_hex = hex.chars().all(|c| c.is_ascii_hexdigit());
    let placeholder = hex.chars().all(|c| c == '0')
        || hex.chars().all(|c| c == 'f')
        // A UUID many boards ship unset; it would make all of them one machine.
        || id == "03000200-0400-0500-0006-000700080009";
    ((uuid_shape || machine_id_shape) && all_hex && !placeholder).then_some(id)
}

fn read_small(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

/// Runs `dmidecode -s system-uuid`, killing it if it does not finish in time.
fn run_dmidecode(command: &str) -> Result<String, String> {
    let mut child = Command::new(command)
        .args(["-s", "system-uuid"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {command}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < DMIDECODE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {DMIDECODE_TIMEOUT:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.by_ref().take(4096).read_to_string(&mut output);
    }
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    // dmidecode prints warnings as `#` comment lines before the value.
    Ok(output
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or_default()
        .to_owned())
}

/// The host name, for the default `instance`.
fn host_name(procfs: &Path) -> Result<String, String> {
    let from_kernel = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok());
    from_kernel
        .or_else(|| read_small(&procfs.join("sys/kernel/hostname")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| "instance: cannot read the host name; set instance in the config".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    const UUID: &str = "4C4C4544-0042-3510-8052-B4C04F4B4E32";

    fn config_for(dir: &TempDir) -> Config {
        let mut config = Config::default();
        config.paths.procfs = dir.path().join("proc");
        config.paths.sysfs = dir.path().join("sys");
        config.paths.rootfs = dir.path().join("root");
        config.instance = Some("host-1".into());
        config
    }

    #[test]
    fn normalises_and_rejects_placeholders() {
        assert_eq!(
            normalise(UUID).as_deref(),
            Some("4c4c4544-0042-3510-8052-b4c04f4b4e32")
        );
        assert_eq!(
            normalise("0123456789abcdef0123456789ABCDEF\n").as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        for bad in [
            "",
            "Not Settable",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "4c4c4544-0042-3510-8052-b4c04f4b4e3g",
            "4c4c45440-042-3510-8052-b4c04f4b4e32",
        ] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn literal_vm_id_is_used_as_is() {
        let dir = TempDir::new();
        let mut config = config_for(&dir);
        config.vm_id = "My-VM".into();
        let id = resolve_with(&config, "/nonexistent/dmidecode").unwrap();
        assert_eq!(
            (id.vm_id.as_str(), id.source),
            ("My-VM", VmIdSource::Config)
        );
        assert_eq!(id.instance, "host-1");
    }

    #[test]
    fn falls_through_the_chain() {
        let dir = TempDir::new();
        let config = config_for(&dir);
        let no_dmidecode = "/nonexistent/dmidecode";
        dir.write(
            "proc/sys/kernel/random/boot_id",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n",
        );
        let id = resolve_with(&config, no_dmidecode).unwrap();
        assert_eq!(id.source, VmIdSource::BootId);

        dir.write("root/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        let id = resolve_with(&config, no_dmidecode).unwrap();
        assert_eq!(
            (id.vm_id.as_str(), id.source),
            ("0123456789abcdef0123456789abcdef", VmIdSource::MachineId)
        );

        dir.write(
            "sys/class/dmi/id/product_uuid",
            "00000000-0000-0000-0000-000000000000\n",
        );
        assert_eq!(
            resolve_with(&config, no_dmidecode).unwrap().source,
            VmIdSource::MachineId
        );
        dir.write("sys/class/dmi/id/product_uuid", &format!("{UUID}\n"));
        let id = resolve_with(&config, no_dmidecode).unwrap();
        assert_eq!(
            (id.vm_id, id.source),
            (UUID.to_lowercase(), VmIdSource::ProductUuid)
        );
    }

    #[test]
    fn nothing_usable_is_an_error_listing_what_was_tried() {
        let dir = TempDir::new();
        let err = resolve_with(&config_for(&dir), "/nonexistent/dmidecode").unwrap_err();
        assert!(
            err.starts_with("vm_id: auto-detect found no usable ID"),
            "{err}"
        );
        for source in ["dmidecode", "product_uuid", "machine-id", "boot_id"] {
            assert!(err.contains(source), "{source} missing from {err}");
        }
    }

    #[test]
    fn common_labels_carry_identity_and_custom_labels() {
        let mut config = Config::default();
        config.labels.insert("env".into(), "prod".into());
        let id = Identity {
            vm_id: "v".into(),
            source: VmIdSource::Config,
            job: "node".into(),
            instance: "h".into(),
        };
        let labels = id.common_labels(&config);
        assert!(labels.contains(&("vm_id".into(), "v".into())));
        assert!(labels.contains(&("instance".into(), "h".into())));
        assert!(labels.contains(&("env".into(), "prod".into())));
    }
}
