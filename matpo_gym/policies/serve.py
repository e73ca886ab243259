"""Serve any local :class:`~matpo_gym.policies.base.Policy` as an OpenAI-compatible endpoint.

``matpo-bench serve --policy NAME`` (or :func:`serve_policy` in code) answers on loopback:

* ``POST /v1/chat/completions`` — body ``model``, ``messages``, ``temperature``, ``max_tokens``,
  ``stop``, ``n`` (1 only), ``seed``, ``logprobs``; answers the standard response JSON.
* ``GET /v1/models`` — the one model, named after the policy.
* ``GET /health`` — ``{"status": "ok", ...}``.

**Micro-batching.** Requests that arrive within ``batch_window_s`` of each other (up to
``max_batch``) go to *one* ``policy.generate`` call, which is what makes serving a batched local
model worthwhile. ``generate`` is only ever called from one thread, one batch at a time; requests
that arrive meanwhile form the next batch.

**Prompts from requests.** A request carries no role, so the :class:`~matpo_gym.core.messages.Prompt`
is rebuilt from the conversation:

* the role is read from the first line of the system prompt: ``planner`` if it mentions
  "planner", else ``worker`` if it mentions "worker", else ``single`` (the env's prompt files
  start "You are the planner ...", "You are a worker ...", "You are a research assistant ...");
* the tool names are the ``"name"`` of each tool JSON line in the system prompt (the env lists one
  tool per line as ``{"name": ..., "description": ..., "parameters": ...}``);
* a ``user`` message starting ``[tool result: NAME]\\n`` (how
  :class:`~matpo_gym.policies.openai.OpenAIPolicy` sends tool results) becomes a ``tool`` message
  named ``NAME``.

So a policy served here and called through ``OpenAIPolicy`` sees the prompts it sees locally. The
trajectory id is not sent, so ``Prompt.trajectory_id`` is empty.

**Sampling settings.** The served policy samples with its own configuration: ``temperature``,
``seed`` and ``max_tokens`` are validated but not passed on (the Policy protocol takes prompts only).
``stop`` is applied to the returned text: it is cut before the first stop sequence and the finish
reason becomes ``stop``, as an OpenAI server does. Token counts in ``usage`` are exact when the
policy returns token ids and about one token per four characters otherwise. ``logprobs`` are
returned when asked for and the policy provides them; they cover the policy's whole generation.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from matpo_gym.policies.base import Policy
from matpo_gym.policies.batcher import MicroBatcher, ServerClosing
from matpo_gym.policies.chat_schema import BadRequest, parse_request, response_body

MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class ServeConfig:
    """Serve a policy as an OpenAI-compatible chat-completions endpoint on loopback."""

    policy: str = "scripted"
    """Policy name from ``policies/``, a built-in type, or ``module:Class``."""
    host: str = "127.0.0.1"
    """Address to listen on; loopback only unless ``--allow-remote`` is given."""
    port: int = 8000
    """Port to listen on (0 picks a free one)."""
    max_batch: int = 32
    """Most requests answered by one ``generate`` call."""
    batch_window_ms: float = 10.0
    """How long the first request of a batch waits for others to join it, in milliseconds."""
    allow_remote: bool = False
    """Allow a non-loopback host (the endpoint has no authentication)."""


# -- HTTP ------------------------------------------------------------------------------------------


def _handler(server: PolicyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections between requests
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls
        server_version = "matpo-serve"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def _read_body(self) -> bytes | None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                self._error(411, "A Content-Length header is required.", "invalid_request_error")
                return None
            if int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                self._error(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.", "invalid_request_error")
                return None
            return self.rfile.read(int(length))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                self._send(200, {"status": "ok", "policy": server.policy.name})
            elif path == "/v1/models":
                self._send(200, {"object": "list", "data": [server.model_card()]})
            elif path == "/v1/chat/completions":
                self._error(405, "Use POST for /v1/chat/completions.", "invalid_request_error")
            else:
                self._error(
                    404, f"No route {self.path}; see /v1/chat/completions, /v1/models, /health.", "not_found_error"
                )

        def do_POST(self) -> None:
            raw = self._read_body()
            if raw is None:
                return
            if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
                self._error(404, f"No route {self.path}; POST to /v1/chat/completions.", "not_found_error")
                return
            try:
                request = parse_request(json.loads(raw))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError and BadRequest are ValueErrors
                message = str(exc) if isinstance(exc, BadRequest) else f"The request body is not valid JSON: {exc}"
                self._error(400, message, "invalid_request_error")
                return
            try:
                completion = server.batcher.submit(request.prompt).result()
            except ServerClosing as exc:
                self.close_connection = True
                self._error(503, str(exc), "server_error")
                return
            except Exception as exc:  # noqa: BLE001 - reported to the client as a 500
                self._error(500, f"The policy failed: {type(exc).__name__}: {exc}", "server_error")
                return
            self._send(200, response_body(request, completion, request.model or server.policy.name))

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """The listen backlog; the default of 5 drops connections (1 s SYN retry) under concurrency."""


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class PolicyServer:
    """The HTTP server and its batching queue. Binds on construction, so ``url`` is known at once."""

    def __init__(self, policy: Policy, host: str = "127.0.0.1", port: int = 0, *,
                 max_batch: int = 32, batch_window_s: float = 0.01):
        if not 0 <= port <= 65535:
            raise ValueError(f"--port must be from 0 to 65535 (0 picks a free one), got {port}.")
        self.policy = policy
        self.batcher = MicroBatcher(policy, max_batch=max_batch, window_s=batch_window_s)
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self.http = server_class((host.strip("[]"), port), _handler(self))
        except OSError as exc:  # a busy port, a host that does not resolve: a user error, in one line
            self.batcher.close()
            raise ValueError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Is another server "
                             "using that port? --port 0 picks a free one.") from None
        except BaseException:
            self.batcher.close()
            raise
        self.created = int(time.time())

    @property
    def url(self) -> str:
        """The API root, ``http://HOST:PORT/v1``."""
        host, port = self.http.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"

    def model_card(self) -> dict[str, Any]:
        return {"id": self.policy.name, "object": "model", "created": self.created, "owned_by": "matpo-gym"}

    def serve_forever(self) -> None:
        self.http.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        """Stop serving (call from another thread than ``serve_forever``'s) and free the port."""
        self.http.shutdown()
        self.http.server_close()
        self.batcher.close()


@contextmanager
def serve_policy(policy: Policy, host: str = "127.0.0.1", port: int = 0, max_batch: int = 32,
                 batch_window_s: float = 0.01) -> Iterator[str]:
    """Serve ``policy`` in a daemon thread while the block runs; yields the base URL (``.../v1``).

    ``port=0`` picks a free port. The server stops and frees its port when the block exits.
    """
    server = PolicyServer(policy, host, port, max_batch=max_batch, batch_window_s=batch_window_s)
    thread = threading.Thread(target=server.serve_forever, name="matpo-serve-http", daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.close()
        thread.join()


def serve_forever(policy: Policy, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32,
                  batch_window_s: float = 0.01, ready: Callable[[str], None] | None = None) -> None:
    """Serve ``policy`` until interrupted (Ctrl-C raises ``KeyboardInterrupt`` after cleanup).

    ``ready`` is called with the base URL once the port is bound (default: print it).
    """
    server = PolicyServer(policy, host, port, max_batch=max_batch, batch_window_s=batch_window_s)
    try:
        (ready or (lambda url: print(url, flush=True)))(server.url)
        server.serve_forever()
    finally:
        server.http.server_close()
        server.batcher.close()


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(config: ServeConfig) -> None:
    """``matpo-bench serve``: load the policy, print the URL and serve until Ctrl-C."""
    if not is_loopback(config.host) and not config.allow_remote:
        raise ValueError(
            f"Refusing to serve on non-loopback host {config.host!r}: the endpoint has no authentication. "
            "Pass --allow-remote to do it anyway."
        )
    from matpo_gym.policies.registry import load_policy

    policy = load_policy(config.policy)

    def ready(url: str) -> None:
        print(f"Serving policy {policy.name!r} at {url} (POST {url}/chat/completions); Ctrl-C to stop.", flush=True)

    # A process started in the background of a non-interactive shell inherits SIGINT ignored; Ctrl-C
    # (or a supervisor's SIGINT) must still stop the server.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve_forever(policy, config.host, config.port, config.max_batch, config.batch_window_ms / 1000, ready=ready)
    except KeyboardInterrupt:
        print("\nmatpo-bench: server stopped.", flush=True)
