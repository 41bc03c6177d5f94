//! The D-Bus wire format: values marshalled with their alignment, read back with
//! every length, alignment, padding and nesting checked.
//!
//! [`Reader`] decodes in place (strings borrow the message) and never panics: anything
//! malformed is a [`DecodeError`] naming what was expected and the byte offset in the
//! message. Offsets are counted from the start of the message, as alignment is, so the
//! reader walks the message buffer itself rather than a copy of the body.
//!
//! [`Writer`] encodes little-endian (the agent's own calls); the reader takes both byte
//! orders, since the bus forwards other peers' messages in their sender's order.
//!
//! [`Value`] is the generic, allocating form of a value, for signatures only known at
//! run time (tests, and walking a whole message in [`super::parse_message`]); the
//! collector reads the fixed shapes it expects with the typed methods instead.

use super::signature::{self, alignment};
use std::fmt;

/// The longest array the specification allows (64 MiB).
pub const MAX_ARRAY_BYTES: u32 = 1 << 26;

/// The deepest nesting of containers (arrays, structs, dict entries, variants) in one
/// value: the specification's 32 arrays plus 32 structs. Signatures bound the first
/// two; this also bounds variants holding variants.
pub const MAX_DEPTH: u32 = 64;

/// A byte order, from the first byte of a message (`l` or `B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// Why bytes off the wire could not be decoded: what, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the message.
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.what, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// A value of any D-Bus type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(&'a str),
    ObjectPath(&'a str),
    Signature(&'a str),
    /// An index into the message's file descriptors (never sent to the agent).
    UnixFd(u32),
    /// The element type's signature, and the elements.
    Array(&'a str, Vec<Value<'a>>),
    Struct(Vec<Value<'a>>),
    DictEntry(Box<(Value<'a>, Value<'a>)>),
    Variant(Box<Value<'a>>),
}

impl Value<'_> {
    /// Appends this value's type signature (ASCII type codes) to `out`.
    pub fn write_signature(&self, out: &mut Vec<u8>) {
        let code = match self {
            Value::Byte(_) => b'y',
            Value::Bool(_) => b'b',
            Value::I16(_) => b'n',
            Value::U16(_) => b'q',
            Value::I32(_) => b'i',
            Value::U32(_) => b'u',
            Value::I64(_) => b'x',
            Value::U64(_) => b't',
            Value::Double(_) => b'd',
            Value::Str(_) => b's',
            Value::ObjectPath(_) => b'o',
            Value::Signature(_) => b'g',
            Value::UnixFd(_) => b'h',
            Value::Variant(_) => b'v',
            Value::Array(element, _) => {
                out.push(b'a');
                out.extend_from_slice(element.as_bytes());
                return;
            }
            Value::Struct(fields) => {
                out.push(b'(');
                for field in fields {
                    field.write_signature(out);
                }
                out.push(b')');
                return;
            }
            Value::DictEntry(entry) => {
                out.push(b'{');
                entry.0.write_signature(out);
                entry.1.write_signature(out);
                out.push(b'}');
                return;
            }
        };
        out.push(code);
    }

    /// This value's type signature.
    pub fn signature(&self) -> String {
        let mut out = Vec::new();
        self.write_signature(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Where an array read with [`Reader::begin_array`] ends.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ArrayEnd(usize);

/// Decodes values from a message buffer.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
    endian: Endian,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes[pos..end]`, where `bytes` starts at the message's first byte.
    pub(crate) fn new(bytes: &'a [u8], pos: usize, end: usize, endian: Endian) -> Self {
        let end = end.min(bytes.len());
        Reader {
            bytes,
            pos: pos.min(end),
            end,
            endian,
        }
    }

    /// The offset of the next byte to read, from the start of the message.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn error(&self, what: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what: what.into(),
        }
    }

    /// Skips the padding to a multiple of `n`, which must be zero bytes.
    pub fn align(&mut self, n: usize) -> Result<(), DecodeError> {
        let padded = self.pos.next_multiple_of(n.max(1));
        let padding = self
            .bytes
            .get(self.pos..padded)
            .filter(|_| padded <= self.end)
            .ok_or_else(|| self.error(format!("padding to {n} bytes runs past the end")))?;
        if let Some(at) = padding.iter().position(|&b| b != 0) {
            self.pos += at;
            return Err(self.error("nonzero padding byte"));
        }
        self.pos = padded;
        Ok(())
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let slice = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.end)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or_else(|| self.error(format!("{what} of {n} bytes runs past the end")))?;
        self.pos += n;
        Ok(slice)
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        self.align(N)?;
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        if self.endian == Endian::Big {
            out.reverse();
        }
        // `out` is now little-endian.
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>("byte")?[0])
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError {
                offset: at,
                what: format!("boolean {other} is neither 0 nor 1"),
            }),
        }
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.fixed("int16").map(i16::from_le_bytes)
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.fixed("uint16").map(u16::from_le_bytes)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.fixed("int32").map(i32::from_le_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.fixed("uint32").map(u32::from_le_bytes)
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.fixed("int64").map(i64::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.fixed("uint64").map(u64::from_le_bytes)
    }

    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.fixed("double").map(f64::from_le_bytes)
    }

    /// A string: a uint32 length, UTF-8 without NUL, then a NUL.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let bytes = self.take(len.saturating_add(1), "string")?;
        let (text, nul) = bytes.split_at(len);
        let at = |offset| DecodeError {
            offset,
            what: String::new(),
        };
        if nul != [0] {
            return Err(DecodeError {
                what: "string not NUL-terminated".into(),
                ..at(start + len)
            });
        }
        if let Some(i) = text.iter().position(|&b| b == 0) {
            return Err(DecodeError {
                what: "string contains a NUL byte".into(),
                ..at(start + i)
            });
        }
        std::str::from_utf8(text).map_err(|e| DecodeError {
            what: "string is not UTF-8".into(),
            ..at(start + e.valid_up_to())
        })
    }

    /// An object path: a string `/` or `/a/b_c/D1`.
    pub fn object_path(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let path = self.str()?;
        if is_object_path(path) {
            Ok(path)
        } else {
            Err(DecodeError {
                offset: at,
                what: format!("invalid object path {path:?}"),
            })
        }
    }

    /// A signature: a byte length, ASCII type codes, then a NUL; checked.
    pub fn signature(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        let start = self.pos;
        let bytes = self.take(len + 1, "signature")?;
        let (sig, nul) = bytes.split_at(len);
        if nul != [0] {
            return Err(DecodeError {
                offset: start + len,
                what: "signature not NUL-terminated".into(),
            });
        }
        signature::validate(sig).map_err(|e| DecodeError {
            offset: start + e.at,
            what: format!(
                "bad signature {:?}: {}",
                String::from_utf8_lossy(sig),
                e.what
            ),
        })?;
        // Valid signatures are ASCII.
        std::str::from_utf8(sig).map_err(|_| DecodeError {
            offset: start,
            what: "signature is not ASCII".into(),
        })
    }

    /// A variant's signature, which must be one complete type; its value follows.
    pub fn variant(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let sig = self.signature()?;
        signature::validate_single(sig.as_bytes()).map_err(|e| DecodeError {
            offset: at,
            what: format!("bad variant signature {sig:?}: {}", e.what),
        })?;
        Ok(sig)
    }

    /// Starts an array of elements whose type begins with `element`: reads the length
    /// and the padding to the element's alignment.
    pub fn begin_array(&mut self, element: u8) -> Result<ArrayEnd, DecodeError> {
        let len = self.u32()?;
        if len > MAX_ARRAY_BYTES {
            return Err(self.error(format!("array of {len} bytes is over the 64 MiB limit")));
        }
        let align = alignment(element)
            .ok_or_else(|| self.error(format!("array of unknown type code {element:#04x}")))?;
        self.align(align)?;
        let end = self.pos + len as usize;
        if end > self.end {
            return Err(self.error(format!("array of {len} bytes runs past the end")));
        }
        Ok(ArrayEnd(end))
    }

    /// Whether the array has more elements.
    pub fn more(&self, array: ArrayEnd) -> bool {
        self.pos < array.0
    }

    /// Checks that the last element ended exactly where the array does.
    pub fn end_array(&mut self, array: ArrayEnd) -> Result<(), DecodeError> {
        if self.pos == array.0 {
            Ok(())
        } else {
            Err(self.error(format!(
                "array element runs {} bytes past the array's end",
                self.pos - array.0
            )))
        }
    }

    /// Starts a struct or dict entry (aligned to 8).
    pub fn begin_struct(&mut self) -> Result<(), DecodeError> {
        self.align(8)
    }

    /// Skips one value of the complete type `sig`, checking it.
    pub fn skip(&mut self, sig: &'a str) -> Result<(), DecodeError> {
        self.walk(sig, 0, &mut None)
    }

    /// Skips values of every complete type in `sig` (a message body's signature).
    pub fn skip_all(&mut self, mut sig: &'a str) -> Result<(), DecodeError> {
        while !sig.is_empty() {
            let (first, rest) = self.split(sig)?;
            self.skip(first)?;
            sig = rest;
        }
        Ok(())
    }

    /// Reads one value of the complete type `sig`. Allocates per element: for tests
    /// and small values; the collector reads its fixed shapes with the typed methods.
    pub fn value(&mut self, sig: &'a str) -> Result<Value<'a>, DecodeError> {
        let mut out = Some(Value::Byte(0));
        self.walk(sig, 0, &mut out)?;
        out.ok_or_else(|| self.error("no value"))
    }

    fn split(&self, sig: &'a str) -> Result<(&'a str, &'a str), DecodeError> {
        signature::split_first(sig).map_err(|e| self.error(format!("bad signature {sig:?}: {e}")))
    }

    /// Reads one value of type `sig` at nesting `depth`, storing it in `out` when
    /// `out` is `Some` (the allocating [`Reader::value`]) and only checking it when
    /// `None` ([`Reader::skip`]).
    fn walk(
        &mut self,
        sig: &'a str,
        depth: u32,
        out: &mut Option<Value<'a>>,
    ) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(self.error("values nested deeper than 64"));
        }
        let keep = out.is_some();
        let code = *sig
            .as_bytes()
            .first()
            .ok_or_else(|| self.error("empty type"))?;
        let value = match code {
            b'y' => Value::Byte(self.u8()?),
            b'b' => Value::Bool(self.bool()?),
            b'n' => Value::I16(self.i16()?),
            b'q' => Value::U16(self.u16()?),
            b'i' => Value::I32(self.i32()?),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.i64()?),
            b't' => Value::U64(self.u64()?),
            b'd' => Value::Double(self.f64()?),
            b'h' => Value::UnixFd(self.u32()?),
            b's' => Value::Str(self.str()?),
            b'o' => Value::ObjectPath(self.object_path()?),
            b'g' => Value::Signature(self.signature()?),
            b'v' => {
                let inner = self.variant()?;
                let mut value = keep.then_some(Value::Byte(0));
                self.walk(inner, depth + 1, &mut value)?;
                match value {
                    Some(value) => Value::Variant(Box::new(value)),
                    None => Value::Byte(0),
                }
            }
            b'a' => {
                let element = sig.get(1..).unwrap_or_default();
                let first = *element.as_bytes().first().unwrap_or(&0);
                let array = self.begin_array(first)?;
                let mut items = Vec::new();
                while self.more(array) {
                    let mut item = keep.then_some(Value::Byte(0));
                    self.walk(element, depth + 1, &mut item)?;
                    items.extend(item);
                }
                self.end_array(array)?;
                Value::Array(element, items)
            }
            b'(' | b'{' => {
                self.begin_struct()?;
                let mut fields = sig.get(1..sig.len().saturating_sub(1)).unwrap_or_default();
                let mut values = Vec::new();
                while !fields.is_empty() {
                    let (field, rest) = self.split(fields)?;
                    let mut value = keep.then_some(Value::Byte(0));
                    self.walk(field, depth + 1, &mut value)?;
                    values.extend(value);
                    fields = rest;
                }
                if code == b'(' {
                    Value::Struct(values)
                } else {
                    let mut pair = values.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(key), Some(value)) => Value::DictEntry(Box::new((key, value))),
                        _ if !keep => Value::Byte(0),
                        _ => return Err(self.error(format!("bad dict entry type {sig:?}"))),
                    }
                }
            }
            other => {
                return Err(self.error(format!("unknown type code {:?}", char::from(other))));
            }
        };
        if keep {
            *out = Some(value);
        }
        Ok(())
    }
}

/// Whether `path` is a valid object path: `/`, or `/`-separated non-empty elements of
/// `[A-Za-z0-9_]`, without a trailing `/`.
pub fn is_object_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|element| {
        !element.is_empty()
            && element
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Where an array started with [`Writer::begin_array`] keeps its length.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ArrayStart {
    length_at: usize,
    elements_at: usize,
}

/// Encodes values little-endian at the end of a buffer.
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    /// Where the message starts in `buf`: alignment counts from there.
    start: usize,
}

impl<'b> Writer<'b> {
    /// A writer appending to `buf`, for a message that starts at `start`.
    pub fn new(buf: &'b mut Vec<u8>, start: usize) -> Self {
        Writer { buf, start }
    }

    /// The length written so far, from the start of the message.
    pub fn position(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn align(&mut self, n: usize) {
        let padded = self.position().next_multiple_of(n.max(1));
        self.buf.resize(self.start + padded, 0);
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    pub fn i16(&mut self, v: i16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f64(&mut self, v: f64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A string (or object path): length, bytes, NUL. The caller passes text of less
    /// than 4 GiB without NUL bytes (the agent's own names and paths).
    pub fn str(&mut self, v: &str) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0);
    }

    /// A signature (at most 255 bytes, see [`signature::validate`]).
    pub fn signature(&mut self, v: &str) {
        self.buf.push(v.len() as u8);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0);
    }

    /// The signature of `values` one after the other (a message body's signature).
    pub fn value_signature(&mut self, values: &[Value<'_>]) {
        let at = self.buf.len();
        self.buf.push(0);
        for value in values {
            value.write_signature(self.buf);
        }
        let len = self.buf.len() - at - 1;
        if let Some(slot) = self.buf.get_mut(at) {
            *slot = len as u8;
        }
        self.buf.push(0);
    }

    /// Starts an array whose element type begins with `element`.
    pub fn begin_array(&mut self, element: u8) -> ArrayStart {
        self.u32(0);
        let length_at = self.buf.len() - 4;
        self.align(alignment(element).unwrap_or(1));
        ArrayStart {
            length_at,
            elements_at: self.buf.len(),
        }
    }

    /// Writes the array's length, now that its elements are written.
    pub fn end_array(&mut self, array: ArrayStart) {
        let len = (self.buf.len() - array.elements_at) as u32;
        if let Some(slot) = self.buf.get_mut(array.length_at..array.length_at + 4) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
    }

    pub fn begin_struct(&mut self) {
        self.align(8);
    }

    /// Writes any value (whose arrays' elements match their declared type).
    pub fn value(&mut self, value: &Value<'_>) {
        match value {
            Value::Byte(v) => self.u8(*v),
            Value::Bool(v) => self.bool(*v),
            Value::I16(v) => self.i16(*v),
            Value::U16(v) => self.u16(*v),
            Value::I32(v) => self.i32(*v),
            Value::U32(v) | Value::UnixFd(v) => self.u32(*v),
            Value::I64(v) => self.i64(*v),
            Value::U64(v) => self.u64(*v),
            Value::Double(v) => self.f64(*v),
            Value::Str(v) | Value::ObjectPath(v) => self.str(v),
            Value::Signature(v) => self.signature(v),
            Value::Array(element, items) => {
                let array = self.begin_array(*element.as_bytes().first().unwrap_or(&b'y'));
                for item in items {
                    self.value(item);
                }
                self.end_array(array);
            }
            Value::Struct(fields) => {
                self.begin_struct();
                for field in fields {
                    self.value(field);
                }
            }
            Value::DictEntry(entry) => {
                self.begin_struct();
                self.value(&entry.0);
                self.value(&entry.1);
            }
            Value::Variant(inner) => {
                self.value_signature(std::slice::from_ref(&**inner));
                self.value(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(values: &[Value<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut writer = Writer::new(&mut buf, 0);
        for value in values {
            writer.value(value);
        }
        buf
    }

    fn decode<'a>(bytes: &'a [u8], sig: &'a str) -> Result<Value<'a>, DecodeError> {
        let mut reader = Reader::new(bytes, 0, bytes.len(), Endian::Little);
        let value = reader.value(sig)?;
        if !reader.is_at_end() {
            return Err(reader.error("trailing bytes"));
        }
        Ok(value)
    }

    fn dict<'a>(entries: Vec<(&'a str, Value<'a>)>) -> Value<'a> {
        Value::Array(
            "{sv}",
            entries
                .into_iter()
                .map(|(k, v)| {
                    Value::DictEntry(Box::new((Value::Str(k), Value::Variant(Box::new(v)))))
                })
                .collect(),
        )
    }

    #[test]
    fn every_type_round_trips() {
        let values = [
            Value::Byte(0xfe),
            Value::Bool(true),
            Value::I16(-2),
            Value::U16(65_000),
            Value::I32(-70_000),
            Value::U32(4_000_000_000),
            Value::I64(-1 << 40),
            Value::U64(u64::MAX),
            Value::Double(-0.25),
            Value::Str("héllo"),
            Value::ObjectPath("/org/freedesktop/systemd1/unit/ssh_2eservice"),
            Value::Signature("a{sv}"),
            Value::UnixFd(3),
            Value::Array("y", vec![]),
            Value::Array("t", vec![]),
            Value::Array(
                "(ssou)",
                vec![Value::Struct(vec![
                    Value::Str("a"),
                    Value::Str(""),
                    Value::ObjectPath("/"),
                    Value::U32(7),
                ])],
            ),
            dict(vec![
                ("Version", Value::Str("252.22-1~deb12u1")),
                ("NNames", Value::U32(3)),
                ("Nested", Value::Variant(Box::new(Value::Bool(false)))),
                (
                    "Features",
                    Value::Array("s", vec![Value::Str("x"), Value::Str("yy")]),
                ),
            ]),
        ];
        for value in &values {
            // Behind a byte, so that every alignment is exercised.
            let pair = [Value::Byte(1), value.clone()];
            let bytes = encode(&pair);
            let sig = value.signature();
            let full = format!("(y{sig})");
            let mut reader = Reader::new(&bytes, 0, bytes.len(), Endian::Little);
            assert_eq!(reader.u8(), Ok(1));
            assert_eq!(reader.value(&sig).as_ref(), Ok(value), "{sig}");
            assert!(reader.is_at_end(), "{sig}");
            // The same bytes skip cleanly.
            let mut reader = Reader::new(&bytes, 0, bytes.len(), Endian::Little);
            reader.u8().unwrap();
            reader.skip(&sig).unwrap();
            assert!(reader.is_at_end());
            assert!(signature::validate(full.as_bytes()).is_ok(), "{full}");
        }
    }

    #[test]
    fn known_encodings() {
        // The specification's examples: alignment padding, array length excluding the
        // padding before the first element, little-endian integers.
        assert_eq!(
            encode(&[Value::Byte(1), Value::U32(2)]),
            [1, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(encode(&[Value::Str("ab")]), [2, 0, 0, 0, b'a', b'b', 0]);
        assert_eq!(encode(&[Value::Signature("s")]), [1, b's', 0]);
        assert_eq!(
            encode(&[Value::Array("t", vec![Value::U64(5)])]),
            [8, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encode(&[Value::Variant(Box::new(Value::U32(9)))]),
            [1, b'u', 0, 0, 9, 0, 0, 0]
        );
        // An empty array of 8-aligned elements still pads after its length.
        assert_eq!(
            encode(&[Value::Array("t", vec![])]),
            [0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn big_endian_reads() {
        let bytes = [0, 0, 0, 2, 0, 0, 0, 1, b'x', 0];
        let mut reader = Reader::new(&bytes, 0, bytes.len(), Endian::Big);
        assert_eq!(reader.u32(), Ok(2));
        assert_eq!(reader.str(), Ok("x"));
    }

    fn error_of(bytes: &[u8], sig: &str) -> (usize, String) {
        let e = decode(bytes, sig).unwrap_err();
        (e.offset, e.what)
    }

    #[test]
    fn truncated_input_is_an_error_at_its_offset() {
        let whole = encode(&[dict(vec![("a", Value::U64(1))])]);
        for cut in 0..whole.len() {
            let e = decode(&whole[..cut], "a{sv}").unwrap_err();
            assert!(e.offset <= cut, "{cut}: {e}");
            assert!(e.what.contains("past the end"), "{cut}: {e}");
        }
        assert_eq!(
            error_of(&[5, 0, 0, 0, b'a', b'b'], "s"),
            (4, "string of 6 bytes runs past the end".into())
        );
        assert_eq!(
            error_of(&[1, 0], "u"),
            (0, "uint32 of 4 bytes runs past the end".into())
        );
    }

    #[test]
    fn bad_alignment_and_padding_are_errors() {
        // A u64 after a byte with its padding cut short.
        assert_eq!(
            error_of(&[1, 0, 0], "(yt)"),
            (1, "padding to 8 bytes runs past the end".into())
        );
        // Padding must be zeros.
        assert_eq!(
            error_of(&[1, 0, 7, 0, 2, 0, 0, 0], "(yu)"),
            (2, "nonzero padding byte".into())
        );
        // A struct that does not start at a multiple of 8.
        let mut reader = Reader::new(&[9, 1, 0, 0, 0, 0, 0, 0, 0], 1, 9, Endian::Little);
        assert_eq!(
            reader.begin_struct().unwrap_err().what,
            "nonzero padding byte"
        );
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(
            error_of(&[2, 0, 0, 0], "b"),
            (0, "boolean 2 is neither 0 nor 1".into())
        );
        assert_eq!(
            error_of(&[1, 0, 0, 0, b'a', b'b'], "s"),
            (5, "string not NUL-terminated".into())
        );
        assert_eq!(
            error_of(&[2, 0, 0, 0, b'a', 0, 0], "s"),
            (5, "string contains a NUL byte".into())
        );
        assert_eq!(
            error_of(&[2, 0, 0, 0, 0xc3, 0x28, 0], "s"),
            (4, "string is not UTF-8".into())
        );
        assert_eq!(
            error_of(&[2, 0, 0, 0, b'/', b'/', 0], "o"),
            (0, "invalid object path \"//\"".into())
        );
        // A variant whose signature is not one complete type.
        assert_eq!(
            error_of(&[2, b'u', b'u', 0], "v").1,
            "bad variant signature \"uu\": more than one complete type where one is needed"
        );
        assert_eq!(
            error_of(&[1, b'z', 0], "g"),
            (1, "bad signature \"z\": unknown type code".into())
        );
        // An array whose length is past the end, or over the limit.
        assert_eq!(
            error_of(&[9, 0, 0, 0, 1, 0, 0, 0], "au"),
            (4, "array of 9 bytes runs past the end".into())
        );
        assert_eq!(
            error_of(&[0, 0, 0, 0x10, 0, 0, 0, 0], "ay").1,
            "array of 268435456 bytes is over the 64 MiB limit"
        );
        // An element that straddles the array's end.
        assert_eq!(
            error_of(&[2, 0, 0, 0, 1, 0, 0, 0], "au"),
            (8, "array element runs 2 bytes past the array's end".into())
        );
    }

    #[test]
    fn nesting_past_the_limit_is_an_error() {
        // Variants inside variants: each signature is valid on its own.
        let mut value = Value::U32(1);
        for _ in 0..70 {
            value = Value::Variant(Box::new(value));
        }
        let bytes = encode(&[value]);
        assert_eq!(error_of(&bytes, "v").1, "values nested deeper than 64");
        let mut value = Value::U32(1);
        for _ in 0..60 {
            value = Value::Variant(Box::new(value));
        }
        let bytes = encode(std::slice::from_ref(&value));
        assert_eq!(decode(&bytes, "v"), Ok(value));
    }

    #[test]
    fn object_paths() {
        for ok in ["/", "/a", "/org/freedesktop/DBus", "/a_1/B2"] {
            assert!(is_object_path(ok), "{ok}");
        }
        for bad in ["", "a", "/a/", "//", "/a//b", "/a-b", "/é"] {
            assert!(!is_object_path(bad), "{bad}");
        }
    }
}
