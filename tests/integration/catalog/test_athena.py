"""What importing the Athena DDL module loads, in a fresh interpreter (the DDL itself:
tests/unit/catalog/test_athena.py)."""

from __future__ import annotations

import subprocess
import sys

# -- one description for DDL and Glue ------------------------------------------------------------


def test_athena_module_imports_neither_boto3_nor_pyarrow() -> None:
    code = ("import sys, transforms.catalog.athena; "
            "sys.exit(sorted({'boto3', 'botocore', 'pyarrow'} & set(sys.modules)) != [])")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
