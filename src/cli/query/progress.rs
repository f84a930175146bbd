//! The progress line of `sagemaker-flight query`: rows and bytes received
//! so far, on stderr, redrawn in place (the caller draws it at most five
//! times a second) and erased when the read ends, so that only the result
//! remains on the terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Whether to show the progress line: `--progress` shows it even when
/// stderr is not a terminal, `--quiet` never; otherwise only on a terminal.
pub fn should_show(forced: bool, quiet: bool) -> bool {
    !quiet && (forced || std::io::stderr().is_terminal())
}

/// Rows and bytes received so far, and the line showing them.
#[derive(Debug)]
pub struct Progress {
    shown: bool,
    rows: u64,
    bytes: u64,
    started: Instant,
    /// Characters of the line on screen (0: nothing to erase).
    drawn_width: usize,
}

impl Progress {
    /// Counting from now; drawn only if `shown`.
    pub fn new(shown: bool) -> Progress {
        Progress {
            shown,
            rows: 0,
            bytes: 0,
            started: Instant::now(),
            drawn_width: 0,
        }
    }

    /// Whether the line is drawn at all.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// Counts `rows` more rows.
    pub fn add_rows(&mut self, rows: u64) {
        self.rows += rows;
    }

    /// Sets the bytes received so far.
    pub fn set_bytes(&mut self, bytes: u64) {
        self.bytes = bytes;
    }

    /// The bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The text of the line, e.g. `12,345 rows, 3.4 MiB, 2.1 s`.
    pub fn line(&self) -> String {
        format!(
            "{} rows, {}, {:.1} s",
            thousands(self.rows),
            human_bytes(self.bytes),
            self.started.elapsed().as_secs_f64()
        )
    }

    /// Redraws the line over the previous one.
    pub fn draw(&mut self) {
        if !self.shown {
            return;
        }
        let line = self.line();
        let width = line.chars().count();
        // Blanks over what a longer previous line left behind.
        let padding = " ".repeat(self.drawn_width.saturating_sub(width));
        let mut stderr = std::io::stderr().lock();
        // A progress line that cannot be written is not worth failing for.
        let _ = write!(stderr, "\r{line}{padding}");
        let _ = stderr.flush();
        self.drawn_width = width;
    }

    /// Erases the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.drawn_width == 0 {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{}\r", " ".repeat(self.drawn_width));
        let _ = stderr.flush();
        self.drawn_width = 0;
    }
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes in B, KiB, MiB or GiB, one decimal above bytes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn the_line_counts_rows_and_bytes() {
        let mut progress = Progress::new(false);
        progress.add_rows(1200);
        progress.add_rows(34);
        progress.set_bytes(2048);
        assert!(
            progress.line().starts_with("1,234 rows, 2.0 KiB, "),
            "{}",
            progress.line()
        );
    }
}
