"""A fleet that survives losing a member: three `serve` processes on
loopback, each the others' `--peer`, over four (account, region)
partitions of one emulator. Every endpoint names its owner first and the
other live members after it; a member that is stopped or killed leaves
the others' endpoints within the down-after time; clients that go on to
an endpoint's next location (the `query` CLI, pyarrow code that does it,
ADBC when DoGet fails to start) get every row exactly once; a fourth
member started later owns its share within a check and answers from the
shared store without a full scan.

What each client does when a member dies in the middle of its stream
(checked below): the `query` CLI reads that endpoint again from its next
location; pyarrow does nothing by itself (the code here does it); ADBC's
query fails with the stream's error, and the same query again succeeds,
ADBC going on to an endpoint's next location when a DoGet cannot start.
"""

import signal
import subprocess
import threading
import time
import json
import os
import re
import urllib.request

import adbc_driver_flightsql.dbapi
import pyarrow.flight as flight
import pytest

from conftest import binary, emulator_env, free_port, start_and_read_address, stop

HOME = "123456789012"
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-south-1"]
JOBS = 40
# Checks every second; a member silent for 2 s is out.
CHECK_S = 1
DOWN_AFTER_S = 2
# How long the fleet may take to agree on a change (bounded polls).
SETTLE_S = 20
SQL = ("SELECT compilation_job_arn, compilation_job_name, failure_reason "
       "FROM aws.sagemaker_compilation_job")


def region_of(arn):
    return arn.split(":")[3]


def distinct_ports(count):
    ports = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


class Fleet:
    """An emulator and `count` servers, each the others' peer (also the
    `reserved` ones, not started yet). `latency_ms` and one call at a time
    per partition make a partition's read last seconds."""

    def __init__(self, tmp_path, count, latency_ms=0, reserved=0, store=False):
        args = [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
                "--latency-ms", str(latency_ms)]
        for region in REGIONS[1:]:
            args += ["--partition", f"{HOME}:{region}"]
        self.emulator, self.endpoint = start_and_read_address(
            args, pattern=r"emulator listening on (\S+)")
        self.store = str(tmp_path / "store") if store else None
        self.ports = distinct_ports(count + reserved)
        self.procs = {}
        self.metrics = {}
        try:
            for port in self.ports[:count]:
                self.start(port)
        except Exception:
            self.close()
            raise

    def location(self, port):
        return f"grpc://127.0.0.1:{port}"

    def start(self, port):
        args = [binary(), "serve", "--listen", f"127.0.0.1:{port}",
                "--endpoint-url", self.endpoint, "--cache-ttl", "0", "--concurrency", "1"]
        for region in REGIONS:
            args += ["--region", region]
        args += ["--advertise", f"127.0.0.1:{port}",
                 "--peer-check-interval", str(CHECK_S), "--peer-down-after", str(DOWN_AFTER_S)]
        for other in self.ports:
            if other != port:
                args += ["--peer", f"127.0.0.1:{other}"]
        if self.store:
            args += ["--store", self.store, "--refresh-interval", "3600"]
        metrics = f"127.0.0.1:{free_port()}"
        args += ["--metrics-listen", metrics]
        self.metrics[port] = f"http://{metrics}/metrics"
        proc, url = start_and_read_address(args, env=emulator_env())
        assert url == self.location(port)
        self.procs[port] = proc
        return url

    def live(self):
        return [self.location(port) for port in self.procs]

    def remove(self, port, sig):
        proc = self.procs.pop(port)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def close(self):
        for proc in self.procs.values():
            stop(proc)
        stop(self.emulator)

    def streaming(self, port):
        """Whether the server at `port` is running a query and has sent
        rows: its stream is under way (a client has its schema and first
        batch), not just admitted. Only DoGet streams rows, and nothing
        before the query under test sent any to this member."""
        with urllib.request.urlopen(self.metrics[port], timeout=10) as answer:
            text = answer.read().decode()

        def value(name):
            found = re.search(rf"^sagemaker_flight_{name} (\S+)$", text, re.M)
            return float(found.group(1)) if found else 0.0

        return value("queries_running") > 0 and value("rows_sent_total") > 0

    def stats(self, region):
        url = f"{self.endpoint}/_emulator/stats?account={HOME}&region={region}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)

    def reset(self):
        request = urllib.request.Request(f"{self.endpoint}/_emulator/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def make_fleet(tmp_path):
    fleets = []

    def make(**options):
        fleet = Fleet(tmp_path, **options)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


def locations(info):
    return [[str(location.uri, "utf-8") for location in endpoint.locations]
            for endpoint in info.endpoints]


def info_of(url, sql=SQL):
    return flight.connect(url).get_flight_info(flight.FlightDescriptor.for_command(sql))


def wait_until_every_member_names(fleet, members, within_s=SETTLE_S):
    """Polls every live member until each of its endpoints names exactly
    `members` (owner first); returns the seconds it took."""
    started = time.monotonic()
    wanted = sorted(members)
    while True:
        views = [locations(info_of(url)) for url in fleet.live()]
        if all(len(view) == len(REGIONS) and all(sorted(e) == wanted for e in view)
               for view in views):
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, f"members {wanted} not named: {views}"
        time.sleep(0.1)


def assert_every_row_once(arns):
    assert len(arns) == len(set(arns)), "a row came twice"
    assert len(arns) == JOBS * len(REGIONS)
    assert {region_of(arn) for arn in arns} == set(REGIONS)


def read_following_locations(info, failures):
    """pyarrow, as a user follows an endpoint's locations: each endpoint
    read whole from its first location that works; `failures` collects
    what failed on the way."""
    arns = []
    for endpoint in info.endpoints:
        for location in endpoint.locations:
            try:
                table = flight.connect(location).do_get(endpoint.ticket).read_all()
            except flight.FlightError as error:
                failures.append((str(location.uri, "utf-8"), error))
                continue
            arns += table.column("compilation_job_arn").to_pylist()
            break
        else:
            raise AssertionError(f"no location of an endpoint answered: {failures}")
    return arns


def adbc_arns(url):
    with adbc_driver_flightsql.dbapi.connect(url, autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.execute(SQL)
            return cursor.fetch_arrow_table().column("compilation_job_arn").to_pylist()


def cli_arns(url):
    result = subprocess.run(
        [binary(), "query", SQL, "--server", url, "--format", "csv", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",")[0] for line in result.stdout.strip().splitlines()[1:]], result.stderr


def test_endpoints_name_the_owner_then_every_other_member(make_fleet, tmp_path):
    fleet = make_fleet(count=3)
    wait_until_every_member_names(fleet, fleet.live())
    views = [locations(info_of(url)) for url in fleet.live()]
    assert views[0] == views[1] == views[2], "every member computes the same endpoints"
    owners = [endpoint[0] for endpoint in views[0]]
    # Even shares: four partitions over three members, at most two each.
    assert max(owners.count(owner) for owner in owners) <= 2, owners


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_lost_member_leaves_and_every_client_reads_every_row_once(make_fleet, sig):
    fleet = make_fleet(count=3)
    wait_until_every_member_names(fleet, fleet.live())
    lost = fleet.ports[1]
    started = time.monotonic()
    fleet.remove(lost, sig)
    settled = wait_until_every_member_names(fleet, fleet.live())
    print(f"{sig.name}: the survivors stopped naming the lost member "
          f"{time.monotonic() - started:.2f} s after it was signalled ({settled:.2f} s after it exited)")
    for url in fleet.live():
        assert fleet.location(lost) not in sum(locations(info_of(url)), [])
        assert_every_row_once(adbc_arns(url))
        failures = []
        assert_every_row_once(read_following_locations(info_of(url), failures))
        assert failures == [], "every location named is live"
        arns, _ = cli_arns(url)
        assert_every_row_once(arns)


def kill_while_streaming(fleet, reader):
    """Runs `reader` on a thread, kills -9 (while the reader is streaming
    from it) the member that owns an endpoint, and returns what the reader
    returned or raised."""
    survivor = fleet.live()[0]
    info = info_of(survivor)
    victim_location = next(
        endpoint[0] for endpoint in locations(info) if endpoint[0] != survivor)
    victim_port = int(victim_location.rsplit(":", 1)[1])
    outcome = {}

    def read():
        try:
            outcome["value"] = reader(survivor, info)
        except Exception as error:  # noqa: BLE001 - what the client raised is the outcome
            outcome["error"] = error

    thread = threading.Thread(target=read)
    thread.start()
    # The victim is streaming one of its endpoints, past its first batch:
    # a kill before it would be a refused DoGet, which ADBC answers by
    # reading the next location (and then succeeds).
    deadline = time.monotonic() + SETTLE_S
    while not fleet.streaming(victim_port):
        assert time.monotonic() < deadline, "the victim never started streaming"
        time.sleep(0.01)
    fleet.remove(victim_port, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the reader hung after the kill"
    return outcome, victim_location


def test_pyarrow_reading_the_next_location_gets_every_row_once(make_fleet):
    fleet = make_fleet(count=3, latency_ms=50)
    wait_until_every_member_names(fleet, fleet.live())
    failures = []
    outcome, victim = kill_while_streaming(
        fleet, lambda url, info: read_following_locations(info, failures))
    assert "error" not in outcome, outcome
    assert_every_row_once(outcome["value"])
    # Each of the victim's endpoints failed there (the first mid-stream),
    # and nowhere else.
    assert failures and {location for location, _ in failures} == {victim}, failures


def test_the_query_cli_reads_the_endpoint_again_from_its_next_location(make_fleet):
    fleet = make_fleet(count=3, latency_ms=50)
    wait_until_every_member_names(fleet, fleet.live())
    outcome, victim = kill_while_streaming(fleet, lambda url, info: cli_arns(url))
    assert "error" not in outcome, outcome
    arns, stderr = outcome["value"]
    assert_every_row_once(arns)
    assert "reading it from its next location" in stderr, stderr


def test_adbc_fails_the_query_whose_stream_broke_and_the_same_query_again_succeeds(make_fleet):
    fleet = make_fleet(count=3, latency_ms=50)
    wait_until_every_member_names(fleet, fleet.live())
    outcome, _ = kill_while_streaming(fleet, lambda url, info: adbc_arns(url))
    assert "error" in outcome, "ADBC does not retry a broken stream: the query fails"
    print(f"ADBC: {type(outcome['error']).__name__}: {outcome['error']}"[:300])
    # At once, before the survivors notice: ADBC goes on to the next
    # location when the dead member refuses the DoGet.
    assert_every_row_once(adbc_arns(fleet.live()[0]))


def freshness(url):
    with adbc_driver_flightsql.dbapi.connect(url, autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT account_id, region, watermark IS NOT NULL AS stored, "
                           "collected_here FROM aws.sagemaker_compilation_job_freshness")
            return cursor.fetch_arrow_table().to_pylist()


def test_a_new_member_owns_its_share_and_answers_from_the_shared_store(make_fleet, tmp_path):
    fleet = make_fleet(count=3, reserved=1, store=True)
    deadline = time.monotonic() + 120
    while not all(row["stored"] for row in freshness(fleet.live()[0])):
        assert time.monotonic() < deadline, "the first full scans did not land in the store"
        time.sleep(0.1)
    wait_until_every_member_names(fleet, fleet.live())
    fleet.reset()
    started = time.monotonic()
    fourth = fleet.start(fleet.ports[3])
    settled = wait_until_every_member_names(fleet, fleet.live())
    owners = {endpoint[0] for endpoint in locations(info_of(fourth))}
    assert fourth in owners, "the new member owns a partition"
    assert_every_row_once(adbc_arns(fourth))
    print(f"a new member owned its share {time.monotonic() - started:.2f} s after its start "
          f"({settled:.2f} s after it listened) and answered its first query")
    # Each partition collected by exactly one member, the new one included
    # (the members' collectors follow their fleet as it changes).
    def collectors():
        collected = {}
        for url in fleet.live():
            for row in freshness(url):
                if row["collected_here"]:
                    collected.setdefault(row["region"], []).append(url)
        return collected

    deadline = time.monotonic() + SETTLE_S
    while True:
        collected = collectors()
        if (sorted(collected) == sorted(REGIONS)
                and all(len(members) == 1 for members in collected.values())):
            break
        assert time.monotonic() < deadline, collected
        time.sleep(0.1)
    assert [fourth] in collected.values(), collected
    # No full scan: every job is in a terminal status or was described
    # once by the new owner's refresh; never a Describe per job of a partition.
    for region in REGIONS:
        describes = fleet.stats(region)["operations"].get("DescribeCompilationJob", {})
        assert describes.get("calls", 0) < JOBS, (region, describes)


def readme_fleet_commands():
    """The README's two `serve` lines of its fleet, host a's then b's."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    lines = [line.split()[1:] for line in readme.splitlines()
             if line.startswith("sagemaker-flight serve") and "--advertise" in line]
    assert len(lines) == 2, lines
    return lines


def test_the_readme_fleet_commands_make_a_fleet(tmp_path):
    """The README's commands as written, but for loopback addresses, a
    token file, and the emulator (whose Account API lists its regions)."""
    args = [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS)]
    for region in REGIONS[1:]:
        args += ["--partition", f"{HOME}:{region}"]
    emulator, endpoint = start_and_read_address(args, pattern=r"emulator listening on (\S+)")
    tokens = tmp_path / "tokens"
    tokens.write_text("fleet-token\n")
    ports = distinct_ports(2)
    hosts = {"a.internal:50051": f"127.0.0.1:{ports[0]}", "b.internal:50051": f"127.0.0.1:{ports[1]}"}
    procs = []
    try:
        for command in readme_fleet_commands():
            own = hosts[command[command.index("--advertise") + 1]]
            mapped = []
            for arg in command:
                arg = hosts.get(arg, arg)
                mapped.append(own if arg == "0.0.0.0:50051" else str(tokens) if arg == "tokens" else arg)
            proc, url = start_and_read_address(
                [binary(), *mapped, "--endpoint-url", endpoint], env=emulator_env())
            procs.append(proc)
        members = sorted(f"grpc://{address}" for address in hosts.values())
        token = [(b"authorization", b"Bearer fleet-token")]
        deadline = time.monotonic() + SETTLE_S
        while True:
            options = flight.FlightCallOptions(headers=token)
            named = [sorted({str(endpoint.locations[0].uri, "utf-8") for endpoint in
                             flight.connect(member).get_flight_info(
                                 flight.FlightDescriptor.for_command(SQL), options).endpoints})
                     for member in members]
            if all(len(owners) == 2 for owners in named):
                break
            assert time.monotonic() < deadline, named
            time.sleep(0.1)
        assert named == [members, members]
    finally:
        for proc in procs:
            stop(proc)
        stop(emulator)
