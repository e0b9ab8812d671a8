//! Interactive paths in a pseudo-terminal (util-linux `script`): chat conversation,
//! `kt init` questions, colors and widths of `kt events tail`.

use std::io::{Read, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{chunk, gateway_to, seeded, varied, Proc};
use crate::support::*;

/// A command running in a pseudo-terminal (util-linux `script`), fed keystrokes.
struct Pty {
    proc: Proc,
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Pty {
    fn start(args: &[&str], envs: &[(&str, &str)], color: bool) -> Pty {
        let quoted: Vec<String> = std::iter::once(kt_bin())
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let line = format!("stty cols 120 rows 40; exec {}", quoted.join(" "));
        let home = tempfile::tempdir().unwrap();
        let cmd = kt(home.path());
        // `kt()` prepared the environment; run `script` with it instead of kt itself.
        let mut script = Command::new("script");
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        if color {
            script.env_remove("NO_COLOR");
        }
        script.env("TERM", "xterm-256color");
        for (k, v) in envs {
            script.env(k, v);
        }
        script
            .args(["-qfec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = script
            .spawn()
            .expect("util-linux `script` is needed for the pseudo-terminal tests");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            proc: Proc(child),
            stdin,
            output,
            _home: home,
        }
    }

    fn send(&mut self, keys: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(keys.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output holds `needle` `times` times.
    fn expect(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.output().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` (×{times}) in the terminal:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.proc.wait(Duration::from_secs(15));
        self.stdin.take();
        // Let the reader drain what is left.
        std::thread::sleep(Duration::from_millis(50));
        (status, self.output())
    }
}

#[test]
fn chat_is_an_interactive_conversation_on_a_terminal() {
    let up = MockUpstream::start(|req| {
        let n = req.json()["messages"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] == "user").count());
        MockReply::openai_sse(&[chunk(&format!("answer {n}"))], Duration::ZERO)
    });
    let gw = gateway_to(&up);
    let mut pty = Pty::start(&["chat", "--url", &gw.base_url()], &[], false);
    pty.expect("/exit to leave", 1);
    pty.expect("you", 1);
    pty.send("first question\r");
    pty.expect("answer 1", 1);
    pty.send("second question\r");
    pty.expect("answer 2", 1);
    pty.send("/exit\r");
    let (status, screen) = pty.finish();
    assert!(status.success(), "{screen}");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{screen}");
    // The conversation so far goes with every turn.
    let second = reqs[1].json();
    let turns: Vec<(&str, &str)> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            ("user", "first question"),
            ("assistant", "answer 1"),
            ("user", "second question")
        ]
    );
}

#[test]
fn init_asks_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asked.yaml");
    let mut pty = Pty::start(&["init", "-o", path.to_str().unwrap()], &[], false);
    pty.expect("Configuration name", 1);
    pty.send("asked-config\r");
    pty.expect("Provider", 1);
    pty.send("\x1b[B\r"); // one down: openai
    pty.expect("Model", 1);
    pty.send("\r"); // openai's suggested model
    pty.expect("Policies", 1);
    pty.send("\r");
    let (status, screen) = pty.finish();
    assert!(status.success(), "{screen}");
    let (set, _) = kt::config::ConfigSet::load(std::slice::from_ref(&path)).unwrap();
    assert_eq!(set.default.name, "asked-config", "{screen}");
    assert_eq!(set.default.targets[0].model, "gpt-4o-mini");
    // Every built-in policy is offered; the product's default chain is checked.
    let want: Vec<&str> = ["prompt-injection", "pii-detector", "audit-logger"]
        .into_iter()
        .filter(|p| kt::policy::KNOWN.contains(p))
        .collect();
    assert_eq!(set.default.chain, want, "{screen}");
}

#[test]
fn tail_colors_verdicts_on_a_terminal_unless_no_color() {
    let (_dir, db) = seeded(&varied());
    let db = db.to_str().unwrap();
    let pty = Pty::start(&["events", "tail", "--db", db], &[], true);
    let (status, colored) = pty.finish();
    assert!(status.success(), "{colored}");
    assert!(colored.contains("\x1b[31m"), "{colored:?}");
    assert!(colored.contains("block"), "{colored:?}");
    // Terminal width (120 columns): lines are cut to fit.
    assert!(
        colored
            .lines()
            .all(|l| console::measure_text_width(l.trim_end()) <= 120),
        "{colored}"
    );
    let pty = Pty::start(&["events", "tail", "--db", db], &[("NO_COLOR", "1")], true);
    let (status, plain) = pty.finish();
    assert!(status.success(), "{plain}");
    assert!(plain.contains("block"), "{plain}");
    assert!(!plain.contains("\x1b["), "{plain:?}");
}

#[test]
fn a_large_export_shows_progress_on_a_terminal() {
    let events: Vec<kt::store::Event> = (0..20_000)
        .map(|i| super::event(1_700_000_000_000 + i, "allow", "gpt-4o", None))
        .collect();
    let (dir, db) = seeded(&events);
    let out = dir.path().join("all.csv");
    let args = [
        "events",
        "export",
        "--format",
        "csv",
        "--db",
        db.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let (status, screen) = Pty::start(&args, &[], false).finish();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("exporting"), "{screen:?}");
    assert!(screen.contains("/20,000 events"), "{screen:?}");
    assert!(screen.contains("exported 20000 events to"), "{screen:?}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        20_001
    );
}
