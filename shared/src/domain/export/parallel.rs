//! Two-core work splitting for large exports (SPEC §7 measures on 2 cores; Lambda functions with
//! 1,769 MB or more of memory get at least 2 vCPUs).

/// A second thread could not be started, or it panicked.
#[derive(Debug, thiserror::Error)]
#[error("a worker thread could not run")]
pub(super) struct ThreadError;

/// Whether splitting work over two threads can pay off here.
pub(super) fn two_cores() -> bool {
    std::thread::available_parallelism().is_ok_and(|cores| cores.get() >= 2)
}

/// Runs `on_worker` on a new thread while `here` runs on this one, and returns both results.
pub(super) fn join<W, H>(
    on_worker: impl FnOnce() -> W + Send,
    here: impl FnOnce() -> H,
) -> Result<(W, H), ThreadError>
where
    W: Send,
{
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("export-worker".into())
            .spawn_scoped(scope, on_worker)
            .map_err(|_| ThreadError)?;
        let here = here();
        let worker = worker.join().map_err(|_| ThreadError)?;
        Ok((worker, here))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_run_and_return() {
        let mut left = vec![3, 1, 2];
        let mut right = vec![9, 7, 8];
        let (a, b) = join(
            || {
                left.sort();
                left.len()
            },
            || {
                right.sort();
                right.len()
            },
        )
        .expect("threads");
        assert_eq!((a, b), (3, 3));
        assert_eq!((left, right), (vec![1, 2, 3], vec![7, 8, 9]));
    }
}
