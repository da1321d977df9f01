//! A PostgreSQL server of a test's own, so the test can stop it (as a
//! crash would) and start it again without disturbing the shared one.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (as in the
//! harness), `initdb` and `pg_ctl` run as the `postgres` system user through
//! `runuser`, as `scripts/services.sh` does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The password in [`PgServer::url`]. The server trusts loopback (it checks
/// no password); the URL carries one so tests can check it never prints.
pub const PASSWORD: &str = "private_pg_secret";

/// A running PostgreSQL cluster on a free loopback port; stopped and
/// removed when dropped.
pub struct PgServer {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PgServer {
    /// Makes a cluster and starts it. `None` (skip) outside CI when the
    /// PostgreSQL binaries are missing; a panic under CI.
    pub fn start() -> Option<PgServer> {
        let bin = PathBuf::from(
            std::env::var("PERF_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        if !bin.join("initdb").exists() {
            let message = format!("no initdb in {}", bin.display());
            if super::on_ci() {
                panic!("cannot start PostgreSQL: {message}");
            }
            eprintln!("skipped: cannot start PostgreSQL: {message}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("perf-test-pg-{port}"));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let server = PgServer { port, dir, bin };
        if running_as_root() {
            run(Command::new("chown").arg("postgres:").arg(&server.dir));
        }
        run(server
            .as_postgres(&server.bin.join("initdb"))
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ]));
        server.resume();
        Some(server)
    }

    /// `postgres://postgres:<PASSWORD>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no clean
    /// shutdown, clients see their connections drop, as in a crash).
    pub fn crash(&self) {
        run(self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "60", "stop"]));
    }

    /// Starts the server (again) on the same port and waits until it
    /// accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        run(self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, program: &Path) -> Command {
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // postgres may not be allowed into the test's working directory.
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
