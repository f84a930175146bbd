"""pyarrow.flight and polars against `sagemaker-flight serve --demo`."""

import polars as pl
import pytest
import pyarrow as pa
import pyarrow.flight as flight

TABLE = "aws.sagemaker_compilation_job"
STATUSES = {"INPROGRESS", "COMPLETED", "FAILED", "STARTING", "STOPPING", "STOPPED"}


def read_table(url):
    client = flight.FlightClient(url)
    info = client.get_flight_info(flight.FlightDescriptor.for_path(TABLE))
    assert len(info.endpoints) == 1
    reader = client.do_get(info.endpoints[0].ticket)
    return info, reader.read_all()


def test_list_flights_names_the_table(demo_server):
    client = flight.FlightClient(demo_server)
    flights = list(client.list_flights())
    assert len(flights) == 1
    assert flights[0].descriptor.path == [TABLE.encode()]
    assert flights[0].schema.names[0] == "_key"
    assert len(flights[0].schema) == 21


def test_pyarrow_reads_every_row_and_column(demo_server):
    info, table = read_table(demo_server)
    assert table.num_rows == 1500
    assert table.schema == info.schema
    assert table.schema.field("creation_time").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_map(table.schema.field("tags").type)
    assert set(table.column("compilation_job_status").to_pylist()) == STATUSES
    assert table.column("_key").null_count == 0
    assert table.column("_key").to_pylist() == table.column("compilation_job_arn").to_pylist()
    names = table.column("compilation_job_name").to_pylist()
    assert len(set(names)) == len(names)


def test_polars_reads_the_result(demo_server):
    _, table = read_table(demo_server)
    df = pl.from_arrow(table)
    assert df.height == 1500
    assert df.schema["creation_time"] == pl.Datetime("us", "UTC")
    failed = df.filter(pl.col("compilation_job_status") == "FAILED")
    assert failed.height > 0
    assert failed["failure_reason"].null_count() == 0
    # polars reads the tags map as a dict per row, the same pairs pyarrow sees.
    polars_tags = df["tags"].to_list()
    arrow_tags = [dict(pairs) for pairs in table.column("tags").to_pylist()]
    assert polars_tags == arrow_tags
    assert sum(1 for tags in arrow_tags if tags) > 750, "most jobs have tags"
    # JSON columns decode.
    frameworks = df["input_config"].str.json_path_match("$.Framework").drop_nulls()
    assert frameworks.len() > 0


def test_unknown_path_is_not_found(demo_server):
    client = flight.FlightClient(demo_server)
    # pyarrow maps gRPC NOT_FOUND to KeyError.
    with pytest.raises(KeyError, match="no flight at path"):
        client.get_flight_info(flight.FlightDescriptor.for_path("aws.nope"))
