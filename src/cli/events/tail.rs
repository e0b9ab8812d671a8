//! `kt events tail`: the newest events, then (with `--follow`) every new one. Locally it
//! polls `PRAGMA data_version` — it changes only when another connection (the gateway)
//! commits — and then reads `WHERE id > last`; no statement stays open between polls.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::render::{self, Look};
use super::{TailArgs, TailFormat};
use crate::exit::ExitStatus;
use crate::store::query::{self, Filter};
use crate::store::Event;

/// How often follow mode looks for new rows: well inside the 250 ms promise, and a
/// `data_version` pragma costs microseconds.
const POLL: Duration = Duration::from_millis(50);
/// Rows read per query while catching up.
const PAGE: u32 = 500;

/// How each event is printed.
pub(super) struct Printer {
    format: Format,
    look: Look,
}

enum Format {
    Line,
    Detailed,
    Json,
}

impl Printer {
    fn new(json: bool, format: TailFormat) -> Printer {
        Printer {
            format: match (json, format) {
                (true, _) => Format::Json,
                (false, TailFormat::Line) => Format::Line,
                (false, TailFormat::Detailed) => Format::Detailed,
            },
            look: Look::stdout(),
        }
    }

    pub(super) fn print(&self, out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
        for e in events {
            match self.format {
                Format::Line => writeln!(out, "{}", render::line(e, &self.look))?,
                Format::Detailed => writeln!(out, "{}", render::detailed(e, &self.look))?,
                Format::Json => {
                    serde_json::to_writer(&mut *out, e)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()
    }
}

/// Set by SIGINT/SIGTERM: follow mode stops and exits 0.
pub(super) fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("failed to install the Ctrl-C handler")?;
    }
    Ok(stop)
}

pub fn run(args: TailArgs) -> anyhow::Result<ExitStatus> {
    let TailArgs {
        db,
        filter,
        follow,
        limit,
        json,
        format,
        url,
        admin_token,
    } = args;
    let now = crate::gateway::http::now_ms();
    let filter = filter.resolve(None, now)?;
    let printer = Printer::new(json, format);
    if let Some(url) = url {
        return super::remote::tail(
            &url,
            admin_token.as_deref(),
            &filter,
            limit,
            follow,
            &printer,
        );
    }
    let path = db.path();
    let conn = if follow {
        // Following may start before the gateway ever ran: create the database and wait.
        super::open(&path)?
    } else {
        match super::open_existing(&db) {
            Ok(c) => c,
            Err(status) => return Ok(status),
        }
    };
    // Installed before the first output, so a Ctrl-C at any moment exits cleanly.
    let stop = if follow { stop_flag()? } else { Arc::default() };
    let mut out = std::io::stdout().lock();
    let (first, mut last_id) = {
        let tx = conn.unchecked_transaction()?;
        let evs = query::recent(&tx, &filter, limit)?;
        let max = query::max_id(&tx)?;
        tx.finish()?;
        (evs, max)
    };
    printer.print(&mut out, &first)?;
    if !follow {
        return Ok(ExitStatus::Success);
    }
    let mut version = query::data_version(&conn)?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let v = query::data_version(&conn)?;
        if v == version {
            continue;
        }
        version = v;
        last_id = catch_up(&conn, &filter, last_id, &printer, &mut out)?;
    }
    Ok(ExitStatus::Success)
}

/// Prints every matching event after `last_id`; returns the new high-water mark (the
/// newest id seen, matching or not).
fn catch_up(
    conn: &rusqlite::Connection,
    filter: &Filter,
    mut last_id: i64,
    printer: &Printer,
    out: &mut impl Write,
) -> anyhow::Result<i64> {
    let upto = query::max_id(conn)?;
    while last_id < upto {
        let page = query::after(conn, filter, last_id, Some(upto), PAGE)?;
        printer.print(out, &page)?;
        last_id = match page.last() {
            Some(e) if page.len() == PAGE as usize => e.id,
            _ => upto,
        };
    }
    Ok(last_id)
}
