"""The Arrow Flight SQL JDBC driver (what DBeaver, DataGrip, Tableau and every
JVM program use) against `sagemaker-flight serve --demo`.

tests/jdbc/JdbcProbe.java runs the JDBC calls a tool makes and prints what
the driver answered; scripts/test fetches the driver with Maven, compiles the
probe and names both in SAGEMAKER_FLIGHT_JDBC_CLASSPATH. Expected values
come from the server through another client (ADBC), or from the table's
contract.
"""

import datetime as dt
import json
import os
import pathlib
import re
import shutil
import subprocess

import adbc_driver_flightsql.dbapi as adbc_flightsql
import pytest
from conftest import binary, start_and_read_address, stop
from flightsql import FlightSQLClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = "aws.sagemaker_compilation_job"
TIMEOUT_S = 120  # one JVM run of the probe, every check in it
# Arrow's Java memory needs this on Java 17 and later.
JVM_FLAGS = ["--add-opens=java.base/java.nio=ALL-UNNAMED"]


def classpath() -> str:
    path = os.environ.get("SAGEMAKER_FLIGHT_JDBC_CLASSPATH")
    if not path:
        pytest.fail("SAGEMAKER_FLIGHT_JDBC_CLASSPATH is not set: run scripts/test")
    return path


def jdbc_url(grpc_url: str, options: str = "") -> str:
    """The README's JDBC URL, for a server at grpc://host:port."""
    readme = (ROOT / "README.md").read_text()
    urls = re.findall(r"^jdbc:arrow-flight-sql://127\.0\.0\.1:50051/\S*$", readme, re.M)
    assert len(urls) == 1, urls
    host_port = grpc_url.removeprefix("grpc://")
    return urls[0].replace("127.0.0.1:50051", host_port) + options


def probe(url: str, *checks: str, jvm_flags=()) -> dict:
    """Runs the probe's `checks` through the driver at `url`; returns each
    check's answer by name. A check that failed fails the test, naming it."""
    done = subprocess.run(
        ["java", *JVM_FLAGS, *jvm_flags, "-cp", classpath(), "JdbcProbe", url, *checks],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    answers = {}
    for line in done.stdout.splitlines():
        answer = json.loads(line)
        assert answer["ok"], f"{answer['check']}: {answer['error']}"
        answers[answer["check"]] = answer["value"]
    assert set(answers) == set(checks), done.stderr[-4000:]
    return answers


def adbc_count(url: str, sql: str, parameters=None) -> int:
    with adbc_flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=parameters)
        return cur.fetchone()[0]


def test_statements_and_question_mark_parameters_answer_as_adbc_does(demo_server):
    failed = f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = ?"
    every = f"SELECT count(*) AS n FROM {TABLE}"
    answers = probe(jdbc_url(demo_server), f"query:{every}", f"prepared:{failed}|FAILED")
    assert int(answers[f"query:{every}"][0]["n"]) == adbc_count(demo_server, every)
    expected = adbc_count(demo_server, failed, parameters=("FAILED",))
    assert expected > 0
    assert int(answers[f"prepared:{failed}|FAILED"][0]["n"]) == expected


def test_every_database_metadata_getter_answers(demo_server):
    """A tool that reads every DatabaseMetaData property (DBeaver's
    connection dialog does) meets no NullPointerException."""
    meta = probe(jdbc_url(demo_server), "metadata")["metadata"]
    threw = {name: value for name, value in meta.items() if str(value).startswith("!")}
    assert threw == {}
    assert len(meta) > 100
    # The values are the server's, not the driver's defaults.
    assert meta["getDatabaseProductName"] == "sagemaker-flight"
    assert meta["isReadOnly"] is True
    assert meta["supportsANSI92EntryLevelSQL"] is True
    assert meta["supportsANSI92FullSQL"] is False
    assert meta["supportsTransactions"] is False
    assert meta["getDefaultTransactionIsolation"] == 0  # Connection.TRANSACTION_NONE
    assert meta["getMaxStatements"] == 32  # --max-concurrent-queries' default
    assert meta["getMaxColumnNameLength"] == 0  # no limit
    assert meta["supportsConvert"] is True
    assert meta["supportsPositionedUpdate"] is False
    assert meta["supportsSavepoints"] is False


def test_a_tool_browses_the_catalog(demo_server):
    answers = probe(
        jdbc_url(demo_server),
        "catalogs",
        "schemas",
        "tables",
        "columns",
        "primary_keys",
        "imported_keys",
        "exported_keys",
    )
    assert answers["catalogs"] == [{"TABLE_CAT": "sagemaker"}]
    assert {"TABLE_CATALOG": "sagemaker", "TABLE_SCHEM": "aws"} in answers["schemas"]
    names = [(t["TABLE_SCHEM"], t["TABLE_NAME"]) for t in answers["tables"]]
    assert ("aws", "sagemaker_compilation_job") in names
    columns = answers["columns"]
    assert [c["COLUMN_NAME"] for c in columns][:3] == ["_key", "account_id", "compilation_end_time"]
    assert len(columns) == 21  # the contract's columns
    by_name = {c["COLUMN_NAME"]: c for c in columns}
    assert by_name["compilation_job_status"]["REMARKS"] == "The status of the model compilation job."
    assert all(c["REMARKS"] for c in columns)
    assert by_name["creation_time"]["TYPE_NAME"] == "TIMESTAMP"
    assert by_name["input_config"]["TYPE_NAME"] == "VARCHAR"
    assert [k["COLUMN_NAME"] for k in answers["primary_keys"]] == ["_key"]
    assert answers["imported_keys"] == []
    assert answers["exported_keys"] == []


def test_supported_conversions_are_the_cast_kernels(demo_server):
    """SQL_SUPPORTS_CONVERT (id 517), read directly: the driver's
    supportsConvert(from, to) answers false whatever the server sends (its
    map lookup fails; influxdb_iox#8859 met the same), so this reads the map
    with another client."""
    host, port = demo_server.removeprefix("grpc://").rsplit(":", 1)
    client = FlightSQLClient(host=host, port=int(port), insecure=True)
    info = client.get_sql_info([517])
    rows = client.do_get(info.endpoints[0].ticket).read_all().to_pylist()
    conversions = dict(rows[0]["value"])
    bigint, integer, varchar, timestamp, date = 0, 7, 19, 16, 4
    assert varchar in conversions[integer] and bigint in conversions[integer]
    assert timestamp in conversions[varchar] and date in conversions[varchar]
    assert timestamp in conversions[date]
    assert set(conversions) == set(range(20))


def test_result_set_metadata_names_the_table(demo_server):
    columns = probe(jdbc_url(demo_server), "result_metadata")["result_metadata"]
    assert [c["name"] for c in columns] == ["compilation_job_name", "creation_time", "tags"]
    for column in columns:
        # A label is the column's name (the driver would take REMARKS for
        # it, which the server therefore sends in GetTables only).
        assert column["label"] == column["name"]
        assert column["table"] == "sagemaker_compilation_job"
        assert column["schema"] == "aws"
        assert column["read_only"] is True
    # getColumnTypeName is the driver's name for the Arrow type
    # (TIMESTAMP_WITH_TIMEZONE, JAVA_OBJECT for the map), not TYPE_NAME.
    assert columns[0]["type_name"] == "VARCHAR"


def test_the_catalog_url_option_sets_the_session(demo_server):
    """`catalog=` in the JDBC URL is a session option (SetSessionOptions on
    connect): accepted for the catalog there is, refused at connect for one
    there is not. (The driver's getCatalog() does not ask the server.)"""
    every = "SELECT count(*) AS n FROM sagemaker_compilation_job"
    answers = probe(jdbc_url(demo_server, "&catalog=sagemaker"), f"query:{every}")
    assert int(answers[f"query:{every}"][0]["n"]) == adbc_count(demo_server, every)
    done = subprocess.run(
        ["java", *JVM_FLAGS, "-cp", classpath(), "JdbcProbe", jdbc_url(demo_server, "&catalog=nope"), "session"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode != 0
    assert "catalog" in done.stderr, done.stderr[-2000:]


def test_filters_and_typed_parameters_answer_as_adbc_does(demo_server):
    """Status and time-range filters through Statement.executeQuery, and a
    PreparedStatement with a string, a timestamp and an integer bound."""
    status = f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = 'FAILED'"
    window = (
        f"SELECT count(*) AS n FROM {TABLE} WHERE creation_time >= TIMESTAMP '2026-01-01T00:00:00Z' "
        "AND creation_time < TIMESTAMP '2026-07-01T00:00:00Z'"
    )
    typed = (
        f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = ? "
        "AND creation_time >= ? AND length(compilation_job_name) > ?"
    )
    bound = f"prepared:{typed}|s:COMPLETED|t:2026-01-01T00:00:00Z|i:20"
    answers = probe(jdbc_url(demo_server), f"query:{status}", f"query:{window}", bound)
    assert int(answers[f"query:{status}"][0]["n"]) == adbc_count(demo_server, status) > 0
    assert int(answers[f"query:{window}"][0]["n"]) == adbc_count(demo_server, window) > 0
    since = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    expected = adbc_count(demo_server, typed, parameters=("COMPLETED", since, 20))
    assert expected > 0
    assert int(answers[bound][0]["n"]) == expected


def test_timestamps_and_the_tags_map_come_back_as_java_objects(demo_server):
    """getTimestamp names the job's UTC instant, and getObject on the tags
    map gives a map of the job's tags. (Driver 18.3: getObject on a
    timestamp with a time zone throws "not implemented", and getTimestamp
    is right only in a JVM whose time zone is UTC; the probe runs in one.)"""
    sql = (
        f"SELECT compilation_job_name AS name, creation_time AS created, tags FROM {TABLE} "
        "WHERE cardinality(tags) > 0 ORDER BY compilation_job_name LIMIT 1"
    )
    row = probe(jdbc_url(demo_server), f"objects:{sql}", jvm_flags=["-Duser.timezone=UTC"])[f"objects:{sql}"]
    with adbc_flightsql.connect(demo_server, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        name, created, tags = cur.fetchone()
    assert row["name"]["value"] == name
    assert row["created"]["class"] == "java.sql.Timestamp"
    instant = dt.datetime.fromisoformat(row["created"]["instant"].replace("Z", "+00:00"))
    assert instant == created
    assert "java.util.Map" in row["tags"]["class"] or row["tags"]["class"].endswith("HashMap")
    assert json.loads(row["tags"]["value"]) == dict(tags)


def test_user_and_password_connect_and_a_wrong_password_is_refused(tmp_path):
    """`user=` and `password=` in the URL: the driver's Handshake with Basic
    credentials against `--auth-basic-user`."""
    password = tmp_path / "password"
    password.write_text("s3cret word\n")
    proc, url = start_and_read_address(
        [binary(), "serve", "--demo", "--listen", "127.0.0.1:0", "--demo-jobs", "40",
         "--auth-basic-user", "analyst", "--auth-basic-password-file", str(password)]
    )
    try:
        every = f"SELECT count(*) AS n FROM {TABLE}"
        answers = probe(jdbc_url(url, "&user=analyst&password=s3cret%20word"), f"query:{every}")
        assert answers[f"query:{every}"] == [{"n": "40"}]
        refused = subprocess.run(
            ["java", *JVM_FLAGS, "-cp", classpath(), "JdbcProbe",
             jdbc_url(url, "&user=analyst&password=wrong"), f"query:{every}"],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        assert refused.returncode != 0
        assert "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]
    finally:
        stop(proc)


def test_tls_with_the_readme_self_signed_certificate(tmp_path):
    """`useEncryption=true` with the certificate of the README's quick
    self-signed recipe as the trusted root (`tlsRootCerts=`)."""
    assert shutil.which("openssl"), "openssl makes the README's certificate"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
         "-out", "cert.pem", "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )
    proc, url = start_and_read_address(
        [binary(), "serve", "--demo", "--listen", "127.0.0.1:0", "--demo-jobs", "40",
         "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    )
    try:
        host_port = url.removeprefix("grpc+tls://")
        tls_url = (
            f"jdbc:arrow-flight-sql://{host_port}/?useEncryption=true"
            f"&tlsRootCerts={tmp_path / 'cert.pem'}"
        )
        every = f"SELECT count(*) AS n FROM {TABLE}"
        assert probe(tls_url, f"query:{every}")[f"query:{every}"] == [{"n": "40"}]
        plaintext = subprocess.run(
            ["java", *JVM_FLAGS, "-cp", classpath(), "JdbcProbe",
             f"jdbc:arrow-flight-sql://{host_port}/?useEncryption=false", f"query:{every}"],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        # Plaintext against the TLS port: the connection or its query fails.
        assert plaintext.returncode != 0 or '"ok": false' in plaintext.stdout, plaintext.stdout
    finally:
        stop(proc)
