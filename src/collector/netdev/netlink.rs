//! netdev over netlink: the counters of every interface from one `RTM_GETSTATS`
//! dump a cycle (only `IFLA_STATS_LINK_64`: a tenth of what an `RTM_GETLINK` dump
//! costs the kernel), and the names, which that answer lacks, from a table kept by
//! interface index.
//!
//! The table is filled by one `RTM_GETLINK` dump at the start and then kept by the
//! kernel's `RTNLGRP_LINK` announcements (every interface added, renamed or
//! removed), read after each counter dump: any interface in the answer was
//! announced before the dump ran. When announcements were lost (the socket's queue
//! overflowed) the table is dumped again. A kernel without `RTM_GETSTATS` (before
//! 4.7), or a namespace where the announcements cannot be subscribed to, gets a
//! whole `RTM_GETLINK` dump a cycle instead, names and counters together.

use crate::netlink::link::{Announcement, Counters, Links, Name, Stats64};
use crate::netlink::socket::Protocol;
use crate::netlink::{Error, Events, Socket};
use nix::errno::Errno;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing opened yet.
    Start,
    /// `RTM_GETSTATS` and the kept names.
    Counters,
    /// One `RTM_GETLINK` dump a cycle.
    WholeLinks,
}

pub(super) struct Reader {
    mode: Mode,
    socket: Socket,
    counters: Counters,
    events: Option<Events>,
    /// Interface names by index, sorted by index.
    names: Vec<(i32, Name)>,
    names_stale: bool,
    /// The dump that fills `names` (without counters), or, in `WholeLinks`, the
    /// dump of a cycle.
    links: Links,
}

impl Reader {
    pub(super) fn new() -> Self {
        Reader {
            mode: Mode::Start,
            socket: Socket::new(Protocol::Route),
            counters: Counters::default(),
            events: None,
            names: Vec::new(),
            names_stale: true,
            links: Links::without_stats(),
        }
    }

    /// Opens the route socket if it is not open: an error that
    /// [`Error::is_unavailable`] means there is no netlink here.
    pub(super) fn connect(&mut self) -> Result<(), Error> {
        self.socket.connect()
    }

    /// Hands each interface's name and counters to `each`, in the kernel's order.
    /// Interfaces whose name is not UTF-8 are skipped.
    pub(super) fn read(&mut self, mut each: impl FnMut(&str, &Stats64)) -> Result<(), Error> {
        if self.mode == Mode::Start {
            self.socket.connect()?;
            self.mode = match Events::links() {
                Ok(events) => {
                    self.events = Some(events);
                    Mode::Counters
                }
                Err(e) => {
                    log::info!("netdev: {e}; dumping whole links every cycle");
                    self.whole_links()
                }
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
                    self.mode = self.whole_links();
                }
                other => return other,
            }
        }
        self.socket.dump(&mut self.links)?;
        for link in self.links.as_slice() {
            if let (Some(name), Some(stats)) = (link.name(), &link.stats) {
                each(name, stats);
            }
        }
        Ok(())
    }

    fn whole_links(&mut self) -> Mode {
        self.events = None;
        self.names = Vec::new();
        self.links = Links::default();
        Mode::WholeLinks
    }

    fn read_counters(&mut self, each: &mut impl FnMut(&str, &Stats64)) -> Result<(), Error> {
        if self.names_stale {
            self.refresh_names()?;
        }
        self.socket.dump(&mut self.counters)?;
        if !self.apply_announcements()? {
            self.refresh_names()?;
        }
        for entry in self.counters.as_slice() {
            let at = self.names.binary_search_by_key(&entry.index, |(i, _)| *i);
            let name = at.ok().and_then(|at| self.names.get(at));
            // None: removed since the dump.
            if let Some(name) = name.and_then(|(_, name)| name.as_str()) {
                each(name, &entry.stats);
            }
        }
        Ok(())
    }

    /// Dumps the names afresh. Announcements queued before are dropped: the dump
    /// is newer; those that come during it are newer still, and apply on top.
    fn refresh_names(&mut self) -> Result<(), Error> {
        if let Some(events) = &mut self.events {
            events.drain(|_| {})?;
        }
        self.socket.dump(&mut self.links)?;
        self.names.clear();
        for link in self.links.as_slice() {
            self.names.push((link.index, *link.name_value()));
        }
        self.names.sort_unstable_by_key(|(index, _)| *index);
        self.names_stale = false;
        Ok(())
    }

    /// Applies the queued announcements; `false` when some were lost.
    fn apply_announcements(&mut self) -> Result<bool, Error> {
        let Some(events) = &mut self.events else {
            return Ok(false);
        };
        let names = &mut self.names;
        let mut parsed = true;
        let complete = events.drain(|message| match Announcement::parse(message) {
            Some(Ok(Announcement::Named(index, name))) => {
                match names.binary_search_by_key(&index, |(i, _)| *i) {
                    Ok(at) => {
                        if let Some(slot) = names.get_mut(at) {
                            slot.1 = name;
                        }
                    }
                    Err(at) => names.insert(at, (index, name)),
                }
            }
            Some(Ok(Announcement::Removed(index))) => {
                names.retain(|(i, _)| *i != index);
            }
            Some(Err(_)) => parsed = false,
            None => {}
        })?;
        Ok(complete && parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{in_new_netns, ip};

    fn names(reader: &mut Reader) -> Vec<String> {
        let mut out = Vec::new();
        reader.read(|name, _| out.push(name.to_owned())).unwrap();
        out
    }

    #[test]
    fn names_follow_the_announcements() {
        let seen = in_new_netns(|| {
            let mut reader = Reader::new();
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

    #[test]
    fn lost_announcements_make_it_dump_the_names_again() {
        let seen = in_new_netns(|| {
            let mut reader = Reader::new();
            names(&mut reader);
            // More changes than the announcement queue holds.
            let batch: String = (0..300)
                .map(|n| format!("link add lx{n} type veth peer name ly{n}\n"))
                .collect();
            let path = std::env::temp_dir().join(format!("sc-agent-lx-{}", std::process::id()));
            std::fs::write(&path, batch).unwrap();
            ip(&format!("-batch {}", path.display()));
            let _ = std::fs::remove_file(&path);
            names(&mut reader).len()
        });
        assert_eq!(seen, 601);
    }
}
