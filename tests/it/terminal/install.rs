//! install.sh, `--version` and the examples in `--help`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_sh_installs_idempotently_and_uninstalls() {
    let prefix = tempfile::tempdir().unwrap();
    let install = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.arg(repo().join("install.sh"))
            .arg("--prefix")
            .arg(prefix.path())
            .args(args)
            .env("KT_BIN", kt_bin())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        run(cmd, None, Duration::from_secs(60))
    };
    let out = install(&[]);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("kt installed:"), "{}", out.stdout);
    let installed = files_under(prefix.path());
    for want in [
        "bin/kt",
        "share/bash-completion/completions/kt",
        "share/zsh/site-functions/_kt",
        "share/fish/vendor_completions.d/kt.fish",
        "share/man/man1/kt.1",
        "share/man/man1/kt-events-tail.1",
        "share/man/man1/kt-chat.1",
    ] {
        assert!(
            installed.iter().any(|f| f == want),
            "{want} missing: {installed:?}"
        );
    }
    let version = Command::new(prefix.path().join("bin/kt"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("kt "));
    // A stale page of an older kt is replaced; a second run installs the same files.
    std::fs::write(prefix.path().join("share/man/man1/kt-old.1"), "old").unwrap();
    let again = install(&[]);
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(files_under(prefix.path()), installed);
    // Uninstalling removes every file, and may be repeated.
    for _ in 0..2 {
        let out = install(&["--uninstall"]);
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(files_under(prefix.path()), Vec::<String>::new());
    }
    let bad = install(&["--bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stderr.contains("unknown option"), "{}", bad.stderr);
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kt(dir.path());
    cmd.arg("--version");
    let out = run(cmd, None, Duration::from_secs(10));
    assert!(out.status.success());
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output();
    match head {
        Ok(h) if h.status.success() => {
            let commit = String::from_utf8_lossy(&h.stdout).trim().to_string();
            assert_eq!(
                out.stdout.trim(),
                format!("kt {} (commit {commit})", env!("CARGO_PKG_VERSION"))
            );
        }
        // Built outside a git checkout: the version alone.
        _ => assert_eq!(
            out.stdout.trim(),
            format!("kt {}", env!("CARGO_PKG_VERSION"))
        ),
    }
    let mut cmd = kt(dir.path());
    cmd.arg("-V");
    let out = run(cmd, None, Duration::from_secs(10));
    assert_eq!(
        out.stdout.trim(),
        format!("kt {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_terminal_subcommand_has_examples_in_its_help() {
    let dir = tempfile::tempdir().unwrap();
    for sub in [
        &["events", "tail"][..],
        &["events", "export"],
        &["events", "verify"],
        &["chat"],
        &["init"],
        &["gateway", "run"],
    ] {
        let mut cmd = kt(dir.path());
        cmd.args(sub).arg("--help");
        let out = run(cmd, None, Duration::from_secs(10));
        assert!(out.status.success());
        assert!(
            out.stdout.contains("Examples:\n  kt "),
            "kt {sub:?} --help:\n{}",
            out.stdout
        );
    }
}
