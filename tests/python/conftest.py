"""Fixtures for the Python client tests.

The binary under test is the one `cargo test` built (SAGEMAKER_FLIGHT_BIN,
set by scripts/test); every server listens on 127.0.0.1 with an ephemeral
port that it prints on its first line of stdout.
"""

import os
import re
import socket
import subprocess
import time
import urllib.request

import pytest

STARTUP_TIMEOUT_S = 60


def binary() -> str:
    path = os.environ.get("SAGEMAKER_FLIGHT_BIN", "target/debug/sagemaker-flight")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `cargo build` or scripts/test")
    return path


def start_and_read_address(args, env=None, pattern=r"listening on (\S+)"):
    """Starts `args`, waits (bounded) for the line that names its address."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not report its address: exit {proc.poll()}")


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
