"""Authentication from Python clients: `sagemaker-flight serve --demo` with
Basic credentials (`--auth-basic-user` and `--auth-basic-password-file`),
read by ADBC (which exchanges them for a bearer token through Handshake) and
by pyarrow.flight; without credentials every query is refused."""

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as adbc_flightsql
import adbc_driver_manager
import pyarrow.flight as flight
import pytest

from conftest import binary, start_and_read_address, stop

TABLE = "aws.sagemaker_compilation_job"
JOBS = 200
USER = "analyst"
PASSWORD = "pa55 w0rd: with spaces"
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """A demo server requiring Basic credentials; yields grpc://host:port."""
    password_file = tmp_path_factory.mktemp("access") / "password"
    password_file.write_text(PASSWORD + "\n")
    proc, url = start_and_read_address(
        [
            binary(),
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--demo-jobs",
            str(JOBS),
            "--auth-basic-user",
            USER,
            "--auth-basic-password-file",
            str(password_file),
        ]
    )
    yield url
    stop(proc)


def adbc_connect(url, **credentials):
    opts = adbc_driver_flightsql.DatabaseOptions
    return adbc_flightsql.connect(
        url,
        db_kwargs={
            opts.TIMEOUT_QUERY.value: str(TIMEOUT_S),
            opts.TIMEOUT_FETCH.value: str(TIMEOUT_S),
            **credentials,
        },
        autocommit=True,
    )


def test_adbc_with_basic_credentials_reads_and_without_is_refused(auth_server):
    query = f"SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_name IS NOT NULL"
    with adbc_connect(auth_server, username=USER, password=PASSWORD) as conn:
        with conn.cursor() as cur:
            cur.execute(query)
            assert cur.fetchone() == (JOBS,)

    with adbc_connect(auth_server) as conn:
        with conn.cursor() as cur:
            with pytest.raises(adbc_driver_manager.Error) as refused:
                cur.execute(query)
    assert refused.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
    assert "authentication required" in str(refused.value)

    # Wrong password: the connection's Handshake is refused.
    with pytest.raises(adbc_driver_manager.Error) as wrong:
        with adbc_connect(auth_server, username=USER, password="wrong") as conn:
            with conn.cursor() as cur:
                cur.execute(query)
    assert wrong.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED


def test_pyarrow_basic_token_then_bearer(auth_server):
    client = flight.FlightClient(auth_server)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(
            flight.FlightDescriptor.for_path(TABLE),
            flight.FlightCallOptions(timeout=TIMEOUT_S),
        )
    key, value = client.authenticate_basic_token(USER, PASSWORD)
    assert key.lower() == b"authorization" and value.startswith(b"Bearer ")
    options = flight.FlightCallOptions(headers=[(key, value)], timeout=TIMEOUT_S)
    info = client.get_flight_info(flight.FlightDescriptor.for_path(TABLE), options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.num_rows == JOBS
