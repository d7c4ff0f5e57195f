"""The streaming core of the CI360 to S3 connector: no Lambda types in here."""

import os

from transforms.memory import configure as _configure_memory

# Before anything loads pyarrow: Arrow reads its default pool once (see transforms.memory).
_configure_memory()

# Powertools child loggers attach to the parent by service name, so both sides must agree on it.
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "ci360-s3-connector")

# Presigned URLs are credentials: every log record of every logger is scrubbed from the first import on.
from transforms.redact import install_log_scrubbing  # noqa: E402

install_log_scrubbing()
