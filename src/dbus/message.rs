//! D-Bus messages: the fixed header, the header fields, and the body that follows.
//!
//! A message is a 12-byte fixed part (byte order, type, flags, version, body length,
//! serial), an array of header fields `a(yv)` (path, interface, member, error name,
//! reply serial, destination, sender, body signature, fd count), padding to 8, and
//! the body. [`Message::parse`] checks all of it but the body, which is read with the
//! typed [`Reader`] methods or checked whole with [`Message::check_body`].

use super::wire::{DecodeError, Endian, Reader, Value, Writer};

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    MethodCall,
    MethodReturn,
    Error,
    Signal,
    /// A type this version of the protocol does not know: to be ignored.
    Other(u8),
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::MethodCall => 1,
            Kind::MethodReturn => 2,
            Kind::Error => 3,
            Kind::Signal => 4,
            Kind::Other(code) => code,
        }
    }
}

/// The sender expects no reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

/// The header fields the agent reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pub path: Option<&'a str>,
    pub interface: Option<&'a str>,
    pub member: Option<&'a str>,
    pub error_name: Option<&'a str>,
    pub reply_serial: Option<u32>,
    pub destination: Option<&'a str>,
    pub sender: Option<&'a str>,
}

/// A parsed message, borrowing the bytes it was parsed from.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub endian: Endian,
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub fields: Fields<'a>,
    /// The body's signature, empty for no body.
    pub signature: &'a str,
    /// How many file descriptors came with the message (the agent never asks for any).
    pub unix_fds: u32,
    bytes: &'a [u8],
    body_start: usize,
}

/// The length of the fixed part plus the header-field array's length word.
pub const PREFIX_BYTES: usize = 16;

/// The whole length of the message that starts with `prefix` (at least
/// [`PREFIX_BYTES`] bytes), checked against `max`.
pub fn frame_length(prefix: &[u8], max: usize) -> Result<usize, DecodeError> {
    let error = |offset, what: String| DecodeError { offset, what };
    let endian = endian(prefix)?;
    let word = |at: usize| -> Result<u64, DecodeError> {
        let bytes: [u8; 4] = prefix
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| error(at, "message header cut short".into()))?;
        Ok(u64::from(match endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }))
    };
    let body = word(4)?;
    let fields = word(12)?;
    let total = (PREFIX_BYTES as u64 + fields).next_multiple_of(8) + body;
    if total > max as u64 {
        return Err(error(
            4,
            format!("message of {total} bytes is over the {max}-byte limit"),
        ));
    }
    Ok(total as usize)
}

fn endian(bytes: &[u8]) -> Result<Endian, DecodeError> {
    match bytes.first() {
        Some(b'l') => Ok(Endian::Little),
        Some(b'B') => Ok(Endian::Big),
        Some(&other) => Err(DecodeError {
            offset: 0,
            what: format!("byte order {:?} is neither 'l' nor 'B'", char::from(other)),
        }),
        None => Err(DecodeError {
            offset: 0,
            what: "empty message".into(),
        }),
    }
}

impl<'a> Message<'a> {
    /// Parses the header of the message that is exactly `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let endian = endian(bytes)?;
        let mut r = Reader::new(bytes, 1, bytes.len(), endian);
        let kind = match r.u8()? {
            0 => return Err(error(1, "message type 0 is invalid")),
            1 => Kind::MethodCall,
            2 => Kind::MethodReturn,
            3 => Kind::Error,
            4 => Kind::Signal,
            other => Kind::Other(other),
        };
        let flags = r.u8()?;
        let version = r.u8()?;
        if version != 1 {
            return Err(error(3, format!("protocol version {version}, expected 1")));
        }
        let body_len = r.u32()? as usize;
        let serial = r.u32()?;
        if serial == 0 {
            return Err(error(8, "serial 0 is invalid"));
        }
        let mut fields = Fields::default();
        let mut signature = "";
        let mut unix_fds = 0;
        // The known fields seen, by code (1 to 9): each may come once.
        let mut seen = 0u16;
        let array = r.begin_array(b'(')?;
        while r.more(array) {
            r.begin_struct()?;
            let at = r.position();
            let code = r.u8()?;
            let sig = r.variant()?;
            if (1..=9).contains(&code) {
                if seen & (1 << code) != 0 {
                    return Err(error(at, format!("header field {code} repeated")));
                }
                seen |= 1 << code;
            }
            let expect = |wanted: &str| -> Result<(), DecodeError> {
                if sig == wanted {
                    Ok(())
                } else {
                    Err(error(
                        at,
                        format!("header field {code} has type {sig:?}, expected {wanted:?}"),
                    ))
                }
            };
            match code {
                1 => {
                    expect("o")?;
                    fields.path = Some(r.object_path()?);
                }
                2 | 3 | 4 | 6 | 7 => {
                    expect("s")?;
                    let text = Some(r.str()?);
                    match code {
                        2 => fields.interface = text,
                        3 => fields.member = text,
                        4 => fields.error_name = text,
                        6 => fields.destination = text,
                        _ => fields.sender = text,
                    }
                }
                5 => {
                    expect("u")?;
                    fields.reply_serial = Some(r.u32()?);
                }
                8 => {
                    expect("g")?;
                    signature = r.signature()?;
                }
                9 => {
                    expect("u")?;
                    unix_fds = r.u32()?;
                }
                0 => return Err(error(at, "header field 0 is invalid")),
                // Fields added by later versions of the protocol are to be ignored.
                _ => r.skip(sig)?,
            }
        }
        r.end_array(array)?;
        r.align(8)?;
        let body_start = r.position();
        if body_start.checked_add(body_len) != Some(bytes.len()) {
            return Err(error(
                4,
                format!(
                    "body of {body_len} bytes after a {body_start}-byte header does not end \
                     where the {}-byte message does",
                    bytes.len()
                ),
            ));
        }
        let missing = match kind {
            Kind::MethodCall if fields.path.is_none() => Some("PATH"),
            Kind::MethodCall | Kind::Signal if fields.member.is_none() => Some("MEMBER"),
            Kind::Signal if fields.path.is_none() => Some("PATH"),
            Kind::Signal if fields.interface.is_none() => Some("INTERFACE"),
            Kind::MethodReturn | Kind::Error if fields.reply_serial.is_none() => {
                Some("REPLY_SERIAL")
            }
            Kind::Error if fields.error_name.is_none() => Some("ERROR_NAME"),
            _ => None,
        };
        if let Some(field) = missing {
            return Err(error(
                12,
                format!("{kind:?} without a {field} header field"),
            ));
        }
        Ok(Message {
            endian,
            kind,
            flags,
            serial,
            fields,
            signature,
            unix_fds,
            bytes,
            body_start,
        })
    }

    /// A reader of the body, positioned at its first byte.
    pub fn body(&self) -> Reader<'a> {
        Reader::new(self.bytes, self.body_start, self.bytes.len(), self.endian)
    }

    /// Checks the whole body against the signature.
    pub fn check_body(&self) -> Result<(), DecodeError> {
        let mut body = self.body();
        body.skip_all(self.signature)?;
        if body.is_at_end() {
            Ok(())
        } else {
            Err(error(
                body.position(),
                format!("bytes left after a body of signature {:?}", self.signature),
            ))
        }
    }

    /// The text of an error message: its first argument when that is a string.
    pub fn error_text(&self) -> &'a str {
        if self.signature.starts_with('s') {
            self.body().str().unwrap_or_default()
        } else {
            ""
        }
    }
}

fn error(offset: usize, what: impl Into<String>) -> DecodeError {
    DecodeError {
        offset,
        what: what.into(),
    }
}

/// Appends a little-endian message to `out`, with a body of `args`.
///
/// The caller keeps the fields valid: a path that is an object path, names without
/// NUL bytes, and the fields its kind requires (see [`Message::parse`]).
pub fn encode(
    kind: Kind,
    flags: u8,
    serial: u32,
    fields: &Fields<'_>,
    args: &[Value<'_>],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let mut w = Writer::new(out, start);
    for byte in [b'l', kind.code(), flags, 1] {
        w.u8(byte);
    }
    w.u32(0); // body length, written below
    w.u32(serial);
    let array = w.begin_array(b'(');
    let strings = [
        (1, fields.path, b'o'),
        (2, fields.interface, b's'),
        (3, fields.member, b's'),
        (4, fields.error_name, b's'),
        (6, fields.destination, b's'),
        (7, fields.sender, b's'),
    ];
    for (code, value, sig) in strings {
        if let Some(value) = value {
            w.begin_struct();
            w.u8(code);
            w.signature(if sig == b'o' { "o" } else { "s" });
            w.str(value);
        }
    }
    if let Some(reply_serial) = fields.reply_serial {
        w.begin_struct();
        w.u8(5);
        w.signature("u");
        w.u32(reply_serial);
    }
    if !args.is_empty() {
        w.begin_struct();
        w.u8(8);
        w.signature("g");
        w.value_signature(args);
    }
    w.end_array(array);
    w.align(8);
    let body_start = w.position();
    for arg in args {
        w.value(arg);
    }
    let body_len = (w.position() - body_start) as u32;
    if let Some(slot) = out.get_mut(start + 4..start + 8) {
        slot.copy_from_slice(&body_len.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn call_bytes() -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            Kind::MethodCall,
            0,
            7,
            &Fields {
                path: Some("/org/freedesktop/systemd1/unit/ssh_2eservice"),
                interface: Some("org.freedesktop.DBus.Properties"),
                member: Some("Get"),
                destination: Some("org.freedesktop.systemd1"),
                ..Fields::default()
            },
            &[
                Value::Str("org.freedesktop.systemd1.Service"),
                Value::Str("Type"),
            ],
            &mut out,
        );
        out
    }

    #[test]
    fn a_method_call_round_trips() {
        let bytes = call_bytes();
        assert_eq!(frame_length(&bytes, MAX), Ok(bytes.len()));
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.kind, Kind::MethodCall);
        assert_eq!(message.serial, 7);
        assert_eq!(message.signature, "ss");
        assert_eq!(message.fields.member, Some("Get"));
        assert_eq!(message.fields.destination, Some("org.freedesktop.systemd1"));
        message.check_body().unwrap();
        let mut body = message.body();
        assert_eq!(body.str(), Ok("org.freedesktop.systemd1.Service"));
        assert_eq!(body.str(), Ok("Type"));
        assert!(body.is_at_end());
    }

    #[test]
    fn a_reply_and_an_error_round_trip() {
        let mut out = Vec::new();
        let fields = Fields {
            reply_serial: Some(7),
            error_name: Some("org.freedesktop.DBus.Error.UnknownProperty"),
            ..Fields::default()
        };
        encode(
            Kind::Error,
            0,
            9,
            &fields,
            &[Value::Str("no such property")],
            &mut out,
        );
        let message = Message::parse(&out).unwrap();
        assert_eq!(message.kind, Kind::Error);
        assert_eq!(message.fields.reply_serial, Some(7));
        assert_eq!(message.error_text(), "no such property");
        let mut out = Vec::new();
        let fields = Fields {
            reply_serial: Some(1),
            ..Fields::default()
        };
        encode(Kind::MethodReturn, 0, 2, &fields, &[], &mut out);
        let message = Message::parse(&out).unwrap();
        assert_eq!(message.signature, "");
        assert_eq!(message.error_text(), "");
        message.check_body().unwrap();
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// What dbus-daemon 1.14.10 sent a client that said `Hello` and then `GetId`
    /// (read off its socket by a throwaway client): the reader against bytes this
    /// code did not write.
    const HELLO_REPLY_AND_NAME_ACQUIRED: &str = "\
        6c02010109000000010000003d00000006017300040000003a312e30000000000501750001000000\
        080167000173000007017300140000006f72672e667265656465736b746f702e4442757300000000\
        040000003a312e30006c04010109000000020000008d00000001016f00150000002f6f72672f6672\
        65656465736b746f702f4442757300000002017300140000006f72672e667265656465736b746f70\
        2e4442757300000000030173000c0000004e616d6541637175697265640000000006017300040000\
        003a312e3000000000080167000173000007017300140000006f72672e667265656465736b746f70\
        2e4442757300000000040000003a312e3000";
    const GET_ID_REPLY: &str = "\
        6c02010125000000030000003d00000006017300040000003a312e30000000000501750002000000\
        080167000173000007017300140000006f72672e667265656465736b746f702e4442757300000000\
        20000000656534663134393564303664633439376137373339643538366230663366313200";

    #[test]
    fn parses_what_dbus_daemon_sends() {
        let bytes = hex(HELLO_REPLY_AND_NAME_ACQUIRED);
        let first = frame_length(&bytes, MAX).unwrap();
        let hello = Message::parse(&bytes[..first]).unwrap();
        assert_eq!(hello.kind, Kind::MethodReturn);
        assert_eq!(hello.flags, 1);
        assert_eq!(hello.fields.reply_serial, Some(1));
        assert_eq!(hello.fields.sender, Some("org.freedesktop.DBus"));
        assert_eq!(hello.body().str(), Ok(":1.0"));
        let rest = &bytes[first..];
        assert_eq!(frame_length(rest, MAX), Ok(rest.len()));
        let signal = Message::parse(rest).unwrap();
        assert_eq!(signal.kind, Kind::Signal);
        assert_eq!(signal.fields.path, Some("/org/freedesktop/DBus"));
        assert_eq!(signal.fields.member, Some("NameAcquired"));
        signal.check_body().unwrap();

        let bytes = hex(GET_ID_REPLY);
        let reply = Message::parse(&bytes).unwrap();
        assert_eq!(reply.fields.reply_serial, Some(2));
        assert_eq!(reply.fields.destination, Some(":1.0"));
        assert_eq!(reply.body().str(), Ok("ee4f1495d06dc497a7739d586b0f3f12"));
    }

    fn parse_error(bytes: &[u8]) -> (usize, String) {
        let e = Message::parse(bytes).unwrap_err();
        (e.offset, e.what)
    }

    #[test]
    fn malformed_headers_are_errors_that_say_where() {
        let good = call_bytes();
        let with = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] = byte;
            bytes
        };
        assert_eq!(
            parse_error(&with(0, b'x')),
            (0, "byte order 'x' is neither 'l' nor 'B'".into())
        );
        assert_eq!(
            parse_error(&with(1, 0)),
            (1, "message type 0 is invalid".into())
        );
        assert_eq!(
            parse_error(&with(3, 2)),
            (3, "protocol version 2, expected 1".into())
        );
        assert_eq!(parse_error(&with(8, 0)), (8, "serial 0 is invalid".into()));
        // The first field's code: PATH (1) turned into MEMBER (3), which is a string.
        assert_eq!(
            parse_error(&with(16, 3)),
            (16, "header field 3 has type \"o\", expected \"s\"".into())
        );
        // A body length that disagrees with the bytes.
        let (offset, what) = parse_error(&with(4, good[4] + 1));
        assert_eq!(offset, 4);
        assert!(what.starts_with("body of"), "{what}");
        // A header-field array longer than the message.
        assert_eq!(
            parse_error(&with(13, 0x10)).1,
            format!(
                "array of {} bytes runs past the end",
                0x1000 + u32::from(good[12])
            )
        );
        assert!(frame_length(&with(7, 1), MAX)
            .unwrap_err()
            .what
            .contains("over the"));
        // Every truncation is an error, never a panic.
        for cut in 0..good.len() {
            assert!(Message::parse(&good[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn required_fields_and_repeats_are_checked() {
        let mut out = Vec::new();
        encode(Kind::MethodReturn, 0, 2, &Fields::default(), &[], &mut out);
        assert_eq!(
            parse_error(&out),
            (
                12,
                "MethodReturn without a REPLY_SERIAL header field".into()
            )
        );
        let mut out = Vec::new();
        let fields = Fields {
            path: Some("/"),
            member: Some("M"),
            ..Fields::default()
        };
        encode(Kind::Signal, 0, 2, &fields, &[], &mut out);
        assert_eq!(
            parse_error(&out).1,
            "Signal without a INTERFACE header field"
        );
        // Two MEMBER fields.
        let mut out = Vec::new();
        let fields = Fields {
            path: Some("/"),
            member: Some("M"),
            interface: Some("M"),
            ..Fields::default()
        };
        encode(Kind::MethodCall, 0, 2, &fields, &[], &mut out);
        // The INTERFACE field (code 2) comes first; the real MEMBER after it repeats.
        let at = out.windows(4).position(|w| w == [2, 1, b's', 0]).unwrap();
        let member = out.windows(4).position(|w| w == [3, 1, b's', 0]).unwrap();
        out[at] = 3;
        assert_eq!(
            parse_error(&out),
            (member, "header field 3 repeated".into())
        );
    }

    #[test]
    fn unknown_header_fields_and_types_are_skipped() {
        let mut out = Vec::new();
        encode(
            Kind::Other(9),
            0,
            3,
            &Fields::default(),
            &[Value::U32(1)],
            &mut out,
        );
        let message = Message::parse(&out).unwrap();
        assert_eq!(message.kind, Kind::Other(9));
        // Header field 8 (SIGNATURE) renumbered 200: an unknown field, skipped, so
        // the body has no signature and the check finds bytes left over.
        let at = out.windows(4).position(|w| w == [8, 1, b'g', 0]).unwrap();
        out[at] = 200;
        let message = Message::parse(&out).unwrap();
        assert_eq!(message.signature, "");
        assert!(message
            .check_body()
            .unwrap_err()
            .what
            .starts_with("bytes left"));
    }
}
