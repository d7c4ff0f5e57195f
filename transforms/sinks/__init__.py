"""Where it goes: the S3 sink (multipart, checksums, encryption, conditional writes)."""
