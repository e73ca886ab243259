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

import collections
import ipaddress
import json
import math
import queue
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.policies.base import Completion, Policy
from matpo_gym.policies.openai import TOOL_RESULT_PATTERN

MAX_BODY_BYTES = 64 * 1024 * 1024
_SPEAKERS = ("system", "user", "assistant", "tool")
_TOOL_LINE = re.compile(r'\A\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


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


class BadRequest(ValueError):
    """A request body that does not fit the chat-completions schema (answered with HTTP 400)."""


class ServerClosing(RuntimeError):
    """A request that arrived while the server was stopping (answered with HTTP 503)."""


# -- requests -> prompts ---------------------------------------------------------------------------


def infer_role(system_prompt: str) -> Role:
    """The acting role, read from the first line of the system prompt."""
    first = system_prompt.strip().split("\n", 1)[0].lower()
    if "planner" in first:
        return Role.PLANNER
    if "worker" in first:
        return Role.WORKER
    return Role.SINGLE


def tool_names(system_prompt: str) -> tuple[str, ...]:
    """The ``"name"`` of every tool JSON line in the system prompt, in order."""
    names: list[str] = []
    for line in system_prompt.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            tool = json.loads(line)
        except ValueError:
            match = _TOOL_LINE.match(line)
            name = json.loads(f'"{match.group(1)}"') if match else None
        else:
            name = tool.get("name") if isinstance(tool, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise BadRequest(f"{where}: only text content parts are supported.")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"{where}: 'content' must be a string.")


def to_messages(raw: Any) -> tuple[Message, ...]:
    """Request messages as :class:`Message` objects; prefixed ``user`` tool results become ``tool``."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects.")
    out = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with 'role' and 'content'.")
        role = item.get("role")
        if role not in _SPEAKERS:
            raise BadRequest(f"{where}: unknown role {role!r}; use one of {', '.join(_SPEAKERS)}.")
        content = _content(item.get("content"), where)
        name = item.get("name") if isinstance(item.get("name"), str) else None
        if role == "user":
            tool = TOOL_RESULT_PATTERN.match(content)
            if tool:
                out.append(Message("tool", content[tool.end():], name=tool.group(1)))
                continue
        out.append(Message(role, content, name=name if role == "tool" else None))
    return tuple(out)


def to_prompt(messages: tuple[Message, ...]) -> Prompt:
    """A prompt with the role and tools inferred from the system prompt (see the module docs)."""
    system = next((m.content for m in messages if m.role == "system"), "")
    return Prompt(role=infer_role(system), messages=messages, tool_names=tool_names(system))


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request."""

    model: str | None
    prompt: Prompt
    stop: tuple[str, ...]
    logprobs: bool


def parse_request(body: Any) -> ChatRequest:
    """Validate a decoded request body; :class:`BadRequest` names what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if "messages" not in body:
        raise BadRequest("Missing required field 'messages'.")
    if body.get("stream"):
        raise BadRequest("Streaming is not supported; send 'stream': false.")
    n = body.get("n", 1)
    if n not in (None, 1) or isinstance(n, bool):
        raise BadRequest(f"Only n=1 is supported, got n={n!r}.")
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadRequest(f"'{key}' must be a number.")
    for key in ("max_tokens", "max_completion_tokens", "seed"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequest(f"'{key}' must be an integer.")
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(s for s in stop if s)
    else:
        raise BadRequest("'stop' must be a string or a list of strings.")
    logprobs = body.get("logprobs", False)
    if logprobs is not None and not isinstance(logprobs, bool):
        raise BadRequest("'logprobs' must be true or false.")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string.")
    return ChatRequest(model, to_prompt(to_messages(body["messages"])), stops, bool(logprobs))


# -- completions -> responses ----------------------------------------------------------------------


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before its first stop sequence, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def response_body(request: ChatRequest, completion: Completion, model: str) -> dict[str, Any]:
    """The chat-completions response JSON for one completion."""
    text, stopped = apply_stop(completion.text, request.stop)
    finish_reason = "stop" if stopped else completion.finish_reason
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish_reason,
        "logprobs": None,
    }
    if request.logprobs and completion.logprobs is not None:
        ids = completion.token_ids or []
        choice["logprobs"] = {
            "content": [
                {"token": str(ids[i]) if i < len(ids) else "", "logprob": lp, "bytes": None, "top_logprobs": []}
                for i, lp in enumerate(completion.logprobs)
            ]
        }
    prompt_tokens = (
        len(completion.prompt_ids)
        if completion.prompt_ids is not None
        else sum(_approx_tokens(m.content) + 4 for m in request.prompt.messages)
    )
    completion_tokens = len(completion.token_ids) if completion.token_ids is not None else _approx_tokens(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


# -- the batching queue ----------------------------------------------------------------------------


class MicroBatcher:
    """Collects prompts from many threads and answers them with batched ``generate`` calls."""

    def __init__(self, policy: Policy, *, max_batch: int = 32, window_s: float = 0.01):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
        self.policy = policy
        self.max_batch = max_batch
        self.window_s = window_s
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=10_000)
        """Sizes of the most recent batches sent to the policy, oldest first (for diagnostics)."""
        self._queue: queue.Queue[tuple[Prompt, Future[Completion]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="matpo-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompt: Prompt) -> Future[Completion]:
        """Queue ``prompt``; the future resolves when its batch has been generated."""
        future: Future[Completion] = Future()
        with self._lock:
            if self._closed:
                raise ServerClosing("The server is shutting down.")
            self._queue.put((prompt, future))
        return future

    def close(self) -> None:
        """Finish the batch being collected; requests still queued get :class:`ServerClosing`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return self._drain()
            batch = [item]
            deadline = time.monotonic() + self.window_s
            stop = False
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._run(batch)
            if stop:
                return self._drain()

    def _run(self, batch: list[tuple[Prompt, Future[Completion]]]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            completions = self.policy.generate([prompt for prompt, _ in batch])
            if len(completions) != len(batch):
                raise RuntimeError(
                    f"Policy {self.policy.name!r} returned {len(completions)} completions for {len(batch)} prompts."
                )
        except Exception as exc:  # noqa: BLE001 - any policy failure is answered, never kills the queue
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), completion in zip(batch, completions):
            future.set_result(completion)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(ServerClosing("The server is shutting down."))


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
        self.policy = policy
        self.batcher = MicroBatcher(policy, max_batch=max_batch, window_s=batch_window_s)
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self.http = server_class((host.strip("[]"), port), _handler(self))
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

    try:
        serve_forever(policy, config.host, config.port, config.max_batch, config.batch_window_ms / 1000, ready=ready)
    except KeyboardInterrupt:
        print("\nmatpo-bench: server stopped.", flush=True)
