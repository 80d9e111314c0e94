//! One timer table for every connection of the loop: a control connection's session deadlines,
//! and (for pacing or a TLS close) a data connection's own. Each connection has at most one
//! deadline; moving it later costs nothing until its old entry surfaces (then it is pushed
//! again), and an entry that no longer matches its connection is skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A deadline that handling did not move.
#[derive(Debug, PartialEq, Eq)]
pub struct StuckDeadline;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Per connection, indexed by slab key (keys are small and reused, so this stays as long as
    /// the most connections ever open at once).
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The deadline the connection wants now.
    wanted: Option<Instant>,
    /// Its earliest entry in the heap. A deadline that moves later (a transfer's, at every
    /// chunk) pushes nothing: the old entry surfaces first and is pushed again at `wanted`.
    /// Only a deadline that moves earlier is pushed, so the heap holds about one entry a
    /// connection.
    queued: Option<Instant>,
}

impl Timers {
    /// Sets (or clears) connection `key`'s deadline.
    pub fn set(&mut self, key: usize, deadline: Option<Instant>) {
        if self.slots.len() <= key {
            if deadline.is_none() {
                return;
            }
            self.slots.resize(key + 1, Slot::default());
        }
        let slot = &mut self.slots[key];
        slot.wanted = deadline;
        if let Some(deadline) = deadline.filter(|&d| slot.queued.is_none_or(|q| d < q)) {
            slot.queued = Some(deadline);
            self.heap.push(Reverse((deadline, key)));
        }
    }

    /// Sets `key`'s next deadline after its last one was handled at `now`. One that is not
    /// later than `now` would fire again at once, forever (issue 8's CPU spin): it is refused,
    /// the connection is left with no deadline, and the caller closes it.
    pub fn rearm(
        &mut self,
        key: usize,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Result<(), StuckDeadline> {
        match deadline {
            Some(deadline) if deadline <= now => {
                self.set(key, None);
                Err(StuckDeadline)
            }
            deadline => {
                self.set(key, deadline);
                Ok(())
            }
        }
    }

    /// The earliest live deadline. Stale entries on top (a closed connection, a cleared or
    /// superseded deadline) are dropped, and one whose connection now wants a later time is
    /// pushed again at that time, so that with no session the loop sleeps.
    pub fn next(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, key))) = self.heap.peek() {
            let slot = self
                .slots
                .get_mut(key)
                .filter(|slot| slot.queued == Some(deadline));
            let Some(slot) = slot else {
                // A later entry of a connection whose deadline was moved earlier since.
                self.heap.pop();
                continue;
            };
            match slot.wanted {
                Some(wanted) if wanted == deadline => return Some(deadline),
                wanted => {
                    self.heap.pop();
                    slot.queued = wanted;
                    if let Some(wanted) = wanted {
                        self.heap.push(Reverse((wanted, key)));
                    }
                }
            }
        }
        None
    }

    /// A connection whose deadline is at or before `now`, removed from the table.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        let deadline = self.next()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, key)) = self.heap.pop()?;
        self.slots[key] = Slot::default();
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_order_and_skips_moved_and_cleared_deadlines() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut timers = Timers::default();
        timers.set(1, Some(at(5)));
        timers.set(2, Some(at(3)));
        timers.set(3, Some(at(4)));
        timers.set(1, Some(at(1))); // moved earlier
        timers.set(2, Some(at(9))); // moved later
        timers.set(3, None); // cleared
        assert_eq!(timers.next(), Some(at(1)));
        assert_eq!(timers.pop_due(at(0)), None);
        assert_eq!(timers.pop_due(at(6)), Some(1));
        assert_eq!(
            timers.pop_due(at(6)),
            None,
            "1's old deadline at 5 is stale"
        );
        assert_eq!(timers.next(), Some(at(9)));
        assert_eq!(timers.pop_due(at(9)), Some(2));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn a_deadline_that_handling_did_not_move_is_refused_and_cleared() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(4, Some(t0));
        assert_eq!(timers.pop_due(t0), Some(4));
        assert_eq!(timers.rearm(4, Some(t0), t0), Err(StuckDeadline));
        assert_eq!(
            timers.pop_due(t0),
            None,
            "the stuck deadline must not fire again"
        );
        assert_eq!(timers.rearm(4, None, t0), Ok(()));
        let later = t0 + Duration::from_millis(1);
        assert_eq!(timers.rearm(4, Some(later), t0), Ok(()));
        assert_eq!(timers.next(), Some(later));
    }

    /// A transfer moves its deadline later at every chunk: that must not grow the heap.
    #[test]
    fn a_deadline_moving_later_adds_no_entry_and_still_fires_at_its_time() {
        let t0 = Instant::now();
        let at = |micros| t0 + Duration::from_secs(300) + Duration::from_micros(micros);
        let mut timers = Timers::default();
        for i in 0..10_000 {
            timers.set(3, Some(at(i)));
        }
        assert_eq!(timers.heap.len(), 1);
        assert_eq!(
            timers.pop_due(at(0)),
            None,
            "the old entry is not due any more"
        );
        assert_eq!(
            timers.heap.len(),
            1,
            "pushed again once, at the wanted time"
        );
        assert_eq!(timers.next(), Some(at(9_999)));
        assert_eq!(timers.pop_due(at(9_999)), Some(3));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn setting_the_same_deadline_again_adds_no_entry() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for _ in 0..100 {
            timers.set(7, Some(t0));
        }
        assert_eq!(timers.heap.len(), 1);
    }
}
