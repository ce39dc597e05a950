//! Signing runs on threads of its own, one per core, at a lower scheduling
//! priority than the rest of the server.
//!
//! An RSA signature holds a core for about a millisecond. On an async
//! worker that millisecond delays every task queued behind it, among them
//! tasks holding a database connection between two statements (SQLite has
//! one writer), so under load the whole server waited on the signer:
//! authorization requests, which sign nothing, took 65 ms at the median
//! (`latch-bench`, 64 concurrent flows). On threads of their own at nice 10,
//! signatures use whatever CPU is left once requests and database answers
//! have moved on, and authorization requests take 7 ms.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::keys::KeyError;

/// The priority of signing threads (0 is the default, 19 the lowest): low
/// enough that a woken request thread preempts a signature at once.
const SIGNING_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A handle on the signing threads; they end when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct SigningThreads {
    jobs: Sender<Job>,
}

impl SigningThreads {
    pub fn start() -> Result<Self, KeyError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..std::thread::available_parallelism().map_or(1, usize::from) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("latch-signer".into())
                .spawn(move || work_through(&queue))
                .map_err(|error| KeyError::Task(error.to_string()))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a signing thread and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
    ) -> Result<T, KeyError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone (its request was cancelled).
            let _ = done.send(work());
        });
        self.jobs.send(job).map_err(|_| KeyError::Task("the signing threads have stopped".into()))?;
        result.await.map_err(|_| KeyError::Task("a signing job failed".into()))?
    }
}

fn work_through(queue: &Mutex<Receiver<Job>>) {
    // Best effort: where the priority cannot be lowered, signing still works.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), SIGNING_NICE);
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else { return };
        // A panicking job drops its result sender, which its caller sees as
        // an error; the thread lives on for the next job.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_survives_a_panicking_job() {
        let threads = SigningThreads::start().expect("threads start");
        assert_eq!(threads.run(|| Ok(6 * 7)).await.ok(), Some(42));
        let failed = threads.run::<()>(|| panic!("a bug in a signing job")).await;
        assert!(matches!(failed, Err(KeyError::Task(_))), "{failed:?}");
        assert_eq!(threads.run(|| Ok("still there")).await.ok(), Some("still there"));
    }

    #[tokio::test]
    async fn signing_threads_run_at_a_lower_priority() {
        let threads = SigningThreads::start().expect("threads start");
        let nice = threads
            .run(|| {
                rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                    .map_err(|error| KeyError::Task(error.to_string()))
            })
            .await
            .expect("priority read");
        assert!(nice >= SIGNING_NICE, "nice {nice}");
    }
}
