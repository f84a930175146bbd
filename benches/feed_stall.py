"""The server's memory while a change feed's client reads nothing.

A store of REGIONS partitions of JOBS jobs each (one full-scan commit a
partition), then a pyarrow client opens the feed from the first commit and
stops reading. Prints the backlog, the server's RSS before and at its peak
until the feed is cut off (--changes-buffer-mib 1), and what the client had
received when it read again. The client's gRPC library takes in what the
server sends while it is not read, so how many commits reach it before the
cut varies; the server's side is bounded by the buffer (the cut itself is
tested in tests/feed_backpressure.rs).

    SAGEMAKER_FLIGHT_BIN=target/release/sagemaker-flight \\
        .venv/bin/python benches/feed_stall.py JOBS REGIONS
"""

import os
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.flight as flight
from deltalake import DeltaTable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from conftest import binary, emulator_env, start_and_read_address, stop  # noqa: E402
from test_feed import CHANGES, feed_reader, feeds_reading, until_stored  # noqa: E402

ACCOUNT = "123456789012"
ALL_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
               "eu-west-3", "eu-central-1", "ap-south-1", "ap-northeast-1"]
TIMEOUT_S = 600


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(jobs, region_count):
    regions = ALL_REGIONS[:region_count]
    partitions = []
    for region in regions[1:]:
        partitions += ["--partition", f"{ACCOUNT}:{region}:{jobs}"]
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(jobs),
         "--region", regions[0], "--account-id", ACCOUNT, *partitions],
        pattern=r"emulator listening on (\S+)")
    store = tempfile.mkdtemp(prefix="feed-stall-")
    server, (metrics, url) = start_and_read_address(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--endpoint-url", endpoint, "--region", ",".join(regions), "--store", store,
         "--refresh-interval", "3600", "--changes-buffer-mib", "1"],
        env=emulator_env(), pattern=[r"metrics on (\S+)", r"listening on (\S+)"])
    try:
        until_stored(url, len(regions), TIMEOUT_S)
        client = flight.connect(url)
        table = DeltaTable(store)
        first = min(v["version"] for v in table.history() if v.get("operation") == "MERGE")
        backlog = pa.table(table.load_cdf(starting_version=first))
        commits = len(set(backlog.column("_commit_version").to_pylist()))
        before = rss_mib(server.pid)
        reader = feed_reader(client, f"SELECT * FROM {CHANGES} WHERE commit_version >= {first}")
        started = time.monotonic()
        peak = before
        while feeds_reading(metrics) != 0:
            assert time.monotonic() - started < TIMEOUT_S, "the feed was never cut off"
            peak = max(peak, rss_mib(server.pid))
            time.sleep(0.01)
        cut_after = time.monotonic() - started
        peak = max(peak, rss_mib(server.pid))
        received = 0
        try:
            while True:
                received += reader.read_chunk().data.nbytes
        except (flight.FlightError, pa.ArrowInvalid) as error:
            status = str(error).split(". Detail")[0]
        print(f"backlog: {backlog.num_rows} changes in {commits} commits, "
              f"{backlog.nbytes / 2**20:.1f} MiB as Arrow")
        print(f"server RSS: {before:.1f} MiB before the stalled feed, peak {peak:.1f} MiB "
              f"(+{peak - before:.1f}) until it was cut off {cut_after:.2f} s after it opened")
        print(f"the client then read {received / 2**20:.1f} MiB, and: {status[:160]}")
    finally:
        stop(server)
        stop(emulator)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
