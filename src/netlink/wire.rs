//! The netlink wire format: message headers, attributes and requests, read from and
//! written to plain byte slices with every length checked.
//!
//! Everything here is native-endian, as netlink is (the socket never leaves the
//! machine). A message is a 16-byte `nlmsghdr` followed by its payload, padded to 4
//! bytes; a payload is a fixed header (`ifinfomsg`, `ndmsg`, ...) followed by
//! attributes, each a 4-byte `rtattr`/`nlattr` header (length, type) and data, also
//! padded to 4 bytes. Offsets in errors count from the start of the whole answer, so
//! they point into a recorded dump file as they point into the datagrams.

use super::Error;

/// `sizeof(struct nlmsghdr)`.
pub const HEADER_LEN: usize = 16;
/// `sizeof(struct nlattr)` (and `struct rtattr`).
const ATTR_HEADER_LEN: usize = 4;
/// `NLA_TYPE_MASK`: the attribute type without `NLA_F_NESTED` and
/// `NLA_F_NET_BYTEORDER`.
const ATTR_TYPE_MASK: u16 = 0x3fff;
/// `NLA_F_NESTED`: marks an attribute holding attributes; families that validate
/// strictly (ethtool) refuse a nested attribute without it.
const NLA_F_NESTED: u16 = 0x8000;

// Message types and flags of <linux/netlink.h>.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub const NLM_F_DUMP: u16 = 0x300;

/// Rounds `len` up to netlink's 4-byte alignment (`NLMSG_ALIGN`, `NLA_ALIGN`).
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A `u16`, `u32` or `u64` at `at`, if the bytes are there.
pub fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

pub fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    u32_at(bytes, at).map(|v| v as i32)
}

/// The fields of an `nlmsghdr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
}

/// One message of an answer.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    pub header: Header,
    /// What follows the header, without the padding after it.
    pub payload: &'a [u8],
    /// Where the message starts, counted from the start of the answer.
    pub offset: usize,
}

impl<'a> Message<'a> {
    /// The payload's fixed header of `len` bytes (`ifinfomsg`, ...), then its
    /// attributes; an error naming `name` when the payload is shorter.
    pub fn split(&self, name: &'static str, len: usize) -> Result<(&'a [u8], Attrs<'a>), Error> {
        let fixed = self.payload.get(..len).ok_or_else(|| {
            Error::malformed(
                name,
                self.offset,
                format!(
                    "payload of {} bytes, shorter than its {len}-byte header",
                    self.payload.len()
                ),
            )
        })?;
        // The attributes start at the aligned end of the fixed header.
        let rest = self.payload.get(align(len)..).unwrap_or(&[]);
        let base = self.offset + HEADER_LEN + align(len);
        Ok((fixed, Attrs::new(name, rest, base)))
    }
}

/// The messages of one datagram (or of a recorded answer), in order.
pub struct Messages<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The offset of `bytes` in the whole answer.
    base: usize,
}

impl<'a> Messages<'a> {
    pub fn new(bytes: &'a [u8], base: usize) -> Self {
        Messages { bytes, at: 0, base }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.at..).filter(|r| !r.is_empty())?;
        let offset = self.base + self.at;
        let header = match parse_header(rest) {
            Some(header) => header,
            None => {
                self.at = self.bytes.len();
                return Some(Err(Error::malformed(
                    "nlmsghdr",
                    offset,
                    format!("{} bytes left, too few for a message header", rest.len()),
                )));
            }
        };
        let len = header.len as usize;
        if len < HEADER_LEN || len > rest.len() {
            self.at = self.bytes.len();
            return Some(Err(Error::malformed(
                "nlmsghdr",
                offset,
                format!(
                    "message of type {} claims {len} bytes, but {} are left",
                    header.kind,
                    rest.len()
                ),
            )));
        }
        self.at += align(len).min(rest.len());
        Some(Ok(Message {
            header,
            payload: rest.get(HEADER_LEN..len).unwrap_or(&[]),
            offset,
        }))
    }
}

fn parse_header(bytes: &[u8]) -> Option<Header> {
    Some(Header {
        len: u32_at(bytes, 0)?,
        kind: u16_at(bytes, 4)?,
        flags: u16_at(bytes, 6)?,
        seq: u32_at(bytes, 8)?,
        port: u32_at(bytes, 12)?,
    })
}

/// One attribute.
#[derive(Clone, Copy, Debug)]
pub struct Attr<'a> {
    /// The type, without the nested and byte-order flags.
    pub kind: u16,
    pub data: &'a [u8],
    /// Where the attribute starts in the whole answer.
    pub offset: usize,
    /// The message it belongs to, for errors.
    message: &'static str,
}

impl<'a> Attr<'a> {
    /// An error about this attribute, which `name` names (`IFLA_MTU`).
    pub fn error(&self, name: &str, problem: impl std::fmt::Display) -> Error {
        Error::malformed(self.message, self.offset, format!("{name}: {problem}"))
    }

    fn exact<const N: usize>(&self, name: &str) -> Result<[u8; N], Error> {
        self.data.try_into().map_err(|_| {
            self.error(
                name,
                format_args!("{} bytes, expected {N}", self.data.len()),
            )
        })
    }

    pub fn u8(&self, name: &str) -> Result<u8, Error> {
        self.exact::<1>(name).map(|[b]| b)
    }

    pub fn u16(&self, name: &str) -> Result<u16, Error> {
        self.exact(name).map(u16::from_ne_bytes)
    }

    pub fn u32(&self, name: &str) -> Result<u32, Error> {
        self.exact(name).map(u32::from_ne_bytes)
    }

    /// A NUL-terminated string: the bytes before the first NUL. An attribute with
    /// no NUL is taken whole.
    pub fn c_str(&self) -> &'a [u8] {
        let end = self.data.iter().position(|&b| b == 0);
        self.data
            .get(..end.unwrap_or(self.data.len()))
            .unwrap_or(&[])
    }

    /// The attributes nested inside this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.message, self.data, self.offset + ATTR_HEADER_LEN)
    }
}

/// The attributes of a payload (or of a nested attribute), in order. An attribute
/// longer than what is left of its container is an error; fewer than 4 bytes after
/// the last attribute are padding.
#[derive(Debug)]
pub struct Attrs<'a> {
    message: &'static str,
    bytes: &'a [u8],
    at: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    pub fn new(message: &'static str, bytes: &'a [u8], base: usize) -> Self {
        Attrs {
            message,
            bytes,
            at: 0,
            base,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self
            .bytes
            .get(self.at..)
            .filter(|r| r.len() >= ATTR_HEADER_LEN)?;
        let offset = self.base + self.at;
        let (len, kind) = (u16_at(rest, 0)? as usize, u16_at(rest, 2)?);
        if len < ATTR_HEADER_LEN || len > rest.len() {
            self.at = self.bytes.len();
            return Some(Err(Error::malformed(
                self.message,
                offset,
                format!(
                    "attribute of type {kind} claims {len} bytes, but {} are left in its container",
                    rest.len()
                ),
            )));
        }
        self.at += align(len).min(rest.len());
        Some(Ok(Attr {
            kind: kind & ATTR_TYPE_MASK,
            data: rest.get(ATTR_HEADER_LEN..len).unwrap_or(&[]),
            offset,
            message: self.message,
        }))
    }
}

/// A request being written: a header, a fixed part, attributes. The buffer is kept
/// from request to request.
#[derive(Default)]
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// Starts a request message of `kind` with `flags` and `seq`.
    pub fn begin(&mut self, kind: u16, flags: u16, seq: u32) {
        self.buf.clear();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `bytes`
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it
    }

    /// Appends `bytes` (a fixed header) and pads to 4 bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// Appends an attribute.
    pub fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (ATTR_HEADER_LEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.push(data);
    }

    /// Appends a nested attribute whose contents `fill` writes.
    pub fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Request)) {
        let start = self.buf.len();
        self.attr(kind | NLA_F_NESTED, &[]);
        fill(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The finished message, its length set.
    pub fn bytes(&mut self) -> &[u8] {
        let len = self.buf.len() as u32;
        if let Some(field) = self.buf.get_mut(..4) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
        &self.buf
    }
}

#[cfg(test)]
pub(crate) mod build {
    //! Hand-built messages for tests.

    use super::*;

    /// An attribute's bytes, padded.
    pub fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((ATTR_HEADER_LEN + data.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        out.resize(align(out.len()), 0);
        out
    }

    /// A message's bytes: header, then `payload`, padded.
    pub fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((HEADER_LEN + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(align(out.len()), 0);
        out
    }

    /// An `NLMSG_DONE` with error code 0.
    pub fn done(flags: u16, seq: u32) -> Vec<u8> {
        message(NLMSG_DONE, flags, seq, &0i32.to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn splits_messages_and_attributes() {
        let mut payload = vec![7u8; 16];
        payload.extend(attr(3, b"eth0\0"));
        payload.extend(attr(4 | 0x8000, &1500u32.to_ne_bytes()));
        let mut bytes = message(16, 2, 9, &payload);
        bytes.extend(done(2, 9));
        let messages: Vec<_> = Messages::new(&bytes, 100)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].offset, 100);
        assert_eq!(messages[0].header.kind, 16);
        assert_eq!(messages[0].header.seq, 9);
        assert_eq!(messages[1].header.kind, NLMSG_DONE);
        assert_eq!(messages[1].offset, 100 + bytes.len() - 20);
        let (fixed, attrs) = messages[0].split("RTM_NEWLINK", 16).unwrap();
        assert_eq!(fixed, [7; 16]);
        let attrs: Vec<_> = attrs.collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs[0].kind, 3);
        assert_eq!(attrs[0].c_str(), b"eth0");
        assert_eq!(attrs[0].offset, 100 + 16 + 16);
        // The nested flag is not part of the type.
        assert_eq!(attrs[1].kind, 4);
        assert_eq!(attrs[1].u32("IFLA_MTU").unwrap(), 1500);
    }

    #[test]
    fn lengths_that_do_not_fit_are_errors_naming_the_offset() {
        // A header cut short.
        let bytes = message(16, 0, 1, &[0; 4]);
        let err = Messages::new(&bytes[..10], 0).next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink nlmsghdr at offset 0: 10 bytes left, too few for a message header"
        );
        // A message claiming more than the datagram holds.
        let mut long = message(16, 0, 1, &[0; 4]);
        long[0] = 200;
        let err = Messages::new(&long, 40).next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink nlmsghdr at offset 40: message of type 16 claims 200 bytes, but 20 are left"
        );
        // A length below the header's own.
        long[0] = 8;
        assert!(Messages::new(&long, 0).next().unwrap().is_err());
        // After an error the iterator ends instead of looping.
        let mut messages = Messages::new(&long, 0);
        assert!(messages.next().unwrap().is_err());
        assert!(messages.next().is_none());
    }

    #[test]
    fn an_attribute_longer_than_its_container_is_an_error() {
        let mut payload = attr(1, &[1, 2, 3, 4]);
        payload[0] = 40;
        let err = Attrs::new("RTM_NEWLINK", &payload, 32)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink RTM_NEWLINK at offset 32: attribute of type 1 claims 40 bytes, but 8 are left in its container"
        );
        // Shorter than an attribute header.
        payload[0] = 2;
        assert!(Attrs::new("X", &payload, 0).next().unwrap().is_err());
        // A nested attribute longer than its parent.
        let mut inner = attr(2, &[0; 8]);
        inner[0] = 16;
        let outer = attr(1, &inner);
        let parent = Attrs::new("X", &outer, 0).next().unwrap().unwrap();
        let err = parent.nested().next().unwrap().unwrap_err();
        assert!(
            err.to_string().starts_with("netlink X at offset 4: "),
            "{err}"
        );
    }

    #[test]
    fn trailing_padding_is_not_an_attribute() {
        let mut payload = attr(1, &[9]);
        payload.truncate(5); // the last attribute's padding left out
        let attrs: Vec<_> = Attrs::new("X", &payload, 0)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].u8("A").unwrap(), 9);
        let attrs: Vec<_> = Attrs::new("X", &[0, 0, 0], 0).collect();
        assert!(attrs.is_empty());
    }

    #[test]
    fn fixed_size_attributes_must_have_their_size() {
        let bytes = attr(4, &[1, 2]);
        let attr = Attrs::new("RTM_NEWLINK", &bytes, 8)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            attr.u32("IFLA_MTU").unwrap_err().to_string(),
            "netlink RTM_NEWLINK at offset 8: IFLA_MTU: 2 bytes, expected 4"
        );
        assert_eq!(attr.u16("X").unwrap(), u16::from_ne_bytes([1, 2]));
        assert!(attr.u8("X").is_err());
    }

    #[test]
    fn a_payload_shorter_than_its_fixed_header_is_an_error() {
        let bytes = message(16, 0, 1, &[0; 8]);
        let message = Messages::new(&bytes, 0).next().unwrap().unwrap();
        let err = message.split("RTM_NEWLINK", 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink RTM_NEWLINK at offset 0: payload of 8 bytes, shorter than its 16-byte header"
        );
    }

    fn wire_kind(bytes: &[u8], at: usize) -> u16 {
        u16_at(bytes, at + 2).unwrap()
    }

    #[test]
    fn requests_are_framed_and_padded() {
        let mut request = Request::default();
        request.begin(18, NLM_F_REQUEST | NLM_F_DUMP, 5);
        request.push(&[1, 2, 3]);
        request.attr(29, &1u32.to_ne_bytes());
        request.nested(1, |r| r.attr(3, &[1]));
        let bytes = request.bytes().to_vec();
        assert_eq!(bytes.len(), 16 + 4 + 8 + 12);
        let message = Messages::new(&bytes, 0).next().unwrap().unwrap();
        assert_eq!(message.header.kind, 18);
        assert_eq!(message.header.flags, 0x301);
        assert_eq!(message.header.seq, 5);
        let (_, attrs) = message.split("X", 3).unwrap();
        let attrs: Vec<_> = attrs.collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs[0].u32("A").unwrap(), 1);
        assert_eq!(
            attrs[1].kind, 1,
            "NLA_F_NESTED is set, and masked when read"
        );
        assert_eq!(wire_kind(&bytes, 16 + 4 + 8), 1 | NLA_F_NESTED);
        let inner: Vec<_> = attrs[1].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!((inner[0].kind, inner[0].data), (3, &[1u8][..]));
    }
}
