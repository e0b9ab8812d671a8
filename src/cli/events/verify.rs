//! `kt events verify`: checks the hash chain of an immutable audit log and names the first
//! broken link. Exit 0 when intact (or when there is no chain), 1 on tampering.

use std::io::{IsTerminal, Write};

use serde_json::json;

use super::VerifyArgs;
use crate::exit::ExitStatus;
use crate::store::query::{self, Break, ChainReport};

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitStatus> {
    let VerifyArgs { db, json } = args;
    let conn = match super::open_existing(&db) {
        Ok(c) => c,
        Err(status) => return Ok(status),
    };
    let bar = if std::io::stderr().is_terminal() && !json {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = query::verify_chain(&conn, &mut |n| {
        bar.set_message(format!("verified {n} events"));
        bar.tick();
    })?;
    bar.finish_and_clear();
    let path = db.path();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &as_json(&report, &path))?;
        writeln!(out)?;
    } else {
        print_text(&report, &path, &mut out)?;
    }
    Ok(if report.broken.is_some() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn break_kind(b: &Break) -> &'static str {
    match b {
        Break::Modified { .. } => "modified",
        Break::Missing { .. } => "missing",
        Break::Unlinked { .. } => "unlinked",
        Break::TailDeleted { .. } => "tail_deleted",
    }
}

fn as_json(r: &ChainReport, path: &std::path::Path) -> serde_json::Value {
    json!({
        "ok": r.broken.is_none(),
        "database": path.display().to_string(),
        "checked": r.checked,
        "first_id": r.first_id,
        "last_id": r.last_id,
        "starts_mid_chain": r.starts_mid_chain,
        "broken": r.broken.as_ref().map(|b| json!({
            "id": b.id(),
            "kind": break_kind(b),
            "message": b.to_string(),
        })),
    })
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn print_text(
    r: &ChainReport,
    path: &std::path::Path,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if let Some(b) = &r.broken {
        eprintln!(
            "error: the hash chain of `{}` is broken at event #{}",
            path.display(),
            b.id()
        );
        eprintln!("  {b}");
        if r.checked > 0 {
            eprintln!(
                "  {} chained event{} before it verified",
                r.checked,
                if r.checked == 1 { "" } else { "s" }
            );
        }
        return Ok(());
    }
    let (Some(first), Some(last)) = (r.first_id, r.last_id) else {
        writeln!(
            out,
            "no hash-chained events in `{}`: nothing to verify",
            path.display()
        )?;
        eprintln!("hint: events are chained when the audit-logger policy has `immutable: true`");
        return Ok(());
    };
    writeln!(
        out,
        "ok: {} chained event{} (#{first}..#{last}) verified, the hash chain is intact",
        r.checked,
        if r.checked == 1 { "" } else { "s" }
    )?;
    if r.starts_mid_chain {
        eprintln!(
            "note: the chain starts at event #{first}, whose predecessor is gone \
             (pruned by `retention_days`, or deleted)"
        );
    }
    Ok(())
}
