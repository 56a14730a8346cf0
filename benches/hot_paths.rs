//! Hot paths of a run, with the budget each must stay within on the 2-core CI machine.
//!
//! - `record_sample`: one finished request into a worker's shard (two histogram records,
//!   outcome and status counters). Budget: < 20 ns.
//! - `render_request_body`: a JSON body template with `{{seq}}` and `{{pick(list)}}`
//!   into a reused buffer. Budget: < 300 ns.
//! - `schedule_due`: the intended send time of the next arrival on a ramp. Budget: < 30 ns.
//! - `merge_interval_shard`: one worker's 1-second shard (3 endpoints, 2 histograms
//!   each) into the aggregator's totals (it runs once per second per
//!   worker). Budget: < 200 µs.
//! - `interval_per_endpoint/N`: one second of the aggregator's work for N endpoints
//!   (10, 1000, 2000), 200 requests spread over them by two workers: a fresh interval
//!   shard, the workers' shards added and reset, the interval added to the totals. Its
//!   time grows with N (every endpoint is visited); it also prints the bytes the totals
//!   and the workers' shards hold per endpoint (issue 18). Budget: < 10 ms at 1000.
//! - `request_deadline/slab`: a request's timeout as the engine keeps it (a slot in the
//!   worker's deadline slab, a first poll that waits, a second that finishes, the slot
//!   given back). Budget: < 50 ns. `request_deadline/tokio_timeout` is the same request
//!   under `tokio::time::timeout`, for comparison (no budget).
//! - `stream_sse_40_tokens`: one streamed OpenAI chat answer of 40 tokens read as it
//!   arrives, in 40 reads (each a token's event; the first also the role event, the last
//!   also the finish, usage and `[DONE]` events: 44 events), through the engine's
//!   stream reader (SSE framing, each payload read for content, terminator and usage),
//!   then finished. Divide by 44 for the cost per event. Budget: < 40 µs (1 µs per
//!   event, under 1% of a core at 10,000 tokens/s).
//! - `capture_json_token/one_pass`: a flow's capture of `$.token` from a login's answer
//!   (a 150-byte JWT among three keys, as `benches/peers/flows.sh`'s nginx answers it)
//!   into a variable reused from the last iteration (`capture::text_into`).
//!   `capture_json_token/value_tree` is the same capture through a `serde_json::Value`
//!   of the whole body, as flows captured before (no budget). Budget: < 500 ns.
//!
//! Run: `cargo bench -p loadgate-benches`.

// criterion's macros generate undocumented items (`main`, the group function).
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use loadgate_engine::stream::{
    ContentRule, Ending, StreamKind, StreamReader, StreamSpec, Terminator, TokenRule,
};
use loadgate_engine::Deadlines;
use loadgate_engine::Schedule;
use loadgate_metrics::{Outcome, Sample, Shard};
use loadgate_scenario::{Escape, Names, RenderCtx, Template};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn record_sample(c: &mut Criterion) {
    let mut shard = Shard::new(3, 60_000_000);
    let mut i = 0u64;
    c.bench_function("record_sample", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            shard.record(black_box(&Sample {
                service_us: 900 + i % 1_000_000,
                ttfb_us: Some(500 + i % 1_000_000),
                status: Some(200),
                bytes: 512,
                ..Sample::new((i % 3) as usize, Outcome::Success, 1_000 + i % 2_000_000)
            }));
            // A success also counts in the second it was due in (throughput windows).
            shard.record_due_success((i % 3) as usize, (i >> 16) % 3);
        });
    });
}

fn render_request_body(c: &mut Criterion) {
    let lists = vec!["queries".to_string()];
    let values = vec![vec![
        "How much did I spend last month?".to_string(),
        "What is my savings rate?".to_string(),
    ]];
    let t = Template::compile(
        r#"{"userId":"user-{{seq}}","query":"{{pick(queries)}}","limit":10}"#,
        Escape::JsonString,
        &Names {
            lists: &lists,
            columns: &[],
            vars: &[],
        },
    )
    .unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut out = Vec::with_capacity(256);
    let mut seq = 0;
    c.bench_function("render_request_body", |b| {
        b.iter(|| {
            seq += 1;
            out.clear();
            t.render(
                &mut RenderCtx {
                    seq,
                    rng: &mut rng,
                    row: None,
                    lists: &values,
                    vars: &[],
                },
                &mut out,
            );
            black_box(&out);
        });
    });
}

fn schedule_due(c: &mut Criterion) {
    let s = loadgate_scenario::parse(
        Path::new("bench.toml"),
        "name = \"b\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"/\"\n[load]\nmodel = \"open\"\nstart_rps = 0\nstages = [{ duration = \"60s\", target_rps = 20000 }, { duration = \"60s\", target_rps = 20000 }]\n",
        &|_| None,
    )
    .unwrap();
    let schedule = Schedule::new(&s.load);
    let n = schedule.len();
    let mut i = 0u64;
    c.bench_function("schedule_due", |b| {
        b.iter(|| {
            i = (i + 7919) % n;
            black_box(schedule.due(black_box(i)))
        });
    });
}

fn merge_interval_shard(c: &mut Criterion) {
    let mut worker = Shard::new(3, 60_000_000);
    for i in 0..20_000u64 {
        let outcome = if i % 100 == 0 {
            Outcome::Http5xx
        } else {
            Outcome::Success
        };
        worker.record(&Sample {
            service_us: 400 + (i * 104_729) % 2_000_000,
            ttfb_us: Some(300 + (i * 104_729) % 1_000_000),
            status: Some(if i % 100 == 0 { 503 } else { 200 }),
            bytes: 256,
            ..Sample::new((i % 3) as usize, outcome, 500 + (i * 7919) % 3_000_000)
        });
    }
    let mut totals = Shard::new(3, 60_000_000);
    c.bench_function("merge_interval_shard", |b| {
        b.iter(|| totals.merge_from(black_box(&worker)));
    });
}

/// One second of the aggregator's work for a scenario of `endpoints` endpoints, 200
/// requests spread over them by two workers: a fresh interval shard, both workers'
/// shards added and reset for reuse, the interval added to the totals. Prints what the
/// totals and the workers hold per endpoint once every endpoint has seen traffic.
fn interval_per_endpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("interval_per_endpoint");
    for endpoints in [10usize, 1000, 2000] {
        let mut workers = [
            Shard::new(endpoints, 60_000_000),
            Shard::new(endpoints, 60_000_000),
        ];
        let mut totals = Shard::new(endpoints, 60_000_000);
        let mut n = 0u64;
        let mut second = |workers: &mut [Shard; 2], totals: &mut Shard| {
            for _ in 0..200 {
                n += 1;
                let endpoint = ((n * 7919) % endpoints as u64) as usize;
                let w = &mut workers[(n % 2) as usize];
                w.record_send(endpoint, Some(30 + n % 200), false);
                w.record(&Sample {
                    status: Some(200),
                    ..Sample::new(endpoint, Outcome::Success, 300 + (n * 104_729) % 1_500)
                });
            }
            let mut interval = Shard::new(endpoints, 60_000_000);
            for w in workers.iter_mut() {
                interval.merge_from(w);
                w.reset();
            }
            totals.merge_from(&interval);
        };
        for _ in 0..(endpoints / 100 + 20) {
            second(&mut workers, &mut totals);
        }
        let held =
            totals.allocated_bytes() + workers.iter().map(Shard::allocated_bytes).sum::<usize>();
        eprintln!(
            "interval_per_endpoint/{endpoints}: totals and 2 workers hold {} KiB, {} bytes per endpoint; an empty interval shard {} bytes per endpoint",
            held / 1024,
            held / endpoints,
            Shard::new(endpoints, 60_000_000).allocated_bytes() / endpoints
        );
        group.bench_function(format!("{endpoints}"), |b| {
            b.iter(|| second(black_box(&mut workers), black_box(&mut totals)));
        });
    }
    group.finish();
}

/// Pending on its first poll, ready on its second: the shortest life of a request.
struct OnceThenReady(bool);

impl std::future::Future for OnceThenReady {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

/// Polls `fut` until it is ready (twice for `OnceThenReady`).
fn poll_to_end<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn request_deadline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _in_runtime = rt.enter();
    let timeout = Duration::from_secs(10);
    let deadlines = Deadlines::new(timeout);
    let mut group = c.benchmark_group("request_deadline");
    group.bench_function("slab", |b| {
        b.iter(|| {
            poll_to_end(deadlines.run(std::time::Instant::now() + timeout, OnceThenReady(false)))
                .expect("in time");
        });
    });
    group.bench_function("tokio_timeout", |b| {
        b.iter(|| {
            poll_to_end(tokio::time::timeout(timeout, OnceThenReady(false))).expect("in time");
        });
    });
    group.finish();
}

fn stream_sse_40_tokens(c: &mut Criterion) {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-AyPQ5fYv3cJ7qM2kT9eXh0Wb\",\"object\":\"chat.completion.chunk\",\"created\":1739212345,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_72ed7ab54c\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
        )
    };
    let reads: Vec<String> = (0..40)
        .map(|i| {
            let token = chunk(&format!("{{\"content\":\" word{i}\"}}"), "null");
            match i {
                0 => chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null") + &token,
                39 => {
                    token
                        + &chunk("{}", "\"stop\"")
                        + "data: {\"id\":\"chatcmpl-AyPQ5fYv3cJ7qM2kT9eXh0Wb\",\"object\":\"chat.completion.chunk\",\"created\":1739212345,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_72ed7ab54c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":40,\"total_tokens\":52}}\n\n"
                        + "data: [DONE]\n\n"
                }
                _ => token,
            }
        })
        .collect();
    let spec = StreamSpec::new(
        StreamKind::Sse,
        ContentRule::Auto,
        TokenRule::Auto,
        Terminator::Auto,
    );
    let mut reader = StreamReader::new(&spec);
    let at = std::time::Instant::now();
    let read_all = |reader: &mut StreamReader<'_>| {
        for r in &reads {
            black_box(reader.feed(black_box(r.as_bytes()), at));
        }
        reader.finish()
    };
    let end = read_all(&mut reader);
    assert!(end.ending == Ending::Complete && end.content_events == 40 && end.events == 44);
    assert_eq!(end.tokens, Some(40));
    c.bench_function("stream_sse_40_tokens", |b| {
        b.iter(|| black_box(read_all(&mut reader)));
    });
}

fn capture_json_token(c: &mut Criterion) {
    let body = br#"{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaCIsImlhdCI6MTc2NDQ5NjAwMCwiZXhwIjoxNzY0NDk5NjAwfQ.Zm9yLXRoZS1iZW5jaC1vbmx5LW5vdC1hLXNpZ25hdHVyZQ","token_type":"Bearer","expires_in":3600}"#;
    let path = loadgate_scenario::JsonPath::parse("$.token").unwrap();
    let mut var = String::new();
    assert!(loadgate_engine::capture::text_into(
        body,
        path.steps(),
        &mut var
    ));
    assert!(var.starts_with("eyJ") && var.len() > 100);
    let mut group = c.benchmark_group("capture_json_token");
    group.bench_function("one_pass", |b| {
        b.iter(|| {
            black_box(loadgate_engine::capture::text_into(
                black_box(body),
                path.steps(),
                &mut var,
            ))
        });
    });
    group.bench_function("value_tree", |b| {
        b.iter(|| {
            let doc: Option<serde_json::Value> = serde_json::from_slice(black_box(body)).ok();
            black_box(
                doc.as_ref()
                    .and_then(|d| loadgate_engine::capture::find_in(d, path.steps()))
                    .cloned()
                    .and_then(loadgate_engine::capture::text),
            )
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = record_sample, render_request_body, schedule_due, merge_interval_shard, interval_per_endpoint, request_deadline, stream_sse_40_tokens, capture_json_token
}
criterion_main!(benches);
