//! Batch processing (the seed guide's "efficient bulk operations"): a
//! stream of items handled in chunks, a bounded number at once, so a
//! million items cost a thousand round trips and never sit in memory
//! together.

use std::future::Future;

use futures_util::{Stream, StreamExt};

/// What a chunked run got through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkSummary {
    /// Items in chunks that succeeded.
    pub items: u64,
    /// Chunks that succeeded.
    pub chunks: u64,
}

/// A chunk failed; the run stopped there.
#[derive(Debug, thiserror::Error)]
#[error(
    "chunk {chunk} ({items} items) failed: {source}; {} items in {} other chunks had succeeded",
    done.items,
    done.chunks
)]
pub struct ChunkError<E> {
    /// The failed chunk's index (0 for the first `chunk_size` items).
    pub chunk: u64,
    /// Its number of items.
    pub items: usize,
    /// What had succeeded when it failed. With a concurrency of 1 that is
    /// exactly the chunks before it; with more, chunks still in flight
    /// were cancelled and are counted in neither.
    pub done: ChunkSummary,
    /// Why it failed.
    #[source]
    pub source: E,
}

/// Runs `process` on the items of `stream` in chunks of `chunk_size` (the
/// last may be shorter), up to `concurrency` chunks at once, and stops at
/// the first chunk that fails: the chunks in flight then are dropped at
/// their next `.await`, and no further chunk is read from the stream.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_util::stream;
/// use perf_runtime::jobs::process_in_chunks;
///
/// let summary = process_in_chunks(stream::iter(0..2_500), 1_000, 2, |chunk: Vec<u32>| async move {
///     // One round trip per chunk, e.g. a multi-row INSERT.
///     Ok::<_, std::io::Error>(())
/// })
/// .await
/// .expect("every chunk succeeded");
/// assert_eq!((summary.items, summary.chunks), (2_500, 3));
/// # }
/// ```
///
/// # Errors
///
/// The first [`ChunkError`], with what had succeeded.
///
/// # Panics
///
/// If `chunk_size` or `concurrency` is 0.
pub async fn process_in_chunks<S, F, Fut, E>(
    stream: S,
    chunk_size: usize,
    concurrency: usize,
    mut process: F,
) -> Result<ChunkSummary, ChunkError<E>>
where
    S: Stream,
    F: FnMut(Vec<S::Item>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    assert!(
        chunk_size > 0,
        "process_in_chunks: chunk_size must be at least 1"
    );
    assert!(
        concurrency > 0,
        "process_in_chunks: concurrency must be at least 1"
    );
    let mut results = std::pin::pin!(
        stream
            .chunks(chunk_size)
            .enumerate()
            .map(|(index, chunk)| {
                let items = chunk.len();
                let run = process(chunk);
                async move { (index as u64, items, run.await) }
            })
            .buffer_unordered(concurrency)
    );
    let mut done = ChunkSummary::default();
    while let Some((chunk, items, result)) = results.next().await {
        match result {
            Ok(()) => {
                done.items += items as u64;
                done.chunks += 1;
            }
            Err(source) => {
                return Err(ChunkError {
                    chunk,
                    items,
                    done,
                    source,
                });
            }
        }
    }
    Ok(done)
}
