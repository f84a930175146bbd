//! S2, under a rate limit: the S1 scan with the emulator throttling beyond
//! 50 calls/s per operation.

use crate::*;

/// Rate limit of the emulator in S2, calls/s per operation.
const S2_RATE: f64 = 50.0;

pub(super) const ABOUT: &str = "**S2, under a rate limit.** The same scan with the emulator refusing more than \
     50 calls/s per operation (`--rate-limit 50`, ThrottlingException beyond it). \
     The server cannot beat N / 50 s; it should stay close to 50 successful \
     Describe calls/s (the sustained rate, as % of the limit) without wasting many \
     calls on throttling (throttled % of all calls).";

impl Bench {
    pub(super) async fn s2(&mut self) -> Res<()> {
        let setup = Setup {
            rate_limit: Some(S2_RATE),
            ..self.setup(10_000, 25)
        };
        let runs = self.options.s2_runs.unwrap_or(self.options.runs);
        let mut row = self.select_all("S2", &setup, runs).await?;
        let wall = row.wall().unwrap_or(f64::NAN);
        let calls = row.calls().unwrap_or_default();
        let rate = calls.describe_ok as f64 / wall;
        let share = 100.0 * rate / S2_RATE;
        let throttled = 100.0 * calls.throttled as f64 / calls.total.max(1) as f64;
        row.extra.push(format!(
            "{rate:.1} successful Describe/s = {share:.0}% of {S2_RATE}/s; throttled {throttled:.1}% of {} calls",
            thousands(calls.total)
        ));
        row.targets.push(Target::new(
            "S2",
            "sustained Describe rate >= 90% of the limit",
            format!("{share:.1}%"),
            format!("Describe rate {share:.0}% >= 90%"),
            Some(share >= 90.0),
        ));
        row.targets.push(Target::new(
            "S2",
            "throttled calls <= 5% of calls",
            format!("{throttled:.2}%"),
            format!("throttled {throttled:.1}% <= 5%"),
            Some(throttled <= 5.0),
        ));
        self.rows.push(row);
        Ok(())
    }
}
