//! A small blocking D-Bus client: what the systemd collector needs, and nothing more.
//!
//! The agent is a static musl binary, so libdbus and sd-bus are out. This module is
//! its own implementation of the parts of the D-Bus specification a client calling
//! methods needs:
//!
//! - [`wire`]: marshalling of every type (little-endian out, either byte order in),
//!   with alignment, padding, lengths and nesting checked on the way in;
//! - [`signature`]: type signatures and their limits;
//! - [`message`]: the header and its fields;
//! - [`address`]: bus addresses (`DBUS_SYSTEM_BUS_ADDRESS`);
//! - [`connection`]: a Unix socket, SASL `EXTERNAL`, `Hello`, calls matched to
//!   replies by serial, pipelined property reads, every wait bounded by a deadline.
//!
//! Why not a crate. zbus is async (an executor the agent does not have); dbus-rs wraps
//! libdbus (C). rustbus 0.19.3 is pure Rust and blocking, but its connect and its
//! SASL exchange block without a timeout (a hung server holds the loop thread), and
//! it sends `BEGIN` and the first call back to back, which systemd 252's private
//! socket never answers (see [`connection`]). It also brings a second nix (0.26) and
//! thiserror. Measured once, as static musl release builds with the agent's profile
//! (opt-level z, LTO, panic=abort, strip), a program making one `Properties.Get` on
//! the system bus: 377,400 B doing nothing, 438,832 B with this module (+60 KiB),
//! 471,600 B with rustbus (+92 KiB). This module with the systemd collector adds
//! 73,720 B (72 KiB) to a binary that already links regex-lite, as the agent does.
//!
//! Not supported, on purpose: file descriptor passing, being called (incoming method
//! calls are dropped unanswered), signals and match rules, transports other than
//! Unix sockets, and authentication other than `EXTERNAL`.
//!
//! [`parse_message`] is the entry point for fuzzing: any bytes, never a panic.

pub mod address;
pub mod connection;
pub mod message;
pub mod signature;
pub mod wire;

pub use address::{Address, Endpoint};
pub use connection::{Call, Connection, Property, MAX_MESSAGE_BYTES};
pub use message::{Kind, Message};
pub use wire::{DecodeError, Reader, Value};

use std::fmt;
use std::io;

/// What went wrong talking D-Bus.
#[derive(Debug)]
pub enum Error {
    /// No connection could be made (no socket: no bus or no systemd here).
    Connect { address: String, source: io::Error },
    /// The server refused authentication.
    Auth(String),
    /// The peer closed the connection (EOF).
    Closed { peer: String, doing: &'static str },
    /// Reading or writing the socket failed (EPIPE, ECONNRESET, ...).
    Io {
        peer: String,
        doing: &'static str,
        source: io::Error,
    },
    /// The deadline passed.
    Timeout { peer: String, doing: &'static str },
    /// Bytes that are not a valid message.
    Malformed(DecodeError),
    /// The peer answered with an error.
    Remote { name: String, message: String },
    /// A well-formed reply of another type than the call has.
    Unexpected(String),
}

impl Error {
    /// Whether the connection is still usable after this error: the exchange was
    /// complete and only its content was wrong. After any other error it must be
    /// dropped.
    pub fn keeps_connection(&self) -> bool {
        matches!(self, Error::Remote { .. } | Error::Unexpected(_))
    }

    /// Whether the connection broke after it was established (the peer restarted,
    /// closed it or reset it): worth one retry on a new connection.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Error::Closed { .. } | Error::Io { .. })
    }

    /// Whether no connection could be made at all.
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            Error::Auth(why) => f.write_str(why),
            Error::Closed { peer, doing } => write!(f, "{peer} closed the connection ({doing})"),
            Error::Io {
                peer,
                doing,
                source,
            } => write!(f, "{peer}: {doing}: {source}"),
            Error::Timeout { peer, doing } => write!(f, "{peer}: timed out {doing}"),
            Error::Malformed(e) => write!(f, "malformed message: {e}"),
            Error::Remote { name, message } if message.is_empty() => f.write_str(name),
            Error::Remote { name, message } => write!(f, "{name}: {message}"),
            Error::Unexpected(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Malformed(e)
    }
}

/// Parses `bytes` as exactly one message and checks its body against its signature.
/// Never panics, whatever the bytes; for fuzzing.
pub fn parse_message(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let prefix = bytes
        .get(..message::PREFIX_BYTES)
        .ok_or_else(|| DecodeError {
            offset: bytes.len(),
            what: format!("{} bytes are shorter than a message header", bytes.len()),
        })?;
    let length = message::frame_length(prefix, MAX_MESSAGE_BYTES)?;
    if length != bytes.len() {
        return Err(DecodeError {
            offset: 4,
            what: format!(
                "the header gives a {length}-byte message, but there are {} bytes",
                bytes.len()
            ),
        });
    }
    let message = Message::parse(bytes)?;
    message.check_body()?;
    Ok(message)
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;
