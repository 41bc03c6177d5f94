//! The client against a scripted server (every failure mode on cue) and against the
//! reference implementation, dbus-daemon, which checks every message it routes.

use super::connection::{Call, BUS_NAME, BUS_PATH, PROPERTIES};
use super::fake::FakeServer;
use super::message::{self, Fields, Kind};
use super::*;
use crate::testing::TempDir;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn bus_call<'a>(member: &'a str, args: &'a [Value<'a>]) -> Call<'a> {
    Call {
        destination: Some(BUS_NAME),
        path: BUS_PATH,
        interface: BUS_NAME,
        member,
        args,
    }
}

#[test]
fn replies_are_matched_by_serial_past_signals_and_stray_replies() {
    let server = FakeServer::start(true, |call, peer| {
        peer.signal(
            "UnitNew",
            &[Value::Str("x.service"), Value::ObjectPath("/x")],
        );
        peer.reply_to(call.serial + 100, &[Value::Str("not this one")]);
        peer.reply(call, &[Value::Str("0123")]);
    });
    let mut conn = Connection::open(&Endpoint::bus(server.address()), soon()).unwrap();
    assert_eq!(conn.unique_name(), Some(":1.7"));
    for _ in 0..3 {
        let reply = conn.call(&bus_call("GetId", &[]), soon()).unwrap();
        assert_eq!(reply.kind, Kind::MethodReturn);
        assert_eq!(reply.body().str(), Ok("0123"));
    }
    assert_eq!(server.take_calls(), ["GetId /org/freedesktop/DBus"; 3]);
}

#[test]
fn the_first_call_waits_until_the_server_has_read_begin() {
    // Sent with BEGIN, the call would never be answered by this server (nor by
    // systemd 252's private socket).
    let server = FakeServer::start_sd_bus(|call, peer| peer.reply(call, &[Value::Str("252")]));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut conn = Connection::open(&Endpoint::peer(server.address()), deadline).unwrap();
    let reply = conn.call(&bus_call("Version", &[]), deadline).unwrap();
    assert_eq!(reply.body().str(), Ok("252"));
}

#[test]
fn error_replies_carry_their_name_and_message_and_keep_the_connection() {
    let server = FakeServer::start(false, |call, peer| {
        if call.fields.member == Some("Fail") {
            peer.error(
                call,
                "org.freedesktop.DBus.Error.UnknownMethod",
                "no Fail here",
            );
        } else {
            peer.reply(call, &[Value::U32(5)]);
        }
    });
    let mut conn = Connection::open(&Endpoint::peer(server.address()), soon()).unwrap();
    assert_eq!(conn.unique_name(), None);
    let err = conn.call(&bus_call("Fail", &[]), soon()).unwrap_err();
    assert!(err.keeps_connection());
    assert_eq!(
        err.to_string(),
        "org.freedesktop.DBus.Error.UnknownMethod: no Fail here"
    );
    let reply = conn.call(&bus_call("Other", &[]), soon()).unwrap();
    assert_eq!(reply.body().u32(), Ok(5));
}

#[test]
fn a_silent_peer_costs_the_deadline_and_no_more() {
    let server = FakeServer::start(false, |_, _| {});
    let mut conn = Connection::open(&Endpoint::peer(server.address()), soon()).unwrap();
    let started = Instant::now();
    let err = conn
        .call(
            &bus_call("GetId", &[]),
            started + Duration::from_millis(200),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(!err.keeps_connection());
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        err.to_string().ends_with("timed out waiting for a reply"),
        "{err}"
    );
}

#[test]
fn a_server_that_never_accepts_costs_the_deadline_and_no_more() {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let dir = TempDir::new();
    let path = dir.path().join("full");
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    socket::bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    socket::listen(&listener, Backlog::new(0).unwrap()).unwrap();
    // Fill the listen queue: nobody accepts.
    let mut queued = Vec::new();
    loop {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        if socket::connect(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).is_err() {
            break;
        }
        queued.push(fd);
        assert!(queued.len() < 1000);
    }
    let started = Instant::now();
    let err = Connection::open(
        &Endpoint::peer(Address::Path(path)),
        started + Duration::from_millis(300),
    )
    .err()
    .expect("no connection to a full queue");
    let took = started.elapsed();
    assert!(err.is_connect(), "{err}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn a_closed_connection_is_a_disconnect_and_a_new_one_works() {
    let server = FakeServer::start(true, |call, peer| {
        if call.fields.member == Some("Restart") {
            peer.close();
        } else {
            peer.reply(call, &[Value::Str("ok")]);
        }
    });
    let mut conn = Connection::open(&Endpoint::bus(server.address()), soon()).unwrap();
    let err = conn.call(&bus_call("Restart", &[]), soon()).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(err.to_string().contains("closed the connection"), "{err}");
    // Writing to the closed socket is EPIPE, also a disconnect (and no SIGPIPE).
    let err = conn.call(&bus_call("GetId", &[]), soon()).err().unwrap();
    assert!(err.is_disconnect(), "{err}");
    let mut conn = Connection::open(&Endpoint::bus(server.address()), soon()).unwrap();
    assert_eq!(
        conn.call(&bus_call("GetId", &[]), soon())
            .unwrap()
            .body()
            .str(),
        Ok("ok")
    );
    assert_eq!(server.connections(), 2);
}

#[test]
fn oversized_and_malformed_messages_are_errors_not_panics() {
    let server = FakeServer::start(false, |call, peer| match call.fields.member {
        // A header announcing a body of 5 MiB.
        Some("Huge") => peer.raw(b"l\x02\x01\x01\x00\x00\x50\x00\x05\x00\x00\x00\x00\x00\x00\x00"),
        Some("Garbage") => peer.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        _ => {
            // A reply whose body signature says `u` over a 2-byte body.
            let fields = Fields {
                reply_serial: Some(call.serial),
                ..Fields::default()
            };
            let mut bytes = Vec::new();
            message::encode(
                Kind::MethodReturn,
                0,
                9,
                &fields,
                &[Value::U16(1)],
                &mut bytes,
            );
            let at = bytes.windows(3).position(|w| w == [1, b'q', 0]).unwrap();
            bytes[at + 1] = b'u';
            peer.raw(&bytes);
        }
    });
    let open = || Connection::open(&Endpoint::peer(server.address()), soon()).unwrap();
    let err = open().call(&bus_call("Huge", &[]), soon()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed message: message of 5242896 bytes is over the 4194304-byte limit at offset 4"
    );
    let err = open().call(&bus_call("Garbage", &[]), soon()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed message: byte order 'G' is neither 'l' nor 'B' at offset 0"
    );
    let mut conn = open();
    let reply = conn.call(&bus_call("Short", &[]), soon()).unwrap();
    assert_eq!(reply.signature, "u");
    let err = reply.body().u32().unwrap_err();
    assert!(err.what.contains("runs past the end"), "{err}");
}

#[test]
fn a_refused_authentication_is_an_auth_error() {
    use std::io::{Read, Write};
    let dir = TempDir::new();
    let path = dir.path().join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 64];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(b"REJECTED DBUS_COOKIE_SHA1\r\n");
        std::thread::sleep(Duration::from_secs(1));
    });
    let err = Connection::open(&Endpoint::bus(Address::Path(path)), soon())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(
        err.to_string()
            .contains("refused EXTERNAL authentication as uid"),
        "{err}"
    );
}

#[test]
fn no_socket_is_a_connect_error_naming_the_address() {
    let dir = TempDir::new();
    let path = dir.path().join("absent");
    let err = Connection::open(&Endpoint::bus(Address::Path(path.clone())), soon())
        .err()
        .unwrap();
    assert!(err.is_connect());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to unix:path={}: No such file or directory (os error 2)",
            path.display()
        )
    );
}

#[test]
fn pipelined_reads_match_replies_that_come_out_of_order() {
    // Answers in threes, last call first; `NoSuch` properties get an error.
    let mut held: Vec<(u32, String)> = Vec::new();
    let server = FakeServer::start(false, move |call, peer| {
        let mut body = call.body();
        let (_, property) = (body.str().unwrap(), body.str().unwrap());
        held.push((call.serial, property.to_owned()));
        if held.len() == 3 || property == "Last" {
            for (serial, property) in held.drain(..).rev() {
                if property == "NoSuch" {
                    let fields = Fields {
                        reply_serial: Some(serial),
                        error_name: Some("org.freedesktop.DBus.Error.UnknownProperty"),
                        ..Fields::default()
                    };
                    let mut bytes = Vec::new();
                    message::encode(
                        Kind::Error,
                        0,
                        1,
                        &fields,
                        &[Value::Str(&property)],
                        &mut bytes,
                    );
                    peer.raw(&bytes);
                } else {
                    let n = property.len() as u32;
                    peer.reply_to(serial, &[Value::Variant(Box::new(Value::U32(n)))]);
                }
            }
        }
    });
    let mut conn = Connection::open(&Endpoint::peer(server.address()), soon()).unwrap();
    let names = ["A", "BB", "NoSuch", "DDDD", "EEEEE", "Last"];
    let requests = names.iter().map(|name| ("/unit", "org.example.I", *name));
    let mut got = vec![None; names.len()];
    conn.get_properties("org.example", requests, 4, soon(), |index, answer| {
        got[index] = Some(answer.and_then(|p| p.u32()).map_err(|e| e.to_string()));
    })
    .unwrap();
    assert_eq!(
        got,
        [
            Some(Ok(1)),
            Some(Ok(2)),
            Some(Err(
                "org.freedesktop.DBus.Error.UnknownProperty: NoSuch".into()
            )),
            Some(Ok(4)),
            Some(Ok(5)),
            Some(Ok(4)),
        ]
    );
    assert_eq!(server.take_calls().len(), names.len());
}

#[test]
fn parse_message_takes_any_bytes() {
    let mut bytes = Vec::new();
    let fields = Fields {
        path: Some("/a"),
        member: Some("M"),
        ..Fields::default()
    };
    message::encode(
        Kind::MethodCall,
        0,
        1,
        &fields,
        &[Value::Str("x"), Value::U64(2)],
        &mut bytes,
    );
    assert!(parse_message(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(parse_message(&bytes[..cut]).is_err(), "{cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(parse_message(&longer)
        .unwrap_err()
        .what
        .starts_with("the header gives"));
    // Every single-byte corruption parses or fails, never panics.
    for at in 0..bytes.len() {
        for byte in [0, 1, 0x7f, 0xff, b'a', b'(', b'v'] {
            let mut bad = bytes.clone();
            bad[at] = byte;
            let _ = parse_message(&bad);
        }
    }
}

#[test]
fn random_corruptions_of_a_rich_message_never_panic() {
    let nested = Value::Array(
        "{sv}",
        vec![Value::DictEntry(Box::new((
            Value::Str("k"),
            Value::Variant(Box::new(Value::Array(
                "(yv)",
                vec![Value::Struct(vec![
                    Value::Byte(1),
                    Value::Variant(Box::new(Value::Signature("a{oas}"))),
                ])],
            ))),
        )))],
    );
    let mut seed = Vec::new();
    let fields = Fields {
        reply_serial: Some(3),
        sender: Some(":1.1"),
        ..Fields::default()
    };
    let args = [
        nested,
        Value::Double(1.5),
        Value::ObjectPath("/a/b"),
        Value::Bool(false),
    ];
    message::encode(Kind::MethodReturn, 0, 4, &fields, &args, &mut seed);
    assert!(parse_message(&seed).is_ok());
    // xorshift: deterministic, no dependency.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut parsed, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let mut bytes = seed.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 8 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        match parse_message(&bytes) {
            Ok(message) => {
                parsed += 1;
                // Whatever parsed can be walked as its signature says.
                let mut body = message.body();
                let _ = body.skip_all(message.signature);
            }
            Err(e) => {
                rejected += 1;
                assert!(e.offset <= bytes.len(), "{e}");
            }
        }
    }
    // Both outcomes happen: the corruptions reach past the checks, not only into them.
    assert!(
        parsed > 100 && rejected > 100,
        "{parsed} parsed, {rejected} rejected"
    );
}

/// A private dbus-daemon on a socket in a temp dir, killed on drop.
struct DbusDaemon {
    child: Child,
    address: Address,
    _dir: TempDir,
}

impl DbusDaemon {
    fn start() -> Self {
        let dir = TempDir::new();
        let path = dir.path().join("bus");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address"])
            .arg(format!("--address=unix:path={}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dbus-daemon runs (apt-get install dbus-daemon)");
        // It prints its address once it listens.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(line.starts_with("unix:path="), "{line}");
        DbusDaemon {
            child,
            address: Address::Path(path),
            _dir: dir,
        }
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strings(reply: &Message<'_>) -> Vec<String> {
    let mut body = reply.body();
    match body.value("as") {
        Ok(Value::Array(_, items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Str(s) => s.to_owned(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dbus_daemon_understands_the_client_and_the_client_understands_it() {
    let daemon = DbusDaemon::start();
    let mut conn = Connection::open(&Endpoint::bus(daemon.address.clone()), soon()).unwrap();
    let me = conn.unique_name().unwrap().to_owned();
    assert!(me.starts_with(":1."), "{me}");

    let reply = conn.call(&bus_call("ListNames", &[]), soon()).unwrap();
    assert_eq!(reply.signature, "as");
    let names = strings(&reply);
    assert!(
        names.contains(&"org.freedesktop.DBus".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&me), "{names:?}");

    let reply = conn.call(&bus_call("GetId", &[]), soon()).unwrap();
    let id = reply.body().str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );

    let reply = conn
        .call(&bus_call("GetNameOwner", &[Value::Str(BUS_NAME)]), soon())
        .unwrap();
    assert_eq!(reply.body().str(), Ok(BUS_NAME));

    // Properties of the bus object: Get, GetAll.
    let features = conn
        .get_property(BUS_NAME, BUS_PATH, BUS_NAME, "Features", soon())
        .unwrap();
    assert_eq!(features.signature, "as");
    let args = [Value::Str(BUS_NAME)];
    let call = Call {
        destination: Some(BUS_NAME),
        path: BUS_PATH,
        interface: PROPERTIES,
        member: "GetAll",
        args: &args,
    };
    let reply = conn.call(&call, soon()).unwrap();
    assert_eq!(reply.signature, "a{sv}");
    let Ok(Value::Array(_, entries)) = reply.body().value("a{sv}") else {
        panic!("GetAll")
    };
    let keys: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Value::DictEntry(pair) => match pair.0 {
                Value::Str(key) => Some(key),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(
        keys.contains(&"Features") && keys.contains(&"Interfaces"),
        "{keys:?}"
    );

    // Errors from the reference implementation.
    let err = conn
        .get_property(BUS_NAME, BUS_PATH, BUS_NAME, "NoSuchProperty", soon())
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::Remote { name, .. } if name.starts_with("org.freedesktop.DBus.Error.")),
        "{err}"
    );
    let call = Call {
        destination: Some("org.example.Absent"),
        path: "/",
        interface: "org.example.Absent",
        member: "Nothing",
        args: &[],
    };
    let err = conn.call(&call, soon()).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("org.freedesktop.DBus.Error.ServiceUnknown"),
        "{err}"
    );

    // Pipelined reads through the daemon.
    let requests = std::iter::repeat_n((BUS_PATH, BUS_NAME, "Features"), 50);
    let mut answered = 0;
    conn.get_properties(BUS_NAME, requests, 16, soon(), |_, answer| {
        assert_eq!(answer.unwrap().signature, "as");
        answered += 1;
    })
    .unwrap();
    assert_eq!(answered, 50);
}

#[test]
fn values_of_every_type_pass_through_dbus_daemon_intact() {
    // The daemon checks every message it routes against its signature and drops
    // the sender on any error, so what arrives at the other end was valid D-Bus.
    let daemon = DbusDaemon::start();
    let mut sender = Connection::open(&Endpoint::bus(daemon.address.clone()), soon()).unwrap();
    let mut receiver = Connection::open(&Endpoint::bus(daemon.address.clone()), soon()).unwrap();
    let to = receiver.unique_name().unwrap().to_owned();
    let args = [
        Value::Byte(7),
        Value::Bool(true),
        Value::I16(-3),
        Value::U16(3),
        Value::I32(-70_000),
        Value::U32(70_000),
        Value::I64(-1 << 50),
        Value::U64(u64::MAX),
        Value::Double(0.1),
        Value::Str("ünïcode"),
        Value::ObjectPath("/org/freedesktop/systemd1/unit/dbus_2eservice"),
        Value::Signature("a(ssssssouso)"),
        Value::Array("t", vec![]),
        Value::Array(
            "{sv}",
            vec![Value::DictEntry(Box::new((
                Value::Str("k"),
                Value::Variant(Box::new(Value::Struct(vec![Value::Byte(1), Value::U64(2)]))),
            )))],
        ),
        Value::Struct(vec![
            Value::Str("a"),
            Value::Array("y", vec![Value::Byte(1), Value::Byte(2)]),
        ]),
    ];
    let call = Call {
        destination: Some(&to),
        path: "/org/example",
        interface: "org.example.Echo",
        member: "Everything",
        args: &args,
    };
    sender.queue(&call);
    sender.flush(soon()).unwrap();
    let message = loop {
        let message = receiver.receive(soon()).unwrap();
        if message.kind == Kind::MethodCall {
            break message;
        }
    };
    assert_eq!(message.fields.member, Some("Everything"));
    assert_eq!(message.fields.sender, sender.unique_name());
    let mut sig = String::new();
    for arg in &args {
        sig.push_str(&arg.signature());
    }
    assert_eq!(message.signature, sig);
    message.check_body().unwrap();
    let mut body = message.body();
    let mut rest = message.signature;
    for arg in &args {
        let (first, tail) = signature::split_first(rest).unwrap();
        assert_eq!(&body.value(first).unwrap(), arg);
        rest = tail;
    }
    assert!(body.is_at_end());
}
