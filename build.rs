//! Build script: puts the git commit into `kt --version` as `KT_LONG_VERSION`.
//!
//! It only prints `cargo:` directives: nothing is written into the source tree. Without
//! git, or outside a git checkout (a crate tarball), the version is the package version
//! alone. `KT_BUILD_COMMIT` overrides the commit (packagers building from an archive).

// A build script talks to cargo through standard output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=KT_BUILD_COMMIT");
    let commit = std::env::var("KT_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit);
    let long = match commit {
        Some(c) => format!("{version} (commit {})", c.trim()),
        None => version,
    };
    println!("cargo:rustc-env=KT_LONG_VERSION={long}");
}

/// `abc123def456`, plus rerun triggers for the files that change
/// when HEAD moves. `None` when git or the repository is absent.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when HEAD or the branch it points to moves (worktrees keep HEAD apart from
    // the shared refs, so ask git for each path).
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            rerun_if_changed(p);
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
            rerun_if_changed(p);
        }
    }
    Some(hash)
}

fn rerun_if_changed(path: String) {
    let p = PathBuf::from(path);
    let p = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    println!("cargo:rerun-if-changed={}", p.display());
}
