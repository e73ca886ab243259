"""A policy backed by any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, OpenAI, ...).

One HTTP request per prompt, sent concurrently from a small thread pool, so a batched rollout
step becomes ``concurrency`` requests in flight; the server is expected to batch them.

The env's tool protocol is plain text (``<tool_call>{json}</tool_call>``), so no native tool calls
are used: ``tool`` messages are sent as ``user`` messages that start with
``[tool result: <name>]\\n``. :mod:`matpo_gym.policies.serve` turns them back into tool messages,
so a local policy served there and called through this one sees exactly the prompts it would see
locally.

Stop sequences are cut from the output by the server. When the finish reason is ``stop`` and the
text has an open tag whose closing tag is one of the stop sequences (``<answer>`` without
``</answer>``), the closing tag is appended again, so the env parses the action it expects. A server
that reports what stopped the text (vLLM's and ``serve``'s ``stop_reason``) gets the tag back only
when a stop string matched: a model that ended its turn with the tag still open wrote an invalid
action, as it would locally.

Failed requests are retried with exponential backoff and jitter on connection errors, timeouts,
HTTP 408, 429 and 5xx, waiting at least what a ``Retry-After`` header asks for. Other 4xx errors
are not retried. When a request finally fails, :class:`PolicyRequestError` names the URL, the
HTTP status and the server's error text.

>>> policy = OpenAIPolicy(model="qwen3-4b", base_url="http://127.0.0.1:8000/v1")
>>> policy.name
'openai:qwen3-4b'
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import json
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matpo_gym.core.messages import Message, Prompt
from matpo_gym.policies.base import Completion, PolicyUnavailable, stop_sequences

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Self

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
TOOL_RESULT_PREFIX = "[tool result: {name}]\n"
"""How a ``tool`` message starts once sent as a ``user`` message (``{name}`` is the tool)."""
TOOL_RESULT_PATTERN = re.compile(r"\A\[tool result(?:: ([^\]\n]*))?\]\n")
"""Matches :data:`TOOL_RESULT_PREFIX` (and ``[tool result]\\n`` for a tool message with no name)."""
RETRY_STATUSES = frozenset({408, 429})
"""Client errors worth retrying; every 5xx is retried too."""
MAX_WAIT_S = 60.0
"""Upper bound on one wait between attempts, ``Retry-After`` included."""
_CLOSING_TAG = re.compile(r"\A</([A-Za-z_][\w-]*)>\Z")


class PolicyRequestError(PolicyUnavailable):
    """A chat-completions request that failed for good (after any retries)."""

    def __init__(self, url: str, status: int | None, detail: str, attempts: int):
        self.url = url
        self.status = status
        """HTTP status of the last attempt; None when no response came back (connection, timeout)."""
        self.detail = detail
        """The server's error message, or what went wrong on the way."""
        self.attempts = attempts
        what = f"HTTP {status}" if status is not None else "no response"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"Request to {url} failed{tries}: {what}: {detail}")


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Chat messages in the OpenAI shape; ``tool`` messages become prefixed ``user`` messages."""
    out = []
    for message in messages:
        if message.role == "tool":
            prefix = TOOL_RESULT_PREFIX.format(name=message.name) if message.name is not None else "[tool result]\n"
            out.append({"role": "user", "content": prefix + message.content})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def close_stop_tag(text: str, stop: Sequence[str], matched: str | None = None) -> str:
    """Re-append the closing tag a server cut off as a stop sequence.

    ``matched`` is the stop sequence the server reports (vLLM's ``stop_reason``), when it does.
    Otherwise the closing tag whose open tag appears last without being closed is appended.

    >>> close_stop_tag('<tool_call>{"name": "search"}', ("</tool_call>", "</answer>"))
    '<tool_call>{"name": "search"}</tool_call>'
    >>> close_stop_tag("<answer>42</answer>", ("</tool_call>", "</answer>"))
    '<answer>42</answer>'
    """
    best: tuple[int, str] | None = None
    for closing in ([matched] if matched in stop else stop):
        tag = _CLOSING_TAG.match(closing or "")
        if tag is None:
            continue
        opened = text.rfind(f"<{tag.group(1)}>")
        if opened >= 0 and text.rfind(closing, opened) < 0 and (best is None or opened > best[0]):
            best = (opened, closing)
    return text + best[1] if best else text


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (``Retry-After`` as seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    """The server's error message: ``error.message`` of a JSON body, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    text = response.text.strip()
    return (text[:500] + "...") if len(text) > 500 else (text or response.reason_phrase or "(empty body)")


@dataclass(eq=False)
class OpenAIPolicy:
    """Generate with an OpenAI-compatible ``/chat/completions`` endpoint, one request per prompt."""

    model: str
    """Model name the server knows (``--served-model-name`` for vLLM)."""
    base_url: str = field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
    """API root, ending in ``/v1``; defaults to ``$OPENAI_BASE_URL``, else a local server on port 8000."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key; read when requests are sent, never stored. Unset: no key."""
    temperature: float = 0.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    max_tokens: int = 1024
    """Most tokens generated per turn."""
    seed: int | None = None
    """Sampling seed sent with every request, for servers that honour it."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout_s: float = 120.0
    """Timeout of one request attempt, in seconds."""
    max_retries: int = 4
    """Retries after the first attempt (connection errors, timeouts, HTTP 408, 429, 5xx)."""
    backoff_s: float = 0.5
    """First backoff wait; doubles with every retry, with jitter, capped at one minute."""
    stop: tuple[str, ...] = ("</tool_call>", "</answer>")
    """Stop sequences; a closing tag cut off by the server is appended again."""
    logprobs: bool = False
    """Ask for the log-probability of each generated token (fills ``Completion.logprobs``)."""
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.stop = stop_sequences(self.stop)
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}.")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}.")

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.base_url}/chat/completions"

    # -- the Policy protocol ----------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        """One request per prompt, ``concurrency`` at a time; completions in prompt order."""
        if not prompts:
            return []
        client = self._get_client()
        if len(prompts) == 1 or self.concurrency == 1:
            return [self._complete(client, p) for p in prompts]
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="matpo-openai"
        )
        futures = [pool.submit(self._complete, client, p) for p in prompts]
        try:
            completions = [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # fail fast; requests in flight finish alone
            raise
        pool.shutdown()
        return completions

    def close(self) -> None:
        """Close the connection pool (a later ``generate`` opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------------

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body sent for ``prompt``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(prompt.messages),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.stop:
            body["stop"] = list(self.stop)
        if self.seed is not None:
            body["seed"] = self.seed
        if self.logprobs:
            body["logprobs"] = True
        return body

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError:
                    raise ImportError("OpenAIPolicy needs httpx: pip install httpx") from None
                self._client = httpx.Client(
                    timeout=self.timeout_s,
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                )
            return self._client

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        backoff = self.backoff_s * (2**attempt) * random.uniform(0.5, 1.5)
        time.sleep(min(MAX_WAIT_S, max(backoff if retry_after is None else retry_after, 0.0)))

    def _complete(self, client: httpx.Client, prompt: Prompt) -> Completion:
        import httpx

        content = json.dumps(self.request_body(prompt), ensure_ascii=False).encode()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = client.post(self.url, content=content, headers=self._headers())
            except httpx.TransportError as exc:  # connection refused / reset, timeouts, protocol errors
                if last:
                    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    raise PolicyRequestError(self.url, None, detail, attempt + 1) from None
                self._wait(attempt, None)
                continue
            status = response.status_code
            if status == 200:
                return self._parse(response, attempt + 1)
            if last or not (status in RETRY_STATUSES or status >= 500):
                raise PolicyRequestError(self.url, status, _error_text(response), attempt + 1)
            self._wait(attempt, _retry_after(response))
        raise AssertionError("unreachable")

    def _parse(self, response: httpx.Response, attempts: int) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            finish_reason = choice.get("finish_reason") or "stop"
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise PolicyRequestError(
                self.url, response.status_code, f"unexpected response body: {response.text[:300]!r}", attempts
            ) from None
        if finish_reason == "stop" and self.stop:
            matched = choice.get("stop_reason")
            if "stop_reason" not in choice:  # the server does not say what stopped it: a stop string, likely
                text = close_stop_tag(text, self.stop)
            elif isinstance(matched, str):  # a stop string; null (end of turn) or a token id leaves the text
                text = close_stop_tag(text, self.stop, matched)
        logprobs = None
        if self.logprobs and isinstance(choice.get("logprobs"), dict):
            entries = choice["logprobs"].get("content") or []
            logprobs = [float(e["logprob"]) for e in entries if isinstance(e, dict) and "logprob" in e]
        return Completion(text=text, logprobs=logprobs, finish_reason=finish_reason)
