//! A TCP fault proxy for tests: sits between a client and a real server on
//! loopback and, on command, adds latency (with jitter), blackholes traffic
//! (packets swallowed, sockets left open, as a dead network looks), resets
//! connections (RST) or closes them (FIN). Faults apply to open connections
//! at once and to new ones until changed. Reused by the cache (Redis), pool
//! (PostgreSQL) and HTTP fault tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward as is.
    None,
    /// Hold every chunk for `base` plus a pseudo-random share of `jitter`.
    Latency { base: Duration, jitter: Duration },
    /// Swallow everything; keep sockets open.
    Blackhole,
    /// Reset every connection (RST) and every new one.
    Reset,
    /// Close every connection (FIN) and every new one.
    Close,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    opened: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (fault, _) = watch::channel(Fault::None);
        let opened = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream,
            fault.clone(),
            Arc::clone(&opened),
        ));
        FaultProxy {
            addr,
            fault,
            opened,
            accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to every open and future connection.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Client connections accepted so far.
    pub fn connections_opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends every connection task too: they watch this channel.
        self.fault.send_replace(Fault::Close);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    opened: Arc<AtomicUsize>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let faults = fault.subscribe();
        tokio::spawn(async move {
            match *faults.borrow() {
                Fault::Reset => return reset(client),
                Fault::Close => return,
                _ => {}
            }
            let Ok(server) = TcpStream::connect(upstream).await else {
                return reset(client);
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            relay(client, server, faults).await;
        });
    }
}

/// Pumps both directions until either side closes or a reset/close fault.
async fn relay(mut client: TcpStream, mut server: TcpStream, mut faults: watch::Receiver<Fault>) {
    let ending = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = pump(client_read, server_write, faults.clone(), 1);
        let down = pump(server_read, client_write, faults.clone(), 2);
        tokio::pin!(up, down);
        loop {
            let fault = *faults.borrow_and_update();
            if matches!(fault, Fault::Reset | Fault::Close) {
                break fault;
            }
            tokio::select! {
                changed = faults.changed() => if changed.is_err() { break Fault::Close },
                _ = &mut up => break Fault::Close,
                _ = &mut down => break Fault::Close,
            }
        }
    };
    if ending == Fault::Reset {
        reset(client);
        reset(server);
    }
    // Otherwise dropping both streams closes them with FIN.
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    faults: watch::Receiver<Fault>,
    seed: u64,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let fault = *faults.borrow();
        match fault {
            Fault::None => {}
            Fault::Latency { base, jitter } => {
                // xorshift: cheap, deterministic jitter per direction.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let share = (state % 10_000) as f64 / 10_000.0;
                tokio::time::sleep(base + jitter.mul_f64(share)).await;
            }
            Fault::Blackhole => continue,
            Fault::Reset | Fault::Close => return,
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

fn reset(stream: TcpStream) {
    // Linger 0: closing sends RST instead of FIN. (tokio deprecates
    // `set_linger` because a non-zero linger blocks on drop; zero does not.)
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
