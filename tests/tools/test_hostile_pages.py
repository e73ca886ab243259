"""Browse over HTTP against broken and hostile pages: readable text or a clear tool error, never a
crash out of run_tool. (Cases already covered in test_http_fetcher.py at the fetcher level, such as
the latin-1 header, the 404 and the stalled body, are not repeated here.)"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from loopback import serve_on_loopback

from matpo_gym.tools import Browse, HttpFetcher, ToolResult, run_tool

HTML = {"Content-Type": "text/html; charset=utf-8"}
TEN_MB = 10 * 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def _ten_mb_page() -> bytes:
    head = b"<html><head><title>Huge</title></head><body><h1>Huge</h1>"
    paragraph = b"<p>" + b"endless words of filler " * 40 + b"</p>\n"
    body = head + paragraph * (TEN_MB // len(paragraph) + 1)
    return body[:TEN_MB]


ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/unclosed": (
        200,
        HTML,
        (
            b"<html><head><title>Broken <b>markup</title></head><body><div><p>First para"
            b"<p>Second <i>para <a href='/x'>a link<table><tr><td>cell one<td>cell two"
            b"<ul><li>item one<li>item two<div><span>never closed"
        ),
    ),
    "/no-head-end": (200, HTML, b"<html><head><title>Headless</title><body><p>Body text.</p>"),
    "/deep": (
        200,
        HTML,
        b"<html><head><title>Deep</title></head><body>"
        + b"<div>" * 5000
        + b"<p>Treasure at the bottom.</p>"
        + b"</div>" * 5000
        + b"</body></html>",
    ),
    "/huge": (200, HTML, _ten_mb_page()),
    "/octet": (200, {"Content-Type": "application/octet-stream"}, bytes(range(256)) * 64),
    "/image.png": (200, {"Content-Type": "image/png"}, PNG),
    "/lying-utf8": (
        200,
        HTML,
        "<title>Müller</title><p>Café Müller in Köln, since 1890.</p>".encode("latin-1"),
    ),
    "/meta-1252": (
        200,
        {"Content-Type": "text/html"},
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
        "<title>Prix</title></head><body><p>Ça coûte 5 € – “voilà”.</p></body></html>".encode(
            "cp1252"
        ),
    ),
    "/gzip": (
        200,
        {**HTML, "Content-Encoding": "gzip"},
        gzip.compress(b"<title>Zipped</title><p>Compressed body, readable after all.</p>"),
    ),
    "/gzip-bomb": (
        200,
        {**HTML, "Content-Encoding": "gzip"},
        gzip.compress(b"<p>" + b"a" * (20 * 1024 * 1024) + b"</p>"),
    ),
    "/error": (500, HTML, b"<h1>Internal Server Error</h1>"),
    "/forbidden": (403, HTML, b"<h1>Forbidden</h1>"),
    "/moved": (301, {"Location": "/landing/here.html"}, b""),
    "/landing/here.html": (200, HTML, b"<title>Landing</title><p><a href='next.html'>on</a></p>"),
    "/loop-a": (302, {"Location": "/loop-b"}, b""),
    "/loop-b": (302, {"Location": "/loop-a"}, b""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/drip":  # headers at once, then a byte every 0.1 s for 5 s
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "50")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        status, headers, body = ROUTES.get(path, (404, HTML, b"<h1>Not Found</h1>"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with serve_on_loopback(_Handler) as base:
        yield base


def browse(url: str, *, timeout: float = 5.0, max_chars: int = 4000, page: int = 1) -> ToolResult:
    tool = Browse(HttpFetcher(timeout=timeout), max_chars=max_chars)
    arguments = {"url": url} if page == 1 else {"url": url, "page": page}
    return run_tool(tool, arguments, timeout=timeout + 5)


def test_unclosed_tags_still_read(hostile: str) -> None:
    result = browse(f"{hostile}/unclosed")
    assert result.ok, result.text
    for words in ("First para", "Second para", "cell one", "item two", "never closed"):
        assert words in result.text
    assert f"({hostile}/x)" in result.text


def test_body_after_an_unclosed_head_is_read(hostile: str) -> None:
    result = browse(f"{hostile}/no-head-end")
    assert result.ok, result.text
    assert "Body text." in result.text


def test_five_thousand_nested_divs_do_not_hit_the_recursion_limit(hostile: str) -> None:
    result = browse(f"{hostile}/deep")
    assert result.ok, result.text
    assert "Title: Deep" in result.text
    assert "Treasure at the bottom." in result.text


def test_ten_megabyte_page_is_capped_and_says_so(hostile: str) -> None:
    fetcher = HttpFetcher(timeout=10)
    page = fetcher.fetch(f"{hostile}/huge")
    assert page.truncated and len(page.html) == fetcher.max_bytes < TEN_MB
    browse_tool = Browse(fetcher, max_chars=4000)
    first = run_tool(browse_tool, {"url": f"{hostile}/huge"}, timeout=30)
    assert first.ok and "Title: Huge" in first.text
    assert "call browse with page=2 for more" in first.text
    total = int(first.text.rsplit("of ", 1)[1].split(";")[0])
    last = run_tool(browse_tool, {"url": f"{hostile}/huge", "page": total}, timeout=30)
    assert last.ok, last.text
    assert last.text.endswith("end of the page; the page was too large and is cut off here)")


@pytest.mark.parametrize(
    ("path", "mime"), [("/octet", "application/octet-stream"), ("/image.png", "image/png")]
)
def test_binary_content_is_a_clear_tool_error(hostile: str, path: str, mime: str) -> None:
    result = browse(hostile + path)
    assert (result.ok, result.error) == (False, "tool_error")
    assert f"its content type is {mime}, not an HTML page" in result.text


def test_page_declared_utf8_but_sent_as_latin1_stays_readable(hostile: str) -> None:
    result = browse(f"{hostile}/lying-utf8")
    assert result.ok, result.text
    assert "Caf\ufffd M\ufffdller in K\ufffdln, since 1890." in result.text


def test_windows_1252_declared_in_meta_http_equiv(hostile: str) -> None:
    result = browse(f"{hostile}/meta-1252")
    assert result.ok, result.text
    assert "Ça coûte 5 € – “voilà”." in result.text


def test_gzip_body_is_decoded(hostile: str) -> None:
    result = browse(f"{hostile}/gzip")
    assert result.ok, result.text
    assert "Title: Zipped" in result.text
    assert "Compressed body, readable after all." in result.text


def test_gzip_bomb_is_capped_after_decompression(hostile: str) -> None:
    page = HttpFetcher(timeout=10, max_bytes=100_000).fetch(f"{hostile}/gzip-bomb")
    assert page.truncated and len(page.html) == 100_000


@pytest.mark.parametrize(("path", "status"), [("/error", 500), ("/forbidden", 403)])
def test_http_error_statuses_are_tool_errors(hostile: str, path: str, status: int) -> None:
    result = browse(hostile + path)
    assert (result.ok, result.error) == (False, "tool_error")
    assert f"HTTP {status}" in result.text and path in result.text


def test_redirect_to_another_path_is_followed(hostile: str) -> None:
    result = browse(f"{hostile}/moved")
    assert result.ok, result.text
    assert f"URL: {hostile}/landing/here.html" in result.text
    assert f"[on]({hostile}/landing/next.html)" in result.text


def test_redirect_loop_between_two_paths_is_a_tool_error(hostile: str) -> None:
    result = browse(f"{hostile}/loop-a")
    assert (result.ok, result.error) == (False, "tool_error")
    assert "Too many redirects" in result.text


def test_slow_trickle_times_out_without_waiting_for_the_body(hostile: str) -> None:
    start = time.perf_counter()
    result = browse(f"{hostile}/drip", timeout=0.5)
    assert (result.ok, result.error) == (False, "timeout")
    assert "still sending after 0.5 s" in result.text
    assert time.perf_counter() - start < 2.0
