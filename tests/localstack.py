"""A local S3 for tests and the demo: moto's server in its own process, reached over real HTTP.

A separate process (not moto's in-process thread) keeps the server's own file and memory use out
of the measurements and the disk-write audit of the process under test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import urllib3
from botocore.config import Config

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 30.0) -> MotoServer:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("moto server exited at start")
            try:
                urllib3.request("GET", f"{endpoint}/moto-api/", timeout=1.0, retries=False)
                return cls(process, endpoint)
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        process.kill()
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def environ(self) -> dict[str, str]:
        """The standard boto3 settings that point every client at this server."""
        return {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ENDPOINT_URL_S3": self.endpoint}


def s3_client(endpoint: str | None = None) -> Any:
    """Signature v4, so presigned URLs carry X-Amz-Signature and X-Amz-Credential as CI360's do."""
    return boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))


def unique_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stage(s3: Any, bucket: str, data: bytes, metadata: bytes, ttl: int = 3600) -> tuple[str, str]:
    """Stage an audience as CI360 does and return presigned GET URLs (data, metadata)."""
    prefix = f"exports/1019/{uuid.uuid4()}"
    s3.put_object(Bucket=bucket, Key=f"{prefix}_data", Body=data)
    s3.put_object(Bucket=bucket, Key=f"{prefix}_metadata", Body=metadata)
    return tuple(  # type: ignore[return-value]
        s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=ttl)
        for key in (f"{prefix}_data", f"{prefix}_metadata")
    )


def webhook_payload(data_url: str, metadata_url: str, filename: str, occurrence_id: str | None = None,
                    **send_parameters: str) -> dict[str, Any]:
    """A payload shaped like samples/webhook.json, including SAS's ``"s3_filename "`` spelling."""
    return {
        "task": {
            "occurrenceId": occurrence_id or str(uuid.uuid4()),
            "taskId": "8eb42f45-7991-48ae-a30a-8e033a88668d",
            "taskName": "AWS S3 Upload",
            "taskVersionId": "zTRWmPpTMIwahUbzoaLhlCeUOum984mk",
            "outboundEventName": "matchDataUploaded",
        },
        "tenant": {"externalTenantId": "0dh01d000a00013a3a2cac00", "tenantMoniker": "dmofin1"},
        "contactResponse": {"responseTrackingCode": "55e09dc2-1303-4be2-aa0f-3d9877154a27"},
        "presignedUrls": {"metadataFile": metadata_url, "dataFile": data_url},
        "sendParameters": {"s3_filename ": filename, **send_parameters},
    }


def pending_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def object_keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

