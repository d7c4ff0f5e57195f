"""A local S3 for tests and the demo: moto's server in its own process, reached over real HTTP.

A separate process (not moto's in-process thread) keeps the server's own file and memory use out
of the measurements and the disk-write audit of the process under test.
"""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
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
    """A port that was free a moment ago (released again: another process may take it before use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> socket.socket:
    """A port on 127.0.0.1 that refuses connections for as long as the returned socket stays open: it is
    bound but not listening, so nothing else can take the port meanwhile. Close it when done."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@dataclass
class MotoServer:
    process: subprocess.Popen[str]
    endpoint: str

    @classmethod
    def start(cls, timeout: float = 30.0) -> MotoServer:
        """The server binds a port of the system's choosing (port 0) and says which: no port is chosen
        here and released for it to take, so no other process can take it in between."""
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        ports: queue.Queue[int] = queue.Queue()

        def read_log() -> None:  # and keep reading it, or a full pipe would stall the server
            for line in process.stderr:  # type: ignore[union-attr]
                if found := _LISTENING.search(line):
                    ports.put(int(found.group(1)))

        threading.Thread(target=read_log, name="moto-log", daemon=True).start()
        try:
            endpoint = f"http://127.0.0.1:{ports.get(timeout=timeout)}"
        except queue.Empty:
            process.kill()
            raise RuntimeError("moto server did not say where it listens in time") from None
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

