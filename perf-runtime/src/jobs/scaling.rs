//! Dynamic worker scaling: a pool's number of job slots follows the work
//! waiting for it, between a floor and `MAX_ASYNC_WORKERS`.
//!
//! Every `scale_interval` the pool reads the depth of its queues. It grows
//! at once to the jobs running plus the jobs ready (a backlog should not
//! wait for a slow ramp), and shrinks by half the gap per look, and only by
//! free slots: a running job keeps its slot, and a burst that stops and
//! starts again does not find the pool at its floor.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::metrics;
use super::store::JobStore;

/// The job slots of a pool: a semaphore whose size (the limit) may move.
#[derive(Debug)]
pub(super) struct Slots {
    semaphore: Arc<Semaphore>,
    /// Permits in existence (free or held). Changed by the scaler only.
    limit: AtomicUsize,
    floor: usize,
    ceiling: usize,
}

impl Slots {
    /// Slots starting at `floor`, never above `ceiling`.
    pub(super) fn new(floor: usize, ceiling: usize) -> Self {
        Slots {
            semaphore: Arc::new(Semaphore::new(floor)),
            limit: AtomicUsize::new(floor),
            floor,
            ceiling,
        }
    }

    pub(super) fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// Jobs that may run at once now.
    pub(super) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Jobs running (slots held).
    pub(super) fn busy(&self) -> usize {
        self.limit()
            .saturating_sub(self.semaphore.available_permits())
    }

    /// Whether the limit can move at all.
    pub(super) fn scales(&self) -> bool {
        self.floor < self.ceiling
    }

    /// Moves the limit toward `target` (kept within the floor and the
    /// ceiling): up at once, down by half the gap (at least one), and only
    /// by slots that are free. Returns the new limit.
    pub(super) fn resize(&self, target: usize) -> usize {
        let target = target.clamp(self.floor, self.ceiling);
        let limit = self.limit();
        if target > limit {
            self.semaphore.add_permits(target - limit);
            self.limit.store(target, Ordering::Release);
            return target;
        }
        let gap = limit - target;
        let step = gap.div_ceil(2).min(self.semaphore.available_permits());
        if step == 0 {
            return limit;
        }
        let Ok(taken) = self.semaphore.try_acquire_many(step as u32) else {
            return limit;
        };
        taken.forget();
        self.limit.store(limit - step, Ordering::Release);
        limit - step
    }
}

/// Resizes `slots` every `every` from the ready jobs of `queues` (plus
/// `prefetched()`, claimed here and waiting for a slot) until `stopped`.
pub(super) async fn scale_loop(
    slots: Arc<Slots>,
    store: Arc<dyn JobStore>,
    queues: Vec<String>,
    every: Duration,
    prefetched: impl Fn() -> usize,
    mut stopped: watch::Receiver<bool>,
) {
    metrics::workers_limit(slots.limit());
    while !*stopped.borrow() {
        let _ = tokio::time::timeout(every, stopped.changed()).await;
        if *stopped.borrow() {
            return;
        }
        let ready = match store.depths().await {
            Ok(depths) => depths
                .iter()
                .filter(|depth| queues.contains(&depth.queue))
                .map(|depth| depth.available)
                .sum::<u64>(),
            Err(error) => {
                tracing::warn!(%error, "reading queue depths to scale workers failed");
                continue;
            }
        };
        let ready = usize::try_from(ready).unwrap_or(usize::MAX);
        let target = slots
            .busy()
            .saturating_add(ready)
            .saturating_add(prefetched());
        metrics::workers_limit(slots.resize(target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_at_once_to_the_work_and_never_past_the_ceiling() {
        let slots = Slots::new(2, 10);
        assert_eq!(slots.resize(7), 7);
        assert_eq!(slots.semaphore().available_permits(), 7);
        assert_eq!(slots.resize(500), 10);
        assert_eq!(slots.semaphore().available_permits(), 10);
    }

    #[test]
    fn shrinks_by_half_the_gap_to_the_floor() {
        let slots = Slots::new(2, 10);
        slots.resize(10);
        assert_eq!(slots.resize(0), 6);
        assert_eq!(slots.resize(0), 4);
        assert_eq!(slots.resize(0), 3);
        assert_eq!(slots.resize(0), 2);
        assert_eq!(slots.resize(0), 2);
        assert_eq!(slots.semaphore().available_permits(), 2);
    }

    #[test]
    fn a_running_job_keeps_its_slot_while_shrinking() {
        let slots = Slots::new(1, 4);
        slots.resize(4);
        let held = slots.semaphore().try_acquire_many(3).expect("three free");
        assert_eq!(slots.busy(), 3);
        // Only one slot is free: the limit falls by that one.
        assert_eq!(slots.resize(1), 3);
        assert_eq!(slots.busy(), 3);
        drop(held);
        assert_eq!(slots.resize(1), 2);
        assert_eq!(slots.resize(1), 1);
        assert_eq!(slots.busy(), 0);
    }

    #[test]
    fn a_fixed_pool_does_not_scale() {
        let slots = Slots::new(8, 8);
        assert!(!slots.scales());
        assert_eq!(slots.resize(0), 8);
        assert_eq!(slots.resize(100), 8);
    }
}
