"""Fixtures for the Python client tests.

The binary under test is the one `cargo test` built (SAGEMAKER_FLIGHT_BIN,
set by scripts/test); every server listens on 127.0.0.1 with an ephemeral
port that it prints on its first line of stdout.
"""

import os
import queue
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

STARTUP_TIMEOUT_S = 60


def binary() -> str:
    path = os.environ.get("SAGEMAKER_FLIGHT_BIN", "target/debug/sagemaker-flight")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `cargo build` or scripts/test")
    return path


def _lines_of(stream, lines):
    """Puts each line of `stream` on `lines`, then None at its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def start_and_read_address(args, env=None, pattern=r"listening on (\S+)"):
    """Starts `args` and waits for a stdout line matching `pattern` (a
    regular expression with one group), or for each of `pattern` in turn
    when it is a list. Returns the process and the first group: one string
    for one pattern, a list of them for a list.

    Bounded: stdout is read on a thread into a queue, so a process that
    hangs without printing fails the wait after STARTUP_TIMEOUT_S."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    lines = queue.Queue()
    threading.Thread(target=_lines_of, args=(proc.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    found = []
    for wanted in patterns:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                line = None
            if line is None:
                proc.kill()
                proc.wait()
                raise RuntimeError(
                    f"{args} did not print {wanted!r} within {STARTUP_TIMEOUT_S} s: "
                    f"exit {proc.poll()}"
                )
            match = re.search(wanted, line)
            if match:
                found.append(match.group(1))
                break
    return proc, (found[0] if isinstance(pattern, str) else found)


def emulator_env(region="us-east-1"):
    """The environment of a server reading the emulator: its dummy
    credentials, a region, and no instance-metadata lookup."""
    return dict(
        os.environ,
        AWS_ACCESS_KEY_ID="emulator",
        AWS_SECRET_ACCESS_KEY="emulator",
        AWS_REGION=region,
        AWS_EC2_METADATA_DISABLED="true",
    )


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def demo_server():
    """`sagemaker-flight serve --demo` on 127.0.0.1:0; yields grpc://host:port."""
    proc, url = start_and_read_address(
        [binary(), "serve", "--demo", "--listen", "127.0.0.1:0", "--demo-jobs", "1500"]
    )
    yield url
    stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's standalone server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    moto = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "moto_server")
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
    yield url
    stop(proc)
