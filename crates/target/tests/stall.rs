//! The stall mode over real sockets: a held response leaves when its freeze ends,
//! never before and soon after, freeze after freeze; between freezes answers are
//! prompt.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use loadgate_target::{Profile, RELEASE_LAG_PATH};

/// One GET with `Connection: close`; the whole response and when it ended.
fn get(addr: std::net::SocketAddr, path: &str) -> (String, Instant) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    (text, Instant::now())
}

fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

#[test]
fn held_responses_leave_at_each_freezes_end_and_not_before() {
    let profile = Profile::parse(
        "stall.toml",
        "[stall]\nevery = \"600ms\"\nfreeze = \"300ms\"\n\n[[route]]\npath = \"/\"\n",
    )
    .unwrap();
    // The target's clock starts between these two instants.
    let before = Instant::now();
    let target = loadgate_target::spawn(profile, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let after = Instant::now();
    assert!(
        after - before < Duration::from_millis(100),
        "spawn took {:?}",
        after - before
    );
    let ms = Duration::from_millis;
    // Noise on a shared machine only ever delays an answer, so the upper bounds are
    // loose and the lower ones exact.
    let slack = ms(150);

    // Freeze k ends at `start + k * 600 ms + 300 ms` for a start in [before, after].
    let left_at_end = |at: Instant, end: Duration, which: &str| {
        assert!(
            at >= before + end,
            "left {:?} before the {which} freeze ended",
            before + end - at
        );
        assert!(
            at <= after + end + slack,
            "left {:?} after the {which} freeze",
            at - after - end
        );
    };

    let (first, at) = get(target.addr(), "/");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    left_at_end(at, ms(300), "first");

    sleep_until(after + ms(420));
    let sent = Instant::now();
    let (_, at) = get(target.addr(), "/");
    assert!(
        at - sent < slack,
        "between freezes an answer took {:?}",
        at - sent
    );

    sleep_until(after + ms(650));
    let (_, at) = get(target.addr(), "/");
    left_at_end(at, ms(900), "second");

    let (lag, _) = get(target.addr(), RELEASE_LAG_PATH);
    assert!(lag.contains(r#""held":2,"#), "{lag}");
    let max_us = target.release_lag_us(1.0).unwrap();
    assert!(
        max_us < slack.as_micros() as u64,
        "released {max_us} us after a freeze"
    );
}
