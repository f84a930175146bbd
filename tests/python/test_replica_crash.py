"""A server with a store killed with SIGKILL again and again, then
restarted: after every kill the store opens and holds each job at most
once, and once restarted the replica converges to the emulator: every job
once, every value equal to a live read.

Two phases. First, kills inside the first full scan (0.3 s and 0.8 s after
the server starts; what they catch depends on the machine). Then, once the
store holds the full scan, kills across refresh commits: before each, new
jobs are created in the emulator, so the restarted server's first refresh
(at once, then every second) writes them in a MERGE commit, and the kill
comes at a moment spread over that second."""

import os
import signal
import time

import adbc_driver_flightsql.dbapi as flightsql
import boto3
from deltalake import DeltaTable

from conftest import binary, start_and_read_address, stop

JOBS = 400
REGIONS = ["us-east-1", "eu-west-1"]
ACCOUNT = "123456789012"
FULL_SCAN_KILLS_S = [0.3, 0.8]
REFRESH_KILLS_S = [0.1 * i for i in range(12)]
NEW_JOBS_PER_KILL = 3
TIMEOUT_S = 90
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
           AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")


def server_args(endpoint, store):
    return [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
            "--region", ",".join(REGIONS), "--store", store, "--refresh-interval", "1"]


def store_keys(store):
    if not os.path.isdir(os.path.join(store, "_delta_log")):
        return []
    return DeltaTable(store).to_pyarrow_table().column("_key").to_pylist()


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)


def create_jobs(endpoint, names):
    """New jobs in the emulator's first region, through the AWS API."""
    client = boto3.client("sagemaker", endpoint_url=endpoint, region_name=REGIONS[0],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    for name in names:
        client.create_compilation_job(
            CompilationJobName=name,
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/neo-compile",
            InputConfig={"S3Uri": f"s3://in/{name}.tar.gz",
                         "DataInputConfig": '{"input":[1,3,224,224]}',
                         "Framework": "PYTORCH", "FrameworkVersion": "1.13"},
            OutputConfig={"S3OutputLocation": f"s3://out/{name}", "TargetDevice": "ml_c5"},
            StoppingCondition={"MaxRuntimeInSeconds": 900},
        )


def wait_until(done, what):
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_kill_9_at_any_moment_leaves_a_store_that_converges(tmp_path):
    store = str(tmp_path / "store")
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
         "--region", REGIONS[0], "--account-id", ACCOUNT, "--partition", f"{ACCOUNT}:{REGIONS[1]}"],
        pattern=r"emulator listening on (\S+)",
    )
    total = JOBS * len(REGIONS)
    try:
        for delay in FULL_SCAN_KILLS_S:
            proc, _ = start_and_read_address(server_args(endpoint, store), env=ENV)
            time.sleep(delay)  # the kill moment; nothing waits on it
            kill(proc)
            keys = store_keys(store)
            assert len(keys) == len(set(keys)), f"a job twice after a kill at {delay} s"

        proc, _ = start_and_read_address(server_args(endpoint, store), env=ENV)
        wait_until(lambda: len(store_keys(store)) == total, "the full scan never landed")
        kill(proc)

        for i, delay in enumerate(REFRESH_KILLS_S):
            names = [f"crash-{i}-{j}" for j in range(NEW_JOBS_PER_KILL)]
            total += len(names)
            create_jobs(endpoint, names)
            proc, _ = start_and_read_address(server_args(endpoint, store), env=ENV)
            time.sleep(delay)  # the kill moment; nothing waits on it
            kill(proc)
            keys = store_keys(store)
            assert len(keys) == len(set(keys)), f"a job twice after a refresh kill at {delay:.1f} s"

        proc, url = start_and_read_address(server_args(endpoint, store), env=ENV)
        try:
            wait_until(lambda: len(store_keys(store)) == total, "the new jobs never landed")
            with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key")
                live = cur.fetch_arrow_table()
        finally:
            stop(proc)
        stored = DeltaTable(store).to_pyarrow_table().sort_by("_key")
        assert stored.num_rows == live.num_rows == total
        for name in live.column_names:
            assert stored.column(name).to_pylist() == live.column(name).to_pylist(), name
    finally:
        stop(emulator)
