"""Serve a page store over real HTTP on loopback, for web tools that fetch with a client.

``python -m matpo_gym.data.world.server --port 8000`` builds the default world and serves it, to
browse the site by hand.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from matpo_gym.data.tasks import PageStore

_NOT_FOUND = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found</title>'
    b'</head><body><h1>Not found</h1><p>No page at this address. <a href="/">Main page</a>'
    b"</p></body></html>\n"
)


def _handler(store: PageStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _respond(self, with_body: bool) -> None:
            page = store.get(self.path)
            body = _NOT_FOUND if page is None else page.html.encode()
            self.send_response(404 if page is None else 200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._respond(with_body=True)

        def do_HEAD(self) -> None:
            self._respond(with_body=False)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve_site(store: PageStore, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``store`` in a daemon thread while the block runs; yields ``http://host:port``.

    ``port=0`` picks a free port. Unknown paths get a 404 page. The server is shut down and its
    socket closed when the block exits, even on error.
    """
    server = ThreadingHTTPServer((host, port), _handler(store))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="matpo-world-http", daemon=True)
    thread.start()
    try:
        bound = server.server_address[0]
        bound_host = bound.decode() if isinstance(bound, bytes) else bound
        yield f"http://{bound_host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> None:
    from matpo_gym.data.world.config import WorldConfig
    from matpo_gym.data.world.generator import build_world

    parser = argparse.ArgumentParser(description="Serve a synthetic world on loopback HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-entities", type=int, default=400)
    parser.add_argument("--filler-paragraphs", type=int, default=2)
    args = parser.parse_args(argv)
    world = build_world(
        WorldConfig(
            seed=args.seed, num_entities=args.num_entities, filler_paragraphs=args.filler_paragraphs
        )
    )
    with serve_site(world.store, args.host, args.port) as url:
        print(f"Serving {len(world.store)} pages at {url}/ (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
