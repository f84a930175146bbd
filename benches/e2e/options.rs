//! The command line of `benches/e2e.rs` (a clap parser) and the options the
//! run goes by, the smoke run's included.

use super::*;
use clap::Parser;

/// End-to-end benchmarks of the sagemaker-flight binary (benches/e2e.rs).
///
/// Runs the scenarios, prints the results and the targets, and writes them
/// to BENCHMARKS.md. Without cargo's --bench (under `cargo test`) it makes a
/// smoke run instead and reads no option.
#[derive(Parser, Debug)]
#[command(
    name = "e2e",
    override_usage = "cargo bench --bench e2e -- [OPTIONS]",
    // As the hand-written parser did: an option given twice takes its last value.
    args_override_self = true
)]
struct Args {
    /// Scenarios to run (S1 S2 S3 S4 S5 S6 S7 M; default: all)
    #[arg(
        long,
        visible_alias = "scenarios",
        value_name = "S1,S2,...",
        value_parser = scenario_list
    )]
    scenario: Option<Scenarios>,
    /// Runs per scenario, medians reported
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = count)]
    runs: usize,
    /// Runs of S2 only (~200 s each at full size; default: --runs)
    #[arg(long, value_name = "N", value_parser = count)]
    s2_runs: Option<usize>,
    /// Multiply every job count by F (e.g. 0.05 for a quick look)
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = factor)]
    jobs_scale: f64,
    /// Skip the Python peers (boto3, pyarrow)
    #[arg(long)]
    no_peers: bool,
    /// Where to write the report (default: BENCHMARKS.md in the crate)
    // `--output` and `--no-write`: the later one wins.
    #[arg(long, value_name = "PATH", overrides_with = "no_write")]
    output: Option<PathBuf>,
    /// Print only, write no report
    #[arg(long, overrides_with = "output")]
    no_write: bool,
    // Cargo's own flag: `cargo bench` appends it, `cargo test` does not.
    // `parse_options` looks for it before clap runs; here it is accepted
    // and ignored.
    #[arg(long, hide = true)]
    bench: bool,
    // A positional argument (a cargo bench filter, `cargo bench --bench e2e
    // NAME`): not ours, ignored.
    #[arg(hide = true)]
    filter: Vec<String>,
}

/// The value of `--scenario`: a whole comma-separated list, so that a
/// second `--scenario` replaces the first as it did (a `Vec` field would
/// make clap append them).
#[derive(Clone, Debug)]
struct Scenarios(Vec<Id>);

fn scenario_list(list: &str) -> Result<Scenarios, String> {
    let ids = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Id::parse(s).ok_or_else(|| format!("unknown scenario {s:?}")))
        .collect::<Res<Vec<_>>>()?;
    if ids.is_empty() {
        return Err("names no scenario".into());
    }
    Ok(Scenarios(ids))
}

fn count(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| "expected a count >= 1".into())
}

fn factor(text: &str) -> Result<f64, String> {
    text.parse()
        .ok()
        .filter(|f: &f64| *f > 0.0 && f.is_finite())
        .ok_or_else(|| "expected a factor > 0".into())
}

pub(super) struct Options {
    /// No `--bench` argument: the quick run of `cargo test --all-targets`.
    pub(super) smoke: bool,
    pub(super) scenarios: Vec<Id>,
    pub(super) runs: usize,
    /// Runs of S2 (about 200 s each at full size).
    pub(super) s2_runs: Option<usize>,
    pub(super) jobs_scale: f64,
    pub(super) peers: bool,
    pub(super) output: Option<PathBuf>,
    /// The arguments as given after `--`, less `--bench`, for the report.
    pub(super) user_args: Vec<String>,
}

/// The options of this run; `Err`: `--help` (to print, exit code 0) or a
/// bad command line.
pub(super) fn parse_options() -> Result<Options, clap::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it (maybe with test-harness flags, all ignored).
    if !args.iter().any(|a| a == "--bench") {
        return Ok(Options {
            smoke: true,
            scenarios: vec![Id::S1, Id::S3, Id::R1, Id::C],
            runs: 1,
            s2_runs: None,
            jobs_scale: 1.0,
            peers: false,
            output: None,
            user_args: Vec::new(),
        });
    }
    let parsed = Args::try_parse_from(std::iter::once("e2e".to_owned()).chain(args.clone()))?;
    Ok(Options {
        smoke: false,
        scenarios: parsed.scenario.map_or_else(|| Id::ALL.to_vec(), |s| s.0),
        runs: parsed.runs,
        s2_runs: parsed.s2_runs,
        jobs_scale: parsed.jobs_scale,
        peers: !parsed.no_peers,
        output: if parsed.no_write {
            None
        } else {
            Some(
                parsed
                    .output
                    .unwrap_or_else(|| Path::new(ROOT).join("BENCHMARKS.md")),
            )
        },
        user_args: args.into_iter().filter(|a| a != "--bench").collect(),
    })
}
