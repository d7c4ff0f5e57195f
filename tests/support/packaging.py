"""Build the Lambda artifact with `npx serverless package`, as a deployment would, and look inside it.

Shared by tests/integration/package/test_package.py (the artifact) and
tests/integration/package/test_template.py (the CloudFormation template).
Each build packages a copy of the project in a temporary directory (tests/ and stray caches included,
to prove they stay out), so a build neither reads half-edited files nor writes into the working tree.
A build is made once per pytest session and variant, whichever test asks first.

Variants other than the default one package an empty requirements.txt: their template is the same,
and skipping the ~130 MB of wheels makes them take seconds instead of a minute.

    .venv/bin/python -m tests.support.packaging    # builds the default package, prints size and import times
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transforms.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "ci360-s3-connector"
BUCKET = "example-bucket"
# Lambda's quota: 250 MB for the unzipped function code and all its layers (262,144,000 bytes).
UNZIPPED_LIMIT = 250 * 1024 * 1024
RUNTIME_VERSION = (3, 12)  # serverless.yml's provider.runtime
# Environment variables that serverless.yml reads as settings: a build must not pick them up from
# whatever shell (or test) runs it, or the template would differ from run to run.
SETTING_NAMES = (*(setting.name for setting in SETTINGS), "PYTHON_BIN", "runtime_python")
FULL_TIMEOUT_S = 1200  # a cold pip cache downloads ~45 MB of wheels; the zip itself takes about a minute
FAST_TIMEOUT_S = 300

KMS_KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/abc"
CI360_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ci360-access-point-AbCdEf"
VARIANTS: dict[str, dict[str, str]] = {
    # What `npx serverless package --param bucket=example-bucket` gives: every default.
    "default": {},
    # Every optional grant and resource switched on at once.
    "everything": {
        "kms_key_id": KMS_KEY_ARN,
        "glue_database": "ci360_audiences",
        "create_bucket": "true",
        "s3_key_prefix": "ci360/",
        "overwrite": "false",
        "result_url_ttl": "3600",
        "alarm_topic_arn": "arn:aws:sns:us-east-1:111122223333:ci360-alerts",
        "worker_max_concurrency": "12",
        "allowed_source_ips": "203.0.113.0/24,198.51.100.7/32",
        "ci360_client_secret_arn": CI360_SECRET_ARN,
        "event_bus_name": "marketing-data",
        "jobs_max_receives": "5",
        "fanout_max_concurrency": "40",
    },
    # The stack's own bucket with SSE-S3.
    "bucket": {"create_bucket": "true"},
}


# Built only when a test asks (not linted with the variants above): the template alone, every default,
# for the fan-out's state machine run locally (tests/integration/fanout/).
TEMPLATE_ONLY: dict[str, dict[str, str]] = {"fanout": {}}


class PackagingError(RuntimeError):
    pass


@dataclass
class Packaged:
    variant: str
    params: dict[str, str]
    project: Path  # the packaged copy of the project
    out: Path  # what `--package` wrote: the zip and the CloudFormation templates
    seconds: float
    output: str = ""  # what the command printed (stdout, then stderr)
    _unzipped: Path | None = field(default=None, repr=False)

    @property
    def zip_path(self) -> Path:
        return self.out / f"{SERVICE}.zip"

    @property
    def template(self) -> dict[str, Any]:
        return json.loads((self.out / "cloudformation-template-update-stack.json").read_text())

    def unzipped(self) -> Path:
        """The artifact extracted as Lambda does into /var/task (once)."""
        if self._unzipped is None:
            target = self.out / "var-task"
            shutil.rmtree(target, ignore_errors=True)
            with zipfile.ZipFile(self.zip_path) as archive:
                archive.extractall(target)
            self._unzipped = target
        return self._unzipped


_BUILT: dict[str, Packaged | Exception] = {}


def build(variant: str, base: Path | None = None) -> Packaged:
    """Package one variant (memoised for the session, failures included: a build is not worth retrying)."""
    if variant not in _BUILT:
        base = Path(tempfile.mkdtemp(prefix="sls-package-")) if base is None else base
        try:
            params = VARIANTS[variant] if variant in VARIANTS else TEMPLATE_ONLY[variant]
            _BUILT[variant] = _package(variant, params, full=variant == "default", base=base / variant)
        except Exception as exc:  # remembered, and raised again below
            _BUILT[variant] = exc
    built = _BUILT[variant]
    if isinstance(built, Exception):
        raise built
    return built


def serverless_command() -> list[str]:
    npx = shutil.which("npx")
    if npx is None:
        raise PackagingError("npx not found: install Node.js 20.19+ with npm (see README)")
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        raise PackagingError("node_modules/.bin/serverless missing: run `make node` (npm ci)")
    return [npx, "--no-install", "serverless"]


def _copy_project(target: Path, *, full: bool) -> None:
    target.mkdir(parents=True)
    for name in ("serverless.yml", "package.json", "package-lock.json", "pyproject.toml"):
        shutil.copy2(ROOT / name, target / name)
    if full:
        shutil.copy2(ROOT / "requirements.txt", target / "requirements.txt")
    else:
        (target / "requirements.txt").write_text("")
    ignore = shutil.ignore_patterns(".pytest_cache", ".ruff_cache")
    (target / "scripts").mkdir()
    for name in ("bytecode.js", "bytecode.py"):  # the local plugin (serverless.yml, plugins)
        shutil.copy2(ROOT / "scripts" / name, target / "scripts" / name)
    for name in ("handler", "transforms", "tests"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    # Caches a developer's tree would have; the package must leave them out.
    for planted in ("handler/__pycache__/webhook.cpython-312.pyc", "transforms/__pycache__/stray.pyc",
                    "transforms/stray.pyc"):
        (target / planted).parent.mkdir(parents=True, exist_ok=True)
        (target / planted).write_bytes(b"not code")
    (target / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)


def build_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("AWS_")}
    # serverless-python-requirements runs `python3 -m pip`: this interpreter's (the project's .venv).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["SLS_TELEMETRY_DISABLED"] = "1"
    runtime_python = find_runtime_python()  # scripts/bytecode.js compiles the artifact with it
    if runtime_python:
        env["runtime_python"] = runtime_python
    env["npm_config_update_notifier"] = "false"
    return env


def package_with(env: Mapping[str, str], base: Path, *, full: bool = False) -> Packaged:
    """Package the default configuration in the environment ``env`` (not memoised): how the build
    behaves on a particular machine, e.g. one whose `python3.12` is a pyenv shim that cannot start."""
    return _package("default", VARIANTS["default"], full=full, base=base, env=env)


def _package(variant: str, params: Mapping[str, str], *, full: bool, base: Path,
             env: Mapping[str, str] | None = None) -> Packaged:
    project, out = base / "project", base / "out"
    shutil.rmtree(base, ignore_errors=True)
    _copy_project(project, full=full)
    command = [*serverless_command(), "package", "--stage", "dev", "--region", "us-east-1",
               "--param", f"bucket={BUCKET}", "--package", str(out)]
    for name, value in params.items():
        command += ["--param", f"{name}={value}"]
    started = time.monotonic()
    try:
        environment = dict(build_environment() if env is None else env)
        completed = subprocess.run(command, cwd=project, env=environment, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True,
                                   timeout=FULL_TIMEOUT_S if full else FAST_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise PackagingError(f"`serverless package` ({variant}) took over {exc.timeout} s") from None
    seconds = time.monotonic() - started
    if completed.returncode != 0 or not (out / f"{SERVICE}.zip").exists():
        output = (completed.stdout + completed.stderr)[-6000:]
        raise PackagingError(f"`{' '.join(command[1:])}` failed (exit {completed.returncode}):\n{output}")
    return Packaged(variant, dict(params), project, out, seconds, completed.stdout + completed.stderr)


# -- running code from the artifact, with nothing else on the path ----------------------------------


def find_runtime_python() -> str | None:
    """A CPython 3.12 (the Lambda runtime's version; the wheels in the artifact are built for it)."""
    candidates = [os.environ.get("PACKAGE_TEST_PYTHON", ""), shutil.which("python3.12") or "",
                  "/usr/bin/python3.12", "/usr/local/bin/python3.12",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        try:
            probe = subprocess.run([candidate, "-I", "-S", "-c", "import sys; print(sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == str(RUNTIME_VERSION):
            return candidate
    return None


def isolated(python: str, code: str, path: list[Path], env: Mapping[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with only ``path`` and the standard library importable (-I: no user site, no
    PYTHON* variables, no current directory; -S: no site-packages; -B: no bytecode written)."""
    bootstrap = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n{code}"
    clean = {k: v for k, v in (os.environ if env is None else env).items() if not k.startswith("PYTHON")}
    # -B: Lambda's task root is read-only, so no bytecode can be written there either.
    return subprocess.run([python, "-I", "-S", "-B", "-c", bootstrap], capture_output=True, text=True,
                          timeout=timeout, env=clean, cwd=tempfile.gettempdir())


IMPORT_TIMER = """
import json, sys, time
started = time.perf_counter()
import handler.webhook
csv_path = time.perf_counter() - started
csv_pyarrow = "pyarrow" in sys.modules
started = time.perf_counter()
import transforms.formats.columnar
parquet_extra = time.perf_counter() - started
print(json.dumps({"csv": csv_path, "csv_pyarrow": csv_pyarrow, "parquet_extra": parquet_extra,
                  "modules": len(sys.modules)}))
"""


def import_times(python: str, path: list[Path], runs: int = 9) -> dict[str, Any]:
    """Cold-process import times: ``handler.webhook`` (the CSV path), then ``transforms.formats.columnar``
    on top (what a Parquet/ORC target adds). One fresh interpreter per run; the medians and the first run."""
    samples: list[dict[str, Any]] = []
    for _ in range(runs):
        completed = isolated(python, IMPORT_TIMER, path)
        if completed.returncode != 0:
            raise PackagingError(f"import failed:\n{completed.stderr[-4000:]}")
        samples.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    def median(pick: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(pick(s) for s in samples)

    return {
        "runs": runs,
        "csv_ms": 1000 * median(lambda s: s["csv"]),
        "parquet_ms": 1000 * median(lambda s: s["csv"] + s["parquet_extra"]),
        "parquet_extra_ms": 1000 * median(lambda s: s["parquet_extra"]),
        "first_csv_ms": 1000 * samples[0]["csv"],
        "first_parquet_ms": 1000 * (samples[0]["csv"] + samples[0]["parquet_extra"]),
        "csv_imports_pyarrow": any(s["csv_pyarrow"] for s in samples),
    }


HANDLER_IMPORT = """
import json, time
started = time.perf_counter()
import {module}
print(json.dumps(time.perf_counter() - started))
"""
HANDLERS = ("handler.webhook", "handler.worker", "handler.jobs")


def handler_import_times(python: str, with_bytecode: Path, without_bytecode: Path | None,
                         runs: int = 5) -> dict[str, dict[str, float]]:
    """Milliseconds to import each handler in a fresh -B process (median of ``runs``): from the artifact
    as built (bytecode for 3.12 in it) and, if given, from a copy of it without bytecode."""
    times: dict[str, dict[str, float]] = {}
    roots = [("bytecode", with_bytecode)] + ([("source", without_bytecode)] if without_bytecode else [])
    for module in HANDLERS:
        times[module] = {}
        for label, root in roots:
            samples = []
            for _ in range(runs):
                completed = isolated(python, HANDLER_IMPORT.format(module=module), [root])
                if completed.returncode != 0:
                    raise PackagingError(f"import {module} failed:\n{completed.stderr[-3000:]}")
                samples.append(1000 * json.loads(completed.stdout.strip().splitlines()[-1]))
            times[module][label] = round(statistics.median(samples), 1)
    return times


def import_breakdown(python: str, path: list[Path], code: str, top: int = 6) -> list[tuple[str, float]]:
    """`-X importtime`: milliseconds spent importing each top-level package's own modules (self time)."""
    bootstrap = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n{code}"
    completed = subprocess.run([python, "-I", "-S", "-B", "-X", "importtime", "-c", bootstrap],
                               capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
    rows: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line[len("import time:"):].split("|")
        root = name.strip().split(".")[0]
        rows[root] = rows.get(root, 0.0) + int(own) / 1000
    return sorted(rows.items(), key=lambda item: -item[1])[:top]


def unzipped_bytes(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sls-package-") as tmp:
        return report(build("default", Path(tmp)))


def report(packaged: Packaged) -> int:
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    size = unzipped_bytes(packaged.zip_path)
    print(f"serverless package: {packaged.seconds:.0f} s")
    print(f"zip: {packaged.zip_path.stat().st_size / 1e6:.1f} MB, unzipped: {size / 1e6:.1f} MB "
          f"({size / 2**20:.1f} MiB; Lambda's limit: {UNZIPPED_LIMIT:,} bytes, 250 MiB)")
    top = {}
    root = packaged.unzipped()
    for entry in root.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        top[entry.name] = sum(p.stat().st_size for p in files)
    for name, total in sorted(top.items(), key=lambda item: -item[1])[:8]:
        print(f"  {name:<28} {total / 1e6:7.1f} MB")
    python = find_runtime_python()
    if python is None:
        print("no CPython 3.12 found: import times not measured")
        return 0
    times = import_times(python, [root])
    print(f"{python}: import times over {times['runs']} fresh processes (median; first run):")
    print(f"  handler.webhook (CSV path):  {times['csv_ms']:.0f} ms; {times['first_csv_ms']:.0f} ms"
          f"  (pyarrow imported: {times['csv_imports_pyarrow']})")
    print(f"  + transforms.formats.columnar (Parquet path): {times['parquet_ms']:.0f} ms; "
          f"{times['first_parquet_ms']:.0f} ms (pyarrow adds {times['parquet_extra_ms']:.0f} ms)")
    for label, code in (("handler.webhook", "import handler.webhook"),
                        ("transforms.formats.columnar after handler.webhook",
                         "import handler.webhook\nimport transforms.formats.columnar")):
        rows = import_breakdown(python, [root], code)
        print(f"  -X importtime, {label}: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in rows))
    without = packaged.out / "var-task-no-bytecode"
    shutil.rmtree(without, ignore_errors=True)
    shutil.copytree(root, without, ignore=shutil.ignore_patterns("__pycache__"))
    print("each handler, -B, from the artifact with its bytecode / without (median of 5, ms):")
    for module, row in handler_import_times(python, root, without).items():
        print(f"  {module:<16} {row['bytecode']:6.0f} / {row['source']:6.0f}")
    shutil.rmtree(without, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
