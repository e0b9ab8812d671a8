//! Test harness: run the real `kt` binary, a scriptable mock upstream, small HTTP helpers.

#![allow(dead_code)]

pub mod mock_upstream;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use mock_upstream::{test_ca_file, tls_server_config, MockReply, MockUpstream, Received};

/// Path of the built `kt` binary.
pub fn kt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kt")
}

/// Repository root (for testdata/ and tests/python/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `kt` command with a clean environment: no inherited `KT_*`, `KT_HOME` in `home`.
pub fn kt(home: &Path) -> Command {
    let mut c = Command::new(kt_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KT_") {
            c.env_remove(&k);
        }
    }
    c.env("KT_HOME", home);
    c.env("NO_COLOR", "1");
    // Upstream calls go direct (a test that wants a proxy sets one).
    for var in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
        c.env_remove(var).env_remove(var.to_lowercase());
    }
    c
}

/// Output of a finished command.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion with a deadline.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kt");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        si.write_all(input.as_bytes()).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("command timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

/// A running `kt gateway run`, killed on drop.
pub struct Gateway {
    pub child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    stderr_lines: mpsc::Receiver<String>,
}

impl Gateway {
    /// Starts the gateway with `config` (YAML; `None` for the built-in sandbox).
    pub fn start(config: Option<&str>) -> Gateway {
        Gateway::start_with(config, &[], &[])
    }

    /// Starts the gateway with extra arguments and environment.
    pub fn start_with(config: Option<&str>, args: &[&str], envs: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kt.db");
        let mut cmd = kt(dir.path());
        cmd.args(["gateway", "run", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db);
        if let Some(yaml) = config {
            let path = dir.path().join("policy-config.yaml");
            std::fs::write(&path, yaml).unwrap();
            cmd.arg("--policy-config").arg(&path);
        }
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn kt gateway run");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    tx.send(addr.to_string()).ok();
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                child.kill().ok();
                let err: Vec<String> = erx.try_iter().collect();
                panic!("gateway did not start; stderr:\n{}", err.join("\n"));
            }
        };
        Gateway {
            child: Some(child),
            addr,
            dir,
            db,
            stderr_lines: erx,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (an SDK's base_url)
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr_lines.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Events in the database (as JSON objects), waiting until at least `n` are there.
    pub fn events(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let evs = read_events(&self.db);
            if evs.len() >= n || Instant::now() > deadline {
                return evs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// Every event in a database file, oldest first, as JSON.
pub fn read_events(db: &Path) -> Vec<serde_json::Value> {
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) = kt::store::open(db) else {
        return Vec::new();
    };
    kt::store::events::recent(&conn, 1_000_000)
        .unwrap_or_default()
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// An HTTP agent for tests: no proxy, errors as values, bounded time.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs `body` exactly as written, as JSON (for bodies `post_json` cannot make: bad
/// JSON, a chosen spelling).
pub fn post_text(url: &str, body: &str) -> ureq::http::Response<ureq::Body> {
    http()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .expect("request failed")
}

/// POSTs JSON; returns (status, headers, body as JSON or `Value::Null`).
pub fn post_json(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let mut req = http().post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req
        .send(body.to_string().as_bytes())
        .expect("request failed");
    let status = resp.status().as_u16();
    let hdrs = header_list(&resp);
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        hdrs,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let mut resp = http().get(url).call().expect("request failed");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

pub fn header_list<B>(resp: &ureq::http::Response<B>) -> Vec<(String, String)> {
    resp.headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One SSE `data:` payload with the time it arrived (since the request was sent).
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Duration,
    pub data: String,
}

/// POSTs a streaming request and collects every `data:` line with its arrival time.
pub fn post_stream(url: &str, body: &serde_json::Value) -> (u16, Vec<Arrival>) {
    let start = Instant::now();
    let resp = http()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .expect("request failed");
    let status = resp.status().as_u16();
    let mut reader = BufReader::new(resp.into_body().into_reader());
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(d) = line.trim_end().strip_prefix("data: ") {
                    out.push(Arrival {
                        at: start.elapsed(),
                        data: d.to_string(),
                    });
                } else if status != 200 && !line.trim().is_empty() {
                    out.push(Arrival {
                        at: start.elapsed(),
                        data: line.trim().to_string(),
                    });
                }
            }
        }
    }
    (status, out)
}

/// The content deltas of a chat stream's chunks, joined.
pub fn streamed_text(arrivals: &[Arrival]) -> String {
    arrivals
        .iter()
        .filter_map(|a| serde_json::from_str::<serde_json::Value>(&a.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// A Python with the official `openai` SDK. The test set-up installs it: a virtualenv in
/// the target directory (seeing system packages, so an installed SDK is reused) gets
/// `tests/python/requirements.txt` on first use. `KT_TEST_PYTHON` overrides it.
pub fn python() -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("KT_TEST_PYTHON") {
                return p;
            }
            let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py");
            let py = venv.join("bin").join("python");
            let ready = |py: &Path| {
                Command::new(py)
                    .args(["-c", "import openai, websockets, langchain_openai"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if ready(&py) {
                return py.display().to_string();
            }
            let ok = Command::new("python3")
                .args(["-m", "venv", "--system-site-packages"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "could not create a Python virtualenv in {}",
                venv.display()
            );
            if !ready(&py) {
                let ok = Command::new(&py)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                    ])
                    .arg(repo().join("tests/python/requirements.txt"))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(
                    ok && ready(&py),
                    "could not install tests/python/requirements.txt (openai SDK)"
                );
            }
            py.display().to_string()
        })
        .clone()
}

/// Runs `tests/python/<script>` against `base_url`; panics with its output on failure.
pub fn run_python(script: &str, base_url: &str, envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/python").join(script));
    run_sdk_script(cmd, &format!("python {script}"), base_url, envs)
}

/// Runs an SDK script `cmd` against `base_url` (`KT_BASE_URL`; no proxy, no OpenAI
/// settings from the environment) with `envs`; its stdout, or a panic with its output.
fn run_sdk_script(mut cmd: Command, what: &str, base_url: &str, envs: &[(&str, &str)]) -> String {
    cmd.env("KT_BASE_URL", base_url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = run(cmd, None, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// The `node_modules` of the official `openai` Node SDK. The test set-up installs it on
/// first use: `tests/node/package.json` and its lock file are copied into the target
/// directory and `npm ci` installs exactly the locked version there (again only when the
/// lock file changed). `KT_TEST_NODE_MODULES` overrides it.
pub fn node_modules() -> PathBuf {
    static MODULES: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODULES
        .get_or_init(|| {
            if let Ok(p) = std::env::var("KT_TEST_NODE_MODULES") {
                return PathBuf::from(p);
            }
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("node");
            let lock = std::fs::read(repo().join("tests/node/package-lock.json")).unwrap();
            let installed = dir.join("node_modules/.kt-installed-lock.json");
            if std::fs::read(&installed).is_ok_and(|l| l == lock) {
                return dir.join("node_modules");
            }
            assert!(
                Command::new("npm").arg("--version").output().is_ok(),
                "npm not found: the Node SDK tests need Node.js and npm (.ci/run installs them)"
            );
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(repo().join("tests/node").join(f), dir.join(f)).unwrap();
            }
            let mut cmd = Command::new("npm");
            cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir);
            let out = run(cmd, None, Duration::from_secs(300));
            assert!(
                out.status.success(),
                "could not install tests/node/package.json (openai Node SDK) with `npm ci` \
                 ({}); is Node.js with npm installed?\n{}",
                out.status,
                out.stderr
            );
            std::fs::write(&installed, lock).unwrap();
            dir.join("node_modules")
        })
        .clone()
}

/// Runs `tests/node/<script>` with Node.js against `base_url`; panics with its output on
/// failure.
pub fn run_node(script: &str, base_url: &str, envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/node").join(script))
        .env("NODE_PATH", node_modules());
    run_sdk_script(cmd, &format!("node {script}"), base_url, envs)
}
