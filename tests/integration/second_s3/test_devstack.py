"""The local stack's own promises: a server that must be handed its ports survives losing one."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from devstack import localstack
from devstack.localstack import SeaweedServer, ServerUnavailable


def test_seaweedfs_starts_again_on_fresh_ports_when_one_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process takes the S3 port picked for `weed` before it binds it: the start is retried on
    ports picked afresh, and the server that answers is on none of the taken ones."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    picks: list[list[int]] = []
    real = localstack.free_ports

    def first_pick_collides(count: int) -> list[int]:
        ports = real(count)
        if not picks:
            ports[3] = taken  # the S3 gateway's port, in SeaweedServer's order
        picks.append(ports)
        return ports

    monkeypatch.setattr(localstack, "free_ports", first_pick_collides)
    try:
        try:
            server = SeaweedServer.start()
        except ServerUnavailable as exc:
            pytest.skip(str(exc))
        try:
            assert len(picks) == 2
            assert server.endpoint != f"http://127.0.0.1:{taken}"
            assert server.client().list_buckets()["Buckets"] == []
        finally:
            server.stop()
    finally:
        squatter.close()


def test_free_ports_are_distinct() -> None:
    ports: Any = localstack.free_ports(16)
    assert len(set(ports)) == 16
