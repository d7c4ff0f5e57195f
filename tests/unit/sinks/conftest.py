"""An S3 client as the functions build it, whose requests never leave the process: a ``before-send``
handler answers them, so the endpoint named below is never contacted."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from transforms.aws import client

_COMPLETE = (b'<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket>'
             b"<Key>k</Key><ETag>\"e\"</ETag></CompleteMultipartUploadResult>")
_CREATE = (b'<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket>'
           b"<Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """An S3 client as the functions build it, aimed at an HTTPS endpoint; every request is kept."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://127.0.0.1:9")
    s3 = client("s3")
    requests: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        requests.append(request)
        if "uploads" in request.url.split("?", 1)[-1] and request.method == "POST":
            payload = _CREATE
        elif request.method == "POST":
            payload = _COMPLETE
        else:
            payload = b""
        headers = {"ETag": '"e"'}
        if request.method == "PUT":  # S3 echoes the part's (or the object's) checksum
            sent = request.headers.get("x-amz-checksum-crc32", b"")
            headers["x-amz-checksum-crc32"] = sent.decode() if isinstance(sent, bytes) else sent
        return AWSResponse(request.url, 200, headers, _Raw(payload))

    s3.meta.events.register("before-send.s3", answer)
    return s3, requests
