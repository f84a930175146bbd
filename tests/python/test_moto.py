"""Conformance against moto's standalone SageMaker: jobs created through the
AWS API, read back through sagemaker-flight, compared with what
DescribeCompilationJob returns."""

import json
import os

import boto3
import pyarrow.flight as flight
import pytest

from conftest import binary, start_and_read_address, stop

TABLE = "aws.sagemaker_compilation_job"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ROLE = "arn:aws:iam::123456789012:role/neo-compile"


def sagemaker(endpoint):
    return boto3.client(
        "sagemaker",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_jobs(client, count):
    names = []
    for i in range(count):
        name = f"conformance-job-{i:03d}"
        # moto's ListTags fails for a job created without Tags: pass [].
        tags = [{"Key": "team", "Value": f"t{i % 3}"}] if i % 2 else []
        output = (
            {"S3OutputLocation": f"s3://out/{name}", "TargetDevice": "ml_c5"}
            if i % 3
            else {
                "S3OutputLocation": f"s3://out/{name}",
                # moto's ListCompilationJobs fails (HTTP 500) on a
                # TargetPlatform without Accelerator.
                "TargetPlatform": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
            }
        )
        client.create_compilation_job(
            CompilationJobName=name,
            RoleArn=ROLE,
            InputConfig={
                "S3Uri": f"s3://in/{name}.tar.gz",
                "DataInputConfig": '{"input":[1,3,224,224]}',
                "Framework": "PYTORCH",
                "FrameworkVersion": "1.13",
            },
            OutputConfig=output,
            StoppingCondition={"MaxRuntimeInSeconds": 900},
            Tags=tags,
        )
        names.append(name)
    return names


@pytest.fixture(scope="module")
def moto_server_with_flight(moto_endpoint):
    client = sagemaker(moto_endpoint)
    names = create_jobs(client, 120)  # more than one ListCompilationJobs page
    env = dict(os.environ, **CREDENTIALS, AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_PROFILE", None)
    proc, url = start_and_read_address(
        [binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", moto_endpoint],
        env=env,
    )
    yield client, names, url
    stop(proc)


def to_micros(dt):
    return int(round(dt.timestamp() * 1_000_000))


def test_rows_match_describe_compilation_job(moto_server_with_flight):
    client, names, url = moto_server_with_flight
    fc = flight.FlightClient(url)
    info = fc.get_flight_info(flight.FlightDescriptor.for_path(TABLE))
    table = fc.do_get(info.endpoints[0].ticket).read_all()
    rows = {row["compilation_job_name"]: row for row in table.to_pylist()}
    assert sorted(rows) == sorted(names)
    for name in names:
        d = client.describe_compilation_job(CompilationJobName=name)
        row = rows[name]
        assert row["_key"] == d["CompilationJobArn"] == row["compilation_job_arn"]
        assert row["account_id"] == d["CompilationJobArn"].split(":")[4]
        assert row["compilation_job_status"] == d["CompilationJobStatus"]
        assert row["role_arn"] == d["RoleArn"]
        assert to_micros(row["creation_time"]) == to_micros(d["CreationTime"])
        for column, member in [
            ("input_config", "InputConfig"),
            ("output_config", "OutputConfig"),
            ("stopping_condition", "StoppingCondition"),
            ("model_artifacts", "ModelArtifacts"),
        ]:
            got = json.loads(row[column]) if row[column] is not None else None
            assert got == d.get(member), (name, column)
        tags = client.list_tags(ResourceArn=d["CompilationJobArn"])["Tags"]
        assert row["tags"] == [(t["Key"], t["Value"]) for t in tags]
