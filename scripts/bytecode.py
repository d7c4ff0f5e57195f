"""Add bytecode compiled for the Lambda runtime's Python to a deployment zip (serverless.yml's plugin
scripts/bytecode.js runs this with that Python, 3.12, after the framework has built the artifact).

Lambda's task root (/var/task) is read-only: without bytecode in the artifact, every cold start
compiles every module it imports, and cannot keep the result. The .pyc files written here are
hash-based and unchecked (PEP 552): the interpreter uses them without comparing timestamps, which the
zip does not preserve faithfully anyway. Code objects name /var/task/<path>, where Lambda unzips.

    python3.12 scripts/bytecode.py .serverless/ci360-s3-connector.zip
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc  # what py_compile uses for this mode

TASK_ROOT = "/var/task"


def pyc_name(source: str, tag: str) -> str:
    head, name = os.path.split(source)
    return "/".join(p for p in (head, "__pycache__", f"{name[:-3]}.{tag}.pyc") if p)


def compile_zip(path: str) -> tuple[int, int]:
    """Append a .pyc beside every .py that compiles (the zip's other entries are left as they are)."""
    tag = sys.implementation.cache_tag
    compiled = skipped = 0
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        present = set(archive.namelist())
        for info in [i for i in archive.infolist() if i.filename.endswith(".py")]:
            target = pyc_name(info.filename, tag)
            if target in present:
                continue
            data = archive.read(info)
            try:
                code = compile(data, f"{TASK_ROOT}/{info.filename}", "exec", dont_inherit=True)
            except (SyntaxError, ValueError):  # templates and Python 2 leftovers in some wheels
                skipped += 1
                continue
            entry = zipfile.ZipInfo(target, info.date_time)
            entry.external_attr = info.external_attr
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, _code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False))
            compiled += 1
    return compiled, skipped


if __name__ == "__main__":
    done, failed = compile_zip(sys.argv[1])
    print(f"bytecode: {done} modules compiled for {sys.implementation.cache_tag}, {failed} skipped")
