"""The AWS SDK, met in one place: how every client is configured, and what a failed call becomes.

Our errors name the service's own error code and HTTP status, never botocore's text (which can carry
request details), and the same client configuration serves the functions and the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

SDK_ERRORS = (ClientError, BotoCoreError)  # a refusal (the service answered), or no answer at all

_RETRIES = {"retries": {"mode": "standard"}}


@dataclass(frozen=True)
class AwsFailure:
    """A failed SDK call: the service's error code (the exception's type when nothing answered) and the
    service's HTTP status (None then)."""

    code: str
    http_status: int | None = None


def aws_failure(exc: BaseException) -> AwsFailure:
    response = getattr(exc, "response", None)
    if isinstance(exc, ClientError) and isinstance(response, dict):
        return AwsFailure(str(response.get("Error", {}).get("Code") or "Unknown"),
                          response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    return AwsFailure(type(exc).__name__)


@contextmanager
def translated(error: Callable[[AwsFailure], Exception]) -> Iterator[None]:
    """Run the block; an SDK failure in it is raised as ``error(failure)``, botocore's own left behind."""
    try:
        yield
    except SDK_ERRORS as exc:
        raise error(aws_failure(exc)) from None


def client(service: str, **config: Any) -> Any:
    """A client by the standard configuration chain (``AWS_ENDPOINT_URL_<SERVICE>`` included), with
    standard retries. S3's signs with SigV4 (for the optional result link) and keeps a connection pool
    large enough for the concurrent part uploads.

    S3's signs no payload: every body carries its CRC32 (the sink sends one with each part and with a
    single put), which S3 checks. botocore would otherwise hash every byte with SHA-256 again for the
    signature (about 3 s of CPU per GB here) whenever a checksum is given in a header, even over
    HTTPS, and always over plain HTTP (a local stack)."""
    import boto3  # only the entry points build clients; the core is handed them

    if service == "s3":
        return boto3.client("s3", config=Config(signature_version="s3v4", max_pool_connections=32,
                                                s3={"payload_signing_enabled": False}, **_RETRIES))
    return boto3.client(service, config=Config(**{**_RETRIES, **config}))
