"""Target object keys: what S3 and Athena can live with."""

from __future__ import annotations

from transforms.errors import ValidationError

MAX_KEY_BYTES = 1024


def validate_key(key: str, name: str = "sendParameters.s3_filename") -> str:
    """Refuse keys that S3 rejects or that would land somewhere other than the user meant."""
    field = [{"field": name}]
    if key.startswith("/"):
        raise ValidationError(f"{name} must not start with '/'", field)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValidationError(f"{name} must not contain control characters", field)
    if any(segment in ("..", ".") for segment in key.split("/")):
        raise ValidationError(f"{name} must not contain '.' or '..' segments", field)
    if key.endswith("/"):
        raise ValidationError(f"{name} must name an object, not a folder", field)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValidationError(f"{name} is longer than S3's {MAX_KEY_BYTES}-byte limit", field)
    return key
