//! The stall mode over real sockets: a held response leaves when its freeze ends, never
//! before and never as late as the next freeze's end, freeze after freeze; between
//! freezes answers are not held.
//!
//! Every bound comes from the target's own freeze schedule, not from a guess at how
//! fast this machine is: noise only ever delays an answer, so the lower bounds are
//! exact, and each upper bound is the next point at which a held response could be let
//! go (a whole period later), which a missed or late release crosses and a busy machine
//! does not.

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
    let ms = Duration::from_millis;
    let (every, freeze) = (ms(600), ms(300));
    let profile = Profile::parse(
        "stall.toml",
        "[stall]\nevery = \"600ms\"\nfreeze = \"300ms\"\n\n[[route]]\npath = \"/\"\n",
    )
    .unwrap();
    let target = loadgate_target::spawn(profile, "127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let start = target.started();
    // Freeze k holds responses from `start + k * every` and ends at `end(k)`.
    let end = |k: u32| start + every * k + freeze;

    // Where a request went out decides what must happen to it: sent during freeze k, it
    // leaves when freeze k ends; sent between freezes, it is not held. Either way it
    // leaves before freeze k + 1 ends. Returns whether it was held.
    let check = |sent: Instant, at: Instant| {
        let k = ((sent - start).as_nanos() / every.as_nanos()) as u32;
        let held = sent - (start + every * k) < freeze;
        if held {
            assert!(
                at >= end(k),
                "left {:?} before freeze {k} ended",
                end(k) - at
            );
        }
        assert!(
            at < end(k + 1),
            "sent in cycle {k} (held: {held}), left {:?} after freeze {} ended",
            at - end(k + 1),
            k + 1
        );
        u32::from(held)
    };
    let request = |when: Instant| {
        sleep_until(when);
        let sent = Instant::now();
        let (text, at) = get(target.addr(), "/");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        check(sent, at)
    };

    // In freeze 0, between freezes 0 and 1, in freeze 2.
    let held =
        request(start + ms(20)) + request(end(0) + ms(120)) + request(start + every * 2 + ms(50));

    let (lag, _) = get(target.addr(), RELEASE_LAG_PATH);
    assert!(lag.contains(&format!(r#""held":{held},"#)), "{lag}");
    let max_us = target.release_lag_us(1.0).unwrap();
    assert!(
        max_us < every.as_micros() as u64,
        "released {max_us} us after a freeze: a whole period late"
    );
}
