//! A newcomer's first hour: programs written from the README
//! and the generated docs alone, as someone who knows Python's `selectors`
//! writes them, kept here bounded and self-checking so that what the docs
//! teach keeps compiling and working. The fourth, a `#![no_std]` program
//! with its own `Backend`, is the crate `tests/no-std-program`.
#![cfg(unix)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use selectors2::{DefaultSelector, EVENT_READ, EVENT_WRITE, Ready, Waker};

/// Python's quickstart from the `selectors` docs (accept, read, echo,
/// close), ported: `DefaultSelector::new()` without annotations, the data
/// of each key an enum saying what to do, a `Waker` to stop it.
#[test]
fn python_quickstart_ported() {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Callback {
        Accept,
        Read,
        Stop,
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(Waker::new().unwrap());
    let stopper = Arc::clone(&stop);
    let server = std::thread::spawn(move || -> std::io::Result<usize> {
        let mut sel = DefaultSelector::new()?;
        sel.register(&listener, EVENT_READ, Callback::Accept)?;
        sel.register(&*stop, EVENT_READ, Callback::Stop)?;
        let mut conns: HashMap<i32, TcpStream> = HashMap::new();
        let mut ready: Ready<Callback, 64> = Ready::new();
        let mut echoed = 0;
        loop {
            sel.select(&mut ready, None)?;
            for (key, _mask) in &ready {
                match key.data {
                    Callback::Stop => return Ok(echoed),
                    Callback::Accept => {
                        let (conn, _) = listener.accept()?;
                        conn.set_nonblocking(true)?;
                        sel.register(&conn, EVENT_READ, Callback::Read)?;
                        conns.insert(key_fd(&conn), conn);
                    }
                    Callback::Read => {
                        let conn = conns.get_mut(&key.fd).unwrap();
                        let mut buf = [0; 1000];
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                sel.unregister(&mut *conn)?; // &mut from get_mut is Selectable
                                conns.remove(&key.fd);
                            }
                            Ok(n) => {
                                conn.write_all(&buf[..n])?; // small: fits the socket
                                echoed += n;
                            }
                        }
                    }
                }
            }
        }
    });
    for word in ["hello", "selectors", "world"] {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(word.as_bytes()).unwrap();
        let mut back = vec![0; word.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, word.as_bytes());
    }
    stopper.wake().unwrap();
    assert_eq!(server.join().unwrap().unwrap(), "helloselectorsworld".len());
}

fn key_fd(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

/// A chat server: what one client says goes to every other client, with
/// partial writes kept per client and sent when the socket is writable
/// again (`modify` to watch WRITE, and back). One client reads slowly.
#[test]
fn chat_server_with_partial_writes() {
    const CLIENTS: usize = 3;
    const LINES: usize = 200;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || -> std::io::Result<usize> {
        struct Client {
            stream: TcpStream,
            out: Vec<u8>,
        }
        let mut sel = DefaultSelector::new()?;
        sel.register(&listener, EVENT_READ, usize::MAX)?;
        let mut clients: Vec<Client> = Vec::new();
        let mut ready: Ready<usize, 64> = Ready::new();
        let mut partial = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if Instant::now() > deadline {
                return Err(std::io::Error::other("chat server timed out"));
            }
            sel.select_until(&mut ready, deadline)?;
            for (key, events) in &ready {
                if key.data == usize::MAX {
                    let (stream, _) = listener.accept()?;
                    stream.set_nonblocking(true)?;
                    // A small send buffer (Linux grows it to megabytes on
                    // loopback), so that a slow reader fills it.
                    socket2::SockRef::from(&stream).set_send_buffer_size(8192)?;
                    sel.register(&stream, EVENT_READ, clients.len())?;
                    clients.push(Client {
                        stream,
                        out: Vec::new(),
                    });
                    continue;
                }
                let me = key.data;
                if events.contains(EVENT_READ) {
                    let mut buf = [0; 4096];
                    match clients[me].stream.read(&mut buf) {
                        Ok(0) => return Ok(partial), // the first to leave ends the chat
                        Ok(n) => {
                            for (i, c) in clients.iter_mut().enumerate() {
                                if i != me {
                                    c.out.extend_from_slice(&buf[..n]);
                                }
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                // Flush every client that has output; watch WRITE while some is left.
                for (i, c) in clients.iter_mut().enumerate() {
                    while !c.out.is_empty() {
                        match c.stream.write(&c.out) {
                            Ok(n) => drop(c.out.drain(..n)),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                    let want = if c.out.is_empty() {
                        EVENT_READ
                    } else {
                        EVENT_READ | EVENT_WRITE
                    };
                    if sel.get_key(&c.stream).map(|k| k.events) != Some(want) {
                        partial += usize::from(want.contains(EVENT_WRITE));
                        sel.modify(&c.stream, want, i)?;
                    }
                }
            }
        }
    });
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100)); // all three accepted
    let line = |i: usize, n: usize| format!("client {i} line {n:04} {}\n", "x".repeat(2000));
    let expected: usize = (0..LINES).map(|n| line(0, n).len()).sum();
    // Clients 1 and 2 read; client 1 slowly, so the server's writes to it
    // are partial.
    let readers: Vec<_> = clients[1..]
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut c = c.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0; 1024];
                while got.len() < expected {
                    if k == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0, "EOF after {} bytes", got.len());
                    got.extend_from_slice(&buf[..n]);
                }
                got
            })
        })
        .collect();
    let mut talker = clients[0].try_clone().unwrap();
    for n in 0..LINES {
        talker.write_all(line(0, n).as_bytes()).unwrap();
    }
    let want: Vec<u8> = (0..LINES).flat_map(|n| line(0, n).into_bytes()).collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), want, "every line, in order");
    }
    talker.shutdown(std::net::Shutdown::Write).unwrap();
    let partial = server.join().unwrap().unwrap();
    assert!(partial > 0, "the slow reader never made a write partial");
}

/// A child process's stdout and stderr read to EOF, both at once, under a
/// deadline (`select_until`), as Python's `subprocess.communicate` does
/// with a selector.
#[test]
fn child_stdout_and_stderr_to_eof_under_a_deadline() {
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("i=0; while [ $i -lt 200 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    for p in [out.as_fd(), err.as_fd()] {
        set_nonblocking(p);
    }
    let mut sel = DefaultSelector::new().unwrap();
    sel.register(&out, EVENT_READ, 1).unwrap();
    sel.register(&err, EVENT_READ, 2).unwrap();
    let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready: Ready<u8, 4> = Ready::new();
    while !sel.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the child's output did not end in time"
        );
        sel.select_until(&mut ready, deadline).unwrap();
        for (key, _) in &ready {
            let mut buf = [0; 512];
            let (pipe, sink): (&mut dyn Read, &mut Vec<u8>) = if key.data == 1 {
                (&mut out, &mut got_out)
            } else {
                (&mut err, &mut got_err)
            };
            match pipe.read(&mut buf) {
                Ok(0) => {
                    sel.unregister(key.fd).unwrap(); // EOF
                }
                Ok(n) => sink.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(child.wait().unwrap().success());
    let lines = |v: &[u8], tag: &str| {
        String::from_utf8(v.to_vec())
            .unwrap()
            .lines()
            .enumerate()
            .all(|(i, l)| l == format!("{tag} {i}"))
    };
    assert!(lines(&got_out, "out") && got_out.iter().filter(|&&b| b == b'\n').count() == 200);
    assert!(lines(&got_err, "err") && got_err.iter().filter(|&&b| b == b'\n').count() == 200);
}

/// `O_NONBLOCK` on a pipe (std has no setter for pipes).
#[allow(unsafe_code)]
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL/F_SETFL on a live fd the caller borrows.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK),
            0
        );
    }
}
