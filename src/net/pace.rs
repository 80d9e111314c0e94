//! Pacing in the loop (--max-rate-*): before each pump of a download or an upload, the session's
//! bucket and the server's pool for that direction (transfer/pace.rs) say how much it may move.
//! Short of a slice, the data connection waits: on its own timer for its session's bucket, or in
//! the pool's queue, whose head the loop serves when the pool has refilled (`pace_turns`, woken
//! by `pace_wake_at` in the poll timeout). Nothing sleeps, and the pump itself never knows it is
//! paced: it is only given a smaller budget. Listings are not paced (they are small, and a
//! client waiting for one is a person waiting for a page).

use std::time::Instant;

use super::{Conn, Server};
use crate::config::{Rates, TURN_BYTES};
use crate::transfer::pace::{Bucket, Pool};
use crate::transfer::Direction;

/// One bucket per direction: a session's own (--max-rate-down/-up) or the server's pools
/// (--max-rate-total-down/-up). Boxed: an unpaced session (most) holds two null pointers.
#[derive(Debug, Default)]
pub(super) struct PerDirection<T> {
    down: Option<Box<T>>,
    up: Option<Box<T>>,
}

impl<T> PerDirection<T> {
    fn get(&mut self, direction: Direction) -> Option<&mut T> {
        match direction {
            Direction::Download => self.down.as_deref_mut(),
            Direction::Upload => self.up.as_deref_mut(),
            Direction::Listing => None,
        }
    }
}

impl PerDirection<Bucket> {
    /// A session's buckets, full at its start: the flags' rates (--max-rate-down/-up).
    pub(super) fn session(rates: &Rates, now: Instant) -> Self {
        PerDirection::buckets(rates.down, rates.up, now)
    }

    /// Full buckets for these rates (a user's rate_down/rate_up from its login on).
    pub(super) fn buckets(down: Option<u64>, up: Option<u64>, now: Instant) -> Self {
        PerDirection {
            down: down.map(|rate| Box::new(Bucket::new(rate, now))),
            up: up.map(|rate| Box::new(Bucket::new(rate, now))),
        }
    }
}

impl PerDirection<Pool> {
    pub(super) fn server(rates: &Rates, now: Instant) -> Self {
        PerDirection {
            down: rates.total_down.map(|rate| Box::new(Pool::new(rate, now))),
            up: rates.total_up.map(|rate| Box::new(Pool::new(rate, now))),
        }
    }
}

impl Server {
    /// The budget of data connection `key`'s next pump (TURN_BYTES when nothing paces it), or
    /// None: it waits, on its timer or in the pool's queue. `turn`: the pool gave it this turn.
    pub(super) fn pace_budget(
        &mut self,
        key: usize,
        owner: usize,
        direction: Direction,
        turn: bool,
        now: Instant,
    ) -> Option<usize> {
        let mut budget = TURN_BYTES as u64;
        if let Some(bucket) = self.control(owner).and_then(|c| c.rates.get(direction)) {
            match bucket.grant(now) {
                Ok(bytes) => budget = budget.min(bytes),
                Err(ready) => {
                    self.timers.set(key, Some(ready));
                    return None;
                }
            }
        }
        if let Some(pool) = self.pools.get(direction) {
            budget = budget.min(pool.grant(key, turn, now)?);
        }
        Some(budget as usize)
    }

    /// What a pump moved, taken from the buckets that let it.
    pub(super) fn pace_charge(&mut self, owner: usize, direction: Direction, moved: u64) {
        if let Some(bucket) = self.control(owner).and_then(|c| c.rates.get(direction)) {
            bucket.take(moved);
        }
        if let Some(pool) = self.pools.get(direction) {
            pool.take(moved);
        }
    }

    /// When the head of a pool's queue can have its turn.
    pub(super) fn pace_wake_at(&self) -> Option<Instant> {
        let pools = [&self.pools.down, &self.pools.up];
        pools
            .into_iter()
            .flatten()
            .filter_map(|pool| pool.wake_at())
            .min()
    }

    /// Serves the transfers waiting at the pools, in turn, as far as the pools have refilled.
    pub(super) fn pace_turns(&mut self, now: Instant) {
        for direction in [Direction::Download, Direction::Upload] {
            while let Some(key) = self.pools.get(direction).and_then(|p| p.next_turn(now)) {
                if let Some(Conn::Data(data)) = self.conns.get_mut(key) {
                    data.pace_turn = true;
                }
                self.service_data(key, now);
            }
        }
    }

    /// A data connection that is gone leaves the queues.
    pub(super) fn pace_forget(&mut self, key: usize) {
        for pool in [&mut self.pools.down, &mut self.pools.up]
            .into_iter()
            .flatten()
        {
            pool.forget(key);
        }
    }
}
