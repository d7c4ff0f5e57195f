from __future__ import annotations

from transforms.redact import redact_url, scrub

URL = ("https://ci-360-datahub-transfers-demo-us-east-1.s3.amazonaws.com/exports/1019/x_data"
       "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Security-Token=tok&X-Amz-Signature=sig")


def test_redact_url_keeps_where_and_drops_the_credentials() -> None:
    assert redact_url(URL) == "https://ci-360-datahub-transfers-demo-us-east-1.s3.amazonaws.com/exports/1019/x_data"
    assert redact_url("http://user:pw@127.0.0.1:9000/b/k?a=1") == "http://127.0.0.1:9000/b/k"


def test_scrub_removes_queries_from_free_text_and_bare_paths() -> None:
    text = f"failed: {URL} and again '/b/k?X-Amz-Signature=sig': retry"
    scrubbed = scrub(text)
    assert "sig" not in scrubbed.replace("Signature", "") and "tok" not in scrubbed
    assert "x_data?<redacted>" in scrubbed and "/b/k?<redacted>'" in scrubbed
    assert scrub("what? nothing to see") == "what? nothing to see"
