//! In netlink mode a steady-state cycle of netdev, netclass, arp and tcpstat
//! allocates nothing: the shared sockets, receive buffers, the interface table,
//! parsed slots, names and the batch are all kept from cycle to cycle. Counted by
//! a global allocator, per thread, in a network namespace of the test's (so that
//! nothing another process does changes what there is to read): interfaces up
//! and down, neighbours in several states, TCP sockets over IPv4 and IPv6.

use sc_agent::batch::Batch;
use sc_agent::collector::arp::Arp;
use sc_agent::collector::netclass::Netclass;
use sc_agent::collector::netdev::Netdev;
use sc_agent::collector::tcpstat::Tcpstat;
use sc_agent::collector::{Collector, NetSource};
use sc_agent::config::Filter;
use sc_agent::netlink::Netlink;
use sc_agent_testkit::netns::{in_new_netns_with_sysfs, ip};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::path::Path;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Fills the namespace; returns the sockets to hold open.
fn populate() -> (Vec<TcpListener>, Vec<TcpStream>) {
    for step in [
        "link set lo up",
        "link add al0 type veth peer name al1",
        "link set al0 up",
        "link set al1 up",
        "addr add 198.51.100.1/24 dev al0",
        "neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev al0 nud permanent",
        "neigh add 198.51.100.3 lladdr 02:00:00:00:00:03 dev al0 nud stale",
        "link add al2 type veth peer name al3",
    ] {
        ip(step);
    }
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let client = TcpStream::connect(v4.local_addr().unwrap()).unwrap();
    let (server, _) = v4.accept().unwrap();
    let client6 = TcpStream::connect(v6.local_addr().unwrap()).unwrap();
    (vec![v4, v6], vec![client, server, client6])
}

#[test]
fn a_steady_state_cycle_allocates_nothing() {
    let (first, steady, series) = in_new_netns_with_sysfs(|sys| {
        let _sockets = populate();
        let proc = Path::new("/proc");
        // One set of sockets for all, as the agent's registry shares them.
        let netlink = Netlink::default();
        let filter = Filter::default;
        let mut collectors: [Box<dyn Collector>; 4] = [
            Box::new(Netdev::new(
                proc,
                sys,
                filter(),
                NetSource::Netlink,
                netlink.clone(),
            )),
            Box::new(Netclass::new(
                sys,
                filter(),
                NetSource::Netlink,
                netlink.clone(),
            )),
            Box::new(Arp::new(
                proc,
                filter(),
                NetSource::Netlink,
                netlink.clone(),
            )),
            Box::new(Tcpstat::new(proc, netlink)),
        ];
        let mut batch = Batch::new();
        let mut cycle = |batch: &mut Batch| {
            batch.begin(0);
            for collector in &mut collectors {
                collector.collect(batch).expect("collect");
            }
        };
        let start = allocations();
        cycle(&mut batch);
        let first = allocations() - start;
        for _ in 0..2 {
            cycle(&mut batch);
        }
        let series = batch.len();
        let before = allocations();
        for _ in 0..20 {
            cycle(&mut batch);
            assert_eq!(batch.len(), series, "nothing changed in the namespace");
        }
        (first, allocations() - before, series)
    });
    assert!(first > 0, "the first cycle sets its buffers up");
    // 5 interfaces, 2 neighbours, 3 socket states.
    assert!(series > 100, "{series} series");
    assert_eq!(steady, 0, "allocations in 20 cycles");
}
