"""Flight SQL clients (ADBC, polars through ADBC, flightsql-dbapi) and SQL in a
plain Flight CMD descriptor, against `sagemaker-flight serve --demo`.

Every expected value comes from the server itself through another path: the
whole table read with pyarrow.flight from the PATH descriptor and filtered in
Python, or the same query through a different client. The only constant is
the 1500 jobs the `demo_server` fixture asks for.
"""

import datetime as dt
import pathlib
import tomllib

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as adbc_flightsql
import adbc_driver_manager
import polars as pl
import polars.testing
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest
from flightsql import FlightSQLCallOptions, FlightSQLClient, connect
from flightsql.dbapi import ParameterRecordBuilder

TABLE = "aws.sagemaker_compilation_job"
TOTAL_JOBS = 1500
TIMEOUT_S = 30  # every RPC below is bounded by this
ROOT = pathlib.Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- helpers


def call_options():
    return flight.FlightCallOptions(timeout=TIMEOUT_S)


def adbc_connect(url):
    opts = adbc_driver_flightsql.DatabaseOptions
    return adbc_flightsql.connect(
        url,
        db_kwargs={
            opts.TIMEOUT_QUERY.value: str(TIMEOUT_S),
            opts.TIMEOUT_FETCH.value: str(TIMEOUT_S),
            opts.TIMEOUT_UPDATE.value: str(TIMEOUT_S),
        },
        # The server has no transactions; without this the driver warns.
        autocommit=True,
    )


def adbc_query(conn, sql, parameters=None) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql, parameters=parameters)
        return cur.fetch_arrow_table()


def flightsql_dbapi_client(url) -> FlightSQLClient:
    host, port = url.removeprefix("grpc://").rsplit(":", 1)
    assert host == "127.0.0.1"
    return FlightSQLClient(host=host, port=int(port), insecure=True)


def flightsql_dbapi_query(client, sql) -> pa.Table:
    # flightsql-dbapi's Cursor turns results into rows through pandas, which
    # is not one of its dependencies; its client returns Arrow as is.
    opts = FlightSQLCallOptions(timeout=TIMEOUT_S)
    info = client.execute(sql, opts)
    assert len(info.endpoints) == 1
    return client.do_get(info.endpoints[0].ticket, opts).read_all()


def sql_timestamp(value: dt.datetime) -> str:
    """A DataFusion literal for an aware UTC datetime, to the microsecond."""
    assert value.utcoffset() == dt.timedelta(0)
    return "TIMESTAMP '" + value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def by_name(table: pa.Table) -> pa.Table:
    return table.sort_by("compilation_job_name")


def plan_text(plan: pa.Table, plan_type: str) -> str:
    rows = [r["plan"] for r in plan.to_pylist() if r["plan_type"] == plan_type]
    assert len(rows) == 1, plan.to_pylist()
    return rows[0]


def scan_line(physical_plan: str) -> str:
    lines = [l for l in physical_plan.splitlines() if "SageMakerScanExec" in l]
    assert len(lines) == 1, physical_plan
    return lines[0]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def flight_path(demo_server):
    """(FlightInfo, Table): the whole table through the plain Flight PATH."""
    client = flight.FlightClient(demo_server)
    info = client.get_flight_info(flight.FlightDescriptor.for_path(TABLE), call_options())
    assert len(info.endpoints) == 1
    table = client.do_get(info.endpoints[0].ticket, call_options()).read_all()
    client.close()
    assert table.num_rows == TOTAL_JOBS
    assert table.schema == info.schema
    return info, table


@pytest.fixture(scope="module")
def full_table(flight_path):
    return flight_path[1]


@pytest.fixture(scope="module")
def time_window(full_table):
    """[lo, hi): creation times of two real jobs, a quarter and three quarters
    through the year, so that both bounds fall exactly on a row."""
    times = sorted(full_table.column("creation_time").to_pylist())
    lo, hi = times[len(times) // 4], times[3 * len(times) // 4]
    assert lo < hi
    return lo, hi


@pytest.fixture(scope="module")
def adbc(demo_server):
    conn = adbc_connect(demo_server)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def dbapi_client(demo_server):
    client = flightsql_dbapi_client(demo_server)
    yield client
    client.close()


def python_window(full_table, status, lo, hi) -> pa.Table:
    ct = full_table.column("creation_time")
    lo_s, hi_s = pa.scalar(lo, ct.type), pa.scalar(hi, ct.type)
    mask = pc.and_(
        pc.equal(full_table.column("compilation_job_status"), status),
        pc.and_(pc.greater_equal(ct, lo_s), pc.less(ct, hi_s)),
    )
    return by_name(full_table.filter(mask))


# ---------------------------------------------------------------- 1. ADBC


def test_adbc_status_and_time_range_equals_the_flight_path(adbc, full_table, time_window):
    lo, hi = time_window
    got = adbc_query(
        adbc,
        f"SELECT * FROM {TABLE} WHERE compilation_job_status = 'FAILED' "
        f"AND creation_time >= {sql_timestamp(lo)} AND creation_time < {sql_timestamp(hi)} "
        "ORDER BY compilation_job_name",
    )
    expected = python_window(full_table, "FAILED", lo, hi)
    all_failed = pc.sum(pc.equal(full_table.column("compilation_job_status"), "FAILED")).as_py()
    assert 0 < expected.num_rows < all_failed, "the window must actually filter"
    assert got.schema == full_table.schema
    assert got.column("compilation_job_name").to_pylist() == expected.column(
        "compilation_job_name"
    ).to_pylist()
    # Every column, values included (JSON text, timestamps, the tags map).
    assert got.equals(expected)

    # Both bounds fall on a row: `>=` keeps the first, `<` drops the second.
    in_window = adbc_query(
        adbc,
        f"SELECT min(creation_time) AS lo, max(creation_time) AS hi, count(*) AS n FROM {TABLE} "
        f"WHERE creation_time >= {sql_timestamp(lo)} AND creation_time < {sql_timestamp(hi)}",
    ).to_pylist()[0]
    ct = full_table.column("creation_time")
    assert in_window["lo"] == lo
    assert in_window["hi"] < hi
    assert in_window["n"] == pc.sum(
        pc.and_(pc.greater_equal(ct, pa.scalar(lo, ct.type)), pc.less(ct, pa.scalar(hi, ct.type)))
    ).as_py()


def test_adbc_now_minus_interval(adbc, full_table):
    before = dt.datetime.now(dt.timezone.utc)
    got = adbc_query(
        adbc,
        f"SELECT compilation_job_name FROM {TABLE} WHERE compilation_job_status = 'FAILED' "
        "AND creation_time >= now() - INTERVAL '90 days' ORDER BY 1",
    )
    after = dt.datetime.now(dt.timezone.utc)
    names = got.column("compilation_job_name").to_pylist()
    assert names == sorted(names)
    rows = [
        r
        for r in full_table.select(["compilation_job_name", "compilation_job_status", "creation_time"]).to_pylist()
        if r["compilation_job_status"] == "FAILED"
    ]
    # The server's now() lies between `before` and `after`.
    surely_in = {r["compilation_job_name"] for r in rows if r["creation_time"] >= after - dt.timedelta(days=90)}
    maybe_in = {r["compilation_job_name"] for r in rows if r["creation_time"] >= before - dt.timedelta(days=90)}
    assert surely_in <= set(names) <= maybe_in
    assert 0 < len(names) < len(rows)


def test_adbc_dollar_parameters_equal_the_literal_query(adbc):
    literal = adbc_query(
        adbc, f"SELECT * FROM sagemaker_compilation_job WHERE compilation_job_status = 'FAILED' ORDER BY compilation_job_name"
    )
    bound = adbc_query(
        adbc,
        "SELECT * FROM sagemaker_compilation_job WHERE compilation_job_status = $1 ORDER BY compilation_job_name",
        parameters=("FAILED",),
    )
    assert literal.num_rows > 0
    assert bound.equals(literal)
    assert set(bound.column("compilation_job_status").to_pylist()) == {"FAILED"}


def test_adbc_two_parameters_string_and_timestamp(adbc, full_table, time_window):
    lo, hi = time_window
    bound = adbc_query(
        adbc,
        f"SELECT * FROM {TABLE} WHERE compilation_job_status = $1 "
        "AND creation_time >= $2 AND creation_time < $3 ORDER BY compilation_job_name",
        parameters=("COMPLETED", lo, hi),
    )
    expected = python_window(full_table, "COMPLETED", lo, hi)
    assert expected.num_rows > 0
    assert bound.equals(expected)


def test_adbc_question_mark_parameters_equal_the_dollar_ones(adbc, time_window):
    """`?` placeholders (JDBC's only kind, ADBC's DB-API default) are
    numbered in order; a `?` inside a string literal is not one."""
    lo, hi = time_window
    where = "compilation_job_status {} AND creation_time >= {} AND creation_time < {}"
    dollar = adbc_query(
        adbc,
        f"SELECT * FROM {TABLE} WHERE " + where.format("= $1", "$2", "$3") + " ORDER BY _key",
        parameters=("COMPLETED", lo, hi),
    )
    question = adbc_query(
        adbc,
        f"SELECT '?' AS mark, * FROM {TABLE} WHERE " + where.format("= ?", "?", "?") + " ORDER BY _key",
        parameters=("COMPLETED", lo, hi),
    )
    assert dollar.num_rows > 0
    assert question.column("mark").to_pylist() == ["?"] * dollar.num_rows
    assert question.drop_columns(["mark"]).equals(dollar)


def test_adbc_mixing_question_marks_and_dollars_is_invalid(adbc):
    with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
        adbc_query(
            adbc,
            f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = ? OR compilation_job_name = $1",
            parameters=("FAILED",),
        )
    assert err.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT
    assert "mixes" in str(err.value)
    assert adbc_query(adbc, f"SELECT count(*) AS n FROM {TABLE}").to_pylist() == [{"n": TOTAL_JOBS}]


def test_adbc_get_objects_lists_the_table_and_its_columns(adbc, full_table):
    objects = adbc.adbc_get_objects().read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    assert "sagemaker" in catalogs, list(catalogs)
    schemas = {s["db_schema_name"]: s for s in catalogs["sagemaker"]["catalog_db_schemas"]}
    assert "aws" in schemas, list(schemas)
    tables = {t["table_name"]: t for t in schemas["aws"]["db_schema_tables"]}
    assert list(tables) == ["sagemaker_compilation_job"]
    table = tables["sagemaker_compilation_job"]
    assert table["table_type"] == "TABLE"
    columns = sorted(table["table_columns"], key=lambda c: c["ordinal_position"])
    assert len(columns) == 21
    assert [c["column_name"] for c in columns] == full_table.schema.names
    assert [c["ordinal_position"] for c in columns] == list(range(1, 22))
    # Types and tables from the column metadata (ARROW:FLIGHT:SQL:*), as
    # Power BI's ADBC connector reads them. (The driver does not pass the
    # REMARKS key on; JDBC's getColumns does, see test_jdbc.py.)
    by_column = {c["column_name"]: c for c in columns}
    assert all(c["xdbc_type_name"] for c in columns), columns
    assert by_column["compilation_job_name"]["xdbc_type_name"] == "VARCHAR"
    assert by_column["creation_time"]["xdbc_type_name"] == "TIMESTAMP"
    assert by_column["tags"]["xdbc_type_name"] == "MAP"
    assert {c["xdbc_scope_table"] for c in columns} == {"sagemaker_compilation_job"}
    assert {c["xdbc_scope_schema"] for c in columns} == {"aws"}

    # The filters narrow to the same table.
    narrowed = adbc.adbc_get_objects(
        depth="tables", catalog_filter="sagemaker", db_schema_filter="aws", table_name_filter="sagemaker%"
    ).read_all().to_pylist()
    assert [c["catalog_name"] for c in narrowed] == ["sagemaker"]
    narrowed_tables = [
        t["table_name"] for s in narrowed[0]["catalog_db_schemas"] for t in s["db_schema_tables"]
    ]
    assert narrowed_tables == ["sagemaker_compilation_job"]


def test_adbc_get_table_schema_equals_the_flight_path(adbc, flight_path):
    info, table = flight_path
    schema = adbc.adbc_get_table_schema("sagemaker_compilation_job", db_schema_filter="aws")
    assert schema == info.schema
    assert schema == table.schema
    qualified = adbc.adbc_get_table_schema(
        "sagemaker_compilation_job", catalog_filter="sagemaker", db_schema_filter="aws"
    )
    assert qualified == info.schema


def test_adbc_get_info_names_the_server(adbc):
    info = adbc.adbc_get_info()
    with open(ROOT / "Cargo.toml", "rb") as f:
        version = tomllib.load(f)["package"]["version"]
    assert info["vendor_name"] == "sagemaker-flight"
    assert info["vendor_version"] == version
    assert info["vendor_arrow_version"]


# ---------------------------------------------------------------- 2. polars via ADBC


def test_polars_read_database_status_and_time_range(demo_server, full_table, time_window):
    lo, hi = time_window
    with adbc_connect(demo_server) as conn:
        got = pl.read_database(
            f"SELECT * FROM {TABLE} WHERE compilation_job_status = 'STOPPED' "
            f"AND creation_time >= {sql_timestamp(lo)} AND creation_time < {sql_timestamp(hi)} "
            "ORDER BY compilation_job_name",
            connection=conn,
        )
    expected = pl.from_arrow(full_table).filter(
        (pl.col("compilation_job_status") == "STOPPED")
        & (pl.col("creation_time") >= lo)
        & (pl.col("creation_time") < hi)
    ).sort("compilation_job_name")
    assert expected.height > 0
    assert got.schema["creation_time"] == pl.Datetime("us", "UTC")
    polars.testing.assert_frame_equal(got, expected)


def test_polars_read_database_aggregate_equals_value_counts(demo_server, full_table):
    with adbc_connect(demo_server) as conn:
        got = pl.read_database(
            f"SELECT compilation_job_status, count(*) AS n FROM {TABLE} GROUP BY 1 ORDER BY 1",
            connection=conn,
        )
    assert got["n"].sum() == TOTAL_JOBS
    counts = {
        r["values"]: r["counts"]
        for r in pc.value_counts(full_table.column("compilation_job_status")).to_pylist()
    }
    assert dict(zip(got["compilation_job_status"].to_list(), got["n"].to_list())) == counts
    assert got["compilation_job_status"].to_list() == sorted(counts)
    assert len(counts) == 6


# ---------------------------------------------------------------- 3. flightsql-dbapi


def test_flightsql_dbapi_simple_query_equals_adbc(dbapi_client, adbc, full_table):
    sql = (
        "SELECT compilation_job_name, compilation_job_status, creation_time, failure_reason "
        "FROM sagemaker_compilation_job WHERE compilation_job_status = 'FAILED' ORDER BY 1"
    )
    got = flightsql_dbapi_query(dbapi_client, sql)
    assert got.num_rows > 0
    assert got.equals(adbc_query(adbc, sql))
    expected = by_name(
        full_table.filter(pc.equal(full_table.column("compilation_job_status"), "FAILED"))
    ).select(got.schema.names)
    assert got.equals(expected)


def test_flightsql_dbapi_tags_query_equals_adbc(dbapi_client, adbc, full_table):
    teams = [dict(t).get("team") for t in full_table.column("tags").to_pylist()]
    present = [t for t in teams if t is not None]
    assert present, "demo jobs carry a team tag"
    team = max(set(present), key=present.count)
    sql = (
        "SELECT compilation_job_name, tags['team'] AS team FROM aws.sagemaker_compilation_job "
        f"WHERE tags['team'] = '{team}' ORDER BY compilation_job_name"
    )
    got = flightsql_dbapi_query(dbapi_client, sql)
    assert got.equals(adbc_query(adbc, sql))
    names = full_table.column("compilation_job_name").to_pylist()
    expected = sorted(n for n, t in zip(names, teams) if t == team)
    assert got.column("compilation_job_name").to_pylist() == expected
    assert set(got.column("team").to_pylist()) == {team}

    # Jobs without the tag read NULL, as a map lookup of a missing key.
    untagged = flightsql_dbapi_query(
        dbapi_client, f"SELECT count(*) AS n FROM {TABLE} WHERE tags['team'] IS NULL"
    ).to_pylist()
    assert untagged == [{"n": teams.count(None)}]


def test_flightsql_dbapi_connection_metadata(dbapi_client, full_table):
    conn = connect(dbapi_client)
    columns = conn.flightsql_get_columns("sagemaker_compilation_job", "aws")
    assert [c["name"] for c in columns] == full_table.schema.names
    assert [c["nullable"] for c in columns] == [f.nullable for f in full_table.schema]
    info = conn.flightsql_get_sql_info([0, 1])  # FLIGHT_SQL_SERVER_NAME, _VERSION
    assert info[0] == "sagemaker-flight"
    assert info[1]


def test_flightsql_dbapi_prepared_parameters_reach_the_old_handle(dbapi_client, adbc):
    """flightsql-dbapi 0.2.2 binds parameters with DoPut but drops the handle
    the server answers with, and executes the original handle. The server
    remembers the binding per prepared handle, so the answer is filtered."""
    opts = FlightSQLCallOptions(timeout=TIMEOUT_S)
    sql = f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = $1"
    with dbapi_client.prepare(sql, opts) as stmt:
        info = stmt.execute(ParameterRecordBuilder(("FAILED",)).build_record())
        got = dbapi_client.do_get(info.endpoints[0].ticket, opts).read_all().to_pylist()
    expected = adbc_query(
        adbc, f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = 'FAILED'"
    ).to_pylist()
    assert got == expected
    assert 0 < expected[0]["n"] < TOTAL_JOBS


# ---------------------------------------------------------------- 4. SQL in a CMD descriptor


def test_plain_flight_cmd_descriptor(demo_server, flight_path, adbc):
    info_path, full_table = flight_path
    client = flight.FlightClient(demo_server)
    sql = (
        "SELECT compilation_job_name, creation_time, tags, input_config "
        f"FROM {TABLE} WHERE compilation_job_status = 'STOPPED' ORDER BY compilation_job_name"
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), call_options())
    assert len(info.endpoints) == 1
    got = client.do_get(info.endpoints[0].ticket, call_options()).read_all()
    assert got.schema.equals(info.schema, check_metadata=True)
    assert got.schema.field("creation_time").type == pa.timestamp("us", tz="UTC")
    expected = by_name(
        full_table.filter(pc.equal(full_table.column("compilation_job_status"), "STOPPED"))
    ).select(got.schema.names)
    assert expected.num_rows > 0
    assert got.equals(expected)
    assert got.equals(adbc_query(adbc, sql))

    # SELECT * announces exactly the schema of the PATH descriptor.
    info_all = client.get_flight_info(
        flight.FlightDescriptor.for_command(f"SELECT * FROM {TABLE} LIMIT 3"), call_options()
    )
    all_rows = client.do_get(info_all.endpoints[0].ticket, call_options()).read_all()
    assert info_all.schema.equals(info_path.schema, check_metadata=True)
    assert all_rows.schema.equals(info_all.schema, check_metadata=True)
    assert all_rows.num_rows == 3

    # Refusals keep their gRPC codes on this path too.
    with pytest.raises(flight.FlightUnauthorizedError, match="read-only"):
        client.get_flight_info(flight.FlightDescriptor.for_command("CREATE TABLE x (a int)"), call_options())
    with pytest.raises(pa.ArrowInvalid, match="SELEC"):
        client.get_flight_info(flight.FlightDescriptor.for_command("SELEC 1"), call_options())
    client.close()


# ---------------------------------------------------------------- 5. errors


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE x (a int)",
        f"INSERT INTO {TABLE} (_key) VALUES ('x')",
        "COPY (SELECT 1) TO '{tmp}/x.csv'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
    ],
    ids=["create-table", "insert", "copy", "set", "create-external-table"],
)
def test_adbc_refuses_writes(adbc, sql, tmp_path):
    sql = sql.replace("{tmp}", str(tmp_path))
    with pytest.raises(adbc_driver_manager.DatabaseError) as err:
        adbc_query(adbc, sql)
    message = str(err.value)
    assert "read-only" in message
    assert err.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED  # gRPC PERMISSION_DENIED
    assert "PermissionDenied" in message
    assert not (tmp_path / "x.csv").exists()
    # Nothing was registered or changed.
    with pytest.raises(adbc_driver_manager.DatabaseError):
        adbc_query(adbc, "SELECT * FROM t")
    with pytest.raises(adbc_driver_manager.DatabaseError):
        adbc_query(adbc, "SELECT * FROM x")
    assert adbc_query(adbc, f"SELECT count(*) AS n FROM {TABLE}").to_pylist() == [{"n": TOTAL_JOBS}]


def test_flightsql_update_is_refused(dbapi_client):
    """CommandStatementUpdate (DoPut) is refused with PERMISSION_DENIED."""
    with pytest.raises(flight.FlightUnauthorizedError, match="read-only"):
        dbapi_client.execute_update(
            f"INSERT INTO {TABLE} (_key) VALUES ('x')", FlightSQLCallOptions(timeout=TIMEOUT_S)
        )


def test_adbc_syntax_error_and_unknown_column(adbc):
    with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
        adbc_query(adbc, "SELEC 1")
    assert err.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT
    assert "SELEC" in str(err.value)

    with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
        adbc_query(adbc, f"SELECT no_such_column FROM {TABLE}")
    assert err.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT
    assert "no_such_column" in str(err.value)

    with pytest.raises(adbc_driver_manager.DatabaseError, match="no_such_table"):
        adbc_query(adbc, "SELECT * FROM aws.no_such_table")

    # The same connection still answers.
    assert adbc_query(adbc, f"SELECT count(*) AS n FROM {TABLE}").to_pylist() == [{"n": TOTAL_JOBS}]


# ---------------------------------------------------------------- 6. EXPLAIN


def test_adbc_explain_pushes_the_status_down(adbc):
    plan = adbc_query(
        adbc,
        "EXPLAIN SELECT compilation_job_name FROM aws.sagemaker_compilation_job "
        "WHERE compilation_job_status = 'FAILED'",
    )
    physical = plan_text(plan, "physical_plan")
    scan = scan_line(physical)
    assert "StatusEquals=FAILED" in scan
    calls = scan.split("calls=[", 1)[1].split("]", 1)[0]
    assert "ListCompilationJobs" in calls
    assert "DescribeCompilationJob" not in calls

    # A Describe column does need the Describe call: the check above means something.
    plan = adbc_query(
        adbc,
        "EXPLAIN SELECT compilation_job_name, failure_reason FROM aws.sagemaker_compilation_job "
        "WHERE compilation_job_status = 'FAILED'",
    )
    scan = scan_line(plan_text(plan, "physical_plan"))
    assert "StatusEquals=FAILED" in scan
    assert "DescribeCompilationJob" in scan.split("calls=[", 1)[1].split("]", 1)[0]


def test_result_columns_carry_their_table_and_type(adbc):
    """A result's schema names, for each column of the table, its catalog,
    schema, table and SQL type, and for a computed column its type only;
    ADBC checks that the stream's schema is the one announced."""
    result = adbc_query(
        adbc,
        f"SELECT compilation_job_name AS name, count(*) AS n FROM {TABLE} GROUP BY compilation_job_name LIMIT 1",
    )
    name = result.schema.field("name").metadata
    assert name[b"ARROW:FLIGHT:SQL:TABLE_NAME"] == b"sagemaker_compilation_job"
    assert name[b"ARROW:FLIGHT:SQL:DB_SCHEMA_NAME"] == b"aws"
    assert name[b"ARROW:FLIGHT:SQL:CATALOG_NAME"] == b"sagemaker"
    assert name[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"VARCHAR"
    assert name[b"ARROW:FLIGHT:SQL:IS_READ_ONLY"] == b"1"
    count = result.schema.field("n").metadata
    assert count[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"BIGINT"
    assert b"ARROW:FLIGHT:SQL:TABLE_NAME" not in count


def test_adbc_current_catalog_and_schema_are_session_options(demo_server):
    """adbc_current_catalog / adbc_current_db_schema read the session
    (GetSessionOptions); setting them (SetSessionOptions) changes where
    unqualified names resolve, for a connection that keeps the session's
    cookie."""
    with adbc_flightsql.connect(
        demo_server,
        db_kwargs={"adbc.flight.sql.rpc.with_cookie_middleware": "true"},
        autocommit=True,
    ) as conn:
        assert conn.adbc_current_catalog == "sagemaker"
        assert conn.adbc_current_db_schema == "aws"
        assert adbc_query(conn, "SELECT count(*) AS n FROM sagemaker_compilation_job").to_pylist() == [
            {"n": TOTAL_JOBS}
        ]
        conn.adbc_connection.set_options(**{"adbc.connection.db_schema": "information_schema"})
        assert conn.adbc_current_db_schema == "information_schema"
        tables = adbc_query(conn, "SELECT table_name FROM tables WHERE table_schema = 'aws'")
        assert "sagemaker_compilation_job" in tables.column("table_name").to_pylist()
        with pytest.raises(adbc_driver_manager.Error):
            conn.adbc_connection.set_options(**{"adbc.connection.db_schema": "no_such_schema"})
        assert conn.adbc_current_db_schema == "information_schema"
        conn.adbc_connection.set_options(**{"adbc.connection.catalog": "sagemaker"})
        assert conn.adbc_current_catalog == "sagemaker"
