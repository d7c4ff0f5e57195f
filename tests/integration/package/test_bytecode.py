"""scripts/bytecode.js, the plugin that compiles the artifact with the runtime's Python: which Python it
finds, and that packaging never fails for want of one.

A common developer machine has pyenv with a 3.12 installed but not selected: `python3.12` on PATH is
then a shim that exits 127 ("pyenv: python3.12: command not found"). The machine is modelled here
exactly: PATH holds that shim, node and the project's python3 (pip, for serverless-python-requirements)
and nothing else; PYENV_ROOT is a directory of the test's own, holding only the versions a test puts
there; `runtime_python` is not set. The package runs as README says,
`npx serverless package --param bucket=...`, with an empty requirements.txt (the plugin's behaviour
does not depend on the wheels, and so it takes seconds, not a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import packaging

SHIM = """#!/bin/sh
# What pyenv's shim does for a version that is installed but not selected.
echo "pyenv: python3.12: command not found" >&2
echo "" >&2
echo "The \\`python3.12' command exists in these Python versions:" >&2
echo "  3.12.1" >&2
exit 127
"""


def pyenv_machine(tmp_path: Path, versions: dict[str, str] | None = None) -> dict[str, str]:
    """The build environment of a developer with pyenv: ``versions`` maps a version directory name
    (``3.12.9``) to the interpreter its bin/python3.12 runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3.12").write_text(SHIM)
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # pip: the project's .venv
    for name in ("python3.12", "python3"):
        (bin_dir / name).chmod(0o755)
    for tool in ("node", "sh"):  # npx's interpreter, and the shell npm runs it with
        found = shutil.which(tool)
        assert found, f"{tool} not found (node: install Node.js 20, see README)"
        (bin_dir / tool).symlink_to(os.path.realpath(found))
    pyenv_root = tmp_path / "pyenv"
    (pyenv_root / "versions").mkdir(parents=True)
    for name, python in (versions or {}).items():
        (pyenv_root / "versions" / name / "bin").mkdir(parents=True)
        (pyenv_root / "versions" / name / "bin" / "python3.12").symlink_to(python)
    env = {k: v for k, v in packaging.build_environment().items()
           if k not in packaging.SETTING_NAMES and not k.startswith(("PYENV", "UV_"))}
    env.update(PATH=str(bin_dir), PYENV_ROOT=str(pyenv_root))
    return env


def pycs(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert "handler/webhook.py" in names and "transforms/jobs/pipeline.py" in names
    return [name for name in names if name.endswith(".pyc")]


@pytest.mark.package
def test_a_pyenv_shim_that_cannot_start_gives_an_artifact_without_bytecode_and_a_warning(
        tmp_path: Path) -> None:
    built = packaging.package_with(pyenv_machine(tmp_path), tmp_path / "build")
    assert built.zip_path.exists()
    assert pycs(built.zip_path) == []
    warning = [line for line in built.output.splitlines() if "bytecode:" in line]
    assert warning, built.output[-3000:]
    text = " ".join(warning)
    assert "no Python 3.12 could start" in text and "carries no bytecode" in text, text
    # It says why: the shim's own words, and where else it looked.
    assert "pyenv: python3.12: command not found" in text and "exit 127" in text, text
    assert f"no 3.12 under {tmp_path / 'pyenv' / 'versions'}" in text, text
    assert "runtime_python" in text, text


@pytest.mark.package
def test_the_3_12_that_pyenv_installed_compiles_the_artifact_when_the_shim_cannot_start(
        tmp_path: Path) -> None:
    runtime = packaging.find_runtime_python()
    if runtime is None:
        pytest.skip("no CPython 3.12 here to install under a fake pyenv root (set PACKAGE_TEST_PYTHON)")
    # An older 3.12 too: the newest one is chosen; a directory that is not a version is ignored.
    env = pyenv_machine(tmp_path, {"3.12.9": os.path.realpath(runtime), "3.12.10": os.path.realpath(runtime),
                                   "3.12-dev": "/nonexistent/python3.12"})
    built = packaging.package_with(env, tmp_path / "build")
    compiled = pycs(built.zip_path)
    assert "handler/__pycache__/webhook.cpython-312.pyc" in compiled
    assert not [name for name in compiled if not name.endswith(".cpython-312.pyc")]
    chosen = tmp_path / "pyenv" / "versions" / "3.12.10" / "bin" / "python3.12"
    assert f"bytecode: compiling with {chosen} (pyenv)" in built.output, built.output[-3000:]
    assert "no Python 3.12 could start" not in built.output


# -- the plugin alone, on a zip of the test's own (node, no packaging) -------------------------------------

DRIVER = """
const Plugin = require(process.argv[2]);
const logs = [];
const log = { notice: (m) => logs.push(['notice', m]), warning: (m) => logs.push(['warning', m]) };
const serverless = { service: { service: 'x', package: { artifact: process.argv[3] },
                                provider: { runtime: 'python3.12' } }, serviceDir: '.' };
const plugin = new Plugin(serverless, { param: JSON.parse(process.argv[4]) }, { log });
let error = null;
try { plugin.compile(); } catch (e) { error = e.message; }
console.log(JSON.stringify({ logs, error }));
"""


def run_plugin(tmp_path: Path, artifact: Path, env: dict[str, str], params: list[str]) -> dict[str, object]:
    driver = tmp_path / "driver.js"
    driver.write_text(DRIVER)
    completed = subprocess.run(["node", str(driver), str(packaging.ROOT / "scripts" / "bytecode.js"),
                                str(artifact), json.dumps(params)],
                               env=env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def small_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("handler/__init__.py", "")
        archive.writestr("handler/webhook.py", "ANSWER = 42\n" * 50)
    return path


def test_a_runtime_python_named_but_unable_to_start_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    env = pyenv_machine(tmp_path)
    artifact = small_zip(tmp_path / "x.zip")
    before = artifact.read_bytes()
    for named in (str(tmp_path / "bin" / "python3.12"), str(tmp_path / "missing" / "python3.12")):
        report = run_plugin(tmp_path, artifact, env, [f"runtime_python={named}"])
        assert report["error"] is None
        [(level, message)] = report["logs"]
        assert level == "warning" and "carries no bytecode" in message and named in message, message
    assert artifact.read_bytes() == before


def test_a_damaged_artifact_stops_packaging_once_the_interpreter_has_started(tmp_path: Path) -> None:
    """Told apart from an interpreter that cannot start: the probe ran, so the failure is the artifact's
    (here an entry whose bytes fail their CRC-32), and deploying it would ship a broken function."""
    runtime = packaging.find_runtime_python()
    if runtime is None:
        pytest.skip("no CPython 3.12 here (set PACKAGE_TEST_PYTHON)")
    env = pyenv_machine(tmp_path)
    artifact = small_zip(tmp_path / "x.zip")
    data = bytearray(artifact.read_bytes())
    at = data.index(b"ANSWER = 42")
    data[at:at + 6] = b"ANSWEX"
    artifact.write_bytes(bytes(data))
    report = run_plugin(tmp_path, artifact, env, [f"runtime_python={runtime}"])
    assert report["error"] and "failed" in report["error"] and "Bad CRC-32" in report["error"], report
    # The same artifact intact compiles.
    report = run_plugin(tmp_path, small_zip(tmp_path / "y.zip"), env, [f"runtime_python={runtime}"])
    assert report["error"] is None, report
    assert any("2 modules compiled for cpython-312" in message for _, message in report["logs"]), report
