"""Operations from a client's side: a config file, and the Prometheus
metrics a scraper reads while pyarrow queries. Each test starts its own
`sagemaker-flight serve --demo` on 127.0.0.1, so its counters start at zero."""

import urllib.request

import pyarrow.flight as flight

from conftest import binary, start_and_read_address, stop

TABLE = "aws.sagemaker_compilation_job"


def read_rows(url):
    client = flight.FlightClient(url)
    info = client.get_flight_info(flight.FlightDescriptor.for_path(TABLE))
    assert info.endpoints, "no endpoint"
    return sum(
        client.do_get(endpoint.ticket).read_all().num_rows for endpoint in info.endpoints
    )


def scrape(metrics_url):
    """The samples of the metrics page: {series: value}, and its content type."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples, content_type


def test_a_scraper_sees_the_rows_and_calls_of_a_pyarrow_read():
    proc, (metrics_url, url) = start_and_read_address(
        [
            binary(),
            "serve",
            "--demo",
            "--demo-jobs",
            "40",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        pattern=[r"metrics on (\S+)", r"listening on (\S+)"],
    )
    try:
        assert metrics_url.startswith("http://127.0.0.1:")
        assert read_rows(url) == 40
        samples, content_type = scrape(metrics_url)
        assert content_type.startswith("application/openmetrics-text")
        assert samples["sagemaker_flight_rows_sent_total"] == 40
        ok = 'sagemaker_flight_grpc_requests_total{method="DoGet",code="OK"}'
        assert samples[ok] == 1
        describes = (
            'sagemaker_flight_sagemaker_calls_total'
            '{operation="DescribeCompilationJob",outcome="ok",account="",region=""}'
        )
        assert samples[describes] == 40
        assert samples['sagemaker_flight_query_duration_seconds_count{outcome="ok"}'] == 1
    finally:
        stop(proc)


def test_a_config_file_configures_the_server_and_a_flag_overrides_it(tmp_path):
    config = tmp_path / "sagemaker-flight.toml"
    config.write_text(
        'demo = true\ndemo-jobs = 12\ndemo-latency-ms = 0\nlisten = "127.0.0.1:0"\n'
    )
    for extra, expected in [([], 12), (["--demo-jobs", "3"], 3)]:
        proc, url = start_and_read_address([binary(), "serve", "--config", str(config), *extra])
        try:
            assert read_rows(url) == expected
        finally:
            stop(proc)
