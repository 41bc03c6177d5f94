//! D-Bus server addresses: `unix:path=/run/dbus/system_bus_socket`, as the
//! `DBUS_SYSTEM_BUS_ADDRESS` variable gives them.
//!
//! An address string is a `;`-separated list of `transport:key=value,...` entries,
//! values percent-escaped; a client tries them in order. Only the transports a
//! client can connect to over a Unix socket are taken: `unix:path=` and
//! `unix:abstract=`. The others (`tcp:`, `unixexec:`, `launchd:`, the listen-only
//! `unix:dir=`/`unix:tmpdir=`/`unix:runtime=`) are skipped.

use std::fmt;
use std::path::PathBuf;

/// Where the system bus listens when `DBUS_SYSTEM_BUS_ADDRESS` is unset.
pub const SYSTEM_BUS_DEFAULT: &str = "unix:path=/run/dbus/system_bus_socket";

/// The environment variable naming the system bus.
pub const SYSTEM_BUS_VARIABLE: &str = "DBUS_SYSTEM_BUS_ADDRESS";

/// systemd's own D-Bus server: peer-to-peer, no bus daemon, root only.
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";

/// A Unix socket to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Path(PathBuf),
    /// A name in Linux's abstract socket namespace (without the leading NUL).
    Abstract(Vec<u8>),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Path(path) => write!(f, "unix:path={}", path.display()),
            Address::Abstract(name) => {
                write!(f, "unix:abstract={}", String::from_utf8_lossy(name))
            }
        }
    }
}

/// A server to connect to: a bus daemon, which wants `Hello` first, or a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub address: Address,
    pub bus: bool,
}

impl Endpoint {
    pub fn bus(address: Address) -> Self {
        Endpoint { address, bus: true }
    }

    pub fn peer(address: Address) -> Self {
        Endpoint {
            address,
            bus: false,
        }
    }

    /// The system bus: `DBUS_SYSTEM_BUS_ADDRESS` when set, else the default path.
    pub fn system_bus() -> Result<Vec<Endpoint>, String> {
        let text = std::env::var(SYSTEM_BUS_VARIABLE)
            .ok()
            .filter(|text| !text.is_empty());
        let text = text.as_deref().unwrap_or(SYSTEM_BUS_DEFAULT);
        let addresses = parse(text).map_err(|e| format!("{SYSTEM_BUS_VARIABLE}: {e}"))?;
        Ok(addresses.into_iter().map(Endpoint::bus).collect())
    }

    /// systemd's private socket.
    pub fn systemd_private() -> Self {
        Endpoint::peer(Address::Path(SYSTEMD_PRIVATE.into()))
    }
}

/// The addresses a client can connect to in `text`, in order. An error when there
/// is none, naming why each entry was skipped.
pub fn parse(text: &str) -> Result<Vec<Address>, String> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for entry in text.split(';').filter(|e| !e.is_empty()) {
        match parse_entry(entry) {
            Ok(address) => found.push(address),
            Err(why) => skipped.push(format!("{entry:?}: {why}")),
        }
    }
    if found.is_empty() {
        if skipped.is_empty() {
            return Err(format!("no D-Bus address in {text:?}"));
        }
        return Err(format!("no usable D-Bus address: {}", skipped.join("; ")));
    }
    Ok(found)
}

fn parse_entry(entry: &str) -> Result<Address, String> {
    let (transport, params) = entry
        .split_once(':')
        .ok_or("expected transport:key=value")?;
    if transport != "unix" {
        return Err(format!("transport {transport:?} is not supported"));
    }
    let mut address = None;
    for pair in params.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or("expected key=value")?;
        let value = unescape(value)?;
        let this = match key {
            "path" => Address::Path(PathBuf::from(
                String::from_utf8(value).map_err(|_| "path is not UTF-8")?,
            )),
            "abstract" => Address::Abstract(value),
            "guid" => continue,
            other => return Err(format!("unix key {other:?} is not one a client can use")),
        };
        if address.replace(this).is_some() {
            return Err("both path and abstract".into());
        }
    }
    address.ok_or_else(|| "no path or abstract key".into())
}

/// Undoes the percent-escaping of an address value.
fn unescape(value: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        let hex = [bytes.next(), bytes.next()];
        let digit = |d: Option<u8>| d.and_then(|d| char::from(d).to_digit(16));
        match (digit(hex[0]), digit(hex[1])) {
            (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
            _ => return Err(format!("bad percent escape in {value:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_unix_paths_and_abstract_names_in_order() {
        assert_eq!(
            parse(SYSTEM_BUS_DEFAULT),
            Ok(vec![Address::Path("/run/dbus/system_bus_socket".into())])
        );
        assert_eq!(
            parse(
                "tcp:host=localhost,port=1;unix:abstract=/tmp/dbus-X%2cY,guid=abc;unix:path=/a%20b"
            ),
            Ok(vec![
                Address::Abstract(b"/tmp/dbus-X,Y".to_vec()),
                Address::Path("/a b".into()),
            ])
        );
        assert_eq!(
            Address::Path("/run/x".into()).to_string(),
            "unix:path=/run/x"
        );
    }

    #[test]
    fn says_why_nothing_is_usable() {
        assert_eq!(parse(""), Err("no D-Bus address in \"\"".into()));
        let err =
            parse("tcp:host=h;unix:dir=/tmp;unix:path=%zz;unix:path=/a,abstract=b").unwrap_err();
        assert!(err.contains("transport \"tcp\" is not supported"), "{err}");
        assert!(
            err.contains("unix key \"dir\" is not one a client can use"),
            "{err}"
        );
        assert!(err.contains("bad percent escape in \"%zz\""), "{err}");
        assert!(err.contains("both path and abstract"), "{err}");
    }
}
