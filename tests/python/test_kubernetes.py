"""deploy/kubernetes/ checked without a cluster: the manifests parse, name
the ports, probes and flags the binary has, and agree with each other;
then the Deployment's container command, with the ConfigMap's file, runs
as a plain process of the binary under test on loopback (the store on the
S3-compatible server of the tests, SageMaker the emulator, the headless
Service's name `localhost`), answers its health check as the probes ask
it, and finds no peer but itself in that name (it skips its own address).

What it cannot check: the image, the cluster's DNS and kubelet, IRSA.
"""

import re
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import binary, emulator_env, free_port, start_and_read_address, stop

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def manifests():
    documents = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            documents[document["kind"]] = document
    assert set(documents) == {"ConfigMap", "Deployment", "Service"}, sorted(documents)
    return documents


def serve_options():
    """Every long option of `serve`, from its help."""
    help_text = subprocess.run([binary(), "serve", "--help"], capture_output=True, text=True,
                               check=True, timeout=60).stdout
    return set(re.findall(r"--([a-z][a-z0-9-]+)", help_text))


def container(manifests):
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def config_of(manifests):
    return tomllib.loads(manifests["ConfigMap"]["data"]["config.toml"])


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def test_the_manifests_agree_with_each_other_and_with_the_binary(manifests):
    options = serve_options()
    config = config_of(manifests)
    unknown = sorted(key for key in config if key not in options)
    assert unknown == [], f"config.toml keys that are not serve options: {unknown}"
    spec = container(manifests)
    args = spec["args"]
    assert args[0] == "serve"
    flags = [arg[2:] for arg in args if arg.startswith("--")]
    assert [flag for flag in flags if flag not in options] == []
    ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
    assert port_of(config["listen"]) == ports["flight"]
    assert port_of(config["metrics-listen"]) == ports["metrics"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["grpc"]["port"] == ports["flight"], probe
        assert spec[probe]["grpc"].get("service", "") == "", "the server as a whole"
    # Each pod advertises the address the headless Service gives it.
    advertise = args[args.index("--advertise") + 1]
    assert advertise == f"$(POD_IP):{ports['flight']}"
    env = {item["name"]: item for item in spec["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    # The config file is where the ConfigMap is mounted.
    config_path = args[args.index("--config") + 1]
    mounts = {mount["name"]: mount["mountPath"] for mount in spec["volumeMounts"]}
    assert config_path == f"{mounts['config']}/config.toml"
    assert config["auth-token-file"].startswith(mounts["secrets"] + "/")
    # The headless Service selects these pods and names the Flight port,
    # which is what peers-dns resolves.
    service = manifests["Service"]["spec"]
    assert service["clusterIP"] == "None"
    assert not service.get("publishNotReadyAddresses", False), "a draining pod must leave it"
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    name, port = config["peers-dns"].rsplit(":", 1)
    assert name == manifests["Service"]["metadata"]["name"]
    assert [p["port"] for p in service["ports"] if p["targetPort"] == "flight"] == [int(port)]
    assert config["store"].startswith("s3://")
    grace = manifests["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > config["shutdown-grace"] + 2 * config["peer-check-interval"]


def test_the_readme_commands_name_these_files(manifests):
    readme = (ROOT / "README.md").read_text()
    secret = re.search(r"kubectl create secret generic (\S+) --from-file=(\w+)=", readme)
    volumes = manifests["Deployment"]["spec"]["template"]["spec"]["volumes"]
    (secret_volume,) = [volume["secret"] for volume in volumes if "secret" in volume]
    assert secret.group(1) == secret_volume["secretName"]
    assert config_of(manifests)["auth-token-file"].endswith("/" + secret.group(2))
    assert "kubectl apply -f deploy/kubernetes/" in readme
    deployment = re.search(r"kubectl scale deployment (\S+) ", readme).group(1)
    assert deployment == manifests["Deployment"]["metadata"]["name"]


def test_the_pods_command_serves_and_answers_its_probe(manifests, moto_endpoint, tmp_path):
    config = config_of(manifests)
    flight_port, metrics_port = free_port(), free_port()
    bucket = "kubernetes-manifests"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                 aws_access_key_id="emulator", aws_secret_access_key="emulator").create_bucket(Bucket=bucket)
    tokens = tmp_path / "tokens"
    tokens.write_text("a-test-token\n")
    emulator, endpoint = start_and_read_address(
        [binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", "20"]
        + sum((["--partition", f"123456789012:{region}"] for region in config["region"][1:]), []),
        pattern=r"emulator listening on (\S+)")
    # The pod's file, its addresses mapped to loopback.
    config["listen"] = f"127.0.0.1:{flight_port}"
    config["metrics-listen"] = f"127.0.0.1:{metrics_port}"
    config["peers-dns"] = f"localhost:{flight_port}"
    config["store"] = f"s3://{bucket}/replica"
    config["auth-token-file"] = str(tokens)
    local = tmp_path / "config.toml"
    local.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in config.items()))
    args = [arg.replace("$(POD_IP)", "127.0.0.1").replace(":50051", f":{flight_port}")
            for arg in container(manifests)["args"]]
    args[args.index("--config") + 1] = str(local)
    env = dict(emulator_env(), AWS_ENDPOINT_URL_S3=moto_endpoint)
    server = None
    try:
        server, url = start_and_read_address(
            [binary(), *args, "--endpoint-url", endpoint], env=env)
        assert url == f"grpc://127.0.0.1:{flight_port}"
        # The kubelet's grpc probe is a grpc.health.v1 Check of the server
        # as a whole (service ""); `query --wait` connects only once that
        # check says SERVING, then answers with the pod's token.
        probe = subprocess.run(
            [binary(), "query", "SELECT count(*) AS jobs FROM aws.sagemaker_compilation_job",
             "--server", url, "--wait", "30", "--token-file", str(tokens), "--format", "csv"],
            capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.splitlines()[0] == "jobs"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                         timeout=10).read().decode()
        assert re.search(r"^sagemaker_flight_fleet_members 1$", metrics, re.M), \
            "alone: the headless name gave only its own address"
    finally:
        if server is not None:
            stop(server)
        stop(emulator)


def toml_value(value):
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
