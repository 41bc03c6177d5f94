//! The text-format parser (`sc_agent::exposition`), the agent's own attack surface
//! (textfiles, later local exporters). The body is the parser's own fuzz entry
//! point, which its unit tests also drive with truncations and random edits: parsed
//! twice into one reused document, any input parses or fails with an error, never
//! panics, and a failed parse leaves the document empty.

pub fn run(data: &[u8]) {
    sc_agent::exposition::fuzz(data);
}
