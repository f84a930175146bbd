//! The rate controller of one gate: it looks at every whole second of
//! calls and decides whether to pace them, and at what rate.
//!
//! SageMaker's limits are per account, region and operation, not
//! adjustable, and answered with ThrottlingException. Each source (one
//! account and region) has a gate per operation, and each gate a
//! [`RateController`] that looks at every whole second of calls:
//!
//! - **Unpaced** (the start): calls go as fast as the concurrency allows.
//!   A second with several throttled calls starts a probe (a throttle or
//!   two is only retried): the gate paces calls at
//!   half the success rate it just measured. Under a rate limit that success
//!   rate is the limit plus whatever burst the limiter allowed, so half of
//!   it is at or under the limit, and the throttling stops.
//! - **Probing**: after a second at that pace, the throttled share must
//!   have at least halved. Then the throttling was a rate limit, and the
//!   gate stays paced. If not, the throttling does not depend on the rate
//!   (random refusals, an overloaded service), slowing down would only lose
//!   time: the gate goes back to unpaced and ignores throttles for a while.
//! - **Paced**: a second with throttles sets the rate just under the
//!   measured success rate; a clean second raises it a little (additive
//!   increase, multiplicative decrease, as TCP does), so the rate settles
//!   just under the limit with few calls throttled. A large share of
//!   calls throttled (`GIVE_UP_SHARE`) in `GIVE_UP_AFTER` seconds in a row
//!   means pacing does not help: unpaced again. (A few throttles a second
//!   are what following a limit closely costs; they do not count.) So does
//!   a pace cut below half the rate pacing started at: a limit found once
//!   does not halve, random refusals keep cutting.

/// After a throttled second, the rate is this share of the success rate.
const BELOW_SUCCESS_RATE: f64 = 0.98;
/// Per clean second, the rate grows by this share of itself...
const INCREASE_SHARE: f64 = 0.01;
/// ...and by at least this many calls per second.
const MIN_INCREASE: f64 = 0.5;
/// A probe paces at this share of the success rate measured.
const PROBE_SHARE: f64 = 0.5;
/// A probe confirms a rate limit if the throttled share falls to this
/// share of what it was.
const PROBE_IMPROVEMENT: f64 = 0.7;
/// Until the first throttle while paced, a clean second raises the rate by
/// this share (the probe may have measured a short or slow second).
const SLOW_START_SHARE: f64 = 0.1;
/// After a failed probe, throttles are ignored for this many seconds.
const COOL_DOWN_SECONDS: u64 = 10;
/// Throttled seconds in a row, while paced, that end pacing...
const GIVE_UP_AFTER: u32 = 5;
/// ...counting only seconds with at least this share of calls throttled.
const GIVE_UP_SHARE: f64 = 0.15;
/// A second starts a probe only with at least this many throttled calls: a
/// few refusals among few calls say nothing about a limit (and the
/// success rate of a quiet second would set the pace far too low).
const MIN_THROTTLES_TO_PROBE: u32 = 5;
/// A probe second with fewer calls than this decides nothing: the gate
/// keeps probing.
const MIN_PROBE_ATTEMPTS: u32 = 10;
/// Pacing also ends when throttles cut the pace below this share of the
/// rate it started at.
const PACED_FLOOR_SHARE: f64 = 0.5;
/// The slowest pace, calls per second.
const MIN_RATE: f64 = 0.5;

/// The calls of one whole second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecondStats {
    /// Attempts that ended in this second.
    pub attempts: u32,
    /// Of those, throttled.
    pub throttled: u32,
    /// The part of the second the calls spanned (a scan may start or end
    /// within it), in seconds, at most 1.
    pub span: f64,
}

impl Default for SecondStats {
    fn default() -> Self {
        SecondStats {
            attempts: 0,
            throttled: 0,
            span: 1.0,
        }
    }
}

impl SecondStats {
    /// Successful calls per second.
    fn successes(&self) -> f64 {
        f64::from(self.attempts - self.throttled) / self.span.clamp(0.1, 1.0)
    }

    fn throttled_share(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            f64::from(self.throttled) / f64::from(self.attempts)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Unpaced {
        ignore_until: u64,
    },
    Probing {
        share_before: f64,
    },
    Paced {
        throttled_in_a_row: u32,
        found_limit: bool,
        /// Half the rate pacing started at. A rate limit never needs a
        /// pace this far below it; throttles that push the pace down here
        /// do not come from the rate (random refusals that a probe
        /// happened to miss): unpaced again.
        floor: f64,
    },
}

/// Decides the send rate from whole seconds of calls. See the module doc.
#[derive(Clone, Debug)]
pub struct RateController {
    mode: Mode,
    /// Calls per second; `None` while unpaced.
    rate: Option<f64>,
}

impl Default for RateController {
    fn default() -> Self {
        RateController {
            mode: Mode::Unpaced { ignore_until: 0 },
            rate: None,
        }
    }
}

impl RateController {
    /// The current send rate, `None` while unpaced.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Sets the rate, as if a limit had been found (for the gate's tests).
    #[cfg(test)]
    pub(super) fn set_rate(&mut self, rate: f64) {
        self.rate = Some(rate);
    }

    /// Whether throttles are being ignored at `second` (they were found to
    /// be random, not a rate limit).
    pub fn ignores_throttles(&self, second: u64) -> bool {
        matches!(self.mode, Mode::Unpaced { ignore_until } if second < ignore_until)
    }

    /// Takes in second number `second` (seconds since the gate started).
    pub fn on_second(&mut self, second: u64, stats: SecondStats) {
        let share = stats.throttled_share();
        match self.mode {
            Mode::Unpaced { ignore_until } => {
                if stats.throttled >= MIN_THROTTLES_TO_PROBE && second >= ignore_until {
                    self.rate = Some((stats.successes() * PROBE_SHARE).max(MIN_RATE));
                    self.mode = Mode::Probing {
                        share_before: share,
                    };
                }
            }
            Mode::Probing { share_before } => {
                if stats.attempts < MIN_PROBE_ATTEMPTS {
                    // Too few calls to tell; probe on.
                } else if share <= share_before * PROBE_IMPROVEMENT {
                    self.mode = Mode::Paced {
                        throttled_in_a_row: 0,
                        found_limit: stats.throttled > 0,
                        floor: self.rate.unwrap_or(MIN_RATE) * PACED_FLOOR_SHARE,
                    };
                    self.adjust(stats);
                } else {
                    self.unpace(second);
                }
            }
            Mode::Paced {
                throttled_in_a_row,
                found_limit,
                floor,
            } => {
                let throttled = stats.throttled > 0;
                let throttled_in_a_row = if share >= GIVE_UP_SHARE {
                    throttled_in_a_row + 1
                } else {
                    0
                };
                if throttled_in_a_row >= GIVE_UP_AFTER {
                    self.unpace(second);
                } else {
                    self.mode = Mode::Paced {
                        throttled_in_a_row,
                        found_limit: found_limit || throttled,
                        floor,
                    };
                    self.adjust(stats);
                    if self.rate.is_some_and(|rate| rate < floor) {
                        self.unpace(second);
                    }
                }
            }
        }
    }

    fn unpace(&mut self, second: u64) {
        self.rate = None;
        self.mode = Mode::Unpaced {
            ignore_until: second + 1 + COOL_DOWN_SECONDS,
        };
    }

    /// Additive increase on a clean second, a cut to just under the success
    /// rate on a throttled one.
    fn adjust(&mut self, stats: SecondStats) {
        let Some(rate) = self.rate else { return };
        let found_limit = matches!(
            self.mode,
            Mode::Paced {
                found_limit: true,
                ..
            }
        );
        let used = f64::from(stats.attempts) >= rate * stats.span * 0.5;
        let rate = if stats.throttled > 0 {
            rate.min(stats.successes()) * BELOW_SUCCESS_RATE
        } else if !used {
            // Only a rate that is actually used earns an increase.
            rate
        } else if found_limit {
            rate + (rate * INCREASE_SHARE).max(MIN_INCREASE)
        } else {
            rate + (rate * SLOW_START_SHARE).max(MIN_INCREASE)
        };
        self.rate = Some(rate.max(MIN_RATE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(attempts: u32, throttled: u32) -> SecondStats {
        SecondStats {
            attempts,
            throttled,
            span: 1.0,
        }
    }

    #[test]
    fn a_rate_limit_is_found_and_followed_closely() {
        let mut controller = RateController::default();
        // 100 successes: a limit of 50/s and a burst of 50.
        controller.on_second(0, second(2000, 1900));
        assert_eq!(
            controller.rate(),
            Some(50.0),
            "probe at half the success rate"
        );
        // Still a little over the limit: some throttled, far fewer than 95%.
        controller.on_second(1, second(50, 1));
        let rate = controller.rate().expect("paced");
        assert!(
            (rate - 48.02).abs() < 1e-9,
            "just under the success rate: {rate}"
        );
        controller.on_second(2, second(48, 0));
        assert!(
            (controller.rate().expect("paced") - 48.52).abs() < 1e-9,
            "clean: up by the minimum step"
        );
        controller.on_second(3, second(49, 0));
        controller.on_second(4, second(50, 1));
        let rate = controller.rate().expect("paced");
        assert!(rate < 50.0 && rate > 47.0, "{rate}");
    }

    #[test]
    fn a_probe_from_a_short_second_climbs_quickly() {
        let mut controller = RateController::default();
        // The scan began 0.2 s before the second ended: 20 successes are 100/s.
        controller.on_second(
            0,
            SecondStats {
                attempts: 100,
                throttled: 80,
                span: 0.2,
            },
        );
        assert_eq!(controller.rate(), Some(50.0));
        controller.on_second(1, second(50, 0));
        assert_eq!(
            controller.rate(),
            Some(55.0),
            "slow start: +10% per clean second"
        );
    }

    #[test]
    fn random_throttling_does_not_slow_the_gate_down() {
        let mut controller = RateController::default();
        controller.on_second(0, second(1000, 200));
        assert_eq!(controller.rate(), Some(400.0), "a probe");
        // At 400/s still 20% refused: not a rate limit.
        assert!(!controller.ignores_throttles(1), "throttles may be a limit");
        controller.on_second(1, second(400, 80));
        assert_eq!(controller.rate(), None, "unpaced again");
        assert!(controller.ignores_throttles(2), "random: retried quickly");
        for s in 2..2 + COOL_DOWN_SECONDS {
            controller.on_second(s, second(1000, 200));
            assert_eq!(controller.rate(), None, "cooling down at second {s}");
        }
        controller.on_second(2 + COOL_DOWN_SECONDS, second(1000, 200));
        assert!(
            controller.rate().is_some(),
            "probes again after the cool-down"
        );
    }

    #[test]
    fn throttles_that_pacing_does_not_stop_end_pacing() {
        let mut controller = RateController::default();
        controller.on_second(0, second(1000, 900));
        controller.on_second(1, second(100, 10));
        assert!(controller.rate().is_some(), "confirmed");
        for s in 2..2 + u64::from(GIVE_UP_AFTER) {
            controller.on_second(s, second(50, 10));
        }
        assert_eq!(controller.rate(), None);
    }

    #[test]
    fn sporadic_throttles_among_few_calls_do_not_pace_and_quiet_probes_decide_nothing() {
        let mut controller = RateController::default();
        controller.on_second(0, second(20, 2));
        assert_eq!(controller.rate(), None, "two refusals: retried, not paced");
        controller.on_second(1, second(200, 60));
        assert_eq!(controller.rate(), Some(70.0), "a probe");
        controller.on_second(2, second(3, 0));
        assert_eq!(controller.rate(), Some(70.0), "three calls decide nothing");
        controller.on_second(3, second(70, 0));
        assert!(controller.rate().is_some(), "confirmed by a real second");
    }

    #[test]
    fn random_throttles_that_a_probe_missed_do_not_drag_the_pace_down() {
        let mut controller = RateController::default();
        controller.on_second(0, second(1000, 50));
        // By chance the probe second saw no throttle: paced at 475/s.
        controller.on_second(1, second(475, 0));
        assert!(controller.rate().is_some(), "paced");
        // Then 5% keep being refused, whatever the pace.
        let mut s = 2;
        while controller.rate().is_some() {
            let rate = controller.rate().expect("paced");
            let attempts = rate as u32;
            controller.on_second(s, second(attempts, attempts / 20));
            s += 1;
            assert!(s < 60, "still paced after {s} seconds at {rate}/s");
        }
        assert!(controller.ignores_throttles(s), "and cooling down");
    }

    #[test]
    fn the_few_throttles_of_following_a_limit_do_not_end_pacing() {
        let mut controller = RateController::default();
        controller.on_second(0, second(2000, 1900));
        controller.on_second(1, second(50, 1));
        // A limit of 50/s with a burst: near or over it, a few calls of
        // each second are throttled, sometimes several seconds in a row.
        for s in 2..200 {
            let rate = controller.rate().expect("paced");
            let throttled = if rate > 49.0 { 3 } else { 0 };
            controller.on_second(s, second(rate as u32, throttled));
            assert!(controller.rate().is_some(), "still paced at second {s}");
        }
        let rate = controller.rate().expect("paced");
        assert!((45.0..55.0).contains(&rate), "close to the limit: {rate}");
    }
}
