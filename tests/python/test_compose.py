"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

There is no Docker engine where the tests run, so this test runs each
compose service's `command` as a plain process of the binary under test
(SAGEMAKER_FLIGHT_BIN), on 127.0.0.1, after mapping container addresses
to loopback ones:

    compose address          process address
    0.0.0.0:4580             127.0.0.1:<free port A>   (emulator listener)
    emulator:4580            127.0.0.1:<free port A>   (server -> emulator)
    0.0.0.0:50051            127.0.0.1:<free port B>   (server listener)
    server:50051             127.0.0.1:<free port B>   (client -> server)
    0.0.0.0:9090             127.0.0.1:<free port C>   (server metrics)

Every other argument is used as written. The test fails if an argument
still names a container address after the mapping (the mapping and the
file would have drifted apart). It checks the services and their
dependencies, starts the emulator, then the server and the client at the
same time (the client's --wait must bridge the server's start-up, as
depends_on alone does not), and reads the client's table: one row per
status, counts adding up to the emulator's --jobs; then the server's
metrics answer in Prometheus text format.

What it cannot check: the image build itself, the container network and
DNS, the published port. The Dockerfile is checked against the binary:
ENTRYPOINT names it, CMD parses (`--help` after it), the default CMD with
the image's ENV tries to listen on 0.0.0.0 and refuses to without
authentication, the user is not root, and the ports are exposed.
"""

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import STARTUP_TIMEOUT_S, binary, free_port, start_and_read_address, stop

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TIMEOUT_S = 120
STATUSES = {"INPROGRESS", "COMPLETED", "FAILED", "STARTING", "STOPPING", "STOPPED"}
# Container host names and the ports the services listen on in the file.
EMULATOR = ("emulator", "4580")
SERVER = ("server", "50051")
METRICS_PORT = "9090"


@pytest.fixture(scope="module")
def compose():
    with open(ROOT / "docker-compose.yml") as f:
        return yaml.safe_load(f)


def address_mapping(emulator_port, server_port, metrics_port):
    """Container address -> loopback address, as the module doc says."""
    emulator = f"127.0.0.1:{emulator_port}"
    server = f"127.0.0.1:{server_port}"
    return {
        f"0.0.0.0:{EMULATOR[1]}": emulator,
        f"{EMULATOR[0]}:{EMULATOR[1]}": emulator,
        f"0.0.0.0:{SERVER[1]}": server,
        f"{SERVER[0]}:{SERVER[1]}": server,
        f"0.0.0.0:{METRICS_PORT}": f"127.0.0.1:{metrics_port}",
    }


def localize(command, mapping):
    """The command with every container address mapped to loopback."""
    out = []
    for arg in command:
        for container, local in mapping.items():
            arg = arg.replace(container, local)
        assert "0.0.0.0" not in arg, f"unmapped listener in {arg!r}"
        for host, _ in (EMULATOR, SERVER):
            assert f"//{host}:" not in arg, f"unmapped host in {arg!r}"
        out.append(arg)
    return out


def depends_on(service):
    deps = service.get("depends_on", [])
    return set(deps if isinstance(deps, list) else deps.keys())


def option(command, name):
    return command[command.index(name) + 1]


def test_compose_declares_the_three_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) == {"emulator", "server", "client"}
    assert depends_on(services["server"]) == {"emulator"}
    assert depends_on(services["client"]) == {"server"}
    for name, service in services.items():
        assert service.get("build") == ".", name
        assert isinstance(service["command"], list), f"{name}: exec form"
    assert services["emulator"]["command"][0] == "emulator"
    server = services["server"]["command"]
    assert server[0] == "serve"
    assert option(server, "--endpoint-url") == f"http://{EMULATOR[0]}:{EMULATOR[1]}"
    assert option(server, "--listen") == f"0.0.0.0:{SERVER[1]}"
    assert "--allow-unauthenticated" in server, "a non-loopback listener needs it"
    assert option(server, "--metrics-listen") == f"0.0.0.0:{METRICS_PORT}"
    # The unauthenticated server is published on the host's loopback only.
    for port in services["server"].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port
    client = services["client"]["command"]
    assert client[0] == "query"
    assert option(client, "--server") == f"grpc://{SERVER[0]}:{SERVER[1]}"
    assert int(option(client, "--wait")) > 0, "the client waits for the server"
    assert services["client"].get("restart") == "no", "a one-shot client"


def test_compose_services_run_as_processes_and_the_client_prints_the_status_counts(compose):
    services = compose["services"]
    mapping = address_mapping(free_port(), free_port(), free_port())
    emulator_cmd = localize(services["emulator"]["command"], mapping)
    server_cmd = localize(services["server"]["command"], mapping)
    client_cmd = localize(services["client"]["command"], mapping)
    jobs = int(option(emulator_cmd, "--jobs"))

    server_env = dict(os.environ)
    server_env.update({k: str(v) for k, v in services["server"]["environment"].items()})
    # Only the compose file's credentials: none from this machine's files.
    server_env.update(
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    client_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SAGEMAKER_FLIGHT_TOKEN", "SAGEMAKER_FLIGHT_PASSWORD")
    }

    emulator, emulator_url = start_and_read_address([binary()] + emulator_cmd)
    server = client = None
    try:
        assert emulator_url == "http://" + mapping["emulator:4580"]
        # Server and client start together, as compose starts them once
        # their dependencies are up: the client's --wait covers the gap.
        server = subprocess.Popen(
            [binary()] + server_cmd,
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = subprocess.run(
            [binary()] + client_cmd,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
        )
        # The server answered the client, so its metrics listener is up.
        metrics_url = f"http://{mapping['0.0.0.0:' + METRICS_PORT]}/metrics"
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            metrics = response.read().decode()
    finally:
        if server is not None:
            stop(server)
        stop(emulator)
    assert client.returncode == 0, client.stderr
    counts = {}
    for line in client.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells != ["compilation_job_status", "jobs"]:
            counts[cells[0]] = int(cells[1])
    assert counts, client.stdout
    assert set(counts) <= STATUSES, counts
    assert len(counts) > 1, counts
    assert sum(counts.values()) == jobs, counts
    assert list(counts) == sorted(counts), "ORDER BY 1"
    assert "# TYPE " in metrics, metrics[:200]


def dockerfile_instructions():
    """(instruction, argument) pairs of the Dockerfile, continuations joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        out.append((instruction.upper(), argument.strip()))
    return out


def test_the_dockerfile_runs_the_binary_it_builds():
    instructions = dockerfile_instructions()

    def last(name):
        values = [arg for ins, arg in instructions if ins == name]
        assert values, f"no {name}"
        return values[-1]

    stages = [arg for ins, arg in instructions if ins == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    assert "--release" in " ".join(arg for ins, arg in instructions if ins == "RUN")
    user = last("USER")
    assert user not in ("root", "0"), user
    exposed = set(" ".join(arg for ins, arg in instructions if ins == "EXPOSE").split())
    assert {"50051", "9090"} <= exposed, exposed
    entrypoint = json.loads(last("ENTRYPOINT"))
    cmd = json.loads(last("CMD"))
    copies = [arg for ins, arg in instructions if ins == "COPY" and "--from=" in arg]
    assert any(arg.endswith("/" + entrypoint[0]) for arg in copies), copies
    env = dict(
        arg.split("=", 1) for ins, arg in instructions if ins == "ENV" and "=" in arg
    )

    # The CMD parses: its subcommand exists and takes --help after it.
    help_run = subprocess.run(
        [binary()] + cmd + ["--help"], capture_output=True, text=True, timeout=30
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "--listen" in help_run.stdout

    # As the image runs it (its ENV, no credentials): it means to listen on
    # every interface, and refuses to without authentication.
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_FLIGHT_")}
    run_env.update(env)
    run_env.update(AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
    refused = subprocess.run(
        [binary()] + cmd, env=run_env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S
    )
    assert refused.returncode != 0
    listen = env["SAGEMAKER_FLIGHT_LISTEN"]
    assert listen.rsplit(":", 1)[1] in exposed
    assert env["SAGEMAKER_FLIGHT_METRICS_LISTEN"].rsplit(":", 1)[1] in exposed
    assert f"refusing to listen on {listen} without authentication" in refused.stderr, refused.stderr
