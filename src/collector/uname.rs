//! `node_uname_info{sysname,release,version,machine,nodename,domainname}` = 1, from the
//! uname(2) system call, as node_exporter does on Linux.
//!
//! The call is made every cycle: the host name can change while the agent runs.
//! Bytes that are not UTF-8 become U+FFFD (node_exporter would fail on them).

use super::{Build, CollectError, Collector, Context};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use nix::sys::utsname::{uname, UtsName};

#[derive(Default)]
pub struct Uname;

impl Uname {
    pub fn new() -> Self {
        Uname
    }
}

/// Writes the info series for `uts`.
fn write(uts: &UtsName, out: &mut Batch) {
    out.family(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        Kind::Gauge,
    )
    .series()
    .label("sysname", uts.sysname().to_string_lossy())
    .label("release", uts.release().to_string_lossy())
    .label("version", uts.version().to_string_lossy())
    .label("machine", uts.machine().to_string_lossy())
    .label("nodename", uts.nodename().to_string_lossy())
    .label("domainname", uts.domainname().to_string_lossy())
    .value(1.0);
}

impl Build for Uname {
    type Options = NoOptions;

    /// uname(2) only.
    const SOURCES: &'static [&'static str] = &[];

    fn build(_context: &Context<'_>, _options: &NoOptions) -> Self {
        Uname::new()
    }
}

impl Collector for Uname {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let uts = uname().map_err(|e| CollectError::new(format!("uname: {e}")))?;
        write(&uts, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::render;

    #[test]
    fn reports_what_the_kernel_says() {
        let text = render(&mut Uname::new()).unwrap();
        let uts = uname().unwrap();
        let lossy = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        let expected = format!(
            "# HELP node_uname_info Labeled system information as provided by the uname system call.\n\
             # TYPE node_uname_info gauge\n\
             node_uname_info{{domainname=\"{}\",machine=\"{}\",nodename=\"{}\",release=\"{}\",sysname=\"Linux\",version=\"{}\"}} 1\n",
            lossy(uts.domainname()),
            lossy(uts.machine()),
            lossy(uts.nodename()),
            lossy(uts.release()),
            lossy(uts.version()),
        );
        assert_eq!(text, expected);
    }
}
