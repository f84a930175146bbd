"""The replica's store (`serve --store DIR`) read by other engines: the
Python `deltalake` package and polars get the same rows as a Flight read of
the live table (tags as a map, timestamps in UTC)."""

import json
import os
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flightsql
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from deltalake import DeltaTable

from conftest import binary, emulator_env, start_and_read_address, stop

JOBS = 60
# How long the collector's first full scan may take.
FIRST_SCAN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    """An emulator, and a server keeping its replica in a fresh directory;
    yields (Flight URL, store directory, emulator URL) once the store holds
    every job."""
    store = str(tmp_path_factory.mktemp("replica") / "store")
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS)],
        pattern=r"emulator listening on (\S+)",
    )
    env = emulator_env()
    server = None
    try:
        server, url = start_and_read_address(
            [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
             "--store", store, "--refresh-interval", "3600"],
            env=env,
        )
        deadline = time.monotonic() + FIRST_SCAN_TIMEOUT_S
        while not (os.path.isdir(store) and DeltaTable(store).to_pyarrow_table().num_rows == JOBS):
            assert time.monotonic() < deadline, "the first full scan did not land in the store"
            time.sleep(0.05)
        yield url, store, endpoint
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def live_rows(url):
    with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key")
        return cur.fetch_arrow_table()


def test_deltalake_reads_the_rows_a_flight_read_gives(replica):
    url, store, _ = replica
    stored = DeltaTable(store).to_pyarrow_table().sort_by("_key")
    live = live_rows(url)
    assert stored.column_names == live.column_names
    assert stored.num_rows == live.num_rows == JOBS
    created = stored.schema.field("creation_time").type
    assert pa.types.is_timestamp(created) and created.tz == "UTC", created
    assert pa.types.is_map(stored.schema.field("tags").type)
    for name in live.column_names:
        assert stored.column(name).to_pylist() == live.column(name).to_pylist(), name


def test_polars_reads_the_store(replica):
    url, store, _ = replica
    frame = pl.read_delta(store)
    assert frame.height == JOBS
    assert frame.schema["creation_time"] == pl.Datetime("us", "UTC")
    failed = frame.filter(pl.col("compilation_job_status") == "FAILED").height
    with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job "
                    "WHERE compilation_job_status = 'FAILED'")
        assert cur.fetchone() == (failed,)


def lists(endpoint):
    """ListCompilationJobs calls the emulator has answered so far (a live
    read lists, even when its job cache spares it the Describes)."""
    with urllib.request.urlopen(f"{endpoint}/_emulator/stats", timeout=10) as r:
        operations = json.load(r)["operations"]
    return operations.get("ListCompilationJobs", {}).get("calls", 0)


def test_the_replica_or_sagemaker_now_by_table_name_from_pyarrow_and_adbc(replica):
    """The replica answers with no SageMaker call; `_live` asks SageMaker
    now, from pyarrow (a SQL command descriptor) as from ADBC."""
    url, _, endpoint = replica
    client = flight.connect(url)

    def pyarrow_read(sql):
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql))
        return pa.concat_tables([client.do_get(e.ticket).read_all() for e in info.endpoints])

    before = lists(endpoint)
    stored = pyarrow_read("SELECT * FROM aws.sagemaker_compilation_job ORDER BY _key")
    assert lists(endpoint) == before, "the replica answers with no call"
    live = pyarrow_read("SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key")
    assert lists(endpoint) > before, "the live table asks SageMaker"
    assert stored.num_rows == live.num_rows == JOBS
    assert stored.to_pylist() == live.to_pylist() == live_rows(url).to_pylist()
