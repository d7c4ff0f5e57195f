"""A CI360-like audience: a headerless CSV data file and its JSON metadata layout, generated as a stream.

The data is deterministic (seeded), so a file cached under ``.bench/`` can be reused between runs and
its expected bytes are known without keeping them in memory. Rows look like a CI360 export: the
identity_id UUID first, an integer external id, an email, a name that is quoted when it holds a comma
(and, now and then, an escaped quote), a city that sometimes needs quoting too, dates, a datetime, a
decimal with empty values here and there, and a boolean.

For speed (~40 MB/s on one core) every row has a fresh random UUID and its own external id, while the
fields after them are drawn from a pool of 131,072 random rows (about 14 MB): far beyond deflate's 32 KiB
window, so a compressor sees them as fresh rows.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator

GENERATOR_VERSION = 1  # bump when the rows change, so cached files are regenerated

COLUMNS: list[tuple[str, str]] = [
    ("identity_id", "CHARACTER"),
    ("external_id", "NUMERIC"),
    ("email", "CHARACTER"),
    ("full_name", "CHARACTER"),
    ("city", "CHARACTER"),
    ("signup_date", "DATE"),
    ("last_order_dttm", "DATETIME"),
    ("order_total", "NUMERIC"),
    ("opt_in", "BOOLEAN"),
]

FIRST = ["ana", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "iris", "jack", "karin", "liam",
         "maria", "noah", "olivia", "pavel", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "zoë"]
LAST = ["smith", "jones", "garcia", "müller", "rossi", "kowalski", "nguyen", "o'neil", "dubois", "silva",
        "andersen", "tanaka", "cohen", "fischer", "lopez", "novak", "brown", "wilson", "martin", "kim"]
DOMAINS = ["example.com", "mail.example.org", "example.net", "corp.example.co.uk"]
CITIES = ["Raleigh", "Cary", "Chicago", "Berlin", "Paris", "São Paulo", "Tokyo", '"Washington, D.C."',
          "Madrid", '"Portland, OR"', "Leeds", "Zürich", "Austin", '"St. Louis, MO"', "Oslo", "Pune"]


def metadata_json() -> bytes:
    return json.dumps([{"columnName": name, "dataType": kind} for name, kind in COLUMNS]).encode()


def header_line() -> bytes:
    return (",".join(name for name, _ in COLUMNS) + "\n").encode()


def _pools(rng: random.Random) -> tuple[list[str], list[str], list[str], list[str]]:
    start = dt.date(2015, 1, 1)
    dates = [(start + dt.timedelta(days=n)).isoformat() for n in range(3650)]
    times = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(0, 60, 7)]
    emails, names = [], []
    for first in FIRST:
        for last in LAST:
            local = f"{first}.{last}".replace("'", "")
            emails.extend(f"{local}{n}@{domain}" for n in (1, 7, 42, 1988) for domain in DOMAINS)
            display = f"{first.title()} {last.title()}"
            # Mostly bare; "Last, First" needs quoting; a nickname brings an escaped quote.
            names.extend([display, display, display, f'"{last.title()}, {first.title()}"'])
            if last == "o'neil":
                names.append(f'"{first.title()} ""Red"" {last.title()}"')
    rng.shuffle(emails)
    rng.shuffle(names)
    return dates, times, emails, names


def rows(segment: int, target_bytes: int, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Yield about ``chunk_bytes`` of whole rows at a time until at least ``target_bytes`` are out.

    Segments are independent (own seed, own id range), so 4x is segments 0..3 and 1x is segment 0.
    """
    rng = random.Random(f"ci360-bench-{GENERATOR_VERSION}-{segment}")
    dates, times, emails, names = _pools(rng)
    bits = rng.getrandbits
    tails = []  # everything after the two ids, drawn afresh for a pool large enough to defeat gzip's window
    for _ in range(1 << 17):
        r = bits(128)
        total = "" if r & 0xF == 0 else f"{((r >> 4) & 0xFFFFF) // 100}.{(r >> 24) % 100:02d}"
        signup = "" if (r >> 31) & 0x1F == 0 else dates[(r >> 36) % len(dates)]
        tails.append(f"{emails[(r >> 64) % len(emails)]},{names[(r >> 80) % len(names)]},"
                     f"{CITIES[(r >> 96) % len(CITIES)]},{signup},{dates[(r >> 48) % len(dates)]} "
                     f"{times[(r >> 100) % len(times)]},{total},{'true' if r >> 125 & 1 else 'false'}\n")
    mask = len(tails) - 1
    batch = 4096
    external = 10_000_000 + segment * 100_000_000
    produced = 0
    while produced < target_bytes:
        lines = []
        size = 0
        while size < chunk_bytes:
            hexes = rng.randbytes(16 * batch).hex()
            picks = rng.randbytes(4 * batch)
            for i in range(batch):
                h = hexes[32 * i: 32 * i + 32]
                pick = int.from_bytes(picks[4 * i: 4 * i + 4])
                line = (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[pick >> 30]}{h[17:20]}-{h[20:]},"
                        f"{external + i},{tails[pick & mask]}")
                lines.append(line)
                size += len(line)
            external += batch
        chunk = "".join(lines).encode()
        produced += len(chunk)
        yield chunk
