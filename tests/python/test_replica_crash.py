"""A server with a store killed with SIGKILL again and again, at moments
spread over its first full scan and its refreshes (each of which is a
commit), then restarted: after every kill the store opens and holds each
job at most once, and once restarted the replica converges to the emulator:
every job once, every value equal to a live read."""

import os
import signal
import time

import adbc_driver_flightsql.dbapi as flightsql
from deltalake import DeltaTable

from conftest import binary, start_and_read_address, stop

JOBS = 400
REGIONS = ["us-east-1", "eu-west-1"]
ACCOUNT = "123456789012"
# Kill moments after the server printed its address: two inside the first
# full scan (about 1.5 s of a debug build), then a dozen spread over the
# one-second refreshes of a restarted server (its first comes at once), so
# that some land inside a refresh's MERGE commit.
KILL_AFTER_S = [0.3, 0.8] + [1.5 + 0.2 * i for i in range(12)]
CONVERGE_TIMEOUT_S = 90


def server_args(endpoint, store):
    return [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
            "--region", ",".join(REGIONS), "--store", store, "--refresh-interval", "1"]


def store_keys(store):
    if not os.path.isdir(os.path.join(store, "_delta_log")):
        return []
    return DeltaTable(store).to_pyarrow_table().column("_key").to_pylist()


def test_kill_9_at_any_moment_leaves_a_store_that_converges(tmp_path):
    store = str(tmp_path / "store")
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
         "--region", REGIONS[0], "--account-id", ACCOUNT, "--partition", f"{ACCOUNT}:{REGIONS[1]}"],
        pattern=r"emulator listening on (\S+)",
    )
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    try:
        seen = []
        for delay in KILL_AFTER_S:
            proc, _ = start_and_read_address(server_args(endpoint, store), env=env)
            time.sleep(delay)  # the kill moment; nothing waits on it
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=20)
            keys = store_keys(store)
            assert len(keys) == len(set(keys)), f"a job twice after a kill at {delay:.2f} s"
            seen.append(len(keys))
        print("rows after each kill:", seen)
        # Some kills came before the first full scan was committed, some after.
        assert min(seen) < JOBS * len(REGIONS) <= max(seen), seen

        proc, url = start_and_read_address(server_args(endpoint, store), env=env)
        try:
            with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                deadline = time.monotonic() + CONVERGE_TIMEOUT_S
                while True:
                    cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job_freshness "
                                "WHERE last_success IS NOT NULL")
                    if cur.fetchone()[0] == len(REGIONS):
                        break
                    assert time.monotonic() < deadline, "no successful run after the restart"
                    time.sleep(0.1)
                cur.execute("SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key")
                live = cur.fetch_arrow_table()
        finally:
            stop(proc)
        stored = DeltaTable(store).to_pyarrow_table().sort_by("_key")
        assert stored.num_rows == live.num_rows == JOBS * len(REGIONS)
        for name in live.column_names:
            assert stored.column(name).to_pylist() == live.column(name).to_pylist(), name
    finally:
        stop(emulator)
