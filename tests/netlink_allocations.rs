//! In netlink mode a steady-state cycle of netdev and netclass allocates nothing:
//! the shared sockets, receive buffers, the interface table, parsed slots, names
//! and the batch are all kept from cycle to cycle. Counted by a global allocator,
//! per thread, on this machine's interfaces.

use sc_agent::batch::Batch;
use sc_agent::collector::netclass::Netclass;
use sc_agent::collector::netdev::Netdev;
use sc_agent::collector::{Collector, NetSource};
use sc_agent::config::Filter;
use sc_agent::netlink::Netlink;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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

#[test]
fn a_steady_state_cycle_allocates_nothing() {
    let (proc, sys) = (Path::new("/proc"), Path::new("/sys"));
    // One set of sockets for both, as the agent's registry shares them.
    let netlink = Netlink::default();
    let mut collectors: [Box<dyn Collector>; 2] = [
        Box::new(Netdev::new(
            proc,
            sys,
            Filter::default(),
            NetSource::Netlink,
            netlink.clone(),
        )),
        Box::new(Netclass::new(
            sys,
            Filter::default(),
            NetSource::Netlink,
            netlink,
        )),
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
    assert!(allocations() > start, "the first cycle sets its buffers up");
    for _ in 0..2 {
        cycle(&mut batch);
    }
    let series = batch.len();
    assert!(series > 20, "{series} series");
    let before = allocations();
    for _ in 0..20 {
        cycle(&mut batch);
    }
    assert_eq!(allocations() - before, 0, "allocations in 20 cycles");
    assert_eq!(batch.len(), series);
}
