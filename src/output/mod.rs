//! Where a finished batch goes: remote write, or text on stdout.

pub mod text;

use crate::batch::Batch;
use crate::config::Config;
use std::io::{self, Write};

pub enum Output {
    /// Exposition text on stdout, one full exposition per cycle.
    Stdout { buf: Vec<u8> },
}

impl Output {
    pub fn from_config(_config: &Config) -> Self {
        Output::stdout()
    }

    pub fn stdout() -> Self {
        Output::Stdout { buf: Vec::new() }
    }

    pub fn write(&mut self, batch: &Batch) -> io::Result<()> {
        match self {
            Output::Stdout { buf } => {
                buf.clear();
                text::write(batch, buf);
                let mut stdout = io::stdout().lock();
                stdout.write_all(buf)?;
                stdout.flush()
            }
        }
    }
}
