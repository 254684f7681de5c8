//! [`TestPostgres`]: a private PostgreSQL server started for one test process,
//! and the databases it hands out.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a started server may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// Roles in this group must log in with a password (over TCP), even though
/// everyone else is trusted: it lets tests exercise a failed password login.
const PASSWORD_GROUP: &str = "tachigo_password_auth";

/// A PostgreSQL server for tests: started here, or given by `TACHIGO_TEST_POSTGRES_URL`.
pub struct TestPostgres {
    admin_url: String,
    /// Whether [`PASSWORD_GROUP`] is configured (only on a server started here).
    password_group: bool,
}

/// The system user that runs the server when the tests run as root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// What the exit hook stops and removes: the server's pid and its directory.
static STARTED: Mutex<Option<(libc::pid_t, PathBuf)>> = Mutex::new(None);

impl TestPostgres {
    /// Uses a server that is already running.
    pub(crate) fn external(admin_url: String) -> TestPostgres {
        TestPostgres {
            admin_url,
            password_group: false,
        }
    }

    /// Starts a fresh server; panics with the reason (and the server log) if it cannot.
    pub(crate) fn start() -> TestPostgres {
        let bin = find_binaries().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or PATH): \
                 run `apt-get install -y postgresql`, or set {} to a superuser URL",
                crate::URL_VAR
            )
        });
        let run_as = server_user();
        remove_abandoned_directories();
        let dir = tempfile::Builder::new()
            .prefix("tachigo-test-pg-")
            .tempdir()
            .expect("creating a temporary directory for PostgreSQL")
            .keep();
        let data = dir.join("data");
        let sockets = dir.join("sockets");
        fs::create_dir(&sockets).expect("creating the socket directory");
        if let Some(user) = run_as {
            for path in [&dir, &sockets] {
                chown(path, user);
            }
        }

        let initdb = command(&bin.join("initdb"), run_as, &dir)
            .arg("-D")
            .arg(&data)
            .args(["--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "--no-instructions"])
            .output()
            .expect("running initdb");
        if !initdb.status.success() {
            panic!(
                "initdb failed ({}):\n{}{}",
                initdb.status,
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            );
        }
        require_password_for_group(&data.join("pg_hba.conf"));

        let port = crate::free_port();
        let log = dir.join("server.log");
        let exited = Arc::new(AtomicBool::new(false));
        let pid = spawn_server(&bin, run_as, &dir, &data, &sockets, port, &log, &exited);
        *STARTED.lock().unwrap() = Some((pid, dir.clone()));
        // SAFETY: registers a plain `extern "C"` function with no captured state.
        unsafe { libc::atexit(stop_at_exit) };

        wait_until_ready(&bin, port, &log, &exited);
        TestPostgres {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            password_group: true,
        }
    }

    /// A superuser URL to the server's `postgres` database.
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// Creates a new, empty database `tachigo_test_<random>` and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("tachigo_test_{:016x}", rand::random::<u64>());
        self.admin(&format!("CREATE DATABASE {name}")).await;
        with_database(&self.admin_url, &name)
    }

    /// Creates a login role that must authenticate with `password` and returns
    /// its name; `None` on an external server, where authentication rules are
    /// not ours to change.
    pub async fn role_with_password(&self, password: &str) -> Option<String> {
        if !self.password_group {
            return None;
        }
        self.admin(&format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_GROUP} NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ))
        .await;
        let role = format!("tachigo_pw_{:016x}", rand::random::<u64>());
        let quoted = password.replace('\'', "''");
        self.admin(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{quoted}' IN ROLE {PASSWORD_GROUP}"
        ))
        .await;
        Some(role)
    }

    /// Runs one statement as the superuser.
    async fn admin(&self, sql: &str) {
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .expect("connecting to the test PostgreSQL server as its superuser");
        let connection = tokio::spawn(connection);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("running `{sql}` on the test server: {e}"));
        drop(client);
        let _ = connection.await;
    }
}

/// `url` (a `postgres://` URL) pointing at database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or the directory of `initdb` on `PATH`.
fn find_binaries() -> Option<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// The `postgres` system user when running as root (PostgreSQL refuses root).
fn server_user() -> Option<RunAs> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: a NUL-terminated name; the returned record is read at once,
    // before any other getpw* call could overwrite it.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        panic!(
            "running as root, but there is no `postgres` system user to run PostgreSQL as: \
             run `apt-get install -y postgresql`"
        );
    }
    // SAFETY: checked non-null above.
    let entry = unsafe { &*entry };
    Some(RunAs {
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

fn chown(path: &Path, user: RunAs) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .unwrap_or_else(|e| panic!("giving {} to the postgres user: {e}", path.display()));
}

/// A command that runs as `run_as` (if set) in `dir`.
///
/// The identity is dropped in `pre_exec` by hand, not with `CommandExt::uid`,
/// so that the order against the parent-death signal below is certain: Linux
/// clears that signal whenever the effective uid or gid changes.
fn command(program: &Path, run_as: Option<RunAs>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir).stdin(Stdio::null());
    if let Some(user) = run_as {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(user.gid) != 0
                    || libc::setuid(user.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command
}

/// Makes roles in [`PASSWORD_GROUP`] authenticate with a password over TCP;
/// the first matching line of `pg_hba.conf` wins, so it goes on top.
fn require_password_for_group(hba: &Path) {
    let trusted = fs::read_to_string(hba).expect("reading pg_hba.conf");
    let rule = format!(
        "host all +{PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256\n\
         host all +{PASSWORD_GROUP} ::1/128 scram-sha-256\n"
    );
    fs::write(hba, rule + &trusted).expect("writing pg_hba.conf");
}

/// Starts `postgres` from a thread that lives as long as the process and waits
/// for the server: the parent-death signal fires when the *thread* that forked
/// the child ends, so that thread must never end first. Returns the server's pid.
#[allow(clippy::too_many_arguments)]
fn spawn_server(
    bin: &Path,
    run_as: Option<RunAs>,
    dir: &Path,
    data: &Path,
    sockets: &Path,
    port: u16,
    log: &Path,
    exited: &Arc<AtomicBool>,
) -> libc::pid_t {
    let log_file = fs::File::create(log).expect("creating the server log");
    let mut server = command(&bin.join("postgres"), run_as, dir);
    server
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"])
        .args(["-c", "max_connections=300"])
        .arg("-k")
        .arg(sockets)
        .stdout(log_file.try_clone().expect("duplicating the log handle"))
        .stderr(log_file);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec; this runs
    // after the identity change registered in `command`.
    unsafe {
        server.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The test process died before the signal was armed.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (started, pid) = mpsc::channel();
    let exited = exited.clone();
    std::thread::Builder::new()
        .name("tachigo-test-postgres".into())
        .spawn(move || match server.spawn() {
            Ok(mut child) => {
                let _ = started.send(Ok(child.id() as libc::pid_t));
                let _ = child.wait();
                exited.store(true, Ordering::Release);
            }
            Err(e) => {
                let _ = started.send(Err(e));
            }
        })
        .expect("spawning the PostgreSQL supervisor thread");
    pid.recv()
        .expect("the supervisor thread reports the server")
        .unwrap_or_else(|e| panic!("starting postgres: {e}"))
}

/// Polls `pg_isready` until the server accepts connections; panics with the
/// log's tail if it exits or takes longer than [`READY_LIMIT`].
fn wait_until_ready(bin: &Path, port: u16, log: &Path, exited: &AtomicBool) {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres"])
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if ready {
            return;
        }
        if exited.load(Ordering::Acquire) {
            panic!(
                "the test PostgreSQL server exited while starting; its log ends:\n{}",
                log_tail(log)
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "the test PostgreSQL server did not accept connections on 127.0.0.1:{port} \
                 within {READY_LIMIT:?}; its log ends:\n{}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(log) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(4_000)));
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// Directories left by test processes that were killed (their server died
/// with them): old enough that no process can still be setting one up, and
/// no live server in them.
fn remove_abandoned_directories() {
    const PREFIX: &str = "tachigo-test-pg-";
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let abandoned = entry.file_name().to_string_lossy().starts_with(PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600))
            && !server_alive(&entry.path().join("data").join("postmaster.pid"));
        if abandoned {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether the pid in a `postmaster.pid` file is a live process.
fn server_alive(pid_file: &Path) -> bool {
    fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<libc::pid_t>().ok())
        // SAFETY: signal 0 only probes whether the process exists.
        .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
}

/// At a normal exit: stops the server at once and removes its directory. (A
/// killed test process leaves the directory; the server still dies with it.)
extern "C" fn stop_at_exit() {
    let Ok(mut started) = STARTED.lock() else {
        return;
    };
    let Some((pid, dir)) = started.take() else {
        return;
    };
    // SAFETY: signalling a pid this process started; the supervisor thread
    // reaps it, so the pid cannot have been reused while it is alive.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(5);
    // SAFETY: signal 0 only probes whether the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_everything_but_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h:1?sslmode=disable", "t2"),
            "postgresql://u:p@h:1/t2?sslmode=disable"
        );
    }
}
