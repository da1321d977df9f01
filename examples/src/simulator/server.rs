//! [`Simulator`]: the running server, its address and counters, and its
//! shutdown (on [`Simulator::stop`] or when dropped).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::SimulatorConfig;
use super::routes::{Shared, router};

/// A running model simulator. Dropping it stops it taking connections
/// (answers already streaming finish); [`stop`](Self::stop) also waits for
/// them.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Starts a simulator on `127.0.0.1` at a free port.
///
/// # Errors
///
/// When the port cannot be bound.
pub async fn start(config: SimulatorConfig) -> io::Result<Simulator> {
    start_on(config, (Ipv4Addr::LOCALHOST, 0)).await
}

/// Starts a simulator on `addr` (e.g. `127.0.0.1:8090` to point another
/// process at it).
///
/// # Errors
///
/// When `addr` cannot be bound.
pub async fn start_on(config: SimulatorConfig, addr: impl ToSocketAddrs) -> io::Result<Simulator> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        chat_requests: AtomicU64::new(0),
        embedding_requests: AtomicU64::new(0),
    });
    let (shutdown, signal) = oneshot::channel::<()>();
    let app = router(Arc::clone(&shared));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A send or the sender's drop: either way, stop.
                let _ = signal.await;
            })
            .await
    });
    tracing::info!(%addr, ?config, "model simulator listening (answers are simulated, not from a model)");
    Ok(Simulator {
        addr,
        shared,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

impl Simulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL for a provider (an
    /// unspecified bind address is given as loopback).
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/v1")
    }

    /// Chat completion requests accepted so far (refused bodies not
    /// counted).
    pub fn requests(&self) -> u64 {
        self.shared.chat_requests.load(Ordering::Relaxed)
    }

    /// Embeddings requests accepted so far.
    pub fn embedding_requests(&self) -> u64 {
        self.shared.embedding_requests.load(Ordering::Relaxed)
    }

    /// The delays it answers with.
    pub fn config(&self) -> SimulatorConfig {
        self.shared.config
    }

    /// Stops taking connections and waits for the answers under way.
    ///
    /// # Errors
    ///
    /// When the server failed while running.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
