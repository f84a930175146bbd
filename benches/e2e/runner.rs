//! The run of `benches/e2e.rs`: every scenario in turn, each after a look
//! at how busy the CPUs already are, then the tables and the report.

use super::*;

pub(super) async fn run(options: Options) -> ExitCode {
    let workdir = match WorkDir::create() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::FAILURE;
        }
    };
    let date = utc_now();
    let flags = serve_flags().await;
    let boto3 = find_peer(options.peers, "boto3_peer.py");
    let pyarrow = find_peer(options.peers, "pyarrow_peer.py");
    let mut bench = Bench {
        options,
        workdir,
        flags,
        boto3,
        pyarrow,
        busy: Vec::new(),
        current: Id::S1,
        launched: Default::default(),
        commit: commit(),
        rows: Vec::new(),
    };
    let o = &bench.options;
    println!(
        "e2e: {} with {}, {} run(s), scenarios {}{}",
        if o.smoke {
            "smoke run (no --bench)"
        } else {
            "benchmark"
        },
        BINARY,
        o.runs,
        o.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        if o.jobs_scale != 1.0 {
            format!(", jobs x {}", o.jobs_scale)
        } else {
            String::new()
        }
    );
    if !o.smoke {
        println!("build profile: {}", profile());
        for (name, peer) in [("boto3", &bench.boto3), ("pyarrow", &bench.pyarrow)] {
            if let Err(why) = peer {
                println!("skipping the {name} peer: {why}");
            }
        }
    }
    if !bench.flags.cache_ttl {
        println!("note: `serve --help` shows no --cache-ttl; S4 and S5 run uncached");
    }
    let mut failed = false;
    for id in bench.options.scenarios.clone() {
        println!("{}:", id.name());
        bench.current = id;
        if !bench.options.smoke
            && let Some(busy) = cpu_busy().await
        {
            bench.busy.push((id, busy));
            if busy > 0.25 {
                println!(
                    "  warning: the CPUs are {:.0}% busy with other work",
                    busy * 100.0
                );
            }
        }
        if let Err(e) = bench.run(id).await {
            failed = true;
            println!("  {} FAILED: {e}", id.name());
            if !e.starts_with("recorded: ") {
                bench.rows.push(Row {
                    label: id.name().into(),
                    error: Some(e),
                    ..Row::default()
                });
            }
        }
    }
    println!("\n{}", results_table(&bench.rows));
    println!("{}", targets_table(&bench.rows));
    if let Some(warning) = busy_warning(&bench.busy) {
        println!("warning: {warning}\n");
    }
    if let Some(path) = &bench.options.output {
        match std::fs::write(path, bench.markdown(&date)) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("e2e: cannot write {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// (idle, total) jiffies of all CPUs, from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((idle, fields.iter().sum()))
}

/// How busy the CPUs are now (0..=1): other work (a build, say) that
/// would slow the figures down. Sampled over one second.
async fn cpu_busy() -> Option<f64> {
    let (idle0, total0) = cpu_times()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle1, total1) = cpu_times()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / total as f64)
}

pub(super) fn busy_warning(busy: &[(Id, f64)]) -> Option<String> {
    let busy: Vec<String> = busy
        .iter()
        .filter(|(_, b)| *b > 0.25)
        .map(|(id, b)| format!("{} ({:.0}%)", id.name(), b * 100.0))
        .collect();
    (!busy.is_empty()).then(|| {
        format!(
            "the CPUs were busy with other work before {}: \
             expect slower figures there than on an idle machine",
            busy.join(", ")
        )
    })
}
