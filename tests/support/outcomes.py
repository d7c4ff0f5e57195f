"""What the outcome tests share (tests/integration/outcomes/, the fan-out's): CI360's access point as the
fake gateway knows it, the bus whose rule routes the connector's events to a queue, and the one event
CI360 received. The fixtures (``gateway``, ``bus``, ``outcomes``) are in tests/integration/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import routed_events

TENANT = "0dh01d000a00013a3a2cac00"
SECRET = "it-0123456789abcdef-client-secret"
TRACKING = "55e09dc2-1303-4be2-aa0f-3d9877154a27"


@dataclass
class Bus:
    name: str
    queue_url: str

    def events(self, wait_s: int = 1) -> list[dict[str, Any]]:
        return routed_events(self.queue_url, wait_s)


def told(gateway: FakeCI360Gateway) -> dict[str, str]:
    """The one event CI360 received, its token verified as CI360 verifies it."""
    (request,) = [r for r in gateway.requests if r.status == 201]
    assert request.claims == {"clientID": TENANT} and request.header["alg"] == "HS256"
    return request.event
