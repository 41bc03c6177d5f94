//! The netlink parsers (`sc_agent::netlink`): arbitrary bytes as the answer to
//! every kind of dump the agent asks for (links, counters, neighbours, TCP sockets,
//! ethtool link modes and the family lookup) and as link announcements must parse
//! or fail with an error naming the message and offset, never panic. Seeded with
//! this machine's recorded answers (src/netlink/fixtures/).

pub fn run(data: &[u8]) {
    sc_agent::netlink::fuzz_parse(data);
}
