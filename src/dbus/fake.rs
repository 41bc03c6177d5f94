//! A scripted D-Bus server for tests: listens on a Unix socket in a temp dir, answers
//! the SASL handshake as dbus-daemon and sd-bus do, says `Hello` back when it plays
//! a bus, and hands every other message to the test's handler, which answers with
//! replies, errors, signals or raw bytes, or not at all.

use super::message::{self, Fields, Kind, Message, PREFIX_BYTES};
use super::wire::Value;
use super::Address;
use crate::testing::TempDir;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the server waits on a silent client before giving up the connection.
const IDLE: Duration = Duration::from_secs(20);

/// What the handler writes back.
pub struct Peer<'a> {
    out: &'a mut Vec<u8>,
    serial: &'a mut u32,
    close: bool,
}

impl Peer<'_> {
    fn next_serial(&mut self) -> u32 {
        *self.serial += 1;
        *self.serial
    }

    /// A method return to `call` with a body of `args`.
    pub fn reply(&mut self, call: &Message<'_>, args: &[Value<'_>]) {
        self.reply_to(call.serial, args);
    }

    /// A method return to the call of serial `serial`.
    pub fn reply_to(&mut self, serial: u32, args: &[Value<'_>]) {
        let fields = Fields {
            reply_serial: Some(serial),
            destination: Some(":1.7"),
            sender: Some("org.freedesktop.systemd1"),
            ..Fields::default()
        };
        let serial = self.next_serial();
        message::encode(Kind::MethodReturn, 1, serial, &fields, args, self.out);
    }

    /// An error reply to `call`.
    pub fn error(&mut self, call: &Message<'_>, name: &str, text: &str) {
        let fields = Fields {
            reply_serial: Some(call.serial),
            error_name: Some(name),
            ..Fields::default()
        };
        let serial = self.next_serial();
        message::encode(
            Kind::Error,
            1,
            serial,
            &fields,
            &[Value::Str(text)],
            self.out,
        );
    }

    /// A signal, as the bus and systemd send unasked.
    pub fn signal(&mut self, member: &str, args: &[Value<'_>]) {
        let fields = Fields {
            path: Some("/org/freedesktop/systemd1"),
            interface: Some("org.freedesktop.systemd1.Manager"),
            member: Some(member),
            ..Fields::default()
        };
        let serial = self.next_serial();
        message::encode(Kind::Signal, 1, serial, &fields, args, self.out);
    }

    /// Bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Closes the connection after what is written so far.
    pub fn close(&mut self) {
        self.close = true;
    }
}

/// The handler: one call in, any answer out.
pub type Handler = Box<dyn FnMut(&Message<'_>, &mut Peer<'_>) + Send>;

/// A running fake server. Dropping it leaves the thread to end with its socket.
pub struct FakeServer {
    dir: TempDir,
    /// One line per call received: `Member path args...`.
    calls: Arc<Mutex<Vec<String>>>,
    accepted: Arc<Mutex<usize>>,
    _thread: JoinHandle<()>,
}

impl FakeServer {
    /// Serves connections one after the other; `bus` makes it answer `Hello`.
    pub fn start(
        bus: bool,
        handler: impl FnMut(&Message<'_>, &mut Peer<'_>) + Send + 'static,
    ) -> Self {
        FakeServer::start_with(bus, false, handler)
    }

    /// Like [`FakeServer::start`], peer-to-peer, and with sd-bus's quirk: it reads
    /// the end of the authentication slowly, and a message read together with
    /// `BEGIN` is only seen once more bytes arrive.
    pub fn start_sd_bus(handler: impl FnMut(&Message<'_>, &mut Peer<'_>) + Send + 'static) -> Self {
        FakeServer::start_with(false, true, handler)
    }

    fn start_with(
        bus: bool,
        sd_bus: bool,
        handler: impl FnMut(&Message<'_>, &mut Peer<'_>) + Send + 'static,
    ) -> Self {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.path().join("bus")).expect("bind the fake bus");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0));
        let mut handler: Handler = Box::new(handler);
        let (log, count) = (Arc::clone(&calls), Arc::clone(&accepted));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                *count.lock().unwrap() += 1;
                serve(stream, bus, sd_bus, &mut handler, &log);
            }
        });
        FakeServer {
            dir,
            calls,
            accepted,
            _thread: thread,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("bus")
    }

    pub fn address(&self) -> Address {
        Address::Path(self.path())
    }

    /// The calls received so far, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

/// One line of the SASL exchange, or `None` at EOF.
fn read_line(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..at]).into_owned();
            buf.drain(..at + 2);
            return Some(line);
        }
        let mut chunk = [0; 256];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn serve(
    mut stream: UnixStream,
    bus: bool,
    sd_bus: bool,
    handler: &mut Handler,
    log: &Mutex<Vec<String>>,
) {
    stream.set_read_timeout(Some(IDLE)).unwrap();
    let mut buf = Vec::new();
    let mut nul = [0];
    if stream.read_exact(&mut nul).is_err() || nul != [0] {
        return;
    }
    let uid = nix::unistd::getuid().as_raw().to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    match read_line(&mut stream, &mut buf) {
        Some(line) if line == format!("AUTH EXTERNAL {hex}") => {
            stream
                .write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                .unwrap();
        }
        Some(_) => {
            let _ = stream.write_all(b"REJECTED EXTERNAL\r\n");
            return;
        }
        None => return,
    }
    if sd_bus {
        // Whatever the client sends after BEGIN by now is read with it.
        std::thread::sleep(Duration::from_millis(100));
    }
    if read_line(&mut stream, &mut buf).as_deref() != Some("BEGIN") {
        return;
    }
    if sd_bus && !buf.is_empty() {
        // The lost wakeup: what came with BEGIN waits for the next bytes.
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut serial = 1000;
    let mut out = Vec::new();
    loop {
        // One whole message in `buf`.
        let length = loop {
            if let Some(prefix) = buf.get(..PREFIX_BYTES) {
                let length =
                    message::frame_length(prefix, 1 << 30).expect("client sent a bad header");
                if buf.len() >= length {
                    break length;
                }
            }
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let bytes: Vec<u8> = buf.drain(..length).collect();
        let call = Message::parse(&bytes).expect("client sent a bad message");
        call.check_body().expect("client sent a bad body");
        let mut peer = Peer {
            out: &mut out,
            serial: &mut serial,
            close: false,
        };
        if bus && call.fields.member == Some("Hello") {
            peer.reply(&call, &[Value::Str(":1.7")]);
            // As dbus-daemon does, the unique name is announced right after.
            peer.signal("NameAcquired", &[Value::Str(":1.7")]);
        } else {
            let mut line = format!(
                "{} {}",
                call.fields.member.unwrap_or_default(),
                call.fields.path.unwrap_or_default()
            );
            let mut body = call.body();
            let mut sig = call.signature;
            while let Ok((first, rest)) = super::signature::split_first(sig) {
                match body.value(first) {
                    Ok(Value::Str(s)) => line.push_str(&format!(" {s}")),
                    Ok(other) => line.push_str(&format!(" {other:?}")),
                    Err(_) => break,
                }
                sig = rest;
            }
            log.lock().unwrap().push(line);
            handler(&call, &mut peer);
        }
        let close = peer.close;
        if stream.write_all(&out).is_err() || close {
            return;
        }
        out.clear();
    }
}
