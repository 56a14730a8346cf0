//! Issue 18 ("Memory grows about 2 MB per endpoint"): what the engine's interval cycle
//! holds for 1000 endpoints, as the shards count it (`Shard::allocated_bytes`, from the
//! histograms' count arrays). The workspace forbids `unsafe`, so no counting allocator.

use loadgate_metrics::{Outcome, Sample, Shard};

const ENDPOINTS: usize = 1000;
const MAX_US: u64 = 60_000_000;
const KIB: usize = 1024;
/// At most what one histogram of values under 2 ms holds (2048 counts and its header).
const SMALL_HIST: usize = 17 * KIB;

/// One second of two workers' traffic at 200 requests/s spread over every endpoint,
/// merged the way the aggregator does (a fresh interval shard, the workers' shards
/// added, the interval added to the totals, the workers' shards reset for reuse).
fn one_second(second: u64, workers: &mut [Shard], totals: &mut Shard) {
    for i in 0..200u64 {
        let n = second * 200 + i;
        let w = &mut workers[(n % 2) as usize];
        let endpoint = ((n * 7919) % ENDPOINTS as u64) as usize;
        w.record_send(endpoint, Some(30 + n % 200), false);
        w.record(&Sample {
            status: Some(200),
            connect_us: n.is_multiple_of(100).then_some(250),
            ..Sample::new(endpoint, Outcome::Success, 300 + (n * 104_729) % 1_500)
        });
        w.record_due_success(endpoint, second);
    }
    let mut interval = Shard::new(ENDPOINTS, MAX_US);
    for w in workers.iter_mut() {
        interval.merge_from(w);
        w.reset();
    }
    totals.merge_from(&interval);
}

#[test]
fn an_interval_cycle_of_1000_endpoints_costs_what_the_traffic_touched() {
    let mut totals = Shard::new(ENDPOINTS, MAX_US);
    let mut workers = vec![Shard::new(ENDPOINTS, MAX_US), Shard::new(ENDPOINTS, MAX_US)];
    let live = |workers: &[Shard], totals: &Shard| {
        totals.allocated_bytes() + workers.iter().map(Shard::allocated_bytes).sum::<usize>()
    };
    let empty = live(&workers, &totals);
    // Before: four histograms of 139 KiB per endpoint, 557 MB per shard, 1.7 GB here.
    // Now the fixed part of an endpoint (nine empty timing histograms, 24 bytes each,
    // and its counters) and nothing else.
    assert!(
        empty <= 3 * ENDPOINTS * 592,
        "three empty 1000-endpoint shards hold {} KiB",
        empty / KIB
    );

    one_second(0, &mut workers, &mut totals);
    let after_one = live(&workers, &totals);
    // 200 requests touched at most 200 endpoints: four small histograms each at most,
    // in the totals and kept by the workers' reset shards.
    assert!(
        after_one <= empty + 2 * 200 * 4 * SMALL_HIST,
        "after one second: {} KiB",
        after_one / KIB
    );

    for second in 1..10 {
        one_second(second, &mut workers, &mut totals);
    }
    let after_ten = live(&workers, &totals);
    // Ten seconds reached most endpoints: the totals hold up to four small histograms
    // per endpoint, the workers only their last second's endpoints.
    assert!(
        after_ten <= empty + ENDPOINTS * 4 * SMALL_HIST + 200 * 4 * SMALL_HIST,
        "after ten seconds: {} KiB",
        after_ten / KIB
    );
    let totals_bytes = totals.allocated_bytes();
    assert!(
        totals_bytes <= ENDPOINTS * (400 + 4 * SMALL_HIST + 256),
        "the totals report {} KiB",
        totals_bytes / KIB
    );

    // Ten more seconds of the same traffic add no histograms: only the due-second
    // counts of the new seconds (16 bytes per endpoint per second at most).
    for second in 10..20 {
        one_second(second, &mut workers, &mut totals);
    }
    let after_twenty = live(&workers, &totals);
    assert!(
        after_twenty <= after_ten + ENDPOINTS * 10 * 16 + 200 * 4 * SMALL_HIST,
        "after twenty seconds: {} KiB, after ten: {} KiB",
        after_twenty / KIB,
        after_ten / KIB
    );
    assert_eq!(totals.overall().completed(), 20 * 200);
}
