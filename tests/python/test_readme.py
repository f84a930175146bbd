"""The README's examples, run as written: its Python snippets against the
servers they are written for (the quick start's against a server of two
regions, so that a snippet reading one endpoint of several loses rows and
fails here), and every SQL statement it shows against the demo, each of
which must return rows with a value in every column."""

import contextlib
import io
import os
import pathlib
import re
import shutil
import subprocess
import time
import warnings

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from conftest import binary, start_and_read_address, stop

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
# The address the README's snippets use; each test swaps in its server's.
README_URL = "grpc://127.0.0.1:50051"
README_AUTH_URL = "grpc://host:50051"
JOBS_PER_PARTITION = 120
REGIONS = ["us-east-1", "eu-west-1"]


def code_blocks(language):
    """The README's fenced blocks in `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.S | re.M)


def run_snippet(code, **replacements):
    """Runs a README snippet with its addresses replaced; returns its
    variables and what it printed."""
    for old, new in replacements.items():
        code = code.replace(old, new)
    variables = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(README), "exec"), variables)
    return variables, printed.getvalue()


FRESHNESS_TABLE = "aws.sagemaker_compilation_job_freshness"
HISTORY_TABLE = "aws.sagemaker_compilation_job_history"
CHANGES_TABLE = "aws.sagemaker_compilation_job_changes"
# The tables only a server with a store has.
STORE_TABLES = (FRESHNESS_TABLE, HISTORY_TABLE, CHANGES_TABLE)


def readme_sql():
    """Every SQL statement of the README: the ```sql blocks, and each
    statement a `sagemaker-flight query "..."` command line runs; but for
    those of the freshness and history tables, which need a store (run by
    test_the_replica_commands_fill_a_store_that_answers)."""
    statements = [block.strip() for block in code_blocks("sql")]
    for block in code_blocks("sh"):
        for quoted in re.findall(r'sagemaker-flight query\s+"([^"]+)"', block):
            statements.append(" ".join(quoted.split()))
    return [sql for sql in statements if not any(table in sql for table in STORE_TABLES)]


def readme_freshness_sql():
    return [block.strip() for block in code_blocks("sql") if FRESHNESS_TABLE in block]


def readme_history_sql():
    return [block.strip() for block in code_blocks("sql") if HISTORY_TABLE in block]


@pytest.fixture(scope="module")
def two_region_server():
    """An emulator of one account in two regions and a server reading both
    (one endpoint per region for a whole-table read); yields the server's
    grpc:// URL."""
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", str(JOBS_PER_PARTITION),
         "--partition", f"123456789012:{REGIONS[1]}"],
    )
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="emulator",
        AWS_SECRET_ACCESS_KEY="emulator",
        AWS_REGION=REGIONS[0],
        AWS_EC2_METADATA_DISABLED="true",
    )
    server = None
    try:
        server, url = start_and_read_address(
            [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint,
             "--region", ",".join(REGIONS)],
            env=env,
        )
        yield url
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def test_the_readme_has_the_examples_these_tests_run():
    assert len(code_blocks("python")) == 5
    assert len(readme_sql()) >= 4


def test_the_quick_start_snippet_reads_every_endpoint(two_region_server):
    quick_start = code_blocks("python")[0]
    variables, printed = run_snippet(quick_start, **{README_URL: two_region_server})
    table = variables["table"]
    assert table.num_rows == JOBS_PER_PARTITION * len(REGIONS)
    regions = {arn.split(":")[3] for arn in table.column("compilation_job_arn").to_pylist()}
    assert regions == set(REGIONS)
    assert "compilation_job_name" in printed


def test_the_sql_snippet_runs_on_the_demo(demo_server):
    sql_snippet = code_blocks("python")[1]
    variables, printed = run_snippet(sql_snippet, **{README_URL: demo_server})
    assert "QUERY" in variables
    # The parameterised count of STOPPED jobs, printed as a one-tuple.
    assert re.search(r"^\(\d+,\)$", printed, re.M), printed


@pytest.fixture(scope="module")
def basic_auth_server(tmp_path_factory):
    """The demo with the README's Basic credentials (u / p)."""
    password = tmp_path_factory.mktemp("readme") / "password"
    password.write_text("p\n")
    proc, url = start_and_read_address(
        [binary(), "serve", "--demo", "--listen", "127.0.0.1:0", "--demo-jobs", "50",
         "--auth-basic-user", "u", "--auth-basic-password-file", str(password)],
    )
    yield url
    stop(proc)


def test_the_credentials_snippet_authenticates_without_warnings(basic_auth_server):
    snippet = code_blocks("python")[3]
    prelude = "import adbc_driver_flightsql.dbapi as flightsql\nimport pyarrow.flight as flight\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        variables, _ = run_snippet(prelude + snippet, **{README_AUTH_URL: basic_auth_server})
        conn, client, options = variables["conn"], variables["client"], variables["options"]
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job")
            assert cur.fetchone() == (50,)
        conn.close()
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]
    assert len(list(client.list_flights(options=options))) == 1


def test_the_tls_snippet_reads_through_mutual_tls(tmp_path, monkeypatch):
    """The private-CA recipe's openssl lines, run as written, make the
    files; the Python snippet reads through mutual TLS with them."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl on this machine (tests/query_tls.rs covers the recipe with rcgen)")
    recipe = next(block for block in code_blocks("sh") if "ca-key.pem" in block)
    for line in recipe.splitlines():
        if line.startswith("openssl "):
            subprocess.run(line, shell=True, cwd=tmp_path, check=True, capture_output=True,
                           timeout=60)
    proc, url = start_and_read_address(
        [binary(), "serve", "--demo", "--demo-jobs", "40", "--listen", "127.0.0.1:0",
         "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server-key.pem"),
         "--tls-client-ca", str(tmp_path / "ca.pem")],
    )
    try:
        assert url.startswith("grpc+tls://127.0.0.1:"), url
        monkeypatch.chdir(tmp_path)
        _, printed = run_snippet(code_blocks("python")[4],
                                 **{"grpc+tls://localhost:50051": url})
    finally:
        stop(proc)
    assert printed.splitlines() == ["1", "(40,)"], printed


def readme_store_commands():
    """The README's `serve ... --store ./replica` command lines."""
    return [line.split()[1:] for block in code_blocks("sh") for line in block.splitlines()
            if line.startswith("sagemaker-flight serve") and "--store ./replica" in line]


@pytest.mark.parametrize("command", readme_store_commands(), ids=" ".join)
def test_the_replica_commands_fill_a_store_that_answers(command, tmp_path):
    """Each README `serve --store` line, as written but for a small demo, a
    fresh directory and an ephemeral port: the store fills with every job
    and the server answers from it."""
    from deltalake import DeltaTable
    store = str(tmp_path / "replica")
    args = [store if arg == "./replica" else arg for arg in command]
    proc, url = start_and_read_address(
        [binary(), *args, "--demo-jobs", "40", "--listen", "127.0.0.1:0"])
    try:
        deadline = time.monotonic() + 60
        while not (os.path.isdir(os.path.join(store, "_delta_log"))
                   and DeltaTable(store).to_pyarrow_table().num_rows >= 40):
            assert time.monotonic() < deadline, "the store did not fill"
            time.sleep(0.05)
        with flightsql.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM aws.sagemaker_compilation_job")
            (rows,) = cur.fetchone()
            assert rows >= 40
            # The README's freshness query: the one partition, its rows
            # stored, its last success; no error.
            # The collector reports its run just after its commit lands.
            (freshness,) = readme_freshness_sql()
            while True:
                cur.execute(freshness)
                (partition,) = cur.fetch_arrow_table().to_pylist()
                if partition["last_success"] is not None:
                    break
                assert time.monotonic() < deadline, partition
                time.sleep(0.05)
            # Its first full scan is in the history, every job `created`
            # once; the README's history queries run on it.
            cur.execute(f"SELECT count(DISTINCT _key), count(*) FROM {HISTORY_TABLE} "
                        "WHERE change_type = 'created'")
            keys, created = cur.fetchone()
            assert keys == created >= 40
            for sql in readme_history_sql():
                cur.execute(sql)
                assert cur.fetch_arrow_table().num_columns > 0, sql
        assert partition["rows"] >= 40, partition
        assert partition["watermark"] is not None and partition["last_success"] is not None
        assert partition["seconds_since_success"] >= 0
        assert partition["last_error"] is None, partition
    finally:
        stop(proc)


def readme_follow_commands():
    """The SQL of each README `sagemaker-flight query --follow "..."` line."""
    return [" ".join(sql.split()) for block in code_blocks("sh")
            for sql in re.findall(r'sagemaker-flight query --follow\s+"([^"]+)"', block)]


def test_the_feed_examples_follow_the_demo(tmp_path):
    """The README's feed: its demo line (a small demo, a fresh store, an
    ephemeral port), its first --follow line printing rows within seconds,
    its second one on the changes since the first commit (the full scan's
    failed jobs), and its Python snippet (pyarrow's path, then ADBC
    resuming), each bounded."""
    import json
    import sys
    (serve,) = [line.split()[1:] for block in code_blocks("sh") for line in block.splitlines()
                if line.startswith("sagemaker-flight serve") and "--refresh-interval 1" in line]
    store = str(tmp_path / "replica")
    args = [store if arg == "./replica" else arg for arg in serve]
    proc, url = start_and_read_address([binary(), *args, "--demo-jobs", "200",
                                        "--listen", "127.0.0.1:0"])
    every, failures = readme_follow_commands()
    try:
        # Bounded: the first JSON line within the startup timeout.
        started = time.monotonic()
        follow, line = start_and_read_address(
            [binary(), "query", "--server", url, "--follow", every], pattern=r"^(\{.*\})$")
        stop(follow)
        first = json.loads(line)
        print(f"first --follow row after {time.monotonic() - started:.1f} s: {first}")
        assert first["change_type"] in ("created", "updated", "deleted")
        failed, line = start_and_read_address(
            [binary(), "query", "--server", url, "--follow", f"{failures} AND commit_version > 0"],
            pattern=r"^(\{.*\})$")
        stop(failed)
        row = json.loads(line)
        assert set(row) == {"commit_time", "compilation_job_name", "failure_reason"}
        assert row["failure_reason"]
        snippet = next(block for block in code_blocks("python") if CHANGES_TABLE in block)
        done = subprocess.run([sys.executable, "-c", snippet.replace(README_URL, url)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["True"], done.stdout
    finally:
        stop(proc)


def test_the_readme_shows_the_replica_commands():
    assert len(readme_store_commands()) == 3
    assert len(readme_follow_commands()) == 2
    assert len(readme_history_sql()) == 3


@pytest.mark.parametrize("sql", readme_sql())
def test_every_readme_statement_returns_rows_with_values(demo_server, sql):
    with flightsql.connect(demo_server, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            table = cur.fetch_arrow_table()
    assert table.num_rows > 0, sql
    empty = [name for name in table.column_names if table.column(name).null_count == table.num_rows]
    assert not empty, f"always NULL: {empty} in {sql}"
