"""HttpFetcher against a real HTTP server on loopback (see conftest.http_server)."""

import socket
import time

import pytest

from matpo_gym.tools import Browse, HttpFetcher, ToolError, ToolTimeout, run_tool


def test_good_page_reads_with_absolute_links(http_server: str) -> None:
    out = Browse(HttpFetcher())(url=f"{http_server}/page.html")
    assert out.split("\n") == [
        "Title: Loopback Page",
        f"URL: {http_server}/page.html",
        "",
        "# Loopback Page",
        f"See the [other page]({http_server}/other.html) and "
        f"[an absolute path]({http_server}/abs/path).",
        "Café Zürich — naïve résumé.",
    ]


def test_redirect_is_followed_and_links_resolve_against_the_final_url(http_server: str) -> None:
    page = HttpFetcher().fetch(f"{http_server}/redirect")
    assert page.url == f"{http_server}/dir/start.html"
    out = Browse(HttpFetcher())(url=f"{http_server}/redirect")
    assert f"URL: {http_server}/dir/start.html" in out
    assert f"[next]({http_server}/dir/next.html)" in out


def test_redirect_loop_is_a_tool_error(http_server: str) -> None:
    with pytest.raises(ToolError, match="Too many redirects"):
        HttpFetcher().fetch(f"{http_server}/redirect-loop")


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 500)])
def test_http_errors_carry_the_status_code(http_server: str, path: str, status: int) -> None:
    with pytest.raises(ToolError, match=f"HTTP {status}") as caught:
        HttpFetcher().fetch(http_server + path)
    assert not isinstance(caught.value, ToolTimeout)


def test_non_html_content_is_rejected(http_server: str) -> None:
    with pytest.raises(ToolError, match="application/pdf, not an HTML page"):
        HttpFetcher().fetch(f"{http_server}/report.pdf")


def test_missing_content_type_is_read_as_html(http_server: str) -> None:
    assert "no header at all" in HttpFetcher().fetch(f"{http_server}/no-content-type").html


def test_slow_server_times_out(http_server: str) -> None:
    fetcher = HttpFetcher(timeout=0.3)
    start = time.perf_counter()
    with pytest.raises(ToolTimeout, match="0.3 s"):
        fetcher.fetch(f"{http_server}/slow")
    assert time.perf_counter() - start < 1.5
    result = run_tool(Browse(fetcher), {"url": f"{http_server}/slow"}, timeout=None)
    assert (result.ok, result.error) == (False, "timeout")


def test_body_that_stalls_times_out(http_server: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ToolTimeout, match="stopped sending"):
        HttpFetcher(timeout=0.3).fetch(f"{http_server}/stall")
    assert time.perf_counter() - start < 1.5


def test_trickling_body_hits_the_total_time_limit(http_server: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ToolTimeout, match="still sending"):
        HttpFetcher(timeout=0.5).fetch(f"{http_server}/trickle")
    assert time.perf_counter() - start < 1.5


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/latin1", "Café Müller in Köln"),  # charset in the Content-Type header
        ("/meta-cp1252", "It costs 5 € “today”."),  # charset only in <meta>
        ("/no-charset-utf8", "Smørrebrød på Nørrebro"),  # no charset anywhere: UTF-8
    ],
)
def test_non_utf8_and_undeclared_encodings_decode(
    http_server: str, path: str, expected: str
) -> None:
    assert expected in Browse(HttpFetcher())(url=http_server + path)


def test_byte_cap_truncates_and_says_so(http_server: str) -> None:
    page = HttpFetcher(max_bytes=5_000).fetch(f"{http_server}/big")
    assert page.truncated and len(page.html) == 5_000
    assert HttpFetcher().fetch(f"{http_server}/big").truncated is False
    browse = Browse(HttpFetcher(max_bytes=5_000), max_chars=4000)
    assert browse(url=f"{http_server}/big").endswith(
        "(page 1 of 2; call browse with page=2 for more)"
    )
    assert browse(url=f"{http_server}/big", page=2).endswith(
        "(page 2 of 2; end of the page; the page was too large and is cut off here)"
    )


def test_user_agent_is_sent(http_server: str) -> None:
    assert (
        "agent=test-agent/1.0"
        in HttpFetcher(user_agent="test-agent/1.0").fetch(f"{http_server}/echo-agent").html
    )


@pytest.mark.parametrize("url", ["ftp://example.com/file", "not a url", "/relative/path", ""])
def test_bad_urls_are_tool_errors(url: str) -> None:
    with pytest.raises(ToolError, match="absolute http"):
        HttpFetcher().fetch(url)


def test_connection_refused_is_a_tool_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolError, match="Could not connect to 127.0.0.1"):
        HttpFetcher(timeout=2).fetch(f"http://127.0.0.1:{port}/")
