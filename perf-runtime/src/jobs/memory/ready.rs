//! One queue's runnable jobs: highest priority first, oldest first within
//! a priority.
//!
//! A deque per priority rather than one ordered set of every job: jobs
//! become runnable in sequence order, so within a priority the order is
//! the arrival order, and a push or a pop is a step in a map of a few
//! priorities plus a deque push or pop, with no allocation per job (a
//! B-tree of jobs allocated and rebalanced nodes as jobs came and went).

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use super::super::model::{JobId, Priority};

/// A runnable job's place across queues: highest priority first, then the
/// order it became runnable (sequence numbers are shared by all queues).
pub(super) type ReadyKey = (Reverse<Priority>, u64, JobId);

/// Empty deques kept for priorities that may come back (a queue that
/// drains and refills would otherwise allocate a deque each time);
/// past this many priorities, an emptied one is dropped.
const PRIORITIES_KEPT: usize = 8;
/// An emptied deque larger than this (a drained backlog) gives its memory
/// back.
const CAPACITY_KEPT: usize = 1024;

#[derive(Default)]
pub(super) struct ReadyQueue {
    by_priority: BTreeMap<Reverse<Priority>, VecDeque<(u64, JobId)>>,
}

impl ReadyQueue {
    /// Adds job `id`, made runnable as number `seq` (greater than every
    /// `seq` pushed before).
    pub(super) fn push(&mut self, priority: Priority, seq: u64, id: JobId) {
        self.by_priority
            .entry(Reverse(priority))
            .or_default()
            .push_back((seq, id));
    }

    /// The best job's key, not taken.
    pub(super) fn head(&self) -> Option<ReadyKey> {
        self.by_priority.iter().find_map(|(priority, jobs)| {
            let &(seq, id) = jobs.front()?;
            Some((*priority, seq, id))
        })
    }

    /// Takes the best job.
    pub(super) fn pop(&mut self) -> Option<JobId> {
        let priorities = self.by_priority.len();
        let mut entry = self
            .by_priority
            .iter_mut()
            .find(|(_, jobs)| !jobs.is_empty())?;
        let jobs = &mut entry.1;
        let (_, id) = jobs.pop_front()?;
        if jobs.is_empty() {
            if priorities > PRIORITIES_KEPT {
                let priority = *entry.0;
                self.by_priority.remove(&priority);
            } else if jobs.capacity() > CAPACITY_KEPT {
                jobs.shrink_to(CAPACITY_KEPT);
            }
        }
        Some(id)
    }

    /// Runnable jobs.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_priority.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut ReadyQueue) -> Vec<u64> {
        std::iter::from_fn(|| queue.pop()).map(|id| id.0).collect()
    }

    #[test]
    fn higher_priorities_first_and_fifo_within_one() {
        let mut queue = ReadyQueue::default();
        queue.push(Priority::LOW, 1, JobId(1));
        queue.push(Priority::HIGH, 2, JobId(2));
        queue.push(Priority::LOW, 3, JobId(3));
        queue.push(Priority::HIGH, 4, JobId(4));
        queue.push(Priority::CRITICAL, 5, JobId(5));
        assert_eq!(
            queue.head(),
            Some((Reverse(Priority::CRITICAL), 5, JobId(5)))
        );
        assert_eq!(drain(&mut queue), [5, 2, 4, 1, 3]);
        assert_eq!(queue.head(), None);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn an_emptied_priority_is_skipped_and_refilled() {
        let mut queue = ReadyQueue::default();
        queue.push(Priority::HIGH, 1, JobId(1));
        queue.push(Priority::LOW, 2, JobId(2));
        assert_eq!(queue.pop(), Some(JobId(1)));
        assert_eq!(queue.head(), Some((Reverse(Priority::LOW), 2, JobId(2))));
        queue.push(Priority::HIGH, 3, JobId(3));
        assert_eq!(drain(&mut queue), [3, 2]);
    }

    #[test]
    fn emptied_priorities_beyond_the_kept_few_are_dropped() {
        let mut queue = ReadyQueue::default();
        for n in 0..100u64 {
            let priority = Priority(i16::try_from(n).expect("small"));
            queue.push(priority, n, JobId(n));
        }
        assert_eq!(queue.len(), 100);
        assert_eq!(drain(&mut queue).len(), 100);
        assert!(queue.by_priority.len() <= PRIORITIES_KEPT);
    }

    #[test]
    fn a_drained_backlog_gives_its_memory_back() {
        let mut queue = ReadyQueue::default();
        for n in 0..10_000u64 {
            queue.push(Priority::NORMAL, n, JobId(n));
        }
        drain(&mut queue);
        let kept = queue.by_priority.values().map(VecDeque::capacity).max();
        assert!(
            kept.is_some_and(|capacity| capacity <= CAPACITY_KEPT),
            "{kept:?}"
        );
    }
}
