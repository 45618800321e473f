//! Bounded concurrency without spawning: at most N jobs in flight in the calling task,
//! a new one started as soon as any finishes, so one slow job holds up nobody (a chunked
//! `join_all` would make each chunk wait for its slowest member).
//!
//! Jobs are futures created up front (an `async` block does nothing until polled) and
//! borrow what they need; nothing needs to be `'static` or `Send`. The caller decides,
//! before each start, whether starting is still allowed (a rollout stops starting sites
//! after too many failures), and learns of each result as it arrives.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// A job of the pool.
pub type Job<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs `jobs` in order, at most `parallel` at a time. Before starting each job it asks
/// `may_start`; once that says no, nothing more starts (running jobs finish). `done`
/// receives each result with the job's index as it completes. Returns the indices of
/// the jobs that were never started.
pub async fn run_bounded<'a, T>(
    jobs: Vec<Job<'a, T>>,
    parallel: usize,
    may_start: impl Fn() -> bool,
    mut done: impl FnMut(usize, T),
) -> Vec<usize> {
    let parallel = parallel.max(1);
    let total = jobs.len();
    let mut pending: Vec<Option<Job<'a, T>>> = jobs.into_iter().map(Some).collect();
    let mut running: Vec<(usize, Job<'a, T>)> = Vec::new();
    let mut next = 0usize;
    let mut stopped = false;
    std::future::poll_fn(|cx| {
        loop {
            while !stopped && running.len() < parallel && next < total {
                if !may_start() {
                    stopped = true;
                    break;
                }
                if let Some(job) = pending.get_mut(next).and_then(Option::take) {
                    running.push((next, job));
                }
                next += 1;
            }
            let mut finished = false;
            let mut i = 0;
            while i < running.len() {
                if let Poll::Ready(out) = running[i].1.as_mut().poll(cx) {
                    let (index, _) = running.swap_remove(i);
                    done(index, out);
                    finished = true;
                } else {
                    i += 1;
                }
            }
            if running.is_empty() && (stopped || next >= total) {
                return Poll::Ready(());
            }
            // A job finished: start the next ones (and poll them) before sleeping.
            if !finished {
                return Poll::Pending;
            }
        }
    })
    .await;
    (next..total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_slow_job_holds_up_nobody_and_order_is_kept_for_starts() {
        let started = RefCell::new(Vec::new());
        let finished = RefCell::new(Vec::new());
        let delays = [1000u64, 10, 10, 10, 10];
        let jobs: Vec<Job<'_, usize>> = delays
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let started = &started;
                Box::pin(async move {
                    started.borrow_mut().push(i);
                    tokio::time::sleep(Duration::from_millis(*d)).await;
                    i
                }) as Job<'_, usize>
            })
            .collect();
        let t0 = tokio::time::Instant::now();
        let not_started = run_bounded(
            jobs,
            2,
            || true,
            |i, out| {
                assert_eq!(i, out);
                finished.borrow_mut().push((i, t0.elapsed().as_millis()));
            },
        )
        .await;
        assert!(not_started.is_empty());
        assert_eq!(*started.borrow(), [0, 1, 2, 3, 4]);
        // Jobs 1..4 ran one after another beside the slow job 0.
        assert_eq!(
            *finished.borrow(),
            [(1, 10), (2, 20), (3, 30), (4, 40), (0, 1000)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn starting_stops_when_the_caller_says_so() {
        let failures = Cell::new(0);
        let jobs: Vec<Job<'_, bool>> = (0..6)
            .map(|i| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    i != 1
                }) as Job<'_, bool>
            })
            .collect();
        let not_started = run_bounded(
            jobs,
            2,
            || failures.get() < 1,
            |_, ok| {
                if !ok {
                    failures.set(failures.get() + 1);
                }
            },
        )
        .await;
        // 0 and 1 ran together; 1 failed, so nothing more started.
        assert_eq!(not_started, [2, 3, 4, 5]);
    }
}
