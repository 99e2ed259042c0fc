//! The core's timers: every deadline (reservation timeouts, task TTLs, workflow target timeouts, purges,
//! simulated answers) in one ordered set, so [`Core::advance`](super::Core::advance) fires them in order and
//! [`Core::next_deadline`](super::Core::next_deadline) is the first of them.

use super::space::{ShardedSidMap, SidMap};
use crate::sid::Sid;
use crate::time::Timestamp;
use std::collections::BTreeSet;

/// Something that happens at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A pending reservation times out.
    ReservationTimeout(Sid, Sid),
    /// A pending/reserved task's TTL, or an assigned/wrapping task's 24 h cap.
    TaskTtl(Sid, Sid),
    /// The task's current workflow target times out.
    TargetTimeout(Sid, Sid),
    /// A terminal task is deleted.
    Purge(Sid, Sid),
    /// A ringing simulated worker leg answers (conference, call).
    Answer(Sid, Sid),
}

impl Timer {
    /// (variant, first SID, second SID); the variant number follows the declaration order.
    fn split(self) -> (u8, Sid, Sid) {
        match self {
            Timer::ReservationTimeout(a, b) => (0, a, b),
            Timer::TaskTtl(a, b) => (1, a, b),
            Timer::TargetTimeout(a, b) => (2, a, b),
            Timer::Purge(a, b) => (3, a, b),
            Timer::Answer(a, b) => (4, a, b),
        }
    }

    fn join(kind: u8, a: Sid, b: Sid) -> Timer {
        match kind {
            0 => Timer::ReservationTimeout(a, b),
            1 => Timer::TaskTtl(a, b),
            2 => Timer::TargetTimeout(a, b),
            3 => Timer::Purge(a, b),
            _ => Timer::Answer(a, b),
        }
    }
}

/// A [`Timer`] as [`Timers`] stores it: the first SID (a workspace, or a conference for `Answer`), which
/// many timers share, replaced by a number from [`Firsts`]. 32 bytes instead of 56, in two entries per timer,
/// and a million waiting tasks hold a million TTL timers. Ordered as the `Timer` is, except that timers of
/// different workspaces due at the same millisecond fire in workspace-number order instead of SID order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Slot {
    kind: u8,
    first: u32,
    second: Sid,
}

/// The first SIDs of the live timers, numbered, each with the count of timers using it; a number is reused
/// once its last timer is gone, so conferences that come and go do not grow the table.
#[derive(Default)]
struct Firsts {
    sids: Vec<Sid>,
    uses: Vec<u32>,
    numbers: SidMap<Sid, u32>,
    free: Vec<u32>,
}

impl Firsts {
    fn find(&self, sid: Sid) -> Option<u32> {
        self.numbers.get(&sid).copied()
    }

    fn sid(&self, n: u32) -> Option<Sid> {
        self.sids.get(n as usize).copied()
    }

    /// The number of `sid`, counting one more timer on it.
    fn acquire(&mut self, sid: Sid) -> u32 {
        if let Some(n) = self.find(sid) {
            if let Some(u) = self.uses.get_mut(n as usize) {
                *u += 1;
            }
            return n;
        }
        let n = match self.free.pop() {
            Some(n) => {
                if let (Some(s), Some(u)) = (self.sids.get_mut(n as usize), self.uses.get_mut(n as usize)) {
                    *s = sid;
                    *u = 1;
                }
                n
            }
            None => {
                self.sids.push(sid);
                self.uses.push(1);
                u32::try_from(self.sids.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.numbers.insert(sid, n);
        n
    }

    /// One timer fewer on number `n`; frees the number with its last timer.
    fn release(&mut self, n: u32) {
        let Some(u) = self.uses.get_mut(n as usize) else { return };
        *u = u.saturating_sub(1);
        if *u == 0 {
            if let Some(sid) = self.sids.get(n as usize) {
                self.numbers.remove(sid);
            }
            self.free.push(n);
        }
    }
}

/// Deadlines ordered by time, cancellable by key.
#[derive(Default)]
pub(crate) struct Timers {
    by_deadline: BTreeSet<(Timestamp, Slot)>,
    /// Sharded: one per task (its timeout), so it grows with the tasks.
    deadlines: ShardedSidMap<Slot, Timestamp>,
    firsts: Firsts,
}

impl Timers {
    /// The stored form of a timer that is set, if it is.
    fn slot(&self, timer: Timer) -> Option<Slot> {
        let (kind, first, second) = timer.split();
        Some(Slot { kind, first: self.firsts.find(first)?, second })
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Timestamp) {
        if let Some(slot) = self.slot(timer) {
            if let Some(old) = self.deadlines.get_mut(&slot) {
                self.by_deadline.remove(&(*old, slot));
                *old = at;
                self.by_deadline.insert((at, slot));
                return;
            }
        }
        let (kind, first, second) = timer.split();
        let slot = Slot { kind, first: self.firsts.acquire(first), second };
        self.deadlines.insert(slot, at);
        self.by_deadline.insert((at, slot));
    }

    pub(crate) fn cancel(&mut self, timer: Timer) {
        let Some(slot) = self.slot(timer) else { return };
        if let Some(old) = self.deadlines.remove(&slot) {
            self.by_deadline.remove(&(old, slot));
            self.firsts.release(slot.first);
        }
    }

    pub(crate) fn get(&self, timer: &Timer) -> Option<Timestamp> {
        self.deadlines.get(&self.slot(*timer)?).copied()
    }

    fn timer(&self, slot: Slot) -> Option<Timer> {
        Some(Timer::join(slot.kind, self.firsts.sid(slot.first)?, slot.second))
    }

    pub(crate) fn first(&self) -> Option<(Timestamp, Timer)> {
        let (at, slot) = self.by_deadline.iter().next().copied()?;
        Some((at, self.timer(slot)?))
    }

    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Every timer in firing order.
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<(Timestamp, Timer)> {
        self.by_deadline.iter().filter_map(|(at, slot)| Some((*at, self.timer(*slot)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::Prefix;

    fn at(secs: i64) -> Timestamp {
        Timestamp(1_700_000_000_000).plus_secs(secs)
    }

    #[test]
    fn timers_number_first_sids_and_free_the_numbers() {
        let mut t = Timers::default();
        let ws = Sid::new(Prefix::Workspace, 1);
        let cf = Sid::new(Prefix::Conference, 2);
        let call = Sid::new(Prefix::Call, 3);
        let task = |n| Sid::new(Prefix::Task, n);
        t.set(Timer::TaskTtl(ws, task(1)), at(10));
        t.set(Timer::TaskTtl(ws, task(2)), at(5));
        t.set(Timer::Answer(cf, call), at(7));
        t.set(Timer::TaskTtl(ws, task(1)), at(3)); // moved, not added
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&Timer::TaskTtl(ws, task(1))), Some(at(3)));
        assert_eq!(t.get(&Timer::Purge(ws, task(1))), None);
        let order: Vec<Timer> = t.all().into_iter().map(|(_, x)| x).collect();
        assert_eq!(
            order,
            vec![Timer::TaskTtl(ws, task(1)), Timer::TaskTtl(ws, task(2)), Timer::Answer(cf, call)]
        );
        t.cancel(Timer::Answer(cf, call));
        t.cancel(Timer::Answer(cf, call)); // a second cancel changes nothing
        assert_eq!(t.firsts.numbers.len(), 1, "the conference's number is freed with its last timer");
        t.cancel(Timer::TaskTtl(ws, task(1)));
        t.cancel(Timer::TaskTtl(ws, task(2)));
        assert_eq!((t.len(), t.firsts.numbers.len(), t.first()), (0, 0, None));
        t.set(Timer::Purge(ws, task(9)), at(1));
        assert_eq!(t.firsts.sids.len(), 2, "freed numbers are reused");
        assert_eq!(t.first(), Some((at(1), Timer::Purge(ws, task(9)))));
    }
}
