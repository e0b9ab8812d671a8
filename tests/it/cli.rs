//! The CLI surface: help, version, generated completions and man pages.

use std::time::Duration;

use crate::support::*;

#[test]
fn committed_completions_and_man_pages_are_current() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, file) in [("bash", "kt.bash"), ("zsh", "_kt"), ("fish", "kt.fish")] {
        let mut cmd = kt(dir.path());
        cmd.args(["generate", "completions", shell]);
        let out = run(cmd, None, Duration::from_secs(10));
        assert!(out.status.success());
        let committed =
            std::fs::read_to_string(repo().join("completions").join(file)).unwrap_or_default();
        assert!(
            committed == out.stdout,
            "completions/{file} is stale: run `cargo run -- generate completions {shell} > completions/{file}`"
        );
    }
    let man = dir.path().join("man");
    let mut cmd = kt(dir.path());
    cmd.args(["generate", "man", "--dir"]).arg(&man);
    assert!(run(cmd, None, Duration::from_secs(10)).status.success());
    for entry in std::fs::read_dir(&man).unwrap() {
        let entry = entry.unwrap();
        let fresh = std::fs::read_to_string(entry.path()).unwrap();
        let committed =
            std::fs::read_to_string(repo().join("man").join(entry.file_name())).unwrap_or_default();
        assert!(
            committed == fresh,
            "man/{} is stale: run `cargo run -- generate man --dir man`",
            entry.file_name().to_string_lossy()
        );
    }
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kt(dir.path());
    cmd.arg("--help");
    let out = run(cmd, None, Duration::from_secs(10));
    assert!(out.status.success());
    for sub in ["gateway", "policy", "events", "gateway-key", "chat", "init"] {
        assert!(out.stdout.contains(sub), "{}", out.stdout);
    }
    let mut cmd = kt(dir.path());
    cmd.arg("--version");
    let out = run(cmd, None, Duration::from_secs(10));
    assert!(out.stdout.starts_with("kt "), "{}", out.stdout);
}
