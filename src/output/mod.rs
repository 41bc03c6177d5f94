//! Where a finished batch goes: remote write, or text on stdout.

pub mod text;

use crate::config::Config;
use crate::relabel::Selected;
use crate::remote_write::RemoteWrite;
use std::io::{self, Write};

pub enum Output {
    /// Exposition text on stdout, one full exposition per cycle.
    Stdout { buf: Vec<u8> },
    /// Remote write: the batch is encoded and queued for the sender thread. The
    /// [`RemoteWrite`] itself belongs to the agent, as it outlives reloads.
    RemoteWrite,
}

impl Output {
    pub fn from_config(config: &Config) -> Self {
        if config.prints_to_stdout() {
            Output::Stdout { buf: Vec::new() }
        } else {
            Output::RemoteWrite
        }
    }

    /// Writes what the relabel stage selected of the cycle's batch.
    pub fn write(&mut self, batch: &Selected<'_>, remote: &mut RemoteWrite) -> io::Result<()> {
        match self {
            Output::Stdout { buf } => {
                buf.clear();
                text::write_selected(batch, buf);
                let mut stdout = io::stdout().lock();
                stdout.write_all(buf)?;
                stdout.flush()
            }
            Output::RemoteWrite => {
                remote.push(batch);
                Ok(())
            }
        }
    }
}
