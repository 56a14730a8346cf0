//! `[auth]` in a worker: the token a request carries, fetched by a task of its own
//! (never on a measured request's time), each fetch a request of the auth row.
//!
//! Verdict honesty: a request that needs a token when none can be had (the login
//! failed, or answered without one) is not sent, and is counted as an arrival that
//! failed (`auth_failed`), never as loadgate's own error: a broken login FAILs a run.
//! A 401 to a request that carried a token is counted as the 4xx it is (nothing is sent
//! again) and drops the token, so the next request waits for a new one. A request
//! that waited for the first token (or for one after a 401) is timed from when it was
//! due, the wait inside its latency and inside its service time too: the wait is the
//! target's (its login), and a breach it causes must hold on service time, or the
//! judge would blame the generator (INVALID). Its timeout runs from its send.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use loadgate_metrics::{Outcome, Sample};

use super::{execute_step, render_prepared, roll_over, shard_for, Ctx};
use crate::auth::{Fetching, Token, TokenCell};
use crate::call::Exchange;
use crate::request::{Built, Prepared};

/// What a worker keeps of `[auth]`.
pub(super) struct AuthRt {
    /// The request that fetches a token.
    pub(super) prepared: Prepared,
    /// Its row (the last).
    pub(super) row: usize,
    /// The run's token (`scope = "run"`), shared by every worker; `None` with
    /// `scope = "vu"`, where each VU holds its own.
    pub(super) run_cell: Option<TokenCell>,
}

/// A closed-model VU's own token (`scope = "vu"`) and its number (which picks its
/// data row for the login).
#[derive(Clone)]
pub(super) struct VuToken {
    pub(super) cell: TokenCell,
    pub(super) id: u64,
}

/// Why a request that needs a token was not sent.
pub(super) struct NoToken;

/// The token a request carries (`None`: it needs none) and how long it waited for it.
#[derive(Default)]
pub(super) struct Carried {
    pub(super) token: Option<Token>,
    pub(super) waited: Duration,
}

/// `exchange`, of a request that waited `waited` for its token before it was sent: the
/// wait is the target's, so its service time counts it (never from before it was due).
pub(super) fn waited_for(exchange: &mut Exchange, waited: Duration) {
    if waited.is_zero() {
        return;
    }
    if let Some(at) = exchange.sent.checked_sub(waited) {
        exchange.sent = at.max(exchange.intended);
    }
}

/// The token a request of `endpoint` must carry (`None`: it needs none), and how long
/// it waited for it (a fetch in flight): `Err` when none can be had. `vu`: the VU's
/// own token (`scope = "vu"`).
pub(super) async fn token(
    ctx: &Rc<Ctx>,
    endpoint: usize,
    vu: Option<&VuToken>,
) -> Result<Carried, NoToken> {
    let Some(auth) = ctx.auth.as_ref() else {
        return Ok(Carried::default());
    };
    if !ctx.spec.scenario.endpoints[endpoint].auth {
        return Ok(Carried::default());
    }
    // A VU scope outside a VU cannot be (validation refuses it in the open model).
    let cell = scope_cell(ctx, vu).ok_or(NoToken)?;
    // The login's data row: the VU's own, or one per fetch of the run's token.
    let local = vu.filter(|_| auth.run_cell.is_none()).map(|v| v.id);
    // Copy (it holds references only): given to `ready`, then to `get`.
    let start = |fetch: Fetching| {
        let local = local.unwrap_or(fetch.number - 1);
        tokio::task::spawn_local(fetch_token(ctx.clone(), fetch, local));
    };
    // Most requests find it held: no wait, no clock read beyond the cell's.
    if let Some(t) = cell.ready(start) {
        return Ok(Carried {
            token: Some(t),
            waited: Duration::ZERO,
        });
    }
    let waiting = Instant::now();
    match cell.get(start).await {
        Some(t) => Ok(Carried {
            token: Some(t),
            waited: waiting.elapsed(),
        }),
        // The fetch was abandoned (a worker stopped waiting for it after a stop): so is
        // this request, never sent, counted in `abandoned` by the drain that gives up
        // on it, never as a failure of the target's login.
        None if cell.cancelled() => std::future::pending().await,
        None => Err(NoToken),
    }
}

/// Adds to `secrets` the token a request carried (`carried`) and the one its scope
/// holds now (`vu`'s, or the run's): an answer may echo either, also to a request that
/// carried none.
pub(super) fn mask(
    ctx: &Ctx,
    vu: Option<&VuToken>,
    carried: Option<&Token>,
    secrets: &mut loadgate_scenario::Secrets,
) {
    let held = scope_cell(ctx, vu).and_then(TokenCell::held);
    for t in carried.into_iter().chain(held.as_ref()) {
        secrets.add("token", &t.value);
    }
}

/// The token cell of a request's scope: the run's, else its VU's (`scope = "vu"`).
fn scope_cell<'a>(ctx: &'a Ctx, vu: Option<&'a VuToken>) -> Option<&'a TokenCell> {
    let auth = ctx.auth.as_ref()?;
    auth.run_cell.as_ref().or(vu.map(|v| &v.cell))
}

/// `req` with `token`'s header.
pub(super) fn carry(ctx: &Ctx, req: Built, token: Option<&Token>) -> Built {
    match (token, ctx.spec.scenario.auth.as_ref()) {
        (Some(t), Some(a)) => req.with_header(&a.header, &t.header),
        _ => req,
    }
}

/// After a request sent with `token` ended: a 401 drops the token (if it is still the
/// one held), so the next request fetches another. Nothing is sent again.
pub(super) fn answered(
    ctx: &Ctx,
    token: Option<&Token>,
    vu: Option<&VuToken>,
    exchange: &Exchange,
) {
    let Some(token) = token else { return };
    if !exchange.result.as_ref().is_ok_and(|r| r.status == 401) {
        return;
    }
    if let Some(cell) = scope_cell(ctx, vu) {
        cell.refused(token, exchange.end);
    }
}

/// Records request `endpoint`, due at `due`, as not sent for want of a token (its send
/// counted already when `counted`, as the open model counts it at its arrival).
pub(super) fn record_no_token(
    ctx: &Ctx,
    endpoint: usize,
    due: Instant,
    counted: bool,
    also: &[usize],
) {
    let mut shard = shard_for(ctx, due);
    if !counted {
        shard.record_send(endpoint, None, false);
    }
    for &row in also {
        shard.record_send(row, None, false);
    }
    shard.record(&Sample::new(endpoint, Outcome::AuthFailed, 0));
    let name = ctx
        .spec
        .scenario
        .auth
        .as_ref()
        .map_or("auth", |a| a.endpoint.name.as_str());
    shard.record_failure(endpoint, Outcome::AuthFailed, 0xA07_0000_0000_0000, || {
        let what = format!("not sent: no token, [auth] `{name}` brought none (its row says why)");
        (what, None)
    });
}

/// One fetch of the token: `[auth]`'s request sent now, recorded on its row, the token
/// found in its answer given to the waiting requests. `local` picks its data row.
async fn fetch_token(ctx: Rc<Ctx>, fetch: Fetching, local: u64) {
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let got = fetched(&ctx, fetch.number - 1, local).await;
    fetch.finish(got, Instant::now());
    ctx.in_flight.set(ctx.in_flight.get() - 1);
    ctx.drained.notify_one();
}

async fn fetched(ctx: &Rc<Ctx>, seq: u64, local: u64) -> Option<Token> {
    let auth = ctx.auth.as_ref()?;
    let a = ctx.spec.scenario.auth.as_ref()?;
    let row = auth.row;
    let now = Instant::now();
    roll_over(ctx, now);
    let data_row = super::pick_row(ctx, local);
    let Ok(req) = render_prepared(ctx, &auth.prepared, seq, data_row, &[]) else {
        shard_for(ctx, now).record_unbuilt(row);
        return None;
    };
    let (exchange, _sent) =
        execute_step(ctx, row, req, now, now, None, &[], None, Duration::ZERO).await?;
    let prepared = &auth.prepared;
    let mut sample = super::sample(row, prepared.checks(), prepared.goodput(), &exchange);
    let mut token: Option<Token> = None;
    // Why a success brought no token that can be used.
    let mut why: Option<&str> = None;
    // Looked for in any answer: a failed one may hold it too, and it is masked there.
    let value = exchange
        .result
        .as_ref()
        .ok()
        .and_then(|r| super::flow::found(&a.token, r, &mut None));
    if sample.outcome == Outcome::Success {
        match value.as_deref() {
            None => why = Some("found nothing"),
            Some("") => why = Some("found an empty value"),
            Some(v) => {
                let header = a.header_value(v);
                if http::HeaderValue::from_str(&header).is_err() {
                    why = Some("found a value a header cannot hold");
                } else {
                    let wall = SystemTime::now();
                    token = Some(Token::new(v, &header, exchange.end, wall, a.refresh_before));
                }
            }
        }
        if why.is_some() {
            sample.outcome = Outcome::CaptureFailed;
            sample.good = false;
            sample.good_service = false;
        }
    }
    roll_over(ctx, exchange.end);
    let mut shard = shard_for(ctx, now);
    shard.record(&sample);
    match why {
        Some(why) => {
            let key = 0xA07_0000_0000_0001;
            let max_body = ctx.spec.scenario.max_body;
            let cut = a.token.needs_body()
                && exchange
                    .result
                    .as_ref()
                    .is_ok_and(|r| (r.body.len() as u64) < r.decoded.unwrap_or(r.bytes));
            shard.record_failure(row, Outcome::CaptureFailed, key, || {
                let mut what = format!("token: {} {why}", a.token.describe());
                if cut {
                    what.push_str(&format!(
                        " in the first {max_body} bytes kept (max_body): raise max_body"
                    ));
                }
                (what, None)
            });
        }
        None if sample.outcome != Outcome::Success => {
            let secrets = || {
                let mut s = ctx.spec.scenario.secrets.clone();
                if let Some(v) = &value {
                    s.add("token", v);
                }
                mask(ctx, None, None, &mut s);
                s
            };
            crate::classify::record_failure(
                &mut shard,
                row,
                prepared,
                &exchange,
                sample.outcome,
                secrets,
            );
        }
        None => {}
    }
    token
}
