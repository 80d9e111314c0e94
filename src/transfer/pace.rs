//! Pacing (--max-rate-down/-up per session, --max-rate-total-down/-up for the server): token
//! buckets that the loop consults before each pump, and the queue that splits a server-wide
//! bucket fairly. Sans-IO: `now` is always a parameter, so the tests run on a virtual clock.
//!
//! A bucket earns `rate` bytes a second, holds at most `burst` of them (BURST_MS worth of the
//! rate), and is drawn on in slices (SLICE_MS worth): a transfer waits until a whole slice is
//! there and then moves up to what is there, so a paced download still goes by sendfile in
//! slices of tens of milliseconds of its rate (about 50 pumps a second whatever the rate) rather
//! than in tiny writes. Tokens are kept in nanobyte units (bytes x 10^9), so no fraction of a
//! byte is lost between two refills, however small the rate or the time.
//!
//! A server-wide bucket (`Pool`) is shared in turns: a transfer that finds it short, or finds
//! others already waiting, joins the back of its queue; as the bucket refills, the head gets one
//! slice at most and goes to the back again if it wants more. So every paced transfer gets turns
//! in order and none starves, whatever their slab keys or readiness.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{
    PACE_BURST_MS, PACE_MIN_SLICE_BYTES, PACE_POOL_BURST_MS, PACE_SLICE_MS, TURN_BYTES,
};

const NANOS: u128 = 1_000_000_000;

/// One token bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Bytes a second.
    rate: u64,
    /// Most bytes it holds, in nanobytes.
    burst: u128,
    /// What it holds, in nanobytes.
    tokens: u128,
    /// When `tokens` was last brought up to date.
    last: Instant,
    slice: u64,
}

impl Bucket {
    /// A full bucket holding at most PACE_BURST_MS of its rate.
    pub fn new(rate: u64, now: Instant) -> Bucket {
        Bucket::with_burst(rate, PACE_BURST_MS, now)
    }

    /// A full bucket holding at most `burst_ms` of its rate (and at least one slice).
    fn with_burst(rate: u64, burst_ms: u64, now: Instant) -> Bucket {
        let rate = rate.max(1);
        let of_rate = |ms: u64| (u128::from(rate) * u128::from(ms) / 1000) as u64;
        let slice = of_rate(PACE_SLICE_MS).clamp(PACE_MIN_SLICE_BYTES, TURN_BYTES as u64);
        let burst = of_rate(burst_ms).max(slice);
        Bucket {
            rate,
            burst: u128::from(burst) * NANOS,
            tokens: u128::from(burst) * NANOS,
            last: now,
            slice,
        }
    }

    /// The least a transfer waits for, and the most a pool hands out in one turn.
    pub fn slice(&self) -> u64 {
        self.slice
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.tokens = (self.tokens + elapsed * u128::from(self.rate)).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Whole bytes it holds at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        (self.tokens / NANOS) as u64
    }

    /// Takes `bytes` (moved after `available` said so; never more than it holds).
    pub fn take(&mut self, bytes: u64) {
        self.tokens = self.tokens.saturating_sub(u128::from(bytes) * NANOS);
    }

    /// When it will hold `bytes` (at most its burst), given what it held when last refilled.
    pub fn ready_at(&self, bytes: u64) -> Instant {
        let want = (u128::from(bytes) * NANOS).min(self.burst);
        let missing = want.saturating_sub(self.tokens);
        let nanos = missing.div_ceil(u128::from(self.rate));
        self.last + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    /// What a transfer may move now: Ok(bytes), at least a slice; or Err(when a slice is there).
    pub fn grant(&mut self, now: Instant) -> Result<u64, Instant> {
        let available = self.available(now);
        if available >= self.slice {
            Ok(available)
        } else {
            Err(self.ready_at(self.slice))
        }
    }
}

/// A server-wide bucket and the transfers (slab keys) waiting for their turn at it.
#[derive(Debug)]
pub struct Pool {
    bucket: Bucket,
    waiting: VecDeque<usize>,
}

impl Pool {
    pub fn new(rate: u64, now: Instant) -> Pool {
        Pool {
            // A short burst: the first transfer to come takes it alone, before the others
            // queue; with 100 ms it ran a fifth of a 2 MiB share ahead of 20 others.
            bucket: Bucket::with_burst(rate, PACE_POOL_BURST_MS, now),
            waiting: VecDeque::new(),
        }
    }

    /// What transfer `key` may move now (at most one slice). `turn` says the pool itself gave it
    /// this turn (`next_turn`). None: it waits in the queue (joined if it was not there).
    pub fn grant(&mut self, key: usize, turn: bool, now: Instant) -> Option<u64> {
        let slice = self.bucket.slice();
        if (turn || self.waiting.is_empty()) && self.bucket.available(now) >= slice {
            return Some(slice);
        }
        if !self.waiting.contains(&key) {
            self.waiting.push_back(key);
        }
        None
    }

    pub fn take(&mut self, bytes: u64) {
        self.bucket.take(bytes);
    }

    /// The transfer whose turn it is, if the bucket holds a slice for it: out of the queue (it
    /// joins again at the back if it still wants more).
    pub fn next_turn(&mut self, now: Instant) -> Option<usize> {
        if self.waiting.is_empty() || self.bucket.available(now) < self.bucket.slice() {
            return None;
        }
        self.waiting.pop_front()
    }

    /// When the head of the queue can have its turn; None with nobody waiting.
    pub fn wake_at(&self) -> Option<Instant> {
        (!self.waiting.is_empty()).then(|| self.bucket.ready_at(self.bucket.slice()))
    }

    /// A transfer that ended (or was aborted) leaves the queue.
    pub fn forget(&mut self, key: usize) {
        self.waiting.retain(|&k| k != key);
    }
}

/// A RATE flag's value: bytes a second as plain digits, or with a K, M or G suffix (base 1024,
/// either case), as curl's --limit-rate and Pure-FTPd read them. Zero is refused.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("{text}: want bytes a second, like 512K, 10M or 1G")),
    };
    let value = digits
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0 && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(1 << shift));
    value.ok_or_else(|| format!("{text}: want bytes a second, like 512K, 10M or 1G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rates_parse_in_base_1024_and_bad_ones_are_refused() {
        assert_eq!(parse_rate("100"), Ok(100));
        assert_eq!(parse_rate("512K"), Ok(512 * 1024));
        assert_eq!(parse_rate("512k"), Ok(512 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_rate("2g"), Ok(2 << 30));
        for bad in [
            "",
            "0",
            "0K",
            "K",
            "-1",
            "+5",
            "1.5M",
            "10T",
            "10MB",
            " 10",
            "99999999999G",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} must be refused");
        }
    }

    /// 2 MiB/s: slices of 20 ms (41,943 bytes), a burst of 100 ms (209,715 bytes).
    #[test]
    fn a_bucket_starts_full_refills_at_its_rate_and_holds_one_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2 << 20, t0);
        assert_eq!(b.slice(), 41_943);
        assert_eq!(b.available(t0), 209_715);
        b.take(209_715);
        assert_eq!(b.available(t0), 0);
        // Half a second earns a million bytes, but the bucket holds 100 ms of them.
        assert_eq!(b.available(t0 + ms(500)), 209_715);
        b.take(209_715);
        // 1 ms earns 2097.152 bytes: 2097 whole ones, and the fraction is kept.
        assert_eq!(b.available(t0 + ms(501)), 2097);
        assert_eq!(b.available(t0 + ms(1500)), 209_715);
    }

    #[test]
    fn no_fraction_of_a_byte_is_lost_between_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(3, t0); // 3 bytes a second: a byte every 333.3 ms
        let full = b.available(t0);
        b.take(full);
        let mut got = 0;
        for i in 1..=30 {
            let n = b.available(t0 + ms(100 * i));
            b.take(n);
            got += n;
        }
        assert_eq!(got, 9, "3 s at 3 bytes/s, taken in 100 ms steps");
    }

    #[test]
    fn grant_waits_for_a_whole_slice_and_says_until_when() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1 << 20, t0); // slice 20,971 bytes
        let all = b.grant(t0).unwrap();
        b.take(all);
        let at = b.grant(t0 + ms(5)).unwrap_err();
        // 20,971 bytes at 1,048,576 bytes/s: 19,999,505 ns after the bucket ran dry.
        assert_eq!(at, t0 + Duration::from_nanos(19_999_505));
        assert_eq!(b.grant(at), Ok(20_971));
        assert!(
            b.grant(at - Duration::from_nanos(1)).is_ok(),
            "time never runs back"
        );
    }

    #[test]
    fn slices_are_clamped_to_a_minimum_and_to_a_turn() {
        let t0 = Instant::now();
        assert_eq!(Bucket::new(1000, t0).slice(), PACE_MIN_SLICE_BYTES);
        assert_eq!(Bucket::new(1000, t0).available(t0), PACE_MIN_SLICE_BYTES);
        assert_eq!(Bucket::new(u64::MAX, t0).slice(), TURN_BYTES as u64);
    }

    /// Three transfers at one pool, the bucket short: each gets its turn in the order it came,
    /// then again, and a newcomer queues behind them.
    #[test]
    fn a_pool_gives_turns_in_order_and_none_starves() {
        let t0 = Instant::now();
        let mut pool = Pool::new(1 << 20, t0);
        let slice = 20_971;
        // The burst (104,857 bytes) goes in slices while nobody waits.
        let mut now = t0;
        while let Some(n) = pool.grant(9, false, now) {
            assert_eq!(n, slice);
            pool.take(n);
        }
        assert_eq!(pool.waiting, [9]);
        assert_eq!(pool.grant(5, false, now), None);
        assert_eq!(pool.grant(7, false, now), None);
        assert_eq!(
            pool.grant(5, false, now),
            None,
            "no second place in the queue"
        );
        assert_eq!(pool.next_turn(now), None, "no slice yet");
        let mut order = Vec::new();
        for _ in 0..7 {
            now = pool.wake_at().unwrap();
            let key = pool.next_turn(now).unwrap();
            assert_eq!(pool.grant(key, true, now), Some(slice));
            pool.take(slice);
            assert_eq!(pool.next_turn(now), None);
            order.push(key);
            if key == 7 && order.len() == 3 {
                assert_eq!(pool.grant(3, false, now), None, "3 queues behind 9");
            }
            // It wants more: back of the queue.
            assert_eq!(pool.grant(key, false, now), None);
        }
        assert_eq!(order, [9, 5, 7, 9, 5, 3, 7]);
        pool.forget(9);
        pool.forget(3);
        pool.forget(5);
        pool.forget(7);
        assert_eq!(pool.wake_at(), None);
    }

    /// The time a pool's head waits is what the missing part of a slice takes at the rate.
    #[test]
    fn a_pool_wakes_when_a_slice_is_there() {
        let t0 = Instant::now();
        let mut pool = Pool::new(1 << 20, t0);
        pool.take(104_857);
        assert_eq!(pool.grant(1, false, t0), None);
        assert_eq!(pool.wake_at(), Some(t0 + Duration::from_nanos(19_999_505)));
    }
}
