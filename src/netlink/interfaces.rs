//! The network interfaces by index: their names, and a generation number that
//! changes whenever the kernel announces a change of the interface.
//!
//! Answers about counters (`RTM_GETSTATS`) and neighbours (`RTM_GETNEIGH`) name an
//! interface by index only; netdev and arp need its name. netclass keeps the few
//! attributes only sysfs has and must know when an interface changed. One table
//! serves the three: filled by one `RTM_GETLINK` dump, then kept by the kernel's
//! `RTNLGRP_LINK` announcements (an interface added, changed, renamed or removed),
//! read before each use, so any interface in an answer got before the read was
//! announced by then. When announcements were lost (the socket's queue overflowed,
//! or one did not parse) the table is dumped again and every generation moves.
//! Where the announcements cannot be subscribed to, the table is dumped at each
//! use and generations move every time (nothing may be kept).
//!
//! Steady state allocates nothing: the entries and the dump's slots are kept.

use super::link::{Announcement, Links, Name};
use super::shared::Backend;
use super::socket::Protocol;
use super::{Error, Events};

/// The interface table; reached through [`super::Netlink::interfaces`].
pub struct Interfaces {
    subscription: Subscription,
    /// Sorted by index.
    entries: Vec<Entry>,
    /// The entries no longer follow the kernel: dump them again before use.
    stale: bool,
    /// The last generation handed out.
    generation: u64,
    /// The dump that fills the table.
    links: Links,
}

enum Subscription {
    NotYet,
    Open(Events),
    /// Refused (a namespace or sandbox where the groups cannot be joined).
    Refused,
}

#[derive(Clone, Copy)]
struct Entry {
    index: i32,
    name: Name,
    generation: u64,
}

impl Default for Interfaces {
    fn default() -> Self {
        Interfaces {
            subscription: Subscription::NotYet,
            entries: Vec::new(),
            stale: true,
            generation: 0,
            links: Links::without_stats(),
        }
    }
}

impl Interfaces {
    /// The name of interface `index`, when it exists and is UTF-8.
    pub fn name(&self, index: i32) -> Option<&str> {
        self.entry(index).and_then(|e| e.name.as_str())
    }

    /// A number that is the same as long as the kernel announced no change of
    /// interface `index` (a new address, a rename, a state change), or `None`
    /// when the interface is not in the table. Only meaningful where
    /// [`super::Netlink::tracks_links`] is true.
    pub fn generation(&self, index: i32) -> Option<u64> {
        self.entry(index).map(|e| e.generation)
    }

    fn entry(&self, index: i32) -> Option<&Entry> {
        let at = self
            .entries
            .binary_search_by_key(&index, |e| e.index)
            .ok()?;
        self.entries.get(at)
    }

    /// Subscribes to the announcements if not tried yet; whether they are followed.
    pub(super) fn subscribe(&mut self, backend: &Backend) -> bool {
        if matches!(self.subscription, Subscription::NotYet) {
            self.subscription = if backend.is_kernel() {
                match Events::links() {
                    Ok(events) => Subscription::Open(events),
                    Err(e) => {
                        log::info!("netlink: {e}; interfaces are dumped at each use");
                        Subscription::Refused
                    }
                }
            } else {
                Subscription::Refused
            };
        }
        matches!(self.subscription, Subscription::Open(_))
    }

    /// Applies what the kernel announced since the last call; dumps the table
    /// again when it is stale, announcements were lost, or there are none.
    pub(super) fn update(&mut self, backend: &mut Backend) -> Result<(), Error> {
        if !self.subscribe(backend) {
            self.stale = true;
        } else if !self.stale {
            self.apply_announcements();
        }
        if self.stale {
            self.refresh(backend)?;
        }
        Ok(())
    }

    fn apply_announcements(&mut self) {
        let Subscription::Open(events) = &mut self.subscription else {
            self.stale = true;
            return;
        };
        let (entries, generation) = (&mut self.entries, &mut self.generation);
        let mut parsed = true;
        let drained = events.drain(|message| match Announcement::parse(message) {
            Some(Ok(Announcement::Named(index, name))) => {
                *generation += 1;
                let entry = Entry {
                    index,
                    name,
                    generation: *generation,
                };
                match entries.binary_search_by_key(&index, |e| e.index) {
                    Ok(at) => {
                        if let Some(slot) = entries.get_mut(at) {
                            *slot = entry;
                        }
                    }
                    Err(at) => entries.insert(at, entry),
                }
            }
            Some(Ok(Announcement::Removed(index))) => entries.retain(|e| e.index != index),
            Some(Err(_)) => parsed = false,
            None => {}
        });
        match drained {
            Ok(complete) => self.stale = !(complete && parsed),
            Err(e) => {
                // The subscription is broken: subscribe afresh at the next use.
                log::debug!("netlink: {e}; subscribing to link announcements again");
                self.subscription = Subscription::NotYet;
                self.stale = true;
            }
        }
    }

    /// Dumps the table afresh. Announcements queued before are dropped: the dump
    /// is newer; those that come during it are newer still, and apply on top.
    fn refresh(&mut self, backend: &mut Backend) -> Result<(), Error> {
        if let Subscription::Open(events) = &mut self.subscription {
            if events.drain(|_| {}).is_err() {
                self.subscription = Subscription::NotYet;
            }
        }
        backend.dump(Protocol::Route, &mut self.links)?;
        self.generation += 1;
        let generation = self.generation;
        self.entries.clear();
        self.entries
            .extend(self.links.as_slice().iter().map(|link| Entry {
                index: link.index,
                name: *link.name_value(),
                generation,
            }));
        self.entries.sort_unstable_by_key(|e| e.index);
        self.stale = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::netlink::Netlink;
    use sc_agent_testkit::netns::{in_new_netns, ip, ip_batch};

    /// Names of interfaces 1..=count, and their generations.
    fn table(netlink: &Netlink, count: i32) -> Vec<(Option<String>, Option<u64>)> {
        netlink
            .interfaces(|t| {
                (1..=count)
                    .map(|i| (t.name(i).map(str::to_owned), t.generation(i)))
                    .collect()
            })
            .unwrap()
    }

    #[test]
    fn names_and_generations_follow_the_announcements() {
        let seen = in_new_netns(|| {
            let netlink = Netlink::default();
            assert_eq!(netlink.tracks_links(), Ok(true));
            let first = table(&netlink, 3);
            ip("link add an0 type veth peer name an1");
            let added = table(&netlink, 3);
            let idle = table(&netlink, 3);
            ip("link set an0 name an9");
            ip("link set an1 address 02:00:00:00:00:09");
            let changed = table(&netlink, 3);
            ip("link del an1");
            let removed = table(&netlink, 3);
            (first, added, idle, changed, removed)
        });
        let names = |t: &[(Option<String>, Option<u64>)]| {
            t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(names(&seen.0), [some("lo"), None, None]);
        assert_eq!(names(&seen.1), [some("lo"), some("an1"), some("an0")]);
        assert_eq!(seen.2, seen.1, "nothing announced, nothing moves");
        assert_eq!(names(&seen.3), [some("lo"), some("an1"), some("an9")]);
        assert_eq!(seen.3[0].1, seen.1[0].1, "lo did not change");
        assert_ne!(seen.3[1].1, seen.1[1].1, "an1 got an address");
        assert_ne!(seen.3[2].1, seen.1[2].1, "an0 was renamed");
        assert_eq!(names(&seen.4), [some("lo"), None, None], "both ends go");
    }

    #[test]
    fn lost_announcements_make_it_dump_the_table_again() {
        let (count, before, after) = in_new_netns(|| {
            let netlink = Netlink::default();
            let before = table(&netlink, 1)[0].1;
            // More changes than the announcement queue holds.
            let script: String = (0..300)
                .map(|n| format!("link add lx{n} type veth peer name ly{n}\n"))
                .collect();
            ip_batch(&script);
            let count = netlink
                .interfaces(|t| (1..700).filter(|&i| t.name(i).is_some()).count())
                .unwrap();
            (count, before, table(&netlink, 1)[0].1)
        });
        assert_eq!(count, 601);
        assert_ne!(before, after, "dumped again: every generation moved");
    }
}
