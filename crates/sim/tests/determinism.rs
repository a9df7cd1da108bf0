//! A run is a pure function of (seed, commit): the same seed twice gives the same trace, event
//! for event (protocol: The core does no I/O; docs/simulation.md: Golden trace hashes).

use tenure_sim::{run, ExpiryJudge, Setup, StoreVariant, Variant};

#[test]
fn one_seed_twice_gives_identical_traces() {
    // A seed with a full minute of mixed faults, its trace kept as text both times so that a
    // difference would show where the runs part.
    let mut setup = Setup::from_seed(11, 3, Variant::Correct, 60_000);
    setup.keep_trace = true;
    assert!(setup.schedule.faults.len() >= 5, "{}", setup.schedule);

    let first = run(&setup);
    let second = run(&setup);

    assert!(first.violation.is_none(), "{}", first.report(&setup));
    let parted = first
        .trace
        .iter()
        .zip(&second.trace)
        .position(|(a, b)| a != b);
    assert_eq!(parted, None, "the runs part at trace line {parted:?}");
    assert_eq!(first.trace.len(), second.trace.len());
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.failovers, second.failovers);

    // Keeping the text changes nothing in the run itself.
    setup.keep_trace = false;
    assert_eq!(run(&setup).trace_hash, first.trace_hash);
}

#[test]
fn another_seed_gives_another_trace() {
    let first = run(&Setup::from_seed(11, 3, Variant::Correct, 30_000));
    let other = run(&Setup::from_seed(12, 3, Variant::Correct, 30_000));
    assert_ne!(first.trace_hash, other.trace_hash);
}

#[test]
fn one_store_seed_twice_gives_identical_traces() {
    // A store run is a pure function of its seed too, under either judge: the store's host,
    // its clock and every draw of the store transport come from the seed.
    for judge in [ExpiryJudge::Contenders, ExpiryJudge::Store] {
        let mut setup = Setup::store_from_seed(11, 2, judge, StoreVariant::Correct, 60_000);
        setup.keep_trace = true;
        assert!(setup.schedule.faults.len() >= 5, "{}", setup.schedule);

        let first = run(&setup);
        let second = run(&setup);

        assert!(first.violation.is_none(), "{}", first.report(&setup));
        let parted = first
            .trace
            .iter()
            .zip(&second.trace)
            .position(|(a, b)| a != b);
        assert_eq!(parted, None, "the runs part at trace line {parted:?}");
        assert_eq!(first.trace.len(), second.trace.len());
        assert_eq!(first.trace_hash, second.trace_hash);
        assert_eq!(first.failovers, second.failovers);
        assert_eq!(first.store_record, second.store_record);
        assert!(
            first.trace.iter().any(|line| line.contains("store serves")),
            "the store served nothing"
        );

        // Another seed gives another run.
        let other = run(&Setup::store_from_seed(
            12,
            2,
            judge,
            StoreVariant::Correct,
            60_000,
        ));
        assert_ne!(first.trace_hash, other.trace_hash);
    }
}
