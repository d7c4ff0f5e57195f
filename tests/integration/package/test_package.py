"""The deployment artifact: `npx serverless package`, unzipped and run with nothing else on the path.

Lambda's runtime is CPython 3.12 and the artifact holds wheels built for it. Where a 3.12 is found
(`python3.12` on PATH, or PACKAGE_TEST_PYTHON), the handlers are imported from the unzipped artifact
and the sample webhook runs through it against the local S3; with the local 3.11 only the parts that
need no compiled 3.12 extension can be imported (which, pyarrow and zstd being lazy, is the handlers).
The artifact carries its own AWS SDK (the pinned boto3/botocore/s3transfer), and it runs here with
nothing but the artifact and the standard library on sys.path; and bytecode compiled for 3.12
(scripts/bytecode.py), used as Lambda's read-only task root forces: with bytecode writing off (-B).

Packaging takes a minute or so (more with a cold pip cache); deselect with `-m "not package"`.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.localstack import webhook_payload
from tests.support import packaging
from tests.support.helpers import ROOT, Stack, api_gateway_event

PROJECT = ROOT
SDK = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil"}  # packaged, from requirements.txt


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[packaging.Packaged]:
    built = packaging.build("default", tmp_path_factory.mktemp("sls-package"))
    yield built
    shutil.rmtree(built.out / "var-task", ignore_errors=True)  # 100+ MB; pytest keeps 3 runs' tmp dirs


@pytest.fixture(scope="session")
def names(packaged: packaging.Packaged) -> list[str]:
    with zipfile.ZipFile(packaged.zip_path) as archive:
        return archive.namelist()


@pytest.fixture(scope="session")
def runtime_path(packaged: packaging.Packaged) -> list[Path]:
    """/var/task (the artifact) alone: Lambda puts its own SDK (/var/runtime) after it, so the packaged
    one wins; leaving the runtime's out here proves nothing else is needed."""
    return [packaged.unzipped()]


@pytest.fixture(scope="session")
def python312() -> str:
    python = packaging.find_runtime_python()
    if python is None:
        pytest.skip("no CPython 3.12 here (the Lambda runtime's version): set PACKAGE_TEST_PYTHON to one "
                    "to run the artifact's compiled wheels; the local Python checks the rest")
    return python


# -- what is in it --------------------------------------------------------------------------------------


@pytest.mark.package
def test_unzipped_size_is_within_lambdas_limit(packaged: packaging.Packaged, record_property: Any) -> None:
    """The figures README's Packaging section states: printed (`-rA`) and in the JUnit report. Lambda's
    limit is on the unzipped code (250 MiB with the layers); the framework deploys the zip through S3,
    so the 50 MB limit of a direct zip upload does not apply."""
    size = packaging.unzipped_bytes(packaged.zip_path)
    zipped = packaged.zip_path.stat().st_size
    on_disk = sum(p.stat().st_size for p in packaged.unzipped().rglob("*") if p.is_file())
    record_property("zip_bytes", zipped)
    record_property("unzipped_bytes", size)
    print(f"\nartifact: {zipped / 1e6:.1f} MB zipped ({zipped:,} bytes), {size / 1e6:.1f} MB unzipped "
          f"({size:,} bytes, {size / 2**20:.1f} MiB: {size / packaging.UNZIPPED_LIMIT:.0%} of Lambda's "
          "250 MiB)")
    assert size == on_disk
    assert size < packaging.UNZIPPED_LIMIT, f"{size:,} bytes unzipped"
    # Headroom for the next dependency: well under, not just under.
    assert size < 0.6 * packaging.UNZIPPED_LIMIT, f"{size:,} bytes unzipped"


@pytest.mark.package
def test_only_code_and_wheels_no_tests_node_modules_or_caches(packaged: packaging.Packaged,
                                                              names: list[str]) -> None:
    for name in names:
        parts = name.split("/")
        assert parts[0] not in {"tests", "node_modules", ".serverless", "bench", "scripts", ".venv"}, name
        if name.endswith((".pyc", ".pyo")):  # only ours, for 3.12, beside its source
            assert parts[-2] == "__pycache__" and name.endswith(".cpython-312.pyc"), name
            source = "/".join(parts[:-2] + [parts[-1].removesuffix(".cpython-312.pyc") + ".py"])
            assert source in names, name
        assert not any(part.endswith(".dist-info") for part in parts), name
    assert not {"serverless.yml", "package.json", "pyproject.toml"} & set(names)
    # Top level: our two packages, and what pip installed from requirements.txt (the plugin also
    # drops its requirements.txt and a marker file there), and the bytecode of top-level modules.
    installed = {p.name for p in (packaged.out / "requirements").iterdir()}
    top = {name.split("/")[0] for name in names}
    assert top - installed == {"handler", "transforms", "__pycache__"}
    assert top >= SDK, "the AWS SDK is packaged, not taken from the runtime"
    # Every source file of ours is there.
    ours = {str(p.relative_to(packaged.project)) for d in ("handler", "transforms")
            for p in (packaged.project / d).rglob("*.py") if "__pycache__" not in p.parts}
    assert ours and ours <= set(names)


@pytest.mark.package
def test_wheels_are_for_the_lambda_runtime_and_pyarrow_is_stripped(names: list[str]) -> None:
    extensions = [n for n in names if n.endswith(".so") and ".cpython-" in n]
    assert extensions and all("cpython-312-x86_64-linux-gnu" in n for n in extensions), extensions[:5]
    assert any(n.startswith("pyarrow/_parquet.cpython-312") for n in names)
    stripped = [n for n in names if n.startswith("pyarrow/") and (
        "/tests/" in n or "/include/" in n or "flight" in n or "libarrow_s3" in n or "_s3fs" in n
        or n.endswith((".pyx", ".pxd", ".pxi")))]
    assert not stripped, (f"{stripped[:5]}: a stale requirements cache? "
                          "run `npx serverless requirements cleanCache` after changing slimPatterns")


# -- running it ---------------------------------------------------------------------------------------

MODULE_ORIGINS = """
import json, sys, sysconfig
stdlib = sysconfig.get_paths()["stdlib"]
allowed = tuple(str(p) for p in sys.path[:{n}]) + (stdlib,)
outside = sorted(m.__file__ for m in list(sys.modules.values())
                 if getattr(m, "__file__", None) and not m.__file__.startswith(allowed))
print(json.dumps({{"outside": outside, "pyarrow": "pyarrow" in sys.modules}}))
"""


def run_isolated(python: str, path: list[Path], code: str, **kwargs: Any) -> dict[str, Any]:
    completed = packaging.isolated(python, code, path, **kwargs)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.package
def test_handlers_import_from_the_artifact_on_the_runtime_python(python312: str,
                                                                 runtime_path: list[Path]) -> None:
    code = ("import handler.webhook, handler.worker, handler.jobs\n"
            "from transforms import fast_zlib\n"
            "assert fast_zlib.isal_zlib is not None, 'ISA-L (isal) did not load: zlib would be 3-4x slower'\n"
            + MODULE_ORIGINS.format(n=1))
    report = run_isolated(python312, runtime_path, code)
    assert report["outside"] == []
    assert report["pyarrow"] is False, "pyarrow must load only when a target needs it"
    # The typed formats' compiled wheels load too, pyarrow's filesystems stripped or not.
    code = ("import transforms.formats.columnar, pyarrow.parquet, pyarrow.orc, pyarrow.fs, pyarrow.compute\n"
            "from backports import zstd\n" + MODULE_ORIGINS.format(n=1))
    assert run_isolated(python312, runtime_path, code)["outside"] == []


@pytest.mark.package
def test_the_fanout_steps_import_from_the_artifact_on_the_runtime_python(python312: str,
                                                                        runtime_path: list[Path]) -> None:
    """The state machine's functions (handler/fanout.py) load from the artifact alone, as Lambda runs them."""
    code = "import handler.fanout, transforms.fanout\n" + MODULE_ORIGINS.format(n=1)
    assert run_isolated(python312, runtime_path, code)["outside"] == []


@pytest.mark.package
def test_handlers_import_from_the_artifact_on_the_local_python(runtime_path: list[Path]) -> None:
    """Whatever the local Python: the handlers need no compiled extension at import (wrapt falls back
    to pure Python; pyarrow and zstd are imported only by the targets that use them)."""
    code = "import handler.webhook, handler.worker, handler.jobs\n" + MODULE_ORIGINS.format(n=1)
    report = run_isolated(sys.executable, runtime_path, code)
    assert report["outside"] == []
    assert report["pyarrow"] is False


INVOKE = """
import json, uuid
from handler.webhook import handle

class Context:
    function_name = "ci360-s3-connector-dev-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ci360-s3-connector-dev-webhook"
    aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 29_000

with open({event!r}) as f:
    event = json.load(f)
print(json.dumps(handle(event, Context())))
"""

SDK_ORIGIN = """
import os, boto3, botocore
print(json.dumps({m.__name__: os.path.dirname(m.__file__) for m in (boto3, botocore)}))
"""

SAMPLE_LAYOUT = json.dumps([
    {"columnName": "identity_id", "dataType": "CHARACTER"},
    {"columnName": "external_id", "dataType": "NUMERIC"},
    {"columnName": "signup_date", "dataType": "DATE"},
]).encode()
SAMPLE_DATA = b'0d4a-1,100001,2021-03-04\n0d4a-2,100002,\n"0d4a-3, jr",100003,2024-11-20\n'


@pytest.mark.package
@pytest.mark.parametrize("key", ["audiences/sample.csv", "audiences/sample.csv.zst",
                                 "audiences/sample.parquet"])
def test_the_sample_webhook_lands_through_the_artifact(python312: str, runtime_path: list[Path],
                                                       stack: Stack, tmp_path: Path, key: str) -> None:
    import os

    data_url, metadata_url = stack.stage(SAMPLE_DATA, SAMPLE_LAYOUT)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(api_gateway_event(webhook_payload(data_url, metadata_url, key))))
    env = {k: v for k, v in os.environ.items() if k not in packaging.SETTING_NAMES}
    env.update(s3_bucket_name=stack.target, source_host_allowlist="http://127.0.0.1:*",
               processing_mode="sync", LOG_LEVEL="WARNING")
    code = INVOKE.format(event=str(event_file)) + SDK_ORIGIN
    completed = packaging.isolated(python312, code, runtime_path, env=env)
    assert completed.returncode == 0, completed.stderr[-4000:]
    *_, response_line, origin_line = completed.stdout.strip().splitlines()
    response = json.loads(response_line)
    assert json.loads(origin_line) == {name: str(runtime_path[0] / name) for name in ("boto3", "botocore")}
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert body["rows"] == 3
    landed = stack.landed(key)
    if key.endswith(".csv"):
        assert landed == b"identity_id,external_id,signup_date\n" + SAMPLE_DATA
    elif key.endswith(".zst"):
        from backports import zstd

        assert zstd.decompress(landed).endswith(SAMPLE_DATA)
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(landed))
        assert table.column("external_id").to_pylist() == [100001, 100002, 100003]
    # No encryption header: the bucket's default applies (moto's bucket here has none).
    assert "ServerSideEncryption" not in stack.s3.head_object(Bucket=stack.target, Key=key)


# -- the packaged SDK knows every parameter the sink sends ----------------------------------------------

SINK_CALLS = """
import base64, json, zlib, botocore, botocore.session
from botocore.stub import Stubber
from transforms.sinks.s3 import S3MultipartSink

session = botocore.session.get_session()
s3 = session.create_client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
calls = []
s3.meta.events.register("provide-client-params.s3.*", lambda params, model, **_: calls.append(model.name))
def crc(size):  # what S3 returns: the checksum of what it stored
    value = base64.b64encode(zlib.crc32(b"x" * size).to_bytes(4, "big")).decode()
    return {"ChecksumCRC32": value, "ChecksumType": "FULL_OBJECT"}
for kwargs in ({}, {"ContentType": "text/csv", "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:k"},
               {"ServerSideEncryption": "AES256"}):
    for conditional in (False, True):
        # Stubber validates every request against the packaged model (a ParamValidationError otherwise).
        with Stubber(s3) as stub:
            stub.add_response("put_object", {"ETag": '"e"', **crc(3)})
            stub.add_response("create_multipart_upload", {"UploadId": "u"})
            stub.add_response("upload_part", {"ETag": '"1"', "ChecksumCRC32": "AAAAAA=="})
            stub.add_response("upload_part", {"ETag": '"2"', "ChecksumCRC32": "AAAAAA=="})
            stub.add_response("complete_multipart_upload", {"ETag": '"e-2"', **crc(7)})
            for size in (3, 7):  # one PutObject; two parts
                sink = S3MultipartSink(s3, "b", "k", part_size=4, max_in_flight=1, extra_args=kwargs,
                                       if_none_match=conditional)
                sink.write(b"x" * size)
                sink.close()
                assert sink.verified
shapes = session.get_service_model("s3").operation_model
members = {op: sorted(shapes(op).input_shape.members) for op in
           ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")}
print(json.dumps({"version": botocore.__version__, "calls": sorted(set(calls)), "members": members,
                  "origin": botocore.__file__}))
"""


@pytest.mark.package
def test_the_packaged_botocore_accepts_every_parameter_the_sink_sends(python312: str,
                                                                      runtime_path: list[Path]) -> None:
    report = run_isolated(python312, runtime_path, SINK_CALLS)
    assert report["origin"].startswith(str(runtime_path[0]))
    assert report["calls"] == ["CompleteMultipartUpload", "CreateMultipartUpload", "PutObject", "UploadPart"]
    assert tuple(int(x) for x in report["version"].split(".")[:2]) >= (1, 36)
    members = report["members"]
    assert {"ChecksumType", "IfNoneMatch", "ChecksumCRC32"} <= set(members["CompleteMultipartUpload"])
    assert {"ChecksumType", "ChecksumAlgorithm"} <= set(members["CreateMultipartUpload"])
    assert {"IfNoneMatch", "ChecksumCRC32", "ServerSideEncryption", "SSEKMSKeyId"} <= set(
        members["PutObject"])


# -- bytecode for the runtime's Python ---------------------------------------------------------------------

COMPILES = """
import importlib._bootstrap_external as external, json, sys
compiled = []
original = external.SourceLoader.source_to_code
def counting(self, data, path, **kwargs):
    compiled.append(path)
    return original(self, data, path, **kwargs)
external.SourceLoader.source_to_code = counting
import handler.webhook, handler.worker, handler.jobs, transforms.formats.columnar
root = sys.path[0]
ours = [p for p in compiled if p.startswith(root)]
print(json.dumps({"compiled": ours, "dont_write": sys.dont_write_bytecode}))
"""


@pytest.mark.package
def test_the_handlers_import_from_bytecode_without_compiling(python312: str, runtime_path: list[Path],
                                                             names: list[str]) -> None:
    """With -B (Lambda's task root is read-only: nothing can be cached), every module from the artifact,
    ours and the dependencies', loads from the bytecode in it: none is compiled at import."""
    assert "handler/__pycache__/webhook.cpython-312.pyc" in names
    report = run_isolated(python312, runtime_path, COMPILES)
    assert report["dont_write"] is True
    assert report["compiled"] == []


@pytest.mark.package
def test_cold_start_import_of_each_handler(python312: str, runtime_path: list[Path],
                                           record_property: Any) -> None:
    """Measured, not asserted (a timed test would fail on a busy machine): each handler's import in a
    fresh -B process from the unzipped artifact, shown with `-rA` and in the JUnit report. The
    comparison with the same artifact without bytecode is `python -m tests.support.packaging`
    (BENCHMARKS.md)."""
    times = packaging.handler_import_times(python312, runtime_path[0], None, runs=1)
    for module, row in times.items():
        record_property(f"import_ms_{module}", row["bytecode"])
    print("\nimport from the unzipped artifact with -B (ms):", json.dumps(times))
    assert set(times) == {"handler.webhook", "handler.worker", "handler.jobs"}


# -- cold start (no packaging needed) -------------------------------------------------------------------


@pytest.mark.parametrize("module", ["handler.webhook", "handler.worker", "handler.jobs"])
def test_handlers_do_not_import_pyarrow(module: str) -> None:
    """A CSV target's cold start does not pay for pyarrow (~100 MB of libraries); a typed target
    imports it when it needs it."""
    code = f"import {module}, sys; assert 'pyarrow' not in sys.modules, 'pyarrow imported'"
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
