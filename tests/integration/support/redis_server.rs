//! A redis-server of a test's own, so the test can kill it (`kill -9`) and
//! restart it without disturbing the shared one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running redis-server on a free loopback port; killed when dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    /// Every write appended to a file and fsynced before Redis answers.
    aof: bool,
}

impl RedisServer {
    /// Starts one (binary: `PERF_REDIS_SERVER_BIN` or `redis-server`) that
    /// keeps nothing on disk. `None` (skip) outside CI when redis-server is
    /// missing; a panic under CI.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(false)
    }

    /// As [`start`](Self::start), with the append-only file on and fsynced
    /// on every write (`appendonly yes`, `appendfsync always`): a write Redis
    /// acknowledged survives a kill, and [`restart`](Self::restart) loads it.
    pub fn start_with_aof() -> Option<RedisServer> {
        RedisServer::start_with(true)
    }

    fn start_with(aof: bool) -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("perf-test-redis-{port}"));
        // A directory left by an earlier server on this port may hold its
        // data, which a new server would load.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            aof,
        };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(error) if super::on_ci() => panic!("cannot start redis-server: {error}"),
            Err(error) => {
                eprintln!("skipped: cannot start redis-server: {error}");
                None
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary =
            std::env::var("PERF_REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let durability: &[&str] = if self.aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new(&binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(durability)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "redis-server did not listen on port {} within 5 s",
            self.port
        ))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:port/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port: empty, or with what its
    /// append-only file holds when started with [`start_with_aof`](Self::start_with_aof).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().expect("restart redis-server");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
