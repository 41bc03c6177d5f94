//! netdev over netlink: the counters of every interface from one `RTM_GETSTATS`
//! dump a cycle (only `IFLA_STATS_LINK_64`: a tenth of what an `RTM_GETLINK` dump
//! costs the kernel), and the names, which that answer lacks, from the agent's
//! interface table ([`crate::netlink::Interfaces`]), which the kernel's link
//! announcements keep; it is brought up to date after each counter dump, so any
//! interface in the answer is in it.
//!
//! A kernel without `RTM_GETSTATS` (before 4.7), or a namespace where the
//! announcements cannot be subscribed to, gets a whole `RTM_GETLINK` dump a cycle
//! instead, names and counters together.

use crate::netlink::link::{Counters, Links, Stats64};
use crate::netlink::{Error, Netlink, Protocol};
use nix::errno::Errno;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing asked yet.
    Start,
    /// `RTM_GETSTATS` and the interface table.
    Counters,
    /// One `RTM_GETLINK` dump a cycle.
    WholeLinks,
}

pub(super) struct Reader {
    netlink: Netlink,
    mode: Mode,
    counters: Counters,
    /// The dump of a cycle in `WholeLinks` mode.
    links: Links,
}

impl Reader {
    pub(super) fn new(netlink: Netlink) -> Self {
        Reader {
            netlink,
            mode: Mode::Start,
            counters: Counters::default(),
            links: Links::default(),
        }
    }

    /// Opens the route socket if it is not open: an error that
    /// [`Error::is_unavailable`] means there is no netlink here.
    pub(super) fn connect(&mut self) -> Result<(), Error> {
        self.netlink.connect(Protocol::Route)
    }

    /// Hands each interface's name and counters to `each`, in the kernel's order.
    /// Interfaces whose name is not UTF-8 are skipped.
    pub(super) fn read(&mut self, mut each: impl FnMut(&str, &Stats64)) -> Result<(), Error> {
        if self.mode == Mode::Start {
            self.mode = if self.netlink.tracks_links()? {
                Mode::Counters
            } else {
                log::info!("netdev: no link announcements; dumping whole links every cycle");
                Mode::WholeLinks
            };
        }
        if self.mode == Mode::Counters {
            match self.read_counters(&mut each) {
                Err(Error::Refused { errno, .. })
                    if matches!(errno, Errno::EOPNOTSUPP | Errno::EINVAL) =>
                {
                    log::info!(
                        "netdev: no RTM_GETSTATS ({errno}); dumping whole links every cycle"
                    );
                    self.mode = Mode::WholeLinks;
                    self.counters = Counters::default();
                }
                other => return other,
            }
        }
        self.netlink.dump(Protocol::Route, &mut self.links)?;
        for link in self.links.as_slice() {
            if let (Some(name), Some(stats)) = (link.name(), &link.stats) {
                each(name, stats);
            }
        }
        Ok(())
    }

    fn read_counters(&mut self, each: &mut impl FnMut(&str, &Stats64)) -> Result<(), Error> {
        self.netlink.dump(Protocol::Route, &mut self.counters)?;
        let counters = &self.counters;
        self.netlink.interfaces(|table| {
            for entry in counters.as_slice() {
                // None: removed since the dump.
                if let Some(name) = table.name(entry.index) {
                    each(name, &entry.stats);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sc_agent_testkit::netns::{in_new_netns, ip};

    fn names(reader: &mut Reader) -> Vec<String> {
        let mut out = Vec::new();
        reader.read(|name, _| out.push(name.to_owned())).unwrap();
        out
    }

    #[test]
    fn names_follow_the_announcements() {
        let seen = in_new_netns(|| {
            let mut reader = Reader::new(Netlink::default());
            let first = names(&mut reader);
            ip("link add an0 type veth peer name an1");
            let added = names(&mut reader);
            ip("link set an0 name an9");
            ip("link del an1");
            let changed = names(&mut reader);
            let mode = reader.mode == Mode::Counters;
            (first, added, changed, mode)
        });
        assert!(seen.3, "counters and kept names");
        assert_eq!(seen.0, ["lo"]);
        assert_eq!(seen.1, ["lo", "an1", "an0"]);
        assert_eq!(seen.2, ["lo"], "deleting one end of a pair deletes both");
    }

    /// Without announcements (the recorded answers stand in for the kernel), the
    /// whole links are dumped every cycle: names and counters together.
    #[test]
    fn without_announcements_whole_links_are_read() {
        const LINKS: &[u8] = include_bytes!("../../netlink/fixtures/links.bin");
        let netlink = Netlink::replaying(|name, _| (name == "RTM_GETLINK").then_some(LINKS));
        let mut reader = Reader::new(netlink);
        assert_eq!(names(&mut reader), ["lo", "ifb0", "ifb1", "eth0"]);
        assert!(reader.mode == Mode::WholeLinks);
    }
}
