"""The replica on S3 (moto's server): `collect --once` fills an s3:// store
and resumes from it, the Python `deltalake` package reads it, and two
servers of one fleet share one store, each collecting only the partitions
it owns while both answer every row from it."""

import json
import os
import re
import subprocess
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import boto3
import pytest
from deltalake import DeltaTable

from conftest import binary, free_port, start_and_read_address, stop

JOBS = 40
REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]
ACCOUNT = "123456789012"
# How long a first full scan may take to land in the store.
FIRST_SCAN_TIMEOUT_S = 60
COLLECT_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def emulator():
    """An emulator of one account in three regions; yields its endpoint."""
    partitions = []
    for region in REGIONS[1:]:
        partitions += ["--partition", f"{ACCOUNT}:{region}"]
    proc, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
         "--region", REGIONS[0], "--account-id", ACCOUNT, *partitions],
        pattern=r"emulator listening on (\S+)",
    )
    yield endpoint
    stop(proc)


def environment(moto_endpoint):
    """The standard AWS configuration: dummy keys both the emulator and
    moto accept, moto as S3 (AWS_ENDPOINT_URL_S3), no instance metadata."""
    return dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_S3=moto_endpoint,
    )


def new_bucket(moto_endpoint, name):
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)


def stored(moto_endpoint, url):
    """The store's rows as the Python deltalake package reads them."""
    options = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    return DeltaTable(url, storage_options=options).to_pyarrow_table()


def emulator_calls(endpoint, region):
    with urllib.request.urlopen(f"{endpoint}/_emulator/stats?region={region}", timeout=10) as r:
        operations = json.load(r)["operations"]
    return {name: op["calls"] for name, op in operations.items()}


def collect_once(endpoint, store, env):
    return subprocess.run(
        [binary(), "collect", "--once", "--store", store, "--endpoint-url", endpoint,
         "--region", ",".join(REGIONS)],
        env=env, capture_output=True, text=True, timeout=COLLECT_TIMEOUT_S,
    )


def test_collect_once_fills_an_s3_store_and_resumes_from_it(moto_endpoint, emulator):
    new_bucket(moto_endpoint, "collect-once")
    store = "s3://collect-once/replica/neo"
    env = environment(moto_endpoint)
    before = {region: emulator_calls(emulator, region) for region in REGIONS}

    first = collect_once(emulator, store, env)
    assert first.returncode == 0, first.stderr
    assert sorted(re.findall(r"collected \S+/(\S+): full scan, (\d+) rows", first.stdout)) == \
        sorted((region, str(JOBS)) for region in REGIONS), first.stdout
    rows = stored(moto_endpoint, store)
    assert rows.num_rows == JOBS * len(REGIONS)
    assert len(set(rows.column("_key").to_pylist())) == rows.num_rows, "every job once"

    # The second run resumes from the store: a refresh, describing only
    # the jobs that can still change.
    changeable = {
        region: sum(1 for arn, status in zip(rows.column("compilation_job_arn").to_pylist(),
                                             rows.column("compilation_job_status").to_pylist())
                    if f":{region}:" in arn and status not in ("COMPLETED", "FAILED", "STOPPED"))
        for region in REGIONS
    }
    middle = {region: emulator_calls(emulator, region) for region in REGIONS}
    second = collect_once(emulator, store, env)
    assert second.returncode == 0, second.stderr
    assert len(re.findall(r"collected \S+: refresh", second.stdout)) == len(REGIONS), second.stdout
    for region in REGIONS:
        after = emulator_calls(emulator, region)
        full_scan = middle[region]["DescribeCompilationJob"] - before[region]["DescribeCompilationJob"]
        refresh = after["DescribeCompilationJob"] - middle[region]["DescribeCompilationJob"]
        assert full_scan == JOBS, region
        assert refresh == changeable[region], region
        assert after["ListCompilationJobs"] - middle[region]["ListCompilationJobs"] == 1, region
    assert stored(moto_endpoint, store).num_rows == JOBS * len(REGIONS)


def test_collect_names_a_store_it_cannot_use(emulator, moto_endpoint):
    refused = collect_once(emulator, "gs://bucket/x", environment(moto_endpoint))
    assert refused.returncode == 1
    assert "gs:// is not a store" in refused.stderr
    missing = subprocess.run(
        [binary(), "collect", "--once", "--endpoint-url", emulator],
        env=environment(moto_endpoint), capture_output=True, text=True, timeout=30,
    )
    assert missing.returncode == 2 and "--store" in missing.stderr


def metric_lines(url, name):
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def full_scans_by_region(metrics_url):
    """Each region's count of successful full scans this server made."""
    counts = {}
    for line in metric_lines(metrics_url, "sagemaker_flight_replica_runs_total"):
        value = float(line.rsplit(" ", 1)[1])
        if 'kind="full_scan"' in line and 'outcome="ok"' in line and value > 0:
            region = re.search(r'region="([^"]+)"', line).group(1)
            counts[region] = counts.get(region, 0) + value
    return counts


def test_two_servers_of_a_fleet_share_one_s3_store(moto_endpoint, emulator):
    new_bucket(moto_endpoint, "fleet-store")
    store = "s3://fleet-store/neo"
    env = environment(moto_endpoint)
    ports = [free_port(), free_port()]
    locations = [f"127.0.0.1:{port}" for port in ports]
    servers = []
    try:
        for own, other in [(0, 1), (1, 0)]:
            metrics = f"127.0.0.1:{free_port()}"
            proc, url = start_and_read_address(
                [binary(), "serve", "--listen", locations[own], "--advertise", locations[own],
                 "--peer", locations[other], "--endpoint-url", emulator,
                 "--region", ",".join(REGIONS), "--store", store,
                 "--refresh-interval", "3600", "--metrics-listen", metrics],
                env=env,
            )
            servers.append((proc, url, f"http://{metrics}"))
        deadline = time.monotonic() + FIRST_SCAN_TIMEOUT_S
        while True:
            scans = [full_scans_by_region(metrics) for _, _, metrics in servers]
            if sum(len(s) for s in scans) == len(REGIONS):
                break
            assert time.monotonic() < deadline, f"full scans so far: {scans}"
            time.sleep(0.1)
        # Each region collected by exactly one member, and both members
        # collect some.
        assert set(scans[0]) | set(scans[1]) == set(REGIONS)
        assert not set(scans[0]) & set(scans[1]), scans
        assert scans[0] and scans[1], scans
        rows = stored(moto_endpoint, store)
        assert rows.num_rows == JOBS * len(REGIONS)
        assert len(set(rows.column("_key").to_pylist())) == rows.num_rows
        # Both answer every row from the shared store.
        for _, url, _ in servers:
            with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT _key FROM aws.sagemaker_compilation_job ORDER BY _key")
                keys = [row[0] for row in cur.fetchall()]
            assert keys == sorted(rows.column("_key").to_pylist())
    finally:
        for proc, _, _ in servers:
            stop(proc)


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
README_STORE = "s3://my-bucket/sagemaker-flight"


def readme_s3_commands():
    """The README's command lines that name its S3 store."""
    with open(README) as f:
        lines = f.read().splitlines()
    return [line.split()[1:] for line in lines
            if line.startswith("sagemaker-flight ") and README_STORE in line]


def test_the_readme_s3_commands_fill_and_serve_one_store(moto_endpoint, emulator):
    """The README's `collect --once` and `serve --store s3://...` lines as
    written, but for a bucket of moto's, the emulator as SageMaker and an
    ephemeral port: collect fills the store, and serve answers from it."""
    commands = {command[0]: command for command in readme_s3_commands()}
    assert sorted(commands) == ["collect", "serve"], commands
    new_bucket(moto_endpoint, "my-bucket")
    env = environment(moto_endpoint)
    collected = subprocess.run(
        [binary(), *commands["collect"], "--endpoint-url", emulator],
        env=env, capture_output=True, text=True, timeout=COLLECT_TIMEOUT_S,
    )
    assert collected.returncode == 0, collected.stderr
    regions = commands["collect"][commands["collect"].index("--region") + 1].split(",")
    assert stored(moto_endpoint, README_STORE).num_rows == JOBS * len(regions)
    proc, url = start_and_read_address(
        [binary(), *commands["serve"], "--endpoint-url", emulator, "--listen", "127.0.0.1:0"],
        env=env,
    )
    try:
        with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job")
            (rows,) = cur.fetchone()
        assert rows == JOBS * len(regions)
    finally:
        stop(proc)


def test_serve_no_collect_reads_a_store_that_collect_keeps(moto_endpoint, emulator):
    """`collect --once` fills the store; `serve --no-collect` answers from
    it and calls SageMaker for nothing: no collector runs there."""
    new_bucket(moto_endpoint, "read-only")
    store = "s3://read-only/neo"
    env = environment(moto_endpoint)
    assert collect_once(emulator, store, env).returncode == 0
    before = {region: emulator_calls(emulator, region) for region in REGIONS}
    proc, url = start_and_read_address(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", emulator,
         "--region", ",".join(REGIONS), "--store", store, "--no-collect",
         "--refresh-interval", "1"],
        env=env,
    )
    try:
        with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job")
            assert cur.fetchone()[0] == JOBS * len(REGIONS)
            cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job_freshness "
                        "WHERE NOT collected_here AND watermark IS NOT NULL AND last_run IS NULL")
            assert cur.fetchone()[0] == len(REGIONS)
    finally:
        stop(proc)
    for region in REGIONS:
        assert emulator_calls(emulator, region) == before[region], region


def test_a_standard_s3_endpoint_variable_does_not_stop_a_server_without_a_store(moto_endpoint):
    """AWS_ENDPOINT_URL_S3, set for other tools, is not an error without
    --store."""
    proc, _ = start_and_read_address(
        [binary(), "serve", "--demo", "--demo-jobs", "10", "--listen", "127.0.0.1:0"],
        env=environment(moto_endpoint),
    )
    stop(proc)
