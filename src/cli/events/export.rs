//! `kt events export`: a time range of events as a JSON array or CSV, read in id-ordered
//! pages from one snapshot of the database, with a progress bar on a terminal. Written to a
//! `.partial` file renamed into place at the end, so a failed export leaves no file that
//! looks complete.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::{ExportArgs, ExportFormat};
use crate::exit::ExitStatus;
use crate::store::query;
use crate::store::Event;

/// Rows read per query.
const PAGE: u32 = 1000;
/// Below this many events no progress bar is worth drawing.
const PROGRESS_FROM: u64 = 5000;

pub fn run(args: ExportArgs) -> anyhow::Result<ExitStatus> {
    let ExportArgs {
        db,
        filter,
        until,
        format,
        output,
    } = args;
    let now = crate::gateway::http::now_ms();
    let filter = filter.resolve(until.as_deref(), now)?;
    let conn = match super::open_existing(&db) {
        Ok(c) => c,
        Err(status) => return Ok(status),
    };
    // The export ends at the newest row of this moment, even while the gateway writes.
    let (upto, total) = {
        let tx = conn.unchecked_transaction()?;
        let upto = query::max_id(&tx)?;
        let total = query::count(&tx, &filter)?;
        tx.finish()?;
        (upto, total)
    };
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let bar = if std::io::stderr().is_terminal() && !to_terminal && total >= PROGRESS_FROM {
        progress_bar(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (sink, partial): (Box<dyn Write>, Option<PathBuf>) = match &output {
        Some(path) => {
            let partial = partial_path(path);
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("failed to create `{}`", partial.display()))?;
            (Box::new(file), Some(partial))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let mut out = Writer::new(format, BufWriter::with_capacity(256 * 1024, sink));
    let mut last_id = 0;
    let mut written = 0u64;
    let result = (|| -> anyhow::Result<()> {
        loop {
            let page = query::after(&conn, &filter, last_id, Some(upto), PAGE)?;
            for e in &page {
                out.event(e)?;
            }
            written += page.len() as u64;
            bar.set_position(written);
            match page.last() {
                Some(e) if page.len() == PAGE as usize => last_id = e.id,
                _ => break,
            }
        }
        out.finish()
    })();
    bar.finish_and_clear();
    if let Err(e) = result {
        if let Some(p) = &partial {
            // The partial file is useless; failing to remove it changes nothing for the user.
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    if let (Some(partial), Some(path)) = (partial, &output) {
        std::fs::rename(&partial, path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        report(written, path);
    }
    Ok(ExitStatus::Success)
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn report(written: u64, path: &Path) {
    eprintln!(
        "exported {written} event{} to {}",
        if written == 1 { "" } else { "s" },
        path.display()
    );
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "exporting {wide_bar} {human_pos}/{human_len} events ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Streams events out as a JSON array or CSV.
enum Writer<W: Write> {
    Json {
        out: W,
        first: bool,
    },
    Csv {
        out: Box<csv::Writer<W>>,
        header: bool,
    },
}

impl<W: Write> Writer<W> {
    fn new(format: ExportFormat, out: W) -> Writer<W> {
        match format {
            ExportFormat::Json => Writer::Json { out, first: true },
            ExportFormat::Csv => Writer::Csv {
                out: Box::new(csv::Writer::from_writer(out)),
                header: false,
            },
        }
    }

    fn event(&mut self, e: &Event) -> anyhow::Result<()> {
        match self {
            Writer::Json { out, first } => {
                out.write_all(if *first { b"[\n  " } else { b",\n  " })?;
                *first = false;
                serde_json::to_writer(&mut *out, e)?;
            }
            Writer::Csv { out, header } => {
                // The columns are the event's serde fields, in order: the same names as the
                // JSON export and `tail --json`.
                let Value::Object(map) = serde_json::to_value(e)? else {
                    anyhow::bail!("event #{} did not serialize to an object", e.id);
                };
                if !*header {
                    out.write_record(map.keys())?;
                    *header = true;
                }
                out.write_record(map.values().map(csv_cell))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Writer::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            Writer::Csv { mut out, header } => {
                if !header {
                    let empty = serde_json::to_value(Event::default())?;
                    if let Value::Object(map) = empty {
                        out.write_record(map.keys())?;
                    }
                }
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// A CSV cell: strings as they are, null empty, everything else as JSON text.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(format: ExportFormat, events: &[Event]) -> String {
        let mut buf = Vec::new();
        let mut w = Writer::new(format, &mut buf);
        for e in events {
            w.event(e).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn sample(id: i64) -> Event {
        Event {
            id,
            request_id: format!("r{id}"),
            verdict: "allow".into(),
            error: Some("a \"quoted\", text".into()),
            policies: Some(serde_json::json!([{"policy": "p"}]).into()),
            ..Event::default()
        }
    }

    #[test]
    fn json_is_an_array_of_events() {
        assert_eq!(export(ExportFormat::Json, &[]), "[]\n");
        let text = export(ExportFormat::Json, &[sample(1), sample(2)]);
        let back: Vec<Event> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, [sample(1), sample(2)]);
    }

    #[test]
    fn csv_has_the_json_field_names_and_quotes_cells() {
        let text = export(ExportFormat::Csv, &[sample(1)]);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(header.first().map(String::as_str), Some("id"));
        assert!(header.contains(&"latency_ms".to_string()));
        let row = r.records().next().unwrap().unwrap();
        let get = |name: &str| {
            row.get(header.iter().position(|h| h == name).unwrap())
                .unwrap()
        };
        assert_eq!(get("request_id"), "r1");
        assert_eq!(get("error"), "a \"quoted\", text");
        assert_eq!(get("policies"), r#"[{"policy":"p"}]"#);
        assert_eq!(get("model_used"), "");
        // No rows: still a header.
        assert!(export(ExportFormat::Csv, &[]).starts_with("id,request_id,"));
    }
}
