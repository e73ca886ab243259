"""Fixtures for the tool tests: a small hand-written site and a real loopback HTTP server."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urljoin

import pytest
from loopback import serve_on_loopback

from matpo_gym.data.tasks import Page

BASE = "http://world.test/"


class DictStore:
    """A PageStore backed by a dict, keyed by absolute URL."""

    def __init__(self, base_url: str, pages: Iterable[Page]) -> None:
        self.base_url = base_url
        self._pages = {page.url: page for page in pages}

    def get(self, url: str) -> Page | None:
        return self._pages.get(urljoin(self.base_url, url))

    def __iter__(self) -> Iterator[Page]:
        return iter(self._pages.values())

    def __len__(self) -> int:
        return len(self._pages)


def entity_page(slug: str, title: str, infobox: dict[str, str], paragraphs: list[str]) -> Page:
    """An encyclopedia page shaped like the offline world's entity pages."""
    rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in infobox.items())
    prose = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (
        f"<!DOCTYPE html><html><head><title>{title}</title>"
        "<style>p { color: red }</style></head><body>"
        f'<nav><a href="/">Home</a> | <a href="/category/people">People</a></nav>'
        f'<h1>{title}</h1><table class="infobox">{rows}</table>{prose}'
        f"<footer>World Encyclopedia, all rights reserved</footer></body></html>"
    )
    return Page(url=f"{BASE}wiki/{slug}", title=title, html=html)


LONG_PARAGRAPHS = [
    f"Section {i} of the chronicle tells how the harbour of Velmora grew during year {1700 + i}, "
    f'when merchants from <a href="/wiki/Port_{i}">Port {i}</a> brought grain, salt and cloth.'
    for i in range(60)
]


def site_pages() -> list[Page]:
    return [
        Page(
            url=BASE,
            title="World Encyclopedia",
            html="<html><head><title>World Encyclopedia</title></head><body>"
            "<h1>World Encyclopedia</h1>"
            '<ul><li><a href="wiki/Ada_Lovelace">Ada Lovelace</a></li>'
            '<li><a href="wiki/Charles_Babbage">Charles Babbage</a></li></ul></body></html>',
        ),
        entity_page(
            "Ada_Lovelace",
            "Ada Lovelace",
            {
                "Born": "10 December 1815",
                "Field": '<a href="/wiki/Mathematics">Mathematics</a>',
                "Collaborator": '<a href="/wiki/Charles_Babbage">Charles Babbage</a>',
            },
            [
                "Ada Lovelace was an English mathematician and writer.",
                "She wrote the first published algorithm intended for a computing machine.",
                'She was born in <a href="/wiki/London">London</a> to the poet Lord Byron.',
            ],
        ),
        entity_page(
            "Charles_Babbage",
            "Charles Babbage",
            {"Born": "26 December 1791", "Known for": "Analytical Engine"},
            [
                "Charles Babbage was an English polymath and inventor.",
                "He designed the Analytical Engine, a general-purpose mechanical computer.",
                "Ada Lovelace wrote notes on his engine.",
            ],
        ),
        entity_page(
            "Mathematics",
            "Mathematics",
            {"Branches": "Algebra, geometry, analysis"},
            ["Mathematics is the study of quantity, structure, space and change."],
        ),
        entity_page(
            "London",
            "London",
            {"Country": "England", "Population": "8.8 million"},
            ["London is the capital city of England, on the river Thames."],
        ),
        entity_page(
            "Mount_Etna",
            "Mount Etna",
            {"Elevation": "3,357 m", "Type": "Stratovolcano"},
            [
                "Mount Etna is an active volcano on the east coast of Sicily.",
                "Its eruptions have been recorded for thousands of years.",
            ],
        ),
        entity_page("Velmora_Chronicle", "Velmora Chronicle", {"Era": "1700s"}, LONG_PARAGRAPHS),
    ]


@pytest.fixture
def store() -> DictStore:
    return DictStore(BASE, site_pages())


# --- a real HTTP server on loopback -------------------------------------------------------------

GOOD_PAGE = (
    "<html><head><title>Loopback Page</title></head><body><h1>Loopback Page</h1>"
    '<p>See the <a href="other.html">other page</a> and '
    '<a href="/abs/path">an absolute path</a>.</p>'
    "<p>Café Zürich — naïve résumé.</p></body></html>"
)


def _routes() -> dict[str, tuple[int, dict[str, str], bytes]]:
    html = {"Content-Type": "text/html; charset=utf-8"}
    big = "<html><body>" + ("<p>" + "filler words here " * 40 + "</p>") * 100 + "</body></html>"
    return {
        "/page.html": (200, html, GOOD_PAGE.encode("utf-8")),
        "/dir/start.html": (200, html, b'<title>Start</title><p><a href="next.html">next</a></p>'),
        "/redirect": (302, {"Location": "/dir/start.html"}, b""),
        "/redirect-loop": (302, {"Location": "/redirect-loop"}, b""),
        "/missing": (404, html, b"<h1>Not Found</h1>"),
        "/broken": (500, html, b"<h1>Internal Server Error</h1>"),
        "/report.pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\x00\x01\x02binary"),
        "/latin1": (
            200,
            {"Content-Type": "text/html; charset=iso-8859-1"},
            "<title>Latin</title><p>Café Müller in Köln</p>".encode("latin-1"),
        ),
        "/meta-cp1252": (
            200,
            {"Content-Type": "text/html"},
            '<html><head><meta charset="windows-1252"><title>Prices</title></head>'
            "<body><p>It costs 5 € “today”.</p></body></html>".encode("cp1252"),
        ),
        "/no-charset-utf8": (
            200,
            {"Content-Type": "text/html"},
            "<p>Smørrebrød på Nørrebro</p>".encode(),
        ),
        "/no-content-type": (200, {}, b"<title>Bare</title><p>no header at all</p>"),
        "/big": (200, html, big.encode()),
    }


class _Handler(BaseHTTPRequestHandler):
    routes = _routes()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/slow":
            time.sleep(2.0)
            self._send(200, {"Content-Type": "text/html"}, b"<p>too late</p>")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "160")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"<p>x</p>")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"<p>start")
            self.wfile.flush()
            time.sleep(2.0)
        elif path == "/echo-agent":
            agent = self.headers.get("User-Agent", "")
            self._send(200, {"Content-Type": "text/html"}, f"<p>agent={agent}</p>".encode())
        elif path in self.routes:
            self._send(*self.routes[path])
        else:
            self._send(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """Base URL of a real HTTP server on 127.0.0.1 serving the routes above."""
    with serve_on_loopback(_Handler) as base:
        yield base
