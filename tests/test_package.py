"""The deployment artifact: `npx serverless package`, unzipped and run with nothing else on the path.

Lambda's runtime is CPython 3.12 and the artifact holds wheels built for it. Where a 3.12 is found
(`python3.12` on PATH, or PACKAGE_TEST_PYTHON), the handlers are imported from the unzipped artifact
and the sample webhook runs through it against the local S3; with the local 3.11 only the parts that
need no compiled 3.12 extension can be imported (which, pyarrow and zstd being lazy, is the handlers).
The AWS SDK is the one thing added to the path: Lambda's runtime provides it (serverless.yml's noDeploy).

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

from tests import packaging
from tests.conftest import Stack, api_gateway_event
from tests.localstack import webhook_payload

PROJECT = Path(__file__).resolve().parents[1]
SDK_IN_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py"}


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
    """/var/task (the artifact) and /var/runtime (the SDK), as Lambda's sys.path has them."""
    return [packaged.unzipped(), packaging.runtime_sdk(packaged.out / "runtime-sdk")]


@pytest.fixture(scope="session")
def python312() -> str:
    python = packaging.find_runtime_python()
    if python is None:
        pytest.skip("no CPython 3.12 here (the Lambda runtime's version): set PACKAGE_TEST_PYTHON to one "
                    "to run the artifact's compiled wheels; the local Python checks the rest")
    return python


# -- what is in it --------------------------------------------------------------------------------------


@pytest.mark.package
def test_unzipped_size_is_within_lambdas_limit(packaged: packaging.Packaged) -> None:
    size = packaging.unzipped_bytes(packaged.zip_path)
    on_disk = sum(p.stat().st_size for p in packaged.unzipped().rglob("*") if p.is_file())
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
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".pyo")), name
        assert not any(part.endswith(".dist-info") for part in parts), name
    assert not {"serverless.yml", "package.json", "pyproject.toml"} & set(names)
    # Top level: our two packages, and what pip installed from requirements.txt (the plugin also
    # drops its requirements.txt and a marker file there).
    installed = {p.name for p in (packaged.out / "requirements").iterdir()}
    top = {name.split("/")[0] for name in names}
    assert top - installed == {"handler", "transforms"}
    assert not top & SDK_IN_RUNTIME, "the Lambda runtime provides the AWS SDK"
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
    code = "import handler.webhook, handler.worker, handler.jobs\n" + MODULE_ORIGINS.format(n=2)
    report = run_isolated(python312, runtime_path, code)
    assert report["outside"] == []
    assert report["pyarrow"] is False, "pyarrow must load only when a target needs it"
    # The typed formats' compiled wheels load too, pyarrow's filesystems stripped or not.
    code = ("import transforms.columnar, pyarrow.parquet, pyarrow.orc, pyarrow.fs, pyarrow.compute\n"
            "from backports import zstd\n" + MODULE_ORIGINS.format(n=2))
    assert run_isolated(python312, runtime_path, code)["outside"] == []


@pytest.mark.package
def test_handlers_import_from_the_artifact_on_the_local_python(runtime_path: list[Path]) -> None:
    """Whatever the local Python: the handlers need no compiled extension at import (wrapt falls back
    to pure Python; pyarrow and zstd are imported only by the targets that use them)."""
    code = "import handler.webhook, handler.worker, handler.jobs\n" + MODULE_ORIGINS.format(n=2)
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
    completed = packaging.isolated(python312, INVOKE.format(event=str(event_file)), runtime_path, env=env)
    assert completed.returncode == 0, completed.stderr[-4000:]
    response = json.loads(completed.stdout.strip().splitlines()[-1])
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
    assert stack.s3.head_object(Bucket=stack.target, Key=key)["ServerSideEncryption"] == "AES256"


# -- cold start (no packaging needed) -------------------------------------------------------------------


@pytest.mark.parametrize("module", ["handler.webhook", "handler.worker", "handler.jobs"])
def test_handlers_do_not_import_pyarrow(module: str) -> None:
    """A CSV target's cold start does not pay for pyarrow (~100 MB of libraries); a typed target
    imports it when it needs it."""
    code = f"import {module}, sys; assert 'pyarrow' not in sys.modules, 'pyarrow imported'"
    completed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
