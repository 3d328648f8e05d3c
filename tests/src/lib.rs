//! End-to-end harness: starts the real `warrant` binary on an ephemeral port against a fresh
//! SQLite file or a fresh PostgreSQL database, and gives tests a small HTTP vocabulary.
//!
//! Environment:
//! - `WARRANT_BIN`: the server binary (default: the `warrant` next to the test binary's
//!   profile directory, then `$CARGO_TARGET_DIR/debug/warrant` or `target/debug/warrant`).
//! - `WARRANT_TEST_POSTGRES_URL`: a database URL whose server the tests may create and drop
//!   databases on (default `postgres://postgres@127.0.0.1:5432/test`).
//! - `WARRANT_E2E_SKIP_POSTGRES=1`: the PostgreSQL half of every test returns immediately.
//! - `WARRANT_E2E_KEEP=1`: keep each server's temporary directory (database, blobs, logs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub use reqwest::{Method, StatusCode};
pub use serde_json::{Value, json};

/// The e-mail address of the owner created by `warrant bootstrap` in every test server.
pub const OWNER_EMAIL: &str = "owner@example.com";

/// Every scope of the public contract.
pub const ALL_SCOPES: &[&str] = &[
    "files:read",
    "files:write",
    "files:delete",
    "locks:write",
    "shares:write",
    "workspaces:read",
    "workspaces:admin",
    "members:admin",
    "tokens:write",
    "agents:admin",
    "policies:admin",
    "plugins:admin",
    "org:admin",
];

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING_PREFIX: &str = "warrant listening on ";

/// The database a test server runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `WARRANT_TEST_POSTGRES_URL`.
    Postgres,
}

/// Whether the PostgreSQL half of the tests should be skipped (`WARRANT_E2E_SKIP_POSTGRES`).
pub fn skip_postgres() -> bool {
    std::env::var("WARRANT_E2E_SKIP_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn keep_dirs() -> bool {
    std::env::var("WARRANT_E2E_KEEP").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs each named `async fn name(backend: Backend)` once per backend, as
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::skip_postgres() {
                        eprintln!("WARRANT_E2E_SKIP_POSTGRES is set: skipped");
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// The binary

/// The `warrant` binary under test.
pub fn warrant_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("WARRANT_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "WARRANT_BIN={} is not a file", p.display());
            return p;
        }
        let name = format!("warrant{}", std::env::consts::EXE_SUFFIX);
        let mut candidates = Vec::new();
        // The profile directory this test binary was built into: <target>/<profile>/deps/<test>.
        if let Ok(exe) = std::env::current_exe()
            && let Some(profile_dir) = exe.parent().and_then(Path::parent)
        {
            candidates.push(profile_dir.join(&name));
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
            Some(t) => workspace.join(t),
            None => workspace.join("target"),
        };
        candidates.push(target.join("debug").join(&name));
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "the warrant server binary was not found (looked at {}); \
                 run `cargo build -p warrant` first, or set WARRANT_BIN",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    })
    .clone()
}

/// A `warrant` command with the environment variables that could redirect it removed.
pub fn warrant_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(warrant_bin());
    for var in [
        "DATABASE_URL",
        "WARRANT_LISTEN",
        "WARRANT_DATA_DIR",
        "WARRANT_PUBLIC_URL",
        "WARRANT_MAX_UPLOAD_BYTES",
        "WARRANT_NO_BOOTSTRAP",
        "WARRANT_IMPORT_ALLOW",
        "WARRANT_IMPORT_TIMEOUT",
        "WARRANT_STORAGE_QUOTA_BYTES",
        "WARRANT_STORAGE_QUOTA_MAX_BYTES",
        "WARRANT_MCP_ALLOWED_ORIGINS",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `warrant ARGS` to completion (60 s at most) and returns what it printed.
pub async fn run_cli(args: &[&str], cwd: &Path) -> Output {
    let mut cmd = warrant_command();
    cmd.args(args).current_dir(cwd).kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("cannot run warrant {args:?}: {e}"),
        Err(_) => panic!("warrant {args:?} did not finish within 60 s"),
    }
}

/// A readable rendering of a finished command, for assertion messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What `warrant bootstrap` prints.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The owner's principal id.
    pub user_id: String,
    /// The new organisation.
    pub org_id: String,
    /// The owner's personal access token (every scope).
    pub token: String,
}

impl Bootstrap {
    /// Parses the bootstrap JSON line.
    pub fn parse(line: &str) -> Bootstrap {
        let v: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bootstrap line is not JSON ({e}): {line}"));
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("bootstrap JSON lacks string `{k}`: {line}"))
                .to_string()
        };
        Bootstrap {
            user_id: field("user_id"),
            org_id: field("org_id"),
            token: field("token"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Databases

/// A fresh, empty database and a temporary directory, both removed on drop.
pub struct TestDb {
    /// Which kind of database.
    pub backend: Backend,
    /// The `--database-url` to give the server.
    pub url: String,
    /// A private temporary directory (SQLite file, blobs, logs).
    pub dir: PathBuf,
    /// PostgreSQL: the maintenance URL and the name of the database to drop.
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A new empty database of the given kind.
    pub async fn fresh(backend: Backend) -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("warrant-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.join("warrant.db").display());
                TestDb {
                    backend,
                    url,
                    dir,
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("WARRANT_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
                let (url, name) = create_pg_database(&admin).await;
                TestDb {
                    backend,
                    url,
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// The SQLite database file (panics for PostgreSQL).
    pub fn sqlite_file(&self) -> PathBuf {
        assert_eq!(
            self.backend,
            Backend::Sqlite,
            "only SQLite has a database file"
        );
        self.dir.join("warrant.db")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            if keep_dirs() {
                eprintln!("WARRANT_E2E_KEEP: keeping PostgreSQL database {name}");
            } else {
                drop_pg_database_blocking(admin, name);
            }
        }
        if keep_dirs() {
            eprintln!("WARRANT_E2E_KEEP: keeping {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn pg_connect(admin: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(admin).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot connect to PostgreSQL at {} ({e}); set WARRANT_TEST_POSTGRES_URL, \
             or WARRANT_E2E_SKIP_POSTGRES=1 to skip the PostgreSQL tests",
            redact(admin)
        ),
    }
}

/// Creates `warrant_e2e_<unix seconds>_<uuid>` and returns its URL and name. The first call in
/// a process also drops such databases left by runs more than an hour old.
async fn create_pg_database(admin: &str) -> (String, String) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    let mut conn = pg_connect(admin).await;
    if !SWEPT.swap(true, Ordering::SeqCst) {
        sweep_stale_pg_databases(&mut conn).await;
    }
    let name = format!(
        "warrant_e2e_{}_{}",
        unix_now(),
        uuid::Uuid::new_v4().simple()
    );
    let mut last_err = None;
    for attempt in 0..5u64 {
        let sql = format!("CREATE DATABASE \"{name}\"");
        match sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {
                last_err = None;
                break;
            }
            Err(e) => {
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    if let Some(e) = last_err {
        panic!("cannot create database {name} on {}: {e}", redact(admin));
    }
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(admin)
        .unwrap_or_else(|e| panic!("WARRANT_TEST_POSTGRES_URL is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

async fn sweep_stale_pg_databases(conn: &mut sqlx::PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'warrant\\_e2e\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot list stale e2e databases: {e}");
            return;
        }
    };
    let now = unix_now();
    for name in names {
        let created = name
            .strip_prefix("warrant_e2e_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        let stale = match created {
            Some(secs) => now.saturating_sub(secs) > 3600,
            None => false,
        };
        if stale && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
            {
                eprintln!("cannot drop stale database {name}: {e}");
            }
        }
    }
}

/// Drops a database from a Drop impl: a thread with its own runtime, joined.
fn drop_pg_database_blocking(admin: String, name: String) {
    let handle = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cannot drop database {name}: {e}");
                return;
            }
        };
        rt.block_on(async {
            let mut conn = match sqlx::PgConnection::connect(&admin).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("cannot drop database {name}: {e}");
                    return;
                }
            };
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("cannot drop database {name}: {e}");
            }
            let _ = conn.close().await;
        });
    });
    let _ = handle.join();
}

// ---------------------------------------------------------------------------------------------
// The server

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra flags after `serve ...`.
    pub args: Vec<String>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// Let `warrant serve` bootstrap the empty database itself (no `warrant bootstrap` first,
    /// no `--no-bootstrap`); the owner then comes from the JSON line printed before listening.
    pub serve_bootstraps: bool,
}

/// A running `warrant serve`, killed on drop.
pub struct TestServer {
    /// The database kind.
    pub backend: Backend,
    /// `http://127.0.0.1:PORT`, as printed by the server.
    pub base: String,
    /// The bootstrap owner's principal id.
    pub owner_id: String,
    /// The bootstrap organisation.
    pub org_id: String,
    /// The bootstrap owner's token (every scope).
    pub owner_token: String,
    /// A plain HTTP client (no proxy, 120 s timeout).
    pub client: reqwest::Client,
    /// The stdout lines printed before the listening line.
    pub startup_stdout: Vec<String>,
    child: Option<tokio::process::Child>,
    pid: u32,
    stdout_rest: Arc<Mutex<String>>,
    stderr_path: PathBuf,
    /// Shared with the replicas started from this server; dropped with the last of them.
    db: Arc<TestDb>,
}

/// A `warrant serve` process just started, before it is dressed as a [`TestServer`].
struct Spawned {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    before: Vec<String>,
    stdout_rest: Arc<Mutex<String>>,
    stderr_path: PathBuf,
}

impl Spawned {
    /// The [`TestServer`] of this process, acting for `owner`.
    fn into_server(
        self,
        backend: Backend,
        owner: Bootstrap,
        client: reqwest::Client,
        db: Arc<TestDb>,
    ) -> TestServer {
        TestServer {
            backend,
            base: self.base,
            owner_id: owner.user_id,
            org_id: owner.org_id,
            owner_token: owner.token,
            client,
            startup_stdout: self.before,
            child: Some(self.child),
            pid: self.pid,
            stdout_rest: self.stdout_rest,
            stderr_path: self.stderr_path,
            db,
        }
    }
}

impl TestServer {
    /// A server on a fresh database, bootstrapped with `warrant bootstrap`.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_opts(backend, ServerOptions::default()).await
    }

    /// Like [`TestServer::start`], with extra `serve` flags.
    pub async fn start_with(backend: Backend, args: &[&str]) -> TestServer {
        let opts = ServerOptions {
            args: args.iter().map(|s| (*s).to_string()).collect(),
            ..ServerOptions::default()
        };
        Self::start_opts(backend, opts).await
    }

    /// A server with every option spelled out.
    pub async fn start_opts(backend: Backend, opts: ServerOptions) -> TestServer {
        let db = TestDb::fresh(backend).await;
        let bootstrap = if opts.serve_bootstraps {
            None
        } else {
            let out = run_cli(
                &[
                    "bootstrap",
                    "--database-url",
                    &db.url,
                    "--email",
                    OWNER_EMAIL,
                ],
                &db.dir,
            )
            .await;
            assert!(
                out.status.success(),
                "warrant bootstrap failed:\n{}",
                describe_output(&out)
            );
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let line = stdout
                .lines()
                .find(|l| l.trim_start().starts_with('{'))
                .unwrap_or_else(|| {
                    panic!(
                        "warrant bootstrap printed no JSON:\n{}",
                        describe_output(&out)
                    )
                });
            Some(Bootstrap::parse(line))
        };

        let db = Arc::new(db);
        let spawned = Self::spawn(&db, &opts, "server").await;
        let owner = match bootstrap {
            Some(b) => b,
            None => {
                let line = spawned
                    .before
                    .iter()
                    .find(|l| l.trim_start().starts_with('{'))
                    .unwrap_or_else(|| panic!("warrant serve on an empty database printed no bootstrap JSON before listening: {:?}", spawned.before));
                Bootstrap::parse(line)
            }
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        spawned.into_server(backend, owner, client, db)
    }

    /// Another server on this one's database and data folder, as a second replica behind a
    /// load balancer would be (with `args` as its extra flags); it shares the owner.
    pub async fn start_replica(&self, args: &[&str]) -> TestServer {
        assert_eq!(
            self.backend,
            Backend::Postgres,
            "replicas share a PostgreSQL database; a SQLite file is served by one process"
        );
        let opts = ServerOptions {
            args: args.iter().map(|s| (*s).to_string()).collect(),
            ..ServerOptions::default()
        };
        static REPLICAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!("replica-{}", REPLICAS.fetch_add(1, Ordering::SeqCst));
        let owner = Bootstrap {
            user_id: self.owner_id.clone(),
            org_id: self.org_id.clone(),
            token: self.owner_token.clone(),
        };
        Self::spawn(&self.db, &opts, &name).await.into_server(
            self.backend,
            owner,
            self.client.clone(),
            self.db.clone(),
        )
    }

    /// Starts `warrant serve` on `db` (logging to `<name>.stderr.log`) and waits until it
    /// listens.
    async fn spawn(db: &TestDb, opts: &ServerOptions, name: &str) -> Spawned {
        let data_dir = db.dir.join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let stderr_path = db.dir.join(format!("{name}.stderr.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr log");
        let mut cmd = warrant_command();
        cmd.arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
                "--data-dir",
            ])
            .arg(&data_dir);
        if !opts.serve_bootstraps {
            cmd.arg("--no-bootstrap");
        }
        cmd.args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&db.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", warrant_bin().display()));
        let pid = child.id().expect("server pid");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        let mut before = Vec::new();
        let base = loop {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    if let Some(rest) = line.strip_prefix(LISTENING_PREFIX) {
                        break rest.trim().trim_end_matches('/').to_string();
                    }
                    before.push(line);
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    panic!(
                        "warrant serve exited before listening ({status:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        before.join("\n"),
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
                Err(_) => {
                    let _ = child.start_kill();
                    panic!(
                        "warrant serve did not print `{LISTENING_PREFIX}...` within {STARTUP_TIMEOUT:?}\n\
                         --- stdout ---\n{}\n--- stderr ---\n{}",
                        before.join("\n"),
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
            }
        };
        assert!(
            base.starts_with("http://"),
            "unexpected listening address {base:?}"
        );
        let stdout_rest = Arc::new(Mutex::new(String::new()));
        let sink = stdout_rest.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });

        Spawned {
            child,
            pid,
            base,
            before,
            stdout_rest,
            stderr_path,
        }
    }

    /// `base + /api/v1 + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// `base + path` (for `/healthz`, `/openapi.json`, `/.well-known/...`).
    pub fn root_url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The `--database-url` the server runs on.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// The server's private temporary directory.
    pub fn dir(&self) -> &Path {
        &self.db.dir
    }

    /// The server process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything the server wrote to stderr and stdout so far.
    pub fn logs(&self) -> String {
        let mut s = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        s.push_str("\n--- stdout ---\n");
        for l in &self.startup_stdout {
            s.push_str(l);
            s.push('\n');
        }
        if let Ok(rest) = self.stdout_rest.lock() {
            s.push_str(&rest);
        }
        s
    }

    /// The bytes of the SQLite database and its journal files (SQLite only).
    pub fn db_file_bytes(&self) -> Vec<u8> {
        let db = self.db.sqlite_file();
        let mut bytes =
            std::fs::read(&db).unwrap_or_else(|e| panic!("cannot read {}: {e}", db.display()));
        for suffix in ["-wal", "-journal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            if let Ok(more) = std::fs::read(PathBuf::from(p)) {
                bytes.extend_from_slice(&more);
            }
        }
        bytes
    }

    /// Whether the server process has exited.
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub async fn sigterm_and_wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
        let child = self.child.as_mut().expect("server still owned");
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(s)) => {
                self.child = None;
                Some(s)
            }
            _ => None,
        }
    }

    /// Runs `warrant ARGS` in the server's directory.
    pub async fn cli(&self, args: &[&str]) -> Output {
        run_cli(args, &self.db.dir).await
    }

    // -- requests -------------------------------------------------------------------------------

    /// A request to an API path, with a bearer token if given.
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// A request to a root path (no `/api/v1`).
    pub fn req_root(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.root_url(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, token: &str, path: &str) -> Reply {
        send(self.req(Method::GET, path, Some(token))).await
    }

    /// `DELETE /api/v1{path}`.
    pub async fn delete(&self, token: &str, path: &str) -> Reply {
        send(self.req(Method::DELETE, path, Some(token))).await
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        send(self.req(Method::POST, path, Some(token)).json(&body)).await
    }

    /// Any method on `/api/v1{path}` with a JSON body.
    pub async fn send_json(&self, method: Method, token: &str, path: &str, body: Value) -> Reply {
        send(self.req(method, path, Some(token)).json(&body)).await
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub async fn put_json(&self, token: &str, path: &str, body: Value) -> Reply {
        send(self.req(Method::PUT, path, Some(token)).json(&body)).await
    }

    /// `PUT /workspaces/{ws}/files/{path}` with a raw body.
    pub async fn put_file(
        &self,
        token: &str,
        ws: &str,
        path: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.put_file_with(token, ws, path, body, &[]).await
    }

    /// `PUT /workspaces/{ws}/files/{path}` with a raw body and extra headers.
    pub async fn put_file_with(
        &self,
        token: &str,
        ws: &str,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut rb = self.req(
            Method::PUT,
            &format!("/workspaces/{ws}/files/{path}"),
            Some(token),
        );
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        send(rb.body(body.into())).await
    }

    /// `GET /workspaces/{ws}/files/{path}`.
    pub async fn get_file(&self, token: &str, ws: &str, path: &str) -> Reply {
        self.get(token, &format!("/workspaces/{ws}/files/{path}"))
            .await
    }

    /// `DELETE /workspaces/{ws}/files/{path}`.
    pub async fn delete_file(&self, token: &str, ws: &str, path: &str) -> Reply {
        self.delete(token, &format!("/workspaces/{ws}/files/{path}"))
            .await
    }

    /// `POST /workspaces/{ws}/files:move`.
    pub async fn move_file(&self, token: &str, ws: &str, from: &str, to: &str) -> Reply {
        self.post(
            token,
            &format!("/workspaces/{ws}/files:move"),
            json!({"from": from, "to": to}),
        )
        .await
    }

    /// `GET /workspaces/{ws}/files[?prefix=]`, returning the listed paths (expects 200).
    pub async fn list_paths(&self, token: &str, ws: &str, prefix: Option<&str>) -> Vec<String> {
        let mut rb = self.req(Method::GET, &format!("/workspaces/{ws}/files"), Some(token));
        if let Some(p) = prefix {
            rb = rb.query(&[("prefix", p)]);
        }
        let v = send(rb).await.expect_json(200);
        v["files"]
            .as_array()
            .unwrap_or_else(|| panic!("listing has no `files` array: {v}"))
            .iter()
            .map(|f| {
                f["path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("file without path: {f}"))
                    .to_string()
            })
            .collect()
    }

    // -- fixtures -------------------------------------------------------------------------------

    /// Creates a workspace in the bootstrap organisation; returns its id.
    pub async fn create_workspace(&self, token: &str, name: &str) -> String {
        let v = self
            .post(
                token,
                "/workspaces",
                json!({"org_id": self.org_id, "name": name}),
            )
            .await
            .expect_json(201);
        id_of(&v)
    }

    /// Creates an agent in the bootstrap organisation; returns its id.
    pub async fn create_agent(&self, token: &str, name: &str) -> String {
        let v = self
            .post(
                token,
                "/agents",
                json!({"org_id": self.org_id, "name": name}),
            )
            .await
            .expect_json(201);
        id_of(&v)
    }

    /// Creates a user in the bootstrap organisation; returns its id.
    pub async fn create_user(&self, token: &str, email: &str, name: &str) -> String {
        let v = self
            .post(
                token,
                "/users",
                json!({"org_id": self.org_id, "email": email, "name": name}),
            )
            .await
            .expect_json(201);
        id_of(&v)
    }

    /// `POST /tokens` with `body`, expecting 201; returns (id, secret).
    pub async fn create_token(&self, token: &str, body: Value) -> (String, String) {
        let v = self.post(token, "/tokens", body).await.expect_json(201);
        let secret = v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no `token` in {v}"))
            .to_string();
        (id_of(&v), secret)
    }

    /// A token for `principal` (an agent) with the given scopes, unlimited workspaces.
    pub async fn agent_token(&self, principal: &str, scopes: &[&str]) -> String {
        self.create_token(
            &self.owner_token,
            json!({"name": format!("{principal}-token"), "scopes": scopes, "principal_id": principal}),
        )
        .await
        .1
    }

    /// `PUT /workspaces/{ws}/members/{principal}`, expecting 200.
    pub async fn add_member(&self, token: &str, ws: &str, principal: &str, role: &str) {
        self.put_json(
            token,
            &format!("/workspaces/{ws}/members/{principal}"),
            json!({"role": role}),
        )
        .await
        .expect(200);
    }

    /// `warrant token issue` for a user; returns (id, token).
    pub async fn issue_user_token(
        &self,
        email: &str,
        name: &str,
        scopes: &[&str],
        workspaces: Option<&[&str]>,
    ) -> (String, String) {
        let scopes = scopes.join(" ");
        let mut args = vec![
            "token",
            "issue",
            "--database-url",
            self.database_url(),
            "--email",
            email,
            "--name",
            name,
            "--scopes",
            &scopes,
        ];
        let ws;
        if let Some(w) = workspaces {
            ws = w.join(" ");
            args.extend(["--workspaces", ws.as_str()]);
        }
        let out = self.cli(&args).await;
        assert!(
            out.status.success(),
            "warrant token issue failed:\n{}",
            describe_output(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or_else(|| {
                panic!(
                    "warrant token issue printed no JSON:\n{}",
                    describe_output(&out)
                )
            });
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON ({e}): {line}"));
        let token = v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {v}"))
            .to_string();
        (id_of(&v), token)
    }

    // -- raw HTTP -------------------------------------------------------------------------------

    /// Sends exactly `METHOD TARGET HTTP/1.1` over a fresh TCP connection, with no URL
    /// normalisation at all (reqwest's URL parser resolves `..`, `.`, `%2e%2e`).
    pub async fn raw_request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let addr = self.base.strip_prefix("http://").expect("http base URL");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .expect("write request head");
        stream.write_all(body).await.expect("write request body");
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no response to raw {method} {target} within 60 s"))
            .unwrap_or_else(|e| panic!("raw {method} {target}: {e}"));
        parse_raw_response(&buf, format!("raw {method} {target}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    _ => break,
                }
            }
        }
        if std::thread::panicking() {
            let logs = self.logs();
            let tail = tail_chars(&logs, 16_000);
            eprintln!(
                "---- warrant server logs ({}) ----\n{tail}\n---- end of server logs ----",
                self.base
            );
        }
    }
}

fn tail_chars(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no string `id` in {v}"))
        .to_string()
}

fn parse_raw_response(buf: &[u8], what: String) -> Reply {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{what}: no complete response head in {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut rest = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        rest = dechunk(&rest);
    }
    Reply {
        status: StatusCode::from_u16(code).expect("status code"),
        headers,
        body: rest,
        what,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]).to_string();
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_string();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            break;
        };
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// `METHOD URL`, for messages.
    pub what: String,
}

/// Sends a request and reads the whole response.
pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
    let (client, req) = rb.build_split();
    let req = req.unwrap_or_else(|e| panic!("cannot build request: {e}"));
    let what = format!("{} {}", req.method(), req.url());
    let resp = client
        .execute(req)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    Reply::read(resp, what).await
}

impl Reply {
    /// Reads a reqwest response.
    pub async fn read(resp: reqwest::Response, what: String) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
            .to_vec();
        Reply {
            status,
            headers,
            body,
            what,
        }
    }

    /// The status as a number.
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}); status {}: {}",
                self.what,
                self.status,
                self.text()
            )
        })
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
    }

    /// Every value of a header, joined with `, `.
    pub fn header_all(&self, name: &str) -> Option<String> {
        let all: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
            .collect();
        if all.is_empty() {
            None
        } else {
            Some(all.join(", "))
        }
    }

    /// Asserts the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        self
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect_json(&self, status: u16) -> Value {
        self.expect(status);
        self.json()
    }

    /// Asserts an RFC 9457 problem with this status and stable `code`; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        self.expect(status);
        let v = self.assert_problem_shape();
        assert_eq!(
            v["code"],
            json!(code),
            "{}: expected code {code:?}: {v}",
            self.what
        );
        v
    }

    /// Asserts `application/problem+json` with `type`, `title`, `status`, `detail`, `code`.
    #[track_caller]
    pub fn assert_problem_shape(&self) -> Value {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{}: error content type is {ct:?}, expected application/problem+json; body: {}",
            self.what,
            self.text()
        );
        let v = self.json();
        for k in ["type", "title", "detail"] {
            assert!(
                v[k].is_string(),
                "{}: problem lacks string `{k}`: {v}",
                self.what
            );
        }
        assert_eq!(
            v["status"],
            json!(self.status.as_u16()),
            "{}: problem `status`: {v}",
            self.what
        );
        assert!(
            v["code"].is_string(),
            "{}: problem lacks string `code`: {v}",
            self.what
        );
        v
    }

    /// Asserts a 403 from `layer` (`scope` | `workspace` | `policy` | `plugin`) with the
    /// matching code; returns the body.
    #[track_caller]
    pub fn forbidden(&self, layer: &str) -> Value {
        let code = match layer {
            "scope" => "insufficient_scope",
            "workspace" => "workspace_not_allowed",
            "policy" => "policy_denied",
            "plugin" => "plugin_denied",
            other => panic!("unknown layer {other}"),
        };
        let v = self.problem(403, code);
        assert_eq!(
            v["layer"],
            json!(layer),
            "{}: expected layer {layer:?}: {v}",
            self.what
        );
        v
    }

    /// Asserts a 404 `not_found`.
    #[track_caller]
    pub fn not_found(&self) -> Value {
        self.problem(404, "not_found")
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and bytes

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC32 of `body`, base62 (`0-9A-Za-z`), left-padded with `0` to 6 characters.
pub fn pat_checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < 6 {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii")
}

/// Asserts the documented PAT shape: `wrt_pat_` + 32 base62 + 6 base62 CRC32 checksum.
#[track_caller]
pub fn assert_pat_format(token: &str) {
    assert_eq!(token.len(), 46, "token length: {token}");
    assert!(token.starts_with("wrt_pat_"), "token prefix: {token}");
    assert!(
        token[8..].bytes().all(|b| b.is_ascii_alphanumeric()),
        "token body is not base62: {token}"
    );
    assert_eq!(
        &token[40..],
        pat_checksum(&token[..40]),
        "token checksum: {token}"
    );
}

/// A well-formed token with a valid checksum that the server never issued.
pub fn forge_pat() -> String {
    let mut s = String::from("wrt_pat_");
    while s.len() < 40 {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if s.len() < 40 {
                s.push(BASE62[(*b as usize) % 62] as char);
            }
        }
    }
    let sum = pat_checksum(&s);
    s + &sum
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift64*), different for each seed.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Plugins

/// The plugin deadline given to test servers that run plugins: the server under test is a
/// debug build on a busy 2-core machine, so the 5 ms production default would fail honest
/// plugins.
pub const TEST_PLUGIN_DEADLINE_MS: &str = "250";

/// A plugin component built from `plugins/` for wasm32-wasip2 (`./scripts/test` builds them).
pub fn plugin_component(crate_name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins first (./scripts/test does)",
            path.display()
        )
    })
}

impl TestServer {
    /// A server whose plugin deadline suits a debug build ([`TEST_PLUGIN_DEADLINE_MS`]).
    pub async fn start_for_plugins(backend: Backend) -> TestServer {
        Self::start_opts(
            backend,
            ServerOptions {
                env: vec![(
                    "WARRANT_PLUGIN_DEADLINE_MS".into(),
                    TEST_PLUGIN_DEADLINE_MS.into(),
                )],
                ..ServerOptions::default()
            },
        )
        .await
    }

    /// `PUT /workspaces/{ws}/policies` with Cedar text, as the owner (the new version is
    /// enforced).
    pub async fn put_policies(&self, ws: &str, cedar: &str) -> Reply {
        send(
            self.req(
                Method::PUT,
                &format!("/workspaces/{ws}/policies"),
                Some(&self.owner_token),
            )
            .header("content-type", "text/plain")
            .body(cedar.to_string()),
        )
        .await
    }

    /// `POST /plugins?name=N` with a component's bytes.
    pub async fn upload_plugin(&self, token: &str, name: &str, bytes: Vec<u8>) -> Reply {
        send(
            self.req(Method::POST, &format!("/plugins?name={name}"), Some(token))
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await
    }
}

impl TestServer {
    /// Waits (up to 10 s) until the decision log of `ws`, read with `query` (e.g.
    /// `limit=50`), holds an entry matching `pred`, and returns it. The log is written off the
    /// request path, so a decision shows up a moment after its request.
    pub async fn logged_decision(
        &self,
        ws: &str,
        query: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let log = self
            .logged_decisions(ws, query, |all| all.iter().any(&pred))
            .await;
        log.into_iter()
            .find(|d| pred(d))
            .expect("the log was waited for until it held one")
    }

    /// Waits (up to 10 s) until the decision log of `ws`, read with `query`, is `done` with
    /// what it holds (newest first), and returns that.
    pub async fn logged_decisions(
        &self,
        ws: &str,
        query: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let path = format!("/workspaces/{ws}/decisions?{query}");
        let read = || async {
            let log = self.get(&self.owner_token, &path).await.expect_json(200);
            log["decisions"].as_array().cloned().unwrap_or_default()
        };
        let waited = poll_until(Duration::from_secs(10), || async {
            let all = read().await;
            done(&all).then_some(all)
        })
        .await;
        match waited {
            Some(all) => all,
            None => panic!("no such decisions in {path}: {:?}", read().await),
        }
    }

    /// A connection of its own to the server's database.
    async fn database(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(self.database_url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.database_url()))
    }

    /// The number one `SELECT COUNT(*) …` returns from the server's database (which may be
    /// stopped by now).
    pub async fn count_sql(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut self.database().await)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Marks a token revoked in the database directly, as a change nobody announces.
    pub async fn revoke_token_in_database(&self, id: &str) {
        self.execute_sql(&format!(
            "UPDATE tokens SET revoked_at = {} WHERE id = '{id}'",
            unix_now()
        ))
        .await;
    }

    /// Runs one SQL statement on the server's database (to age a row, for example).
    pub async fn execute_sql(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut self.database().await)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_six_base62_chars() {
        let t = forge_pat();
        assert_pat_format(&t);
        assert_eq!(pat_checksum("").len(), 6);
        assert_eq!(pat_checksum(""), "000000"); // crc32("") == 0
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            b"abcde".to_vec()
        );
    }
}
