"""Cancel from the SQL tools: ADBC's `adbc_cancel()` and JDBC's
`Statement.cancel()` stop a running query's SageMaker calls, as a dropped
client does.

The server reads a slow emulator (every call 100 ms, two at a time), so an
aggregate over every job's Describe runs for minutes; each test cancels it
once the emulator shows its calls in flight, then checks that no call is in
flight soon after and that none starts for a while.
"""

import json
import subprocess
import threading
import time
import urllib.request

import adbc_driver_flightsql.dbapi as adbc_flightsql
import pytest
from conftest import binary, emulator_env, start_and_read_address, stop
from test_jdbc import JVM_FLAGS, classpath, jdbc_url

JOBS = 2000
LATENCY_MS = 100
# Describes every job: 2,000 calls at 100 ms, two at a time, about 100 s.
SLOW_SQL = "SELECT max(failure_reason) AS reason FROM aws.sagemaker_compilation_job"
# Bounds: how long the query may take to show calls, and the calls to stop.
STARTED_WITHIN_S = 30
IDLE_WITHIN_S = 5
# After going idle, no call may start for this long (several latencies).
QUIET_S = 0.5


@pytest.fixture(scope="module")
def slow_server():
    """An emulator whose calls take LATENCY_MS, and a server without cache
    calling it two at a time; yields (Flight URL, emulator URL)."""
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
         "--latency-ms", str(LATENCY_MS)],
        pattern=r"emulator listening on (\S+)",
    )
    env = emulator_env()
    server = None
    try:
        server, url = start_and_read_address(
            [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
             "--cache-ttl", "0", "--concurrency", "2", "--list-windows", "1"],
            env=env,
        )
        yield url, endpoint
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def stats(endpoint):
    with urllib.request.urlopen(f"{endpoint}/_emulator/stats", timeout=10) as r:
        return json.load(r)


def describes_in_flight(endpoint) -> bool:
    return stats(endpoint)["operations"].get("DescribeCompilationJob", {}).get("in_flight", 0) > 0


def wait_for(condition, within_s, what):
    """Polls `condition` every 20 ms until it holds; fails after within_s."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {within_s} s: {condition}"
        time.sleep(0.02)


def calls(endpoint):
    return {op: s["calls"] for op, s in stats(endpoint)["operations"].items()}


def assert_calls_stop(endpoint):
    """No call in flight within IDLE_WITHIN_S, and none starting for QUIET_S."""
    started = time.monotonic()
    wait_for(lambda: stats(endpoint)["in_flight"] == 0, IDLE_WITHIN_S, "no call in flight")
    print(f"idle {time.monotonic() - started:.3f} s after the cancel")
    before = calls(endpoint)
    quiet_until = time.monotonic() + QUIET_S
    while time.monotonic() < quiet_until:
        assert calls(endpoint) == before, "a SageMaker call started after the cancel"
        time.sleep(0.02)
    describes = before.get("DescribeCompilationJob", 0)
    assert describes < JOBS, f"the query ran to its end ({describes} Describes)"


def reset(endpoint):
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/reset", method="POST"),
                           timeout=10).close()


def test_adbc_cancel_stops_the_query_and_its_calls(slow_server):
    url, endpoint = slow_server
    reset(endpoint)
    outcome = {}
    with adbc_flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        def run():
            try:
                cur.execute(SLOW_SQL)
                outcome["rows"] = cur.fetchall()
            except Exception as error:  # what the cancel makes of the query
                outcome["error"] = error

        query = threading.Thread(target=run)
        query.start()
        wait_for(lambda: describes_in_flight(endpoint), STARTED_WITHIN_S, "the query's Describes")
        cur.adbc_cancel()
        query.join(timeout=IDLE_WITHIN_S * 6)
        assert not query.is_alive(), "the cancelled query did not end"
    assert "error" in outcome, f"the query answered: {outcome}"
    assert "cancel" in str(outcome["error"]).lower(), outcome["error"]
    assert_calls_stop(endpoint)


def test_jdbc_statement_cancel_stops_the_query_and_its_calls(slow_server):
    url, endpoint = slow_server
    reset(endpoint)
    check = f"cancel:{SLOW_SQL}"
    probe = subprocess.Popen(
        ["java", *JVM_FLAGS, "-cp", classpath(), "JdbcProbe", jdbc_url(url), check],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: describes_in_flight(endpoint) or probe.poll() is not None,
                 STARTED_WITHIN_S, "the query's Describes")
        assert probe.poll() is None, probe.communicate()[1][-4000:]
        out, err = probe.communicate("cancel\n", timeout=120)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    assert probe.returncode == 0, err[-4000:]
    answer = json.loads(out.splitlines()[0])
    assert answer["ok"], answer
    value = answer["value"]
    print(f"JDBC cancel: {value}")
    assert value["ended"], value
    assert "rows" not in value, f"the query answered: {value}"
    assert "cancel" in value["threw"].lower(), value
    assert_calls_stop(endpoint)
