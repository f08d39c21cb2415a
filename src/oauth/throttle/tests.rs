//! The throttle's rules, and which entries a full table gives up.
use super::*;

fn ip(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

fn pair_blocks(seconds: i64) -> Option<Block> {
    Some(Block {
        seconds,
        whole_address: false,
    })
}

#[test]
fn five_failures_block_with_doubling_up_to_the_cap() {
    let t = Throttle::new(ThrottleConfig::default());
    for _ in 0..4 {
        assert_eq!(t.failed(ip(1), "demo", 0), None);
    }
    assert_eq!(t.failed(ip(1), "demo", 0), pair_blocks(30));
    assert_eq!(t.check(ip(1), "demo", 10), Err(20));
    assert!(
        t.check(ip(2), "demo", 10).is_ok(),
        "another address is not blocked"
    );
    assert!(t.check(ip(1), "other", 10).is_ok());
    assert!(t.check(ip(1), "demo", 30).is_ok());
    let mut last = None;
    for round in 0..8 {
        for _ in 0..5 {
            if let Some(b) = t.failed(ip(1), "demo", 1000 * (round + 1)) {
                last = Some(b);
            }
        }
    }
    assert_eq!(last, pair_blocks(900));
}

#[test]
fn success_forgets_and_old_failures_expire() {
    let t = Throttle::new(ThrottleConfig::default());
    for _ in 0..4 {
        t.failed(ip(1), "demo", 0);
    }
    t.succeeded(ip(1), "demo");
    assert_eq!(t.failed(ip(1), "demo", 1), None);
    for _ in 0..3 {
        t.failed(ip(1), "demo", 1);
    }
    assert_eq!(t.failed(ip(1), "demo", 400), None, "the window restarted");
}

#[test]
fn strikes_keep_counting_when_the_address_fails_on_another_client_id_between() {
    let t = Throttle::new(ThrottleConfig::default());
    for _ in 0..5 {
        t.failed(ip(1), "demo", 0);
    }
    assert_eq!(t.failed(ip(1), "other", 40), None);
    for _ in 0..4 {
        assert_eq!(t.failed(ip(1), "demo", 40), None);
    }
    assert_eq!(
        t.failed(ip(1), "demo", 40),
        pair_blocks(60),
        "the second block doubles"
    );
}

#[test]
fn one_address_cannot_try_unlimited_client_ids() {
    let t = Throttle::new(ThrottleConfig::default());
    for i in 0..49 {
        assert_eq!(t.failed(ip(1), &format!("random-{i}"), 0), None);
    }
    assert_eq!(
        t.failed(ip(1), "random-49", 0),
        Some(Block {
            seconds: 30,
            whole_address: true
        })
    );
    assert_eq!(t.check(ip(1), "never-tried", 1), Err(29));
    assert!(t.check(ip(2), "never-tried", 1).is_ok());
    t.succeeded(ip(1), "demo");
    assert!(
        t.check(ip(1), "demo", 1).is_err(),
        "a success does not lift the address's block"
    );
}

fn small(max_entries: usize) -> Throttle {
    Throttle::new(ThrottleConfig {
        max_entries,
        address_failures: u32::MAX,
        ..Default::default()
    })
}

/// Fails `id` until one more failure would block it: true if it had no
/// failures counted (its entry was evicted or never existed).
fn counted_from_zero(t: &Throttle, ip: IpAddr, id: &str, now: i64) -> bool {
    for _ in 0..3 {
        t.failed(ip, id, now);
    }
    t.failed(ip, id, now).is_none()
}

#[test]
fn a_full_table_drops_the_least_recently_seen_ordinary_entries_first() {
    let t = small(8);
    for i in 0..8 {
        t.failed(ip(1), &format!("id-{i}"), i);
    }
    assert_eq!(t.evictions(), 0);
    t.failed(ip(1), "id-8", 8);
    assert_eq!(t.evictions(), 1);
    // A quarter of 8 went: the two seen least recently.
    assert!(counted_from_zero(&t, ip(1), "id-0", 9));
    assert!(counted_from_zero(&t, ip(1), "id-1", 9));
    assert!(
        !counted_from_zero(&t, ip(1), "id-7", 9),
        "id-7 kept its first failure, so its fifth blocks"
    );
}

#[test]
fn an_entry_whose_window_has_just_ended_goes_before_one_still_counting() {
    let t = small(4);
    let at = |s: i64| 1_000_000 + s;
    t.failed(ip(1), "old-window", at(0));
    t.failed(ip(1), "old-window", at(299));
    t.failed(ip(1), "counting", at(10));
    t.failed(ip(1), "c", at(295));
    t.failed(ip(1), "d", at(296));
    // At 300 the first entry's window (0..300) has ended: it is what no longer
    // matters, although it was seen more recently than "counting".
    t.failed(ip(1), "e", at(300));
    assert!(
        !counted_from_zero(&t, ip(1), "counting", at(300)),
        "\"counting\" kept its failure, so its fifth blocks"
    );
}

fn blocking(max_entries: usize) -> Throttle {
    Throttle::new(ThrottleConfig {
        max_entries,
        address_failures: u32::MAX,
        base_block: 1000,
        cap: 10_000,
        ..Default::default()
    })
}

fn block(t: &Throttle, id: &str, at: i64) {
    for _ in 0..5 {
        t.failed(ip(1), id, at);
    }
}

#[test]
fn eviction_frees_exactly_its_batch_when_entries_were_seen_at_the_same_second() {
    let t = small(8);
    t.failed(ip(1), "id-0", 1_000_000);
    for i in 1..8 {
        t.failed(ip(1), &format!("id-{i}"), 1_000_001);
    }
    t.failed(ip(1), "id-8", 1_000_001);
    assert_eq!(t.evictions(), 1);
    assert_eq!(t.entries(), 7, "a quarter of 8 went, not more");
}

#[test]
fn the_only_ordinary_entry_goes_before_any_block() {
    let t = blocking(4);
    for (i, at) in [(0, 10), (1, 20), (2, 30)] {
        block(&t, &format!("id-{i}"), at);
    }
    t.failed(ip(1), "ordinary", 35);
    t.failed(ip(1), "new", 40);
    for i in 0..3 {
        assert!(t.check(ip(1), &format!("id-{i}"), 41).is_err(), "id-{i}");
    }
    assert!(counted_from_zero(&t, ip(1), "ordinary", 41));
}

#[test]
fn when_every_entry_is_blocked_a_quarter_of_the_blocks_go() {
    let t = blocking(8);
    for i in 0..8 {
        block(&t, &format!("id-{i}"), 10 * i);
    }
    block(&t, "id-8", 80);
    let lifted: Vec<usize> = (0..8)
        .filter(|i| t.check(ip(1), &format!("id-{i}"), 81).is_ok())
        .collect();
    assert_eq!(lifted, vec![0, 1], "the two blocks ending soonest");
}

#[test]
fn a_live_block_survives_a_flood_of_client_ids() {
    let t = small(100);
    for _ in 0..5 {
        t.failed(ip(1), "demo", 0);
    }
    for i in 0..10_000 {
        t.failed(ip(2), &format!("random-{i}"), 1 + i / 1000);
    }
    assert_eq!(
        t.check(ip(1), "demo", 29),
        Err(1),
        "the block is still there"
    );
    assert!(t.entries() <= 100);
}

#[test]
fn eviction_frees_a_batch_not_one_entry_per_failure() {
    let t = small(100);
    for i in 0..10_000 {
        t.failed(ip(2), &format!("random-{i}"), 0);
    }
    // Each pass frees 25 entries; one entry per pass would be 9,900 passes.
    let passes = t.evictions();
    assert!((390..=400).contains(&passes), "{passes} evictions");
}

#[test]
fn when_every_entry_is_blocked_the_blocks_ending_soonest_go() {
    let t = Throttle::new(ThrottleConfig {
        max_entries: 4,
        address_failures: u32::MAX,
        base_block: 1000,
        cap: 10_000,
        ..Default::default()
    });
    for (i, at) in [(0, 10), (1, 0), (2, 20), (3, 30)] {
        for _ in 0..5 {
            t.failed(ip(1), &format!("id-{i}"), at);
        }
    }
    for _ in 0..5 {
        t.failed(ip(1), "id-4", 40);
    }
    assert!(t.check(ip(1), "id-1", 41).is_ok(), "ended first: evicted");
    for i in [0, 2, 3, 4] {
        assert!(t.check(ip(1), &format!("id-{i}"), 41).is_err(), "id-{i}");
    }
}
