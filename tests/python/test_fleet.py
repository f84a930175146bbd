"""Two `serve` processes sharing the partitions of two accounts in two
regions, read by clients that follow endpoint locations (pyarrow by hand,
ADBC and polars by themselves).

The emulator serves every (account, region) as AWS would: the default
credentials act in its default account, a role of the other account is
assumed through STS with an external id, and each region's calls are
signed for that region. Both servers find their partitions as in
production: `--region` twice and an accounts file.
"""

import os
import subprocess
import time

import adbc_driver_flightsql.dbapi
import polars as pl
import pyarrow.flight as flight
import pytest

from conftest import binary, free_port, start_and_read_address, stop

HOME = "123456789012"
OTHER = "111122223333"
ROLE = f"arn:aws:iam::{OTHER}:role/sagemaker-flight-reader"
EXTERNAL_ID = "fleet-test-external-id"
REGIONS = ["us-east-1", "eu-west-1"]
JOBS = 40
PARTITIONS = {(account, region) for account in (HOME, OTHER) for region in REGIONS}
SQL = (
    "SELECT account_id, compilation_job_arn, compilation_job_name "
    "FROM aws.sagemaker_compilation_job"
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """An emulator of four partitions and two servers on it; yields the
    emulator's URL and the servers' grpc:// locations."""
    emulator_args = [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS)]
    emulator_args += ["--partition", f"{HOME}:eu-west-1"]
    emulator_args += ["--partition", f"{OTHER}:us-east-1", "--partition", f"{OTHER}:eu-west-1"]
    emulator_args += ["--role", f"{ROLE},{EXTERNAL_ID}"]
    emulator, endpoint = start_and_read_address(emulator_args, pattern=r"listening on (\S+)")
    accounts = tmp_path_factory.mktemp("fleet") / "accounts.toml"
    accounts.write_text(
        f'[[account]]\nrole_arn = "{ROLE}"\nexternal_id = "{EXTERNAL_ID}"\n'
    )
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="emulator",
        AWS_SECRET_ACCESS_KEY="emulator",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    # Each server must know the other's address before it starts.
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    servers = []
    locations = []
    try:
        for mine, theirs in (ports, ports[::-1]):
            args = [binary(), "serve", "--listen", f"127.0.0.1:{mine}"]
            args += ["--endpoint-url", endpoint, "--accounts-file", str(accounts)]
            args += ["--region", REGIONS[0], "--region", REGIONS[1]]
            args += ["--advertise", f"127.0.0.1:{mine}", "--peer", f"127.0.0.1:{theirs}"]
            proc, url = start_and_read_address(args, env=env)
            servers.append(proc)
            locations.append(url)
        # Each counts the other as a member once its health check answers
        # (within a check interval of the other's start).
        deadline = time.monotonic() + 20
        while not all(owners_named_by(url) == sorted(locations) for url in locations):
            assert time.monotonic() < deadline, "the two instances never saw each other"
            time.sleep(0.1)
        yield endpoint, locations
    finally:
        for proc in servers:
            stop(proc)
        stop(emulator)


def owners_named_by(url):
    info = flight.connect(url).get_flight_info(flight.FlightDescriptor.for_command(SQL))
    return sorted({str(endpoint.locations[0].uri, "utf-8") for endpoint in info.endpoints})


def partitions_of(table):
    rows = table.to_pylist()
    return {(row["account_id"], row["compilation_job_arn"].split(":")[3]) for row in rows}


def test_endpoints_spread_partitions_over_both_instances(fleet):
    _, fleet = fleet
    client = flight.connect(fleet[0])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(SQL))
    assert len(info.endpoints) == len(PARTITIONS)
    owners = [str(endpoint.locations[0].uri, "utf-8") for endpoint in info.endpoints]
    assert sorted(set(owners)) == sorted(fleet)
    # The other instance hands out the same endpoints.
    other = flight.connect(fleet[1]).get_flight_info(flight.FlightDescriptor.for_command(SQL))
    assert [str(e.locations[0].uri, "utf-8") for e in other.endpoints] == owners
    seen = set()
    names = set()
    for endpoint, owner in zip(info.endpoints, owners):
        table = flight.connect(owner).do_get(endpoint.ticket).read_all()
        assert table.num_rows == JOBS
        (partition,) = partitions_of(table)
        seen.add(partition)
        names |= {(partition, name) for name in table.column("compilation_job_name").to_pylist()}
    assert seen == PARTITIONS
    assert len(names) == len(PARTITIONS) * JOBS


def test_adbc_reads_every_endpoint_wherever_it_is(fleet):
    _, fleet = fleet
    with adbc_driver_flightsql.dbapi.connect(fleet[1], autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.execute(SQL + " WHERE split_part(compilation_job_arn, ':', 4) = 'eu-west-1'")
            table = cursor.fetch_arrow_table()
    assert table.num_rows == 2 * JOBS
    assert partitions_of(table) == {(HOME, "eu-west-1"), (OTHER, "eu-west-1")}


def test_polars_counts_by_account_and_region(fleet):
    _, fleet = fleet
    with adbc_driver_flightsql.dbapi.connect(fleet[0], autocommit=True) as connection:
        frame = pl.read_database(
            "SELECT account_id, split_part(compilation_job_arn, ':', 4) AS region, "
            "count(*) AS jobs FROM aws.sagemaker_compilation_job GROUP BY 1, 2",
            connection=connection,
        )
    counts = {(row["account_id"], row["region"]): row["jobs"] for row in frame.to_dicts()}
    assert counts == {partition: JOBS for partition in PARTITIONS}


def test_a_wrong_external_id_stops_the_server_with_a_clear_error(fleet, tmp_path):
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[[account]]\nrole_arn = "{ROLE}"\nexternal_id = "wrong"\n')
    emulator, _ = fleet
    result = subprocess.run(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--region", "us-east-1",
         "--accounts-file", str(accounts), "--endpoint-url", emulator],
        env=dict(os.environ, AWS_ACCESS_KEY_ID="emulator", AWS_SECRET_ACCESS_KEY="emulator"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert f"cannot assume role {ROLE}" in result.stderr


def test_the_query_command_follows_every_endpoint(fleet):
    _, fleet = fleet
    result = subprocess.run(
        [binary(), "query", SQL, "--server", fleet[0], "--format", "csv"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "account_id,compilation_job_arn,compilation_job_name"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == len(PARTITIONS) * JOBS
    assert {(account, arn.split(":")[3]) for account, arn, _ in rows} == PARTITIONS
