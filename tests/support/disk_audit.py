"""Webhook landings in a process of their own, counting what that process writes to local storage.

    python -m tests.support.disk_audit PROBE_DIR   (a JSON list of API Gateway events on stdin)

Run by tests/integration/pipeline/test_pipeline.py with its working directory and TMPDIR (TMP, TEMP)
set to one empty directory, which this process deletes once its imports are done, before any landing:
no file can then be created in the working directory or in TMPDIR at all, as root too (a deleted
directory takes no new entries).

For each event it prints, as JSON on its last line of stdout: the handler's answer, the growth of
``write_bytes`` in /proc/self/io across the landing, and the files Python opened for writing meanwhile
(an audit hook). ``write_bytes`` is the kernel's count of the bytes this process (every thread, native
code included) caused to be written to a storage-backed filesystem: a temporary file counts even if it
is deleted before the kernel writes it back, and so do writes through a shared memory map. It is taken
around each landing only, so imports, which write nothing here (PYTHONDONTWRITEBYTECODE is set), stay
outside it. (``wchar`` counts every byte given to write() and send(), sockets and pipes included: the
upload to S3 and the logs would drown any disk write in it, so it audits nothing.)

Before the landings, a control writes 1 MiB with native code (Arrow's C++ file writer, which Python's
audit hooks cannot see) into PROBE_DIR and reports how much ``write_bytes`` grew: proof that the counter
works on this machine and filesystem.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

CONTROL_BYTES = 1024 * 1024


def written_to_storage() -> int:
    with open("/proc/self/io", encoding="ascii") as io_counters:
        fields = dict(line.split(": ", 1) for line in io_counters.read().splitlines())
    return int(fields["write_bytes"])


class PythonWrites:
    """Every file Python opens for writing while armed (an audit hook: it cannot be removed)."""

    def __init__(self) -> None:
        self.armed = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed or event != "open":
            return
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        if writing:
            self.paths.append(str(path))


def control(probe_dir: str) -> int:
    """How much ``write_bytes`` grows when native code writes CONTROL_BYTES to a file in probe_dir."""
    import pyarrow as pa

    path = os.path.join(probe_dir, "control.bin")
    before = written_to_storage()
    with pa.OSFile(path, "wb") as native:
        native.write(os.urandom(CONTROL_BYTES))
    grown = written_to_storage() - before
    os.unlink(path)
    return grown


class Context:
    """What the handler reads of a Lambda context; a worker's time budget (a loaded machine is slow)."""

    function_name = "ci360-s3-connector-disk-audit-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    aws_request_id = "disk-audit"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def main() -> None:
    events = json.load(sys.stdin)
    from handler.webhook import handle

    os.rmdir(os.getcwd())  # the working directory and TMPDIR: from now on nothing can be created there
    python_writes = PythonWrites()
    report: dict[str, Any] = {"control": control(sys.argv[1]), "landings": []}
    for event in events:
        python_writes.paths.clear()
        python_writes.armed = True
        before = written_to_storage()
        answer = handle(event, Context())
        grown = written_to_storage() - before
        python_writes.armed = False
        report["landings"].append({"statusCode": answer["statusCode"], "body": json.loads(answer["body"]),
                                   "write_bytes": grown, "python_writes": list(python_writes.paths)})
    sys.stdout.write("\n" + json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
