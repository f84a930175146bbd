"""The history and the change feed of a store on S3 (moto's server), across
two servers: one collects a living emulator into the store, the other
(`--no-collect`) answers from the same store. A feed on the second follows
the commits the first makes, and both tables equal what the Python
`deltalake` package reads from S3."""

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
from deltalake import DeltaTable

from conftest import binary, start_and_read_address, stop
from test_feed import CHANGES, FEED_WORDS, POSITION, batches, feed_reader, living_emulator, \
    positions, until_stored
from test_replica_s3 import environment, new_bucket

HISTORY = "aws.sagemaker_compilation_job_history"
# Commits followed after the first full scan's.
REFRESHES = 3


def storage_options(moto_endpoint):
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }


def server(endpoint, store, env, *extra):
    proc, url = start_and_read_address(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
         "--store", store, "--refresh-interval", "1", *extra],
        env=env,
    )
    return proc, url


def s3_changes(moto_endpoint, store, first, last):
    """(commit_version, _key, change_type) of the store's change data of
    versions first..last, read from S3 by `deltalake`."""
    table = DeltaTable(store, storage_options=storage_options(moto_endpoint))
    changes = pa.table(table.load_cdf(starting_version=first, ending_version=last))
    rows = zip(changes.column("_commit_version").to_pylist(), changes.column("_key").to_pylist(),
               changes.column("_change_type").to_pylist())
    return sorted((version, key, FEED_WORDS[kind]) for version, key, kind in rows
                  if kind in FEED_WORDS)


def test_a_feed_and_the_history_on_s3_follow_another_servers_commits(moto_endpoint):
    new_bucket(moto_endpoint, "history-store")
    store = "s3://history-store/neo"
    env = environment(moto_endpoint)
    emulator, endpoint = living_emulator()
    collecting = reading = None
    try:
        collecting, collecting_url = server(endpoint, store, env)
        until_stored(collecting_url)
        reading, url = server(endpoint, store, env, "--no-collect")
        client = flight.connect(url)
        # The reader makes no commit: every batch is one the collector made.
        reader = feed_reader(client, f"SELECT {POSITION} FROM {CHANGES} WHERE commit_version > 0")
        followed = batches(reader, 1 + REFRESHES)
        client.close()
        versions = [batch[0]["commit_version"] for batch in followed]
        assert versions == sorted(set(versions)), versions
        assert {row["change_type"] for row in followed[0]} == {"created"}
        received = [row for batch in followed for row in batch]
        assert sorted(positions(received)) == \
            s3_changes(moto_endpoint, store, versions[0], versions[-1])

        # With the collector stopped, the store stays as it is: the history
        # as the reader answers it equals the history's Delta table on S3.
        stop(collecting)
        collecting = None
        history = DeltaTable(f"{store}/_history",
                             storage_options=storage_options(moto_endpoint)).to_pyarrow_table()
        expected = sorted(zip(history.column("_key").to_pylist(),
                              history.column("change_type").to_pylist(),
                              history.column("change_sequence").to_pylist()))
        with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT _key, change_type, change_sequence FROM {HISTORY}")
            answered = sorted(cur.fetchall())
        assert answered == expected
        # Every change the feed sent is in the history too, as the same kind.
        kinds = {(key, kind) for key, kind, _ in expected}
        assert {(key, kind) for _, key, kind in positions(received)} <= kinds
    finally:
        for proc in (reading, collecting, emulator):
            if proc is not None:
                stop(proc)
