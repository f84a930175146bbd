//! The child processes of `benches/e2e.rs`: emulator, server and peers,
//! their working directory, and the emulator's HTTP endpoints.

use super::*;

static LOGS: AtomicUsize = AtomicUsize::new(0);

/// Ticks a second of /proc's CPU times: USER_HZ, 100 on every Linux
/// architecture this runs on.
const USER_HZ: f64 = 100.0;

/// A child process, killed when dropped. Its stderr goes to a log file whose
/// tail is shown when it fails.
pub(super) struct Proc {
    pub(super) name: String,
    pub(super) child: Child,
    pub(super) log: PathBuf,
}

impl Proc {
    /// Starts `program args` and waits (at most 60 s) for the stdout line
    /// containing `marker`; returns the process and the rest of that line.
    pub(super) async fn start(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        marker: &str,
        workdir: &Path,
    ) -> Res<(Proc, String)> {
        let n = LOGS.fetch_add(1, Ordering::Relaxed);
        let log = workdir.join(format!("{n:02}-{}.log", name.replace(' ', "_")));
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = clean_command(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let proc = Proc {
            name: name.to_owned(),
            child,
            log,
        };
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split(marker).nth(1) {
                    return Some(rest.trim().to_owned());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(address)) => {
                // Keep reading stdout so that the child never blocks on it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok((proc, address))
            }
            Ok(None) => Err(format!(
                "{name} exited without printing {marker:?}{}",
                proc.log_tail()
            )),
            Err(_) => Err(format!(
                "{name} did not print {marker:?} within {} s{}",
                START_TIMEOUT.as_secs(),
                proc.log_tail()
            )),
        }
    }

    /// An error if the process has exited.
    pub(super) fn check_alive(&mut self) -> Res<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}){}",
                self.name,
                self.log_tail()
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// Peak resident set size (`VmHWM`) in MiB, from /proc.
    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU time it has used so far, all threads, in seconds: user and
    /// system (`utime` and `stime` of /proc/PID/stat, in the kernel's
    /// USER_HZ ticks of 10 ms).
    pub(super) fn cpu_secs(&self) -> Option<CpuSecs> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()?)).ok()?;
        // The command name, in brackets, may hold spaces: count from after it.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
        let ticks = |i: usize| Some(fields.get(i)?.parse::<f64>().ok()? / USER_HZ);
        Some(CpuSecs {
            user: ticks(11)?,
            system: ticks(12)?,
        })
    }

    /// The last lines of its stderr, for error messages.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends:\n    {tail}")
        }
    }
}

/// A process's CPU time, in seconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct CpuSecs {
    pub(super) user: f64,
    /// In the kernel: here mostly loopback TCP, a request and an answer
    /// per SageMaker call.
    pub(super) system: f64,
}

impl CpuSecs {
    pub(super) fn total(self) -> f64 {
        self.user + self.system
    }
}

/// A command without the caller's `SAGEMAKER_FLIGHT_*` and `AWS_*`
/// variables, which would change what the processes do.
pub(super) fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("SAGEMAKER_FLIGHT_") || key_text.starts_with("AWS_") {
            command.env_remove(&key);
        }
    }
    command
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A temporary directory (logs, the IPC file of S5), removed when dropped.
pub(super) struct WorkDir(pub(super) PathBuf);

impl WorkDir {
    pub(super) fn create() -> Res<WorkDir> {
        let path =
            std::env::temp_dir().join(format!("sagemaker-flight-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running emulator process and its URL.
pub(super) struct Emulator {
    /// The process: it lives as long as this value (killed on drop).
    pub(super) proc: Proc,
    pub(super) url: String,
}

impl Emulator {
    pub(super) async fn reset(&self) -> Res<()> {
        http_json("POST", &format!("{}/_emulator/reset", self.url))
            .await
            .map(drop)
    }

    pub(super) async fn calls(&self) -> Res<Calls> {
        let stats = http_json("GET", &format!("{}/_emulator/stats", self.url)).await?;
        Ok(Calls::from_stats(&stats))
    }
}

/// A minimal HTTP/1.1 request on loopback with an empty body, answering JSON.
pub(super) async fn http_json(method: &str, url: &str) -> Res<Value> {
    let body = http_exchange(method, url, &[], "").await?;
    serde_json::from_str(&body).map_err(|e| format!("{method} {url}: not JSON: {e}"))
}

/// A SageMaker call as the SDK would send it (AWS JSON 1.1, unsigned:
/// the emulator checks no signature): its answer's body as sent.
pub(super) async fn sagemaker_call(url: &str, operation: &str, input: &Value) -> Res<String> {
    let target = format!("SageMaker.{operation}");
    let headers = [
        ("X-Amz-Target", target.as_str()),
        ("Content-Type", "application/x-amz-json-1.1"),
    ];
    http_exchange("POST", &format!("{url}/"), &headers, &input.to_string()).await
}

/// One HTTP/1.1 exchange on loopback: the body of a 200 answer.
async fn http_exchange(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Res<String> {
    let exchange = async {
        let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
        let (host, path) = rest.split_once('/').ok_or("no path")?;
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let mut request = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        let _ = write!(
            request,
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or("no body")?;
        if head.split_whitespace().nth(1) != Some("200") {
            return Err(format!("answered {}", head.lines().next().unwrap_or("")));
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err("answered a chunked body".into());
        }
        Ok(body.to_owned())
    };
    match tokio::time::timeout(HTTP_TIMEOUT, exchange).await {
        Ok(result) => result.map_err(|e: String| format!("{method} {url}: {e}")),
        Err(_) => Err(format!("{method} {url}: no answer within 10 s")),
    }
}
