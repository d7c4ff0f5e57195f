"""The benchmark's target S3: just the calls an upload makes, fast enough never to be the bottleneck.

moto's server writes at about 60 MB/s and assembles a completed multipart object in memory, so against
it a benchmark measures moto. This one answers CreateBucket, PutObject, CreateMultipartUpload,
UploadPart, CompleteMultipartUpload, AbortMultipartUpload, HeadObject, GetObject and DeleteObject over real
HTTP (boto3 signs and sends exactly what it sends to S3); each part's body goes to a file of its own as it
arrives, and a completed object is the list of its parts, so completing costs nothing (S3's does not
either). Signatures are not checked. The benchmark reads the objects back from ``--dir`` to verify them.

S3 caps each connection in both directions, uploads as well as downloads: ``--cap`` (bytes a second, 0:
loopback's own speed) paces every request body as bench/rangeserver.py paces every response, so
a part takes at least its size over the cap, as it would on its own connection to S3.

``python -m bench.sinkserver --port P --dir D [--cap BYTES_PER_S]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

COPY = 1024 * 1024
SLICE = 256 * 1024  # bytes read between two looks at the clock when paced (as bench/rangeserver.py sends)


def object_parts(root: Path, bucket: str, key: str) -> list[Path] | None:
    """The files an object consists of, in order (None: no such object)."""
    manifest = root / "objects" / bucket / (quote(key, safe="") + ".json")
    if not manifest.exists():
        return None
    return [Path(p) for p in json.loads(manifest.read_text())]


def delete_object(root: Path, bucket: str, key: str) -> None:
    parts = object_parts(root, bucket, key) or []
    for path in parts:
        path.unlink(missing_ok=True)
    if parts:
        with_parent = parts[0].parent
        if with_parent.name.startswith("upload-"):
            shutil.rmtree(with_parent, ignore_errors=True)
    (root / "objects" / bucket / (quote(key, safe="") + ".json")).unlink(missing_ok=True)


def make_handler(root: Path, cap: int = 0) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _target(self) -> tuple[str, str, dict[str, list[str]]]:
            url = urlsplit(self.path)
            bucket, _, key = url.path.lstrip("/").partition("/")
            return unquote(bucket), unquote(key), parse_qs(url.query, keep_blank_values=True)

        def _body_to(self, path: Path | None) -> int:
            """Read the body into a file through one buffer reused slice after slice (a new bytes object
            for each slice cost this server ~10% more CPU, on the cores the contenders run on)."""
            length = int(self.headers.get("Content-Length") or 0)
            left = length
            handle = open(path, "wb") if path else None  # noqa: SIM115 (closed below)
            began = time.monotonic()
            view = memoryview(bytearray(SLICE if cap else COPY))
            try:
                while left > 0:
                    got = self.rfile.readinto(view[:min(len(view), left)])
                    if not got:
                        break
                    if handle:
                        handle.write(view[:got])
                    left -= got
                    if cap:  # the sender is held back by TCP's window while this sleeps
                        ahead = began + (length - left) / cap - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
            finally:
                if handle:
                    handle.close()
            return length - left

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {**(headers or {}), "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _checksum_headers(self) -> dict[str, str]:
            return {k: v for k, v in self.headers.items() if k.lower().startswith("x-amz-checksum-")}

        def _manifest(self, bucket: str, key: str, parts: list[Path]) -> None:
            folder = root / "objects" / bucket
            folder.mkdir(parents=True, exist_ok=True)
            (folder / (quote(key, safe="") + ".json")).write_text(json.dumps([str(p) for p in parts]))

        def do_PUT(self) -> None:  # noqa: N802
            bucket, key, query = self._target()
            if not key:
                self._body_to(None)
                (root / "objects" / bucket).mkdir(parents=True, exist_ok=True)
                self._reply(200, headers={"Location": f"/{bucket}"})
                return
            if "uploadId" in query:
                folder = root / f"upload-{query['uploadId'][0]}"
                number = int(query["partNumber"][0])
                size = self._body_to(folder / f"{number:05d}")
                self._reply(200, headers={"ETag": f'"{number}-{size}"', **self._checksum_headers()})
                return
            path = root / "blobs" / uuid.uuid4().hex
            path.parent.mkdir(parents=True, exist_ok=True)
            size = self._body_to(path)
            self._manifest(bucket, key, [path])
            self._reply(200, headers={"ETag": f'"{size}"', **self._checksum_headers()})

        def do_POST(self) -> None:  # noqa: N802
            bucket, key, query = self._target()
            if "uploads" in query:
                self._body_to(None)
                upload_id = uuid.uuid4().hex
                (root / f"upload-{upload_id}").mkdir(parents=True)
                body = (f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                        f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>").encode()
                self._reply(200, body, {"Content-Type": "application/xml"})
                return
            if "uploadId" in query:
                length = int(self.headers.get("Content-Length") or 0)
                listing = self.rfile.read(length).decode()
                folder = root / f"upload-{query['uploadId'][0]}"
                numbers = [int(n) for n in re.findall(r"<PartNumber>(\d+)</PartNumber>", listing)]
                self._manifest(bucket, key, [folder / f"{n:05d}" for n in numbers])
                body = (f"<CompleteMultipartUploadResult><Location>/{bucket}/{key}</Location>"
                        f"<Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>\"done-{len(numbers)}\"</ETag>"
                        f"</CompleteMultipartUploadResult>").encode()
                self._reply(200, body, {"Content-Type": "application/xml"})
                return
            self._body_to(None)
            self._reply(400, b"<Error><Code>NotImplemented</Code></Error>")

        def do_DELETE(self) -> None:  # noqa: N802
            bucket, key, query = self._target()
            if "uploadId" in query:
                shutil.rmtree(root / f"upload-{query['uploadId'][0]}", ignore_errors=True)
            else:
                delete_object(root, bucket, key)
            self._reply(204)

        def do_HEAD(self) -> None:  # noqa: N802
            bucket, key, _ = self._target()
            parts = object_parts(root, bucket, key)
            if parts is None:
                self._reply(404)
                return
            size = sum(p.stat().st_size for p in parts)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("ETag", f'"{size}-{len(parts)}"')
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            """GetObject, whole (the fan-out's steps read their small staged objects back)."""
            bucket, key, _ = self._target()
            parts = object_parts(root, bucket, key)
            if parts is None:
                self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>",
                            {"Content-Type": "application/xml"})
                return
            size = sum(p.stat().st_size for p in parts)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("ETag", f'"{size}-{len(parts)}"')
            self.end_headers()
            for part in parts:
                with open(part, "rb") as handle:
                    while chunk := handle.read(COPY):
                        self.wfile.write(chunk)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cap", type=int, default=0, help="bytes a second a connection (0: no cap)")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(root, args.cap))
    server.daemon_threads = True
    os.write(1, b"ready\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
