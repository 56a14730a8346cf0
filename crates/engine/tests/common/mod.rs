//! What the engine's integration tests share: a run's configuration from scenario text.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgate_engine::{
    execute, Call, ClientOptions, Deadlines, Exchange, HttpClient, Prepared, RunConfig, StopSignal,
};

/// The whole load of `scenario` (TOML; `${BASE}` is `base`) against `base` with `workers`
/// workers, pinned or not, a 5 s grace and certificates checked.
pub(crate) fn config(scenario: &str, base: &str, workers: usize, pin_workers: bool) -> RunConfig {
    let b = base.to_string();
    let s = loadgate_scenario::parse(Path::new("test.toml"), scenario, &move |n| {
        (n == "BASE").then(|| b.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    RunConfig {
        scenario: Arc::new(s),
        base_url: base.to_string(),
        insecure: false,
        workers,
        stop: StopSignal::default(),
        grace: std::time::Duration::from_secs(5),
        segment: loadgate_engine::Segment::WHOLE,
        start_at: None,
        pin_workers,
        tls_files: Default::default(),
    }
}

/// The first endpoint of a scenario, prepared against `base`, and a client for it: one
/// exchange at a time, as a worker would send it.
pub(crate) struct Target {
    pub(crate) client: HttpClient,
    pub(crate) prepared: Prepared,
    pub(crate) checks: loadgate_scenario::Checks,
    pub(crate) timeout: Duration,
}

/// The first endpoint of scenario text `text` (whose `${BASE}` is `base`) against `base`.
pub(crate) fn target_of(text: &str, base: &str) -> Target {
    let b = base.to_string();
    target_in(text, base, &move |_| Some(b.clone()))
}

/// The first endpoint of scenario text `text`, its `${VAR}`s from `env`, against `base`.
pub(crate) fn target_in(text: &str, base: &str, env: &dyn Fn(&str) -> Option<String>) -> Target {
    let s =
        loadgate_scenario::parse(Path::new("t.toml"), text, env).unwrap_or_else(|e| panic!("{e}"));
    let client = HttpClient::new(ClientOptions {
        connect_timeout: s.connect_timeout,
        http: s.http,
        insecure: false,
        connections: None,
        tls_files: Default::default(),
    })
    .unwrap();
    Target {
        client,
        checks: s.endpoints[0].checks.clone(),
        prepared: Prepared::all(&s, base).unwrap().remove(0),
        timeout: s.timeout,
    }
}

impl Target {
    /// One request, sent `lag` after it was due, within the timeout (which fires: the
    /// deadlines are watched meanwhile); each gap its stream closes goes to `gaps`.
    pub(crate) async fn call_with(
        &self,
        lag: Duration,
        gaps: &mut dyn FnMut(Instant, Duration),
    ) -> Exchange {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut ctx = loadgate_scenario::RenderCtx {
            seq: 0,
            rng: &mut rng,
            row: None,
            lists: &[],
            vars: &[],
        };
        let req = self.prepared.build(&mut ctx, &mut Vec::new()).unwrap();
        let deadlines = Deadlines::new(self.timeout);
        let sent = Instant::now();
        let call = execute(
            &self.client,
            &self.prepared,
            Call::Http(req),
            (sent - lag, sent),
            &deadlines,
            None,
            gaps,
            None,
        );
        tokio::select! {
            exchange = call => exchange,
            () = deadlines.watch() => unreachable!("the watch never ends"),
        }
    }

    /// One request, due when sent.
    pub(crate) async fn call(&self) -> Exchange {
        self.call_with(Duration::ZERO, &mut |_, _| {}).await
    }
}

/// Runs `f` to its end on a runtime of its own.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Serves one accepted connection with `service` in a task of its own, over HTTP/2
/// (prior knowledge) when `h2`, else HTTP/1.1.
pub(crate) fn serve<S, B>(sock: tokio::net::TcpStream, service: S, h2: bool)
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = hyper_util::rt::TokioIo::new(sock);
    tokio::spawn(async move {
        if h2 {
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(io, service)
                .await;
        } else {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        }
    });
}
