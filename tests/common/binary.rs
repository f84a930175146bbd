//! The `sagemaker-flight` binary as a process of a test: the one way the
//! integration tests (access, cli, operations, query_cli) run it.
//!
//! Every run has stdin from /dev/null and `AWS_EC2_METADATA_DISABLED=true`
//! (no instance-metadata lookup off loopback), is killed when its handle
//! drops, and every wait on it is bounded by its deadline ([`DEADLINE`]
//! unless told otherwise).

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

/// The binary Cargo built for the integration tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_sagemaker-flight");

/// How long a run may take to print its markers, or to exit, unless told.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A run of the binary, being set up: its arguments, its environment, what
/// becomes of its stderr, and how long any wait on it may take.
pub struct Binary {
    command: Command,
    args: Vec<String>,
    deadline: Duration,
    collect_stderr: bool,
}

impl Binary {
    /// The binary with `args`; its stderr collected line by line.
    pub fn new(args: &[&str]) -> Binary {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Binary {
            command,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            deadline: DEADLINE,
            collect_stderr: true,
        }
    }

    /// Sets the variable `key` to `value` in the process's environment.
    pub fn env(mut self, key: &str, value: &str) -> Binary {
        self.command.env(key, value);
        self
    }

    /// Sets each of `envs` in the process's environment.
    pub fn envs(mut self, envs: &[(&str, &str)]) -> Binary {
        self.command.envs(envs.iter().copied());
        self
    }

    /// Leaves each of `keys` out of the environment the process inherits.
    pub fn env_remove(mut self, keys: &[&str]) -> Binary {
        for key in keys {
            self.command.env_remove(key);
        }
        self
    }

    /// Bounds every wait on the process by `deadline`.
    pub fn deadline(mut self, deadline: Duration) -> Binary {
        self.deadline = deadline;
        self
    }

    /// Sends the process's stderr to /dev/null instead of collecting it
    /// ([`Binary::start`] and [`Binary::spawn`]; [`Binary::output`] always
    /// captures it).
    pub fn discard_stderr(mut self) -> Binary {
        self.collect_stderr = false;
        self
    }

    /// Runs the binary to its exit, within the deadline: its status,
    /// stdout and stderr.
    pub async fn output(self) -> Output {
        let Binary {
            mut command,
            args,
            deadline,
            ..
        } = self;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        tokio::time::timeout(deadline, command.output())
            .await
            .unwrap_or_else(|_| panic!("{args:?} did not exit within {deadline:?}"))
            .unwrap_or_else(|e| panic!("run {args:?}: {e}"))
    }

    /// Starts the binary, its stdout to /dev/null, without waiting for it.
    pub fn spawn(self) -> Process {
        self.launch(Stdio::null())
    }

    /// Starts the binary and reads its stdout until a line containing
    /// each of `markers`, in order, within the deadline; returns the
    /// process and, for each marker, what follows it on its line
    /// (trimmed). Panics, with the process's stderr, if it exits or the
    /// deadline passes first. Stdout is not read after the last marker.
    pub async fn start(self, markers: &[&str]) -> (Process, Vec<String>) {
        let args = self.args.clone();
        let mut process = self.launch(Stdio::piped());
        let stdout = process.child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout).lines();
        let read = tokio::time::timeout(process.deadline, async {
            let mut found = Vec::new();
            for marker in markers {
                loop {
                    match stdout.next_line().await {
                        Ok(Some(line)) => {
                            if let Some(rest) = line.split(marker).nth(1) {
                                found.push(rest.trim().to_owned());
                                break;
                            }
                        }
                        Ok(None) | Err(_) => return None,
                    }
                }
            }
            Some(found)
        })
        .await;
        match read {
            Ok(Some(found)) => (process, found),
            Ok(None) => {
                let stderr = process.stop_and_read_stderr().await;
                panic!("{args:?} exited without printing {markers:?}; stderr:\n{stderr}");
            }
            Err(_) => {
                let deadline = process.deadline;
                let stderr = process.stop_and_read_stderr().await;
                panic!("{args:?} did not print {markers:?} within {deadline:?}; stderr:\n{stderr}");
            }
        }
    }

    /// [`Binary::start`] with the one `marker`: what follows it.
    pub async fn start_one(self, marker: &str) -> (Process, String) {
        let (process, mut found) = self.start(&[marker]).await;
        let value = found.pop().expect("one value per marker");
        (process, value)
    }

    /// Spawns the process with `stdout`, and starts collecting its stderr.
    fn launch(self, stdout: Stdio) -> Process {
        let Binary {
            mut command,
            args,
            deadline,
            collect_stderr,
        } = self;
        let stderr = if collect_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = command
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        let stderr = child.stderr.take().map(StderrLog::collect);
        Process {
            child,
            stderr,
            deadline,
        }
    }
}

/// A running process of the binary; killed when dropped.
pub struct Process {
    /// The process itself, for its id, signals, kill and wait.
    pub child: Child,
    /// Its stderr, unless discarded.
    stderr: Option<StderrLog>,
    /// What bounds each wait on it.
    deadline: Duration,
}

impl Process {
    /// Every line of stderr so far (none when it is discarded).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr
            .as_ref()
            .map(|log| log.lines.lock().expect("stderr lines").clone())
            .unwrap_or_default()
    }

    /// Stderr so far, its lines joined by newlines.
    pub fn stderr_text(&self) -> String {
        self.stderr_lines().join("\n")
    }

    /// Kills the process and waits for its exit, at most the deadline
    /// (whether it had already exited, or does not in time, is not checked).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(self.deadline, self.child.wait()).await;
    }

    /// Kills the process, waits for its exit and for the end of its
    /// stderr (each within the deadline): all of its stderr.
    pub async fn stop_and_read_stderr(mut self) -> String {
        let _ = self.child.start_kill();
        let deadline = self.deadline;
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the process did not exit within {deadline:?}"))
            .expect("wait for the process");
        match self.stderr.take() {
            Some(log) => {
                tokio::time::timeout(deadline, log.reader)
                    .await
                    .unwrap_or_else(|_| panic!("stderr did not end within {deadline:?}"))
                    .expect("the stderr reader");
                let lines = log.lines.lock().expect("stderr lines");
                lines.join("\n")
            }
            None => "(discarded)".to_owned(),
        }
    }
}

/// The stderr of a process, read as it comes (so a full pipe never blocks
/// the process), line by line.
struct StderrLog {
    lines: Arc<Mutex<Vec<String>>>,
    /// Ends when the process closes its stderr.
    reader: JoinHandle<()>,
}

impl StderrLog {
    fn collect(pipe: ChildStderr) -> StderrLog {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&lines);
        let reader = tokio::spawn(async move {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match pipe.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        // As `lines()` would, without stopping at bytes
                        // that are not UTF-8.
                        let text = String::from_utf8_lossy(&line);
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        let text = text.strip_suffix('\r').unwrap_or(text);
                        collected
                            .lock()
                            .expect("stderr lines")
                            .push(text.to_owned());
                    }
                }
            }
        });
        StderrLog { lines, reader }
    }
}
