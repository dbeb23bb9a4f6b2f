"""Downloads, retries, rate limits and the JSONL cache against a loopback HTTP server."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pytest

from tests.helpers.httpfixtures import FakeClock, FakeServer, Reply, http_server  # noqa: F401  (fixture import)
from kgcl_lib.data.download import (
    ChecksumError,
    DownloadError,
    HttpClient,
    HttpStatusError,
    JsonlCache,
    Manifest,
    QuotaExceeded,
    RetryPolicy,
    TokenBucket,
    cached_json,
    download,
    parse_retry_after,
    redact,
)

DATA = bytes(range(256)) * 4096  # 1 MiB, not all-equal bytes so splices would show


def client(clock: FakeClock, **retry) -> HttpClient:
    return HttpClient(
        retry=RetryPolicy(**{"backoff_base_s": 0.5, "backoff_max_s": 4.0, "timeout_s": 10.0, **retry}),
        sleep=clock.sleep,
        clock=clock.monotonic,
        now=clock.now,
        rng=np.random.default_rng(0),
    )


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# The fake server itself -----------------------------------------------------------------------
def test_server_binds_loopback_only_and_stops():
    with FakeServer(max_lifetime_s=5) as s:
        assert s.httpd.server_address[0] == "127.0.0.1"
    assert s._stopped


# Full download, verification, rerun ------------------------------------------------------------
def test_full_download_verified_and_rerun_makes_no_request(http_server, tmp_path):
    http_server.file("/f.bin", DATA)
    clk = FakeClock()
    c = client(clk)
    out = c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert out.read_bytes() == DATA
    assert not (tmp_path / "f.bin.part").exists()
    assert http_server.count() == 1
    c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert http_server.count() == 1  # verified locally, nothing requested


def test_module_level_download_helper(http_server, tmp_path):
    http_server.file("/g.bin", b"hello")
    out = download(http_server.url("/g.bin"), tmp_path / "g.bin", sha256=sha(b"hello"), progress=False)
    assert out.read_bytes() == b"hello"


# Resume -----------------------------------------------------------------------------------------
def test_resume_after_interrupted_download(http_server, tmp_path):
    cut = 300_000
    http_server.file("/f.bin", DATA, cut_first=[cut])
    c = client(FakeClock(), max_retries=0)  # first call gives up at the interruption
    with pytest.raises(DownloadError, match="connection closed after 300000 of 1048576 bytes"):
        c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == cut and not (tmp_path / "f.bin").exists()

    c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA and not part.exists()
    ranges = [r.headers.get("Range") for r in http_server.requests("/f.bin")]
    assert ranges == [None, f"bytes={cut}-"]  # only the missing tail was asked for


def test_resume_within_one_call_with_backoff(http_server, tmp_path):
    http_server.file("/f.bin", DATA, cut_first=[1000, 5000])
    clk = FakeClock()
    c = client(clk, max_retries=3)
    c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert [r.headers.get("Range") for r in http_server.requests()] == [None, "bytes=1000-", "bytes=6000-"]
    # equal-jitter back-off: attempt 0 in [0.25, 0.5], attempt 1 in [0.5, 1.0]
    assert len(clk.sleeps) == 2 and 0.25 <= clk.sleeps[0] <= 0.5 and 0.5 <= clk.sleeps[1] <= 1.0
    assert c.stats["retries"] == 2


def test_server_ignoring_range_restarts_cleanly(http_server, tmp_path):
    http_server.file("/f.bin", DATA, cut_first=[1234], ignore_range=True)
    c = client(FakeClock(), max_retries=2)
    c.download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA  # 200 on the retry → part truncated, not appended


def test_complete_part_file_answered_416_is_finished(http_server, tmp_path):
    http_server.file("/f.bin", DATA)
    (tmp_path / "f.bin.part").write_bytes(DATA)  # crashed after the last byte, before the rename
    client(FakeClock()).download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=sha(DATA), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert http_server.count() == 1


def test_stale_oversized_part_is_restarted(http_server, tmp_path):
    http_server.file("/f.bin", b"short")
    (tmp_path / "f.bin.part").write_bytes(b"something much longer than the file")
    client(FakeClock(), max_retries=1).download(http_server.url("/f.bin"), tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == b"short"


# Checksums ----------------------------------------------------------------------------------
def test_checksum_mismatch_clear_error_and_no_file_left(http_server, tmp_path):
    http_server.file("/f.bin", DATA)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as e:
        client(FakeClock()).download(http_server.url("/f.bin"), tmp_path / "f.bin", sha256=wrong, progress=False)
    msg = str(e.value)
    assert wrong in msg and sha(DATA) in msg and "f.bin" in msg
    assert list(tmp_path.iterdir()) == []  # neither the file nor its part


def test_md5_mismatch(http_server, tmp_path):
    http_server.file("/f.bin", DATA)
    with pytest.raises(ChecksumError, match="md5"):
        client(FakeClock()).download(http_server.url("/f.bin"), tmp_path / "f.bin", md5="f" * 32, progress=False)
    good = hashlib.md5(DATA).hexdigest()
    client(FakeClock()).download(http_server.url("/f.bin"), tmp_path / "f.bin", md5=good, progress=False)
    assert (tmp_path / "f.bin").exists()


def test_trust_on_first_use_manifest(http_server, tmp_path):
    man = Manifest(tmp_path / "manifest.json")
    http_server.file("/f.bin", DATA)
    c = client(FakeClock())
    c.download(http_server.url("/f.bin"), tmp_path / "a" / "f.bin", manifest=man, manifest_key="SRC/f.bin", progress=False)
    assert man.get("SRC/f.bin")["sha256"] == sha(DATA)
    assert json.loads((tmp_path / "manifest.json").read_text())["SRC/f.bin"]["size"] == len(DATA)

    http_server.file("/f.bin", DATA[::-1])  # upstream changed
    with pytest.raises(ChecksumError, match="recorded on first download"):
        c.download(http_server.url("/f.bin"), tmp_path / "b" / "f.bin", manifest=man, manifest_key="SRC/f.bin", progress=False)
    assert not (tmp_path / "b" / "f.bin").exists() and not (tmp_path / "b" / "f.bin.part").exists()
    c.download(http_server.url("/f.bin"), tmp_path / "b" / "f.bin", manifest=man, manifest_key="SRC/f.bin", retrust=True, progress=False)
    assert man.get("SRC/f.bin")["sha256"] == sha(DATA[::-1])


def test_mirror_fallback(http_server, tmp_path):
    http_server.file("/mirror/f.bin", DATA)
    c = client(FakeClock())
    c.download([http_server.url("/gone/f.bin"), http_server.url("/mirror/f.bin")], tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == DATA
    assert [r.path for r in http_server.requests()] == ["/gone/f.bin", "/mirror/f.bin"]  # 404 is not retried


def test_all_urls_fail_names_them(http_server, tmp_path):
    with pytest.raises(DownloadError, match="(?s)a.bin.*HTTP 404.*b/a.bin"):
        client(FakeClock()).download([http_server.url("/a.bin"), http_server.url("/b/a.bin")], tmp_path / "a.bin", progress=False)


# Retries and Retry-After --------------------------------------------------------------------------
def test_429_with_retry_after_is_retried(http_server):
    http_server.sequence("/api", [Reply(429, b"{}", {"Retry-After": "7"}), Reply(200, b'{"ok": 1}')])
    clk = FakeClock()
    r = client(clk).get_json(http_server.url("/api"))
    assert r.ok and r.data == {"ok": 1}
    assert clk.sleeps == [7.0] and http_server.count("/api") == 2


def test_503_retry_after_http_date(http_server):
    clk = FakeClock()  # now() = 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT
    http_server.sequence("/api", [Reply(503, b"", {"Retry-After": "Tue, 14 Nov 2023 22:13:50 GMT"}), Reply(200, b"[1]")])
    assert client(clk).get_json(http_server.url("/api")).data == [1]
    assert clk.sleeps == [30.0]


def test_5xx_backoff_is_bounded(http_server):
    http_server.raw("/api", b"oops", status=502)
    clk = FakeClock()
    with pytest.raises(DownloadError, match="gave up after 3 attempts"):
        client(clk, max_retries=2).get_json(http_server.url("/api"))
    assert http_server.count("/api") == 3
    assert len(clk.sleeps) == 2 and 0.25 <= clk.sleeps[0] <= 0.5 and 0.5 <= clk.sleeps[1] <= 1.0


def test_non_retryable_status_is_raised_once(http_server):
    http_server.raw("/api", b'{"status_code": 7}', status=401)
    with pytest.raises(HttpStatusError) as e:
        client(FakeClock()).get_json(http_server.url("/api"))
    assert e.value.status == 401 and http_server.count() == 1


def test_daily_quota_stops_without_retry(http_server):
    body = {"error": {"code": 429, "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'",
                      "errors": [{"reason": "rateLimitExceeded"}]}}
    http_server.json("/books", body, status=429)
    with pytest.raises(QuotaExceeded, match="daily quota"):
        client(FakeClock()).get_json(http_server.url("/books"))
    assert http_server.count() == 1


def test_retry_after_longer_than_allowed_is_quota(http_server):
    http_server.raw("/api", b"", status=429, headers={"Retry-After": "3600"})
    clk = FakeClock()
    with pytest.raises(QuotaExceeded, match="3600"):
        client(clk, max_retry_after_s=60).get_json(http_server.url("/api"))
    assert clk.sleeps == []


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0  # in the past: go now
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_backoff_growth_and_cap():
    p = RetryPolicy(backoff_base_s=1.0, backoff_max_s=8.0)
    rng = np.random.default_rng(1)
    for attempt, d in ((0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)):
        xs = [p.backoff(attempt, rng) for _ in range(200)]
        assert d / 2 <= min(xs) and max(xs) <= d


# Rate limiter -----------------------------------------------------------------------------------
def test_token_bucket_hand_computed():
    clk = FakeClock()
    b = TokenBucket(rate=2.0, burst=1, clock=clk.monotonic)
    assert [b.reserve(), b.reserve(), b.reserve()] == [0.0, 0.5, 1.0]  # 1 saved token, then 1 per 0.5 s
    clk.t = 1.0  # +2 tokens: back to -2 + 2 = 0
    assert b.reserve() == 0.5
    b.block(3.0)  # Retry-After for the host: nothing before t = 4.0
    assert b.reserve() == 3.0


def test_token_bucket_burst():
    clk = FakeClock()
    b = TokenBucket(rate=10.0, burst=3, clock=clk.monotonic)
    assert [b.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.1)]


def test_client_applies_host_rate_limit(http_server):
    http_server.json("/api", {"a": 1})
    clk = FakeClock()
    c = HttpClient(limits={http_server.host: (4.0, 1)}, sleep=clk.sleep, clock=clk.monotonic, now=clk.now)
    for _ in range(3):
        c.get_json(http_server.url("/api"))
    assert clk.sleeps == [0.25, 0.25]  # the first request uses the saved token
    assert c.stats["slept_s"] == pytest.approx(0.5)


# JSON and the JSONL cache --------------------------------------------------------------------------
def test_malformed_json_is_an_error_not_a_crash(http_server, caplog):
    http_server.raw("/api", b'{"overview": "cut off', headers={"Content-Type": "application/json"})
    with caplog.at_level(logging.WARNING):
        r = client(FakeClock()).get_json(http_server.url("/api"))
    assert not r.ok and r.status == 200 and r.error.startswith("malformed JSON")
    assert "malformed JSON" in caplog.text


def test_cached_json_rerun_makes_zero_requests(http_server, tmp_path):
    http_server.json("/api/1", {"v": 1})
    http_server.json("/api/2", {"status_code": 34}, status=404)
    c = client(FakeClock())
    cache = JsonlCache(tmp_path / "c.jsonl")
    a = cached_json(c, cache, "1", http_server.url("/api/1"))
    b = cached_json(c, cache, "2", http_server.url("/api/2"))
    assert a["data"] == {"v": 1} and a["error"] is None
    assert b["status"] == 404 and b["error"] == "HTTP 404" and b["data"] == {"status_code": 34}
    assert http_server.count() == 2

    cache2 = JsonlCache(tmp_path / "c.jsonl")  # a new run reads the file
    assert cached_json(c, cache2, "1", http_server.url("/api/1"))["cached"]
    assert cached_json(c, cache2, "2", http_server.url("/api/2"))["cached"]
    assert http_server.count() == 2
    cached_json(c, cache2, "2", http_server.url("/api/2"), refresh_errors=True)
    assert http_server.count() == 3


def test_transient_failures_are_not_cached(http_server, tmp_path):
    http_server.raw("/api", b"", status=500)
    cache = JsonlCache(tmp_path / "c.jsonl")
    with pytest.raises(DownloadError):
        cached_json(client(FakeClock(), max_retries=1), cache, "k", http_server.url("/api"))
    assert len(cache) == 0 and not (tmp_path / "c.jsonl").exists()


def test_jsonl_cache_drops_torn_last_line(tmp_path, caplog):
    p = tmp_path / "c.jsonl"
    p.write_text('{"key": "a", "data": 1}\n{"key": "b", "data": 2}\n{"key": "c", "da')
    with caplog.at_level(logging.WARNING):
        cache = JsonlCache(p)
    assert cache.get("a")["data"] == 1 and cache.get("b")["data"] == 2 and cache.get("c") is None
    assert "c.jsonl:3" in caplog.text
    cache.put("c", {"data": 3})
    lines = p.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["a", "b", "c"]  # repaired, then appended


def test_jsonl_cache_last_record_wins(tmp_path):
    cache = JsonlCache(tmp_path / "c.jsonl")
    cache.put("k", {"data": 1})
    cache.put("k", {"data": 2})
    assert JsonlCache(tmp_path / "c.jsonl").get("k")["data"] == 2


def test_redact_hides_keys():
    assert redact("https://api.x/3/movie/1?language=en-US&api_key=SECRET") == "https://api.x/3/movie/1?language=en-US&api_key=***"
    assert redact("https://g/books/v1/volumes?q=isbn:1&key=K") == "https://g/books/v1/volumes?q=isbn:1&key=***"
    assert redact("https://a/b") == "https://a/b"


def test_dns_failure_fails_fast_once_per_host(http_server, monkeypatch, caplog, tmp_path):  # noqa: F811
    """No network: "Name or service not known" is not retried with back-off, and a second request
    to the same host fails at once without touching the resolver again."""
    import socket

    from kgcl_lib.data.download import NoNetworkError

    lookups = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "api.unreachable.example":
            lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    clock = FakeClock()
    c = client(clock, max_retries=5)
    with caplog.at_level(logging.WARNING, logger="kgcl_lib.data.download"):
        with pytest.raises(NoNetworkError, match="no network access to api.unreachable.example"):
            c.get_json("http://api.unreachable.example/3/search?q=x")
        with pytest.raises(NoNetworkError):
            c.get_json("http://api.unreachable.example/3/search?q=y")
        # a mirror list moves on to the next URL after the unreachable one
        http_server.file("/file.bin", DATA)
        out = c.download(["http://api.unreachable.example/file.bin", http_server.url("/file.bin")], tmp_path / "f.bin",
                         sha256=sha(DATA), progress=False)
    assert out.read_bytes() == DATA
    assert lookups == ["api.unreachable.example"]  # resolved once; then remembered
    assert c.stats["retries"] == 0 and clock.sleeps == []
    said = [r.getMessage() for r in caplog.records if "no network access" in r.getMessage()]
    assert len(said) == 1, said
