"""The replica's store (`serve --store DIR`) read by other engines: the
Python `deltalake` package and polars get the same rows as a Flight read of
the live table (tags as a map, timestamps in UTC)."""

import os
import time

import adbc_driver_flightsql.dbapi as flightsql
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import binary, start_and_read_address, stop

JOBS = 60
# How long the collector's first full scan may take.
FIRST_SCAN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    """An emulator, and a server keeping its replica in a fresh directory;
    yields (Flight URL, store directory) once the store holds every job."""
    store = str(tmp_path_factory.mktemp("replica") / "store")
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS)],
        pattern=r"emulator listening on (\S+)",
    )
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="emulator",
        AWS_SECRET_ACCESS_KEY="emulator",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
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
        yield url, store
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def live_rows(url):
    with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key")
        return cur.fetch_arrow_table()


def test_deltalake_reads_the_rows_a_flight_read_gives(replica):
    url, store = replica
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
    url, store = replica
    frame = pl.read_delta(store)
    assert frame.height == JOBS
    assert frame.schema["creation_time"] == pl.Datetime("us", "UTC")
    failed = frame.filter(pl.col("compilation_job_status") == "FAILED").height
    with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job "
                    "WHERE compilation_job_status = 'FAILED'")
        assert cur.fetchone() == (failed,)
