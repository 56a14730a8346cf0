//! A route's `body_after`: the head and the body's first byte leave at once, the rest of
//! the body that much later (1 s here, so that only a test thread held for a whole second
//! could read both at once). The bounds are the route's own: the rest cannot arrive
//! before its delay has passed, whatever the machine's speed.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use loadgate_target::Profile;

#[test]
fn the_head_leaves_before_the_rest_of_a_late_body() {
    let profile = Profile::parse(
        "late.toml",
        "[[route]]\npath = \"/late\"\nbody_after = \"1s\"\nresponse = '{\"status\":\"ok\"}'\n",
    )
    .unwrap();
    let target = loadgate_target::spawn(profile, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let mut s = std::net::TcpStream::connect(target.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sent = Instant::now();
    write!(
        s,
        "GET /late HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // The first read returns the head (and the body's first byte), not the whole answer.
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    let head_at = sent.elapsed();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("content-length: 15"), "{first}");
    assert!(
        !first.ends_with("{\"status\":\"ok\"}"),
        "the whole body came at once: {first}"
    );
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    let end_at = sent.elapsed();
    assert_eq!(
        format!("{first}{rest}").split("\r\n\r\n").nth(1),
        Some("{\"status\":\"ok\"}")
    );
    assert!(
        end_at >= Duration::from_secs(1),
        "the rest after its delay: {end_at:?}"
    );
    assert!(head_at < end_at);

    // A route without it answers in one piece, and a bad duration is refused with its place.
    let e = Profile::parse(
        "p.toml",
        "[[route]]\npath = \"/a\"\nbody_after = \"soon\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("p.toml:3"), "{e}");
}
