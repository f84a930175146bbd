//! The report of `benches/e2e.rs`: rows, targets and their Markdown tables,
//! `BENCHMARKS.md`, and the machine and build the figures came from.

use super::*;

/// One measured configuration: a line of the table.
#[derive(Default)]
pub(super) struct Row {
    pub(super) label: String,
    pub(super) setup: String,
    pub(super) samples: Vec<Sample>,
    pub(super) rss_mib: Option<f64>,
    pub(super) bound: Option<f64>,
    pub(super) extra: Vec<String>,
    pub(super) targets: Vec<Target>,
    pub(super) error: Option<String>,
}

impl Row {
    /// The row of a measurement `label` on `setup` that failed with `error`.
    pub(super) fn failed(label: String, setup: &Setup, error: &str) -> Row {
        Row {
            label,
            setup: setup.describe(),
            error: Some(error.to_owned()),
            ..Row::default()
        }
    }

    pub(super) fn wall(&self) -> Option<f64> {
        let walls: Vec<f64> = self.samples.iter().map(|s| s.wall).collect();
        (!walls.is_empty()).then(|| median(&walls))
    }

    pub(super) fn first(&self) -> Option<f64> {
        let firsts: Vec<f64> = self.samples.iter().filter_map(|s| s.first).collect();
        (!firsts.is_empty()).then(|| median(&firsts))
    }

    pub(super) fn calls(&self) -> Option<Calls> {
        let all: Vec<Calls> = self
            .samples
            .iter()
            .filter_map(|s| s.calls.clone())
            .collect();
        (!all.is_empty()).then(|| Calls::median(&all))
    }

    pub(super) fn rows(&self) -> Option<usize> {
        self.samples.last().map(|s| s.rows)
    }
}

/// A target, its number and whether it was met (`None`: not measured).
pub(super) struct Target {
    pub(super) scenario: String,
    pub(super) goal: String,
    pub(super) measured: String,
    /// The number and the goal in a few words, for the results table.
    pub(super) short: String,
    pub(super) met: Option<bool>,
}

impl Target {
    pub(super) fn new(
        scenario: &str,
        goal: &str,
        measured: String,
        short: String,
        met: Option<bool>,
    ) -> Target {
        Target {
            scenario: scenario.to_owned(),
            goal: goal.to_owned(),
            measured,
            short,
            met,
        }
    }

    pub(super) fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "not measured",
        }
    }
}

/// Two decimals, or three significant digits below 0.1 (0.0471, not 0.05).
pub(super) fn fmt_ratio(r: f64) -> String {
    if r.is_finite() && r.abs() < 0.1 && r != 0.0 {
        let digits = (2 - r.abs().log10().floor() as i64).clamp(2, 8) as usize;
        format!("{r:.digits$}")
    } else {
        format!("{r:.2}")
    }
}

pub(super) fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) const COLUMNS: [&str; 13] = [
    "scenario",
    "setup",
    "rows",
    "wall, median (min-max)",
    "first batch",
    "rows/s",
    "calls List / Describe / ListTags",
    "throttled",
    "server peak RSS",
    "bound",
    "wall/bound",
    "other figures",
    "targets",
];

pub(super) fn row_cells(row: &Row) -> Vec<String> {
    let dash = || "-".to_string();
    let wall = row.wall();
    let mut cells = vec![row.label.clone(), row.setup.clone()];
    cells.push(row.rows().map_or_else(dash, |r| thousands(r as u64)));
    cells.push(match wall {
        Some(w) if row.samples.len() > 1 => {
            let min = row
                .samples
                .iter()
                .map(|s| s.wall)
                .fold(f64::INFINITY, f64::min);
            let max = row.samples.iter().map(|s| s.wall).fold(0.0, f64::max);
            format!("{} ({}-{})", secs(w), secs(min), secs(max))
        }
        Some(w) => secs(w),
        None => dash(),
    });
    cells.push(row.first().map_or_else(dash, secs));
    cells.push(match (wall, row.rows()) {
        (Some(w), Some(r)) if w > 0.0 => thousands((r as f64 / w).round() as u64),
        _ => dash(),
    });
    let calls = row.calls();
    cells.push(calls.as_ref().map_or_else(dash, |c| {
        format!(
            "{} / {} / {}",
            thousands(c.list),
            thousands(c.describe),
            thousands(c.tags)
        )
    }));
    cells.push(calls.map_or_else(dash, |c| thousands(c.throttled)));
    cells.push(row.rss_mib.map_or_else(dash, |m| format!("{m:.0} MiB")));
    cells.push(row.bound.map_or_else(dash, secs));
    cells.push(match (wall, row.bound) {
        (Some(w), Some(b)) if b > 0.0 => format!("{:.2}", w / b),
        _ => dash(),
    });
    let mut extra = row.extra.join("; ");
    if let Some(error) = &row.error {
        if !extra.is_empty() {
            extra.push_str("; ");
        }
        extra.push_str("FAILED: ");
        extra.push_str(error.lines().next().unwrap_or(""));
    }
    cells.push(if extra.is_empty() { dash() } else { extra });
    let targets: Vec<String> = row
        .targets
        .iter()
        .map(|t| format!("{}: {}", t.short, t.verdict()))
        .collect();
    cells.push(if targets.is_empty() {
        dash()
    } else {
        targets.join("; ")
    });
    cells
}

/// A markdown table with padded columns, readable as plain text too.
pub(super) fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|&w| "-".repeat(w)).collect()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

pub(super) fn results_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    markdown_table(&COLUMNS, &cells)
}

pub(super) fn targets_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|r| &r.targets)
        .map(|t| {
            vec![
                t.scenario.clone(),
                t.goal.clone(),
                t.measured.clone(),
                t.verdict().to_string(),
            ]
        })
        .collect();
    markdown_table(&["scenario", "target", "measured", "met"], &cells)
}

// ---------------------------------------------------------------------------
// BENCHMARKS.md

impl Bench {
    pub(super) fn markdown(&self, date: &str) -> String {
        let o = &self.options;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmarks\n\n\
             End-to-end figures of `sagemaker-flight`, written by `cargo bench --bench e2e` \
             (`benches/e2e.rs`), which overwrites this file on every run. The emulator, the \
             server and the Python peers run as separate processes on 127.0.0.1, on the same \
             machine as the client (this harness), so they share its CPUs.\n"
        );
        let scale = if (o.jobs_scale - 1.0).abs() > f64::EPSILON {
            format!(
                " (job counts scaled by {}: not the scenarios' full size)",
                o.jobs_scale
            )
        } else {
            String::new()
        };
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| date | {date} |");
        let _ = writeln!(md, "| command | `{}` |", command_line(o));
        let _ = writeln!(md, "| commit | {} |", self.commit);
        let _ = writeln!(md, "| build profile | {} |", profile());
        let _ = writeln!(md, "| machine | {} |", machine());
        let s2 = match o.s2_runs {
            Some(n) if o.scenarios.contains(&Id::S2) => format!(" ({n} for S2)"),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| runs | {} per scenario{s2}; medians, min-max in brackets{scale} |",
            o.runs
        );
        let busy: Vec<String> = self
            .busy
            .iter()
            .map(|(id, b)| format!("{} {:.0}%", id.name(), b * 100.0))
            .collect();
        let _ = writeln!(
            md,
            "| CPU busy with other work before each scenario | {} |",
            if busy.is_empty() {
                "unknown".into()
            } else {
                busy.join(", ")
            }
        );
        if !self.flags.cache_ttl {
            let _ = writeln!(
                md,
                "| note | this build's `serve` has no `--cache-ttl`: S4 and S5 ran uncached |"
            );
        }
        if let Some(warning) = busy_warning(&self.busy) {
            let _ = writeln!(md, "| **warning** | {warning} |");
        }
        md.push('\n');
        let _ = writeln!(md, "## Results\n\n{}", results_table(&self.rows));
        let _ = writeln!(
            md,
            "Columns: **wall** runs from the client's `execute()` (GetFlightInfo for plain \
             Flight) to the last batch, **first batch** to the first one. **Calls** are counted \
             by the emulator (every call, throttled ones included; medians over the runs). \
             **Server peak RSS** is `VmHWM` of the server process, started afresh for each \
             scenario. **Bound** is what the calls allow at best: `max(N / R, N x L / C) + 2 L` \
             for N jobs, latency L, C calls in flight per operation and a rate limit of R \
             calls/s per operation (none: N / R = 0); 2 L is the first List page and the first \
             Describe. Every server runs with `--concurrency {CONCURRENCY}`.\n"
        );
        let _ = writeln!(md, "## Targets\n\n{}", targets_table(&self.rows));
        let _ = writeln!(md, "## What each scenario measures\n");
        let _ = writeln!(
            md,
            "Under each, the processes it started (`URL` is the emulator's address; the server \
             also gets `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY=bench`, \
             `AWS_REGION=us-east-1`, `AWS_EC2_METADATA_DISABLED=true` and no AWS config \
             files).\n"
        );
        let launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        for id in &o.scenarios {
            let _ = writeln!(md, "{}\n", id.about());
            let lines: Vec<&str> = launched
                .iter()
                .filter(|(of, _)| of == id)
                .map(|(_, line)| line.as_str())
                .collect();
            if !lines.is_empty() {
                let _ = writeln!(md, "```\n{}\n```\n", lines.join("\n"));
            }
        }
        let _ = writeln!(
            md,
            "## Running it\n\n\
             ```sh\n\
             cargo bench --bench e2e                                # every scenario, 3 runs (~30 min)\n\
             cargo bench --bench e2e -- --scenario S1,S3 --runs 1   # a subset\n\
             cargo bench --bench e2e -- --jobs-scale 0.05 --runs 1  # 5% of the jobs, a quick look\n\
             cargo bench --bench e2e -- --s2-runs 1                 # S2 once (~200 s a run)\n\
             cargo bench --bench e2e -- --help\n\
             ```\n\n\
             The peers need `.venv` (created by `scripts/test`); without it their columns are \
             skipped. `cargo test --all-targets` runs a smoke version (S1, S3, R1 and C on 200 jobs) \
             that writes nothing."
        );
        md
    }
}

// ---------------------------------------------------------------------------
// The machine and the build, for the report's header

pub(super) fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

pub(super) fn machine() -> String {
    let uname = command_output("uname", &["-srm"]).unwrap_or_else(|| "unknown OS".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = command_output("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
    });
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{uname}; {cpu}; nproc {cpus}; MemTotal {memory}")
}

pub(super) fn commit() -> String {
    let head = command_output("git", &["rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown (not a git checkout)".into());
    match command_output("git", &["status", "--porcelain", "--untracked-files=no"]) {
        Some(_) => format!("`{head}` with uncommitted changes"),
        None => format!("`{head}`"),
    }
}

/// The directory of the binary under `target/` names its profile.
pub(super) fn profile_dir() -> String {
    Path::new(BINARY)
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned())
}

pub(super) fn profile() -> String {
    match profile_dir().as_str() {
        "release" => "bench (release-derived: optimized, no debug assertions)".into(),
        "debug" => "dev (unoptimized debug build: figures are NOT representative)".into(),
        other => format!("{other} (custom profile)"),
    }
}

pub(super) fn command_line(options: &Options) -> String {
    let quote = |a: &String| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$*?;&|<>()".contains(c)) {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a.clone()
        }
    };
    let mut line = String::from("cargo bench");
    match profile_dir().as_str() {
        "release" => {}
        "debug" => line.push_str(" --profile dev"),
        other => {
            let _ = write!(line, " --profile {other}");
        }
    }
    line.push_str(" --bench e2e");
    if !options.user_args.is_empty() {
        line.push_str(" --");
        for arg in &options.user_args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
    }
    line
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub(super) fn utc_now() -> String {
    // The SDK's DateTime already formats RFC 3339; minutes are enough here.
    let now = aws_smithy_types::DateTime::from(SystemTime::now());
    let text = now
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}
