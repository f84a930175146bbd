"""The change feed, `aws.sagemaker_compilation_job_changes`, read the way its
users read it: pyarrow (the plain Flight path, and SQL with a resume point),
ADBC, and `sagemaker-flight query --follow`, against a server keeping a
store of a living emulator (jobs created and moving every second).

Every change it sends is checked against the store's own change data, read
by the `deltalake` package: a client resuming after a restart gets each
change exactly once, in commit order."""

import json
import re
import subprocess
import threading
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
from deltalake import DeltaTable

from conftest import binary, emulator_env, start_and_read_address, stop

JOBS = 80
# Jobs created a minute: a refresh a second sees a change most seconds.
ACTIVITY = "600"
# The most any step waits: a first full scan, a batch of the feed.
TIMEOUT_S = 60
CHANGES = "aws.sagemaker_compilation_job_changes"
POSITION = "_key, change_type, commit_version"
# Delta's change types in the feed's words (the row before an update is not sent).
FEED_WORDS = {"insert": "created", "update_postimage": "updated", "delete": "deleted"}


def living_emulator(jobs=JOBS, activity=ACTIVITY):
    args = [binary(), "emulator", "--listen", "127.0.0.1:0", "--seed", "7", "--jobs", str(jobs)]
    if activity:
        args += ["--activity", activity]
    return start_and_read_address(args, pattern=r"emulator listening on (\S+)")


def store_server(endpoint, store, *extra):
    """A server keeping `store`, refreshing every second; returns (process,
    Flight URL, metrics URL) once the store holds the first full scan."""
    proc, (metrics, url) = start_and_read_address(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--endpoint-url", endpoint, "--store", store, "--refresh-interval", "1", *extra],
        env=emulator_env(),
        pattern=[r"metrics on (\S+)", r"listening on (\S+)"],
    )
    until_stored(url)
    return proc, url, metrics


def until_stored(url, partitions=1, timeout_s=TIMEOUT_S):
    """Waits until the server at `url` answers from a store holding the
    first full scan of its `partitions`."""
    client = flight.connect(url)
    deadline = time.monotonic() + timeout_s
    while sql(client, "SELECT count(*) FROM aws.sagemaker_compilation_job_freshness "
                      "WHERE watermark IS NOT NULL").column(0)[0].as_py() != partitions:
        assert time.monotonic() < deadline, "the first full scan did not land in the store"
        time.sleep(0.1)
    client.close()


def sql(client, text):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(text))
    return client.do_get(info.endpoints[0].ticket).read_all()


def feed_reader(client, text):
    """A DoGet of the SQL `text`, bounded by TIMEOUT_S in all."""
    options = flight.FlightCallOptions(timeout=TIMEOUT_S)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(text), options)
    return client.do_get(info.endpoints[0].ticket, options)


def batches(reader, count):
    """The next `count` batches of a feed, each as a list of row dicts."""
    return [reader.read_chunk().data.to_pylist() for _ in range(count)]


def feeds_reading(metrics):
    with urllib.request.urlopen(metrics, timeout=10) as response:
        text = response.read().decode()
    found = re.search(r"^sagemaker_flight_change_feeds_reading (\S+)$", text, re.MULTILINE)
    return float(found.group(1))


def seconds_until_no_feed_reads(metrics, bound_s=5.0):
    """How long until no change feed reads the store (fails past `bound_s`)."""
    started = time.monotonic()
    while feeds_reading(metrics) != 0:
        assert time.monotonic() - started < bound_s, "a change feed still reads the store"
        time.sleep(0.01)
    return time.monotonic() - started


def store_changes(store, first, last):
    """(commit_version, _key, change_type) of every change the store
    recorded in versions first..last, read by `deltalake`."""
    table = pa.table(DeltaTable(store).load_cdf(starting_version=first, ending_version=last))
    rows = zip(table.column("_commit_version").to_pylist(), table.column("_key").to_pylist(),
               table.column("_change_type").to_pylist())
    return sorted((version, key, FEED_WORDS[kind]) for version, key, kind in rows
                  if kind in FEED_WORDS)


def positions(rows):
    return [(row["commit_version"], row["_key"], row["change_type"]) for row in rows]


def test_a_client_resuming_after_a_restart_gets_every_change_once(tmp_path):
    store = str(tmp_path / "store")
    emulator, endpoint = living_emulator()
    server = None
    try:
        server, url, _ = store_server(endpoint, store)
        client = flight.connect(url)
        # From the first version with changes: the full scan, then refreshes.
        reader = feed_reader(client, f"SELECT {POSITION} FROM {CHANGES} WHERE commit_version > 0")
        before = batches(reader, 3)
        client.close()
        server.kill()
        server.wait()
        last = before[-1][0]["commit_version"]

        server, url, _ = store_server(endpoint, store)
        client = flight.connect(url)
        reader = feed_reader(client, f"SELECT {POSITION} FROM {CHANGES} WHERE commit_version > {last}")
        after = batches(reader, 3)
        client.close()
        received = [row for batch in before + after for row in batch]
        # One commit a batch, in commit order.
        versions = [batch[0]["commit_version"] for batch in before + after]
        assert versions == sorted(set(versions))
        for batch in before + after:
            assert {row["commit_version"] for row in batch} == {batch[0]["commit_version"]}
        # The full scan (the living emulator may add a job or two meanwhile).
        assert len(before[0]) >= JOBS and {row["change_type"] for row in before[0]} == {"created"}
        # Exactly the store's changes of those versions, none twice.
        assert sorted(positions(received)) == store_changes(store, versions[0], versions[-1])
        assert len(set(positions(received))) == len(received)
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def test_pyarrow_follows_the_path_and_adbc_clients_get_their_own_rows(tmp_path):
    emulator, endpoint = living_emulator()
    server = None
    try:
        server, url, metrics = store_server(endpoint, str(tmp_path / "store"))
        # The plain Flight path: the feed from its next commit, every column.
        client = flight.connect(url)
        path = flight.FlightDescriptor.for_path(CHANGES)
        info = client.get_flight_info(path)
        reader = client.do_get(info.endpoints[0].ticket, flight.FlightCallOptions(timeout=TIMEOUT_S))
        first = reader.read_chunk().data
        assert first.schema.names[-3:] == ["change_type", "commit_version", "commit_time"]
        assert first.schema.field("commit_time").type == pa.timestamp("us", tz="UTC")
        assert first.num_rows > 0
        # Two ADBC clients, each with its own filter.
        created = "SELECT _key, change_type FROM aws.sagemaker_compilation_job_changes " \
                  "WHERE change_type = 'created'"
        finished = "SELECT _key, compilation_job_status FROM aws.sagemaker_compilation_job_changes " \
                   "WHERE compilation_job_status IN ('COMPLETED', 'FAILED', 'STOPPED')"
        with flightsql.connect(url, autocommit=True) as conn:
            with conn.cursor() as new_jobs, conn.cursor() as done_jobs:
                new_jobs.execute(created)
                done_jobs.execute(finished)
                for _ in range(2):
                    rows = new_jobs.fetch_record_batch().read_next_batch().to_pylist()
                    assert rows and all(row["change_type"] == "created" for row in rows)
                    rows = done_jobs.fetch_record_batch().read_next_batch().to_pylist()
                    assert rows and all(row["compilation_job_status"] in ("COMPLETED", "FAILED", "STOPPED")
                                        for row in rows)
                assert feeds_reading(metrics) == 3
                # ADBC's cancel ends its feed's work on the server.
                new_jobs.adbc_cancel()
                done_jobs.adbc_cancel()
        # So does a client that goes away.
        reader.cancel()
        client.close()
        assert seconds_until_no_feed_reads(metrics) < 1.0
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def test_query_follow_prints_each_change_as_a_json_line(tmp_path):
    emulator, endpoint = living_emulator()
    server = follow = None
    try:
        server, url, metrics = store_server(endpoint, str(tmp_path / "store"))
        follow = subprocess.Popen(
            [binary(), "query", "--server", url, "--follow",
             f"SELECT compilation_job_name, compilation_job_status, change_type, commit_version FROM {CHANGES}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        lines = []
        def read_lines():
            for line in follow.stdout:
                lines.append(line)
        threading.Thread(target=read_lines, daemon=True).start()
        deadline = time.monotonic() + TIMEOUT_S
        while len(lines) < 3:
            assert follow.poll() is None, follow.stderr.read()
            assert time.monotonic() < deadline, "no row came"
            time.sleep(0.05)
        rows = [json.loads(line) for line in lines[:3]]
        assert all(row["change_type"] in ("created", "updated", "deleted") for row in rows)
        assert all(isinstance(row["commit_version"], int) for row in rows)
        follow.terminate()
        follow.wait(timeout=10)
        assert seconds_until_no_feed_reads(metrics) < 1.0
    finally:
        if follow is not None and follow.poll() is None:
            follow.kill()
        if server is not None:
            stop(server)
        stop(emulator)


def test_shutdown_ends_a_feed_at_once_not_after_the_grace(tmp_path):
    """A feed never finishes, so a server shutting down ends it at once with
    UNAVAILABLE (the client resumes elsewhere or after the restart) instead
    of holding the shutdown for the whole --shutdown-grace."""
    emulator, endpoint = living_emulator()
    server = None
    try:
        server, url, _ = store_server(endpoint, str(tmp_path / "store"), "--shutdown-grace", "300")
        client = flight.connect(url)
        reader = feed_reader(client, f"SELECT {POSITION} FROM {CHANGES}")
        reader.read_chunk()
        started = time.monotonic()
        server.terminate()
        try:
            while True:
                reader.read_chunk()
        except flight.FlightUnavailableError as error:
            assert "shutting down" in str(error) and "commit_version" in str(error), error
        server.wait(timeout=TIMEOUT_S)
        stopped_after = time.monotonic() - started
        client.close()
        print(f"the server stopped {stopped_after:.2f} s after SIGTERM, a feed open")
        assert stopped_after < 30, "the shutdown waited for the feed"
    finally:
        if server is not None and server.poll() is None:
            stop(server)
        stop(emulator)
