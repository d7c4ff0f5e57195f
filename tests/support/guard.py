"""Audit hooks that keep tests where they belong (``sys.addaudithook``: the interpreter reports every
connect, bind and process start to them before it happens, and an exception raised there stops it).

- ``only_this_machine``, for every test: no connection to an address other than loopback.
- ``ServerGuard``, armed around each unit test: no process started (moto, SeaweedFS, node and
  ``python -m`` are all processes) and no connection to a port that no socket of this process holds,
  so a unit test can use a server it runs itself (the fault server) and nothing else, moto included.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
import weakref
from typing import Any

PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork",
                            "os.forkpty", "os.spawn", "pty.spawn"})


def is_loopback(host: Any) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def only_this_machine(event: str, args: tuple[Any, ...]) -> None:
    """Refuses, before any packet is sent, a connection to an address that is not loopback."""
    if event == "socket.connect" and isinstance(args[1], tuple) and not is_loopback(args[1][0]):
        raise ConnectionRefusedError(f"a test may only contact this machine, not {args[1][0]!r}")


class ServerGuard:
    """While ``running`` names a test, what a unit test may not do raises and is recorded (so that the
    test fails even where it catches the error)."""

    def __init__(self) -> None:
        self.running: str | None = None
        self.violations: list[str] = []
        self._bound: weakref.WeakSet[Any] = weakref.WeakSet()

    def install(self) -> ServerGuard:
        sys.addaudithook(self._hook)
        return self

    def ports_held_here(self) -> set[int]:
        """The ports that sockets of this process are bound to: the servers it runs itself."""
        ports = set()
        for sock in list(self._bound):
            with contextlib.suppress(OSError, IndexError, TypeError):  # closed, or not an internet socket
                ports.add(sock.getsockname()[1])
        return ports

    def refusal(self, event: str, args: tuple[Any, ...]) -> str | None:
        """Why a unit test may not do this, or None."""
        if event in PROCESS_EVENTS:
            return f"a unit test started a process ({event}); it belongs in tests/integration"
        if event == "socket.connect" and isinstance(args[1], tuple):
            host, port = args[1][:2]
            if not is_loopback(host) or port not in self.ports_held_here():
                return (f"a unit test connected to {host}:{port}, a server it does not run itself; "
                        "it belongs in tests/integration")
        return None

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.bind":
            with contextlib.suppress(TypeError):  # a socket type that cannot be weakly referenced
                self._bound.add(args[0])
            return
        if self.running is None:
            return
        why = self.refusal(event, args)
        if why is not None:
            self.violations.append(f"{self.running}: {why}")
            raise RuntimeError(why)
