"""A persistent store of tool results, and the wrapper that records and replays them.

:class:`ToolCache` keeps one outcome per (tool, namespace, arguments) in SQLite: the text the tool
returned, or the error it raised (``tool_error`` or ``timeout``) with its message. Failures are
stored too, so a recorded run replays *exactly*, offline: the same texts and the same errors.
:class:`CachedTool` puts a cache in front of any tool. Wrap it in
:class:`~matpo_gym.tools.noise.NoisyTool` (not the other way round), so what is recorded is the
clean result and noise is drawn afresh, reproducibly, on replay.

>>> import pathlib, tempfile
>>> from matpo_gym.tools.base import ToolSpec
>>> class Upper:
...     spec = ToolSpec("upper", "Shout.", {"type": "object",
...         "properties": {"text": {"type": "string"}}, "required": ["text"]})
...     def __call__(self, text: str) -> str:
...         return text.upper()
>>> folder = tempfile.TemporaryDirectory()
>>> cache = ToolCache(pathlib.Path(folder.name) / "tools.sqlite")
>>> CachedTool(Upper(), cache, "record")(text="hi")
'HI'
>>> CachedTool(Upper(), cache, "replay")(text="hi"), len(cache)
('HI', 1)
>>> CachedTool(Upper(), cache, "replay")(text="bye")
Traceback (most recent call last):
...
matpo_gym.tools.base.ToolError: not in the replay cache: upper({"text":"bye"}). Record it first ...
>>> cache.close(); folder.cleanup()
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from matpo_gym.tools.base import Tool, ToolError, ToolSpec, ToolTimeout, call_submitted

CacheMode = Literal["off", "read_write", "record", "replay"]
CACHE_MODES: tuple[str, ...] = ("off", "read_write", "record", "replay")
Failure = Literal["tool_error", "timeout"]
_FAILURES = ("tool_error", "timeout")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    tool      TEXT NOT NULL,
    namespace TEXT NOT NULL,
    arguments TEXT NOT NULL,  -- canonical JSON, see canonical_arguments
    text      TEXT NOT NULL,  -- the result, or the error message
    error     TEXT,           -- NULL: ok; else 'tool_error' or 'timeout'
    created   REAL NOT NULL,  -- unix time
    PRIMARY KEY (tool, namespace, arguments)
)
"""


def canonical_arguments(arguments: dict[str, Any]) -> str:
    """The cache key form of an arguments object: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(
        arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One stored outcome of one tool call."""

    tool: str
    arguments: dict[str, Any]
    namespace: str
    text: str
    """The tool's result, or the message of the error it raised."""
    error: Failure | None
    """None when the call succeeded; ``tool_error`` or ``timeout`` when it raised."""
    created: float
    """When it was stored (unix time)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_or_return(self) -> str:
        """The stored text, or the stored error raised again, exactly as the tool raised it."""
        if self.error == "timeout":
            raise ToolTimeout(self.text)
        if self.error == "tool_error":
            raise ToolError(self.text)
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "namespace": self.namespace,
            "arguments": self.arguments,
            "text": self.text,
            "error": self.error,
            "created": self.created,
        }


class ToolCache:
    """Tool results in one SQLite file (WAL mode), shared safely by threads and processes.

    One connection serves every thread of the instance, behind a lock; several processes may open
    the same file (writers wait up to 30 s for each other).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"Cannot open the tool cache {self.path}: {exc}") from None

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def __iter__(self) -> Iterator[CacheEntry]:
        """Every entry, in key order (a snapshot taken when iteration starts)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tool, namespace, arguments, text, error, created FROM results "
                "ORDER BY tool, namespace, arguments"
            ).fetchall()
        for tool, namespace, arguments, text, error, created in rows:
            yield CacheEntry(tool, json.loads(arguments), namespace, text, error, created)

    def get(
        self, tool: str, arguments: dict[str, Any], *, namespace: str = ""
    ) -> CacheEntry | None:
        """The stored outcome of this call, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT text, error, created FROM results "
                "WHERE tool = ? AND namespace = ? AND arguments = ?",
                (tool, namespace, canonical_arguments(arguments)),
            ).fetchone()
        if row is None:
            return None
        return CacheEntry(tool, dict(arguments), namespace, row[0], row[1], row[2])

    def put(
        self,
        tool: str,
        arguments: dict[str, Any],
        text: str,
        *,
        error: Failure | None = None,
        namespace: str = "",
        created: float | None = None,
    ) -> CacheEntry:
        """Store (or replace) the outcome of a call; ``error`` marks a failure's message."""
        if error is not None and error not in _FAILURES:
            raise ValueError(f"error must be None or one of {', '.join(_FAILURES)}, got {error!r}")
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        entry = CacheEntry(
            tool,
            dict(arguments),
            namespace,
            text,
            error,
            time.time() if created is None else created,
        )
        self._write([entry])
        return entry

    def export_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write every entry as one JSON object a line (atomically); returns how many."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        count = 0
        with tmp.open("w", encoding="utf-8") as out:
            for entry in self:
                out.write(json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        os.replace(tmp, target)
        return count

    def import_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Add the entries of an exported file (same keys are replaced); returns how many.

        The whole file is checked first, so a bad line imports nothing.
        """
        entries: list[CacheEntry] = []
        with Path(path).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    entries.append(_parse_line(line, f"{path}:{number}"))
        self._write(entries)
        return len(entries)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ToolCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, entries: list[CacheEntry]) -> None:
        rows = [
            (e.tool, e.namespace, canonical_arguments(e.arguments), e.text, e.error, e.created)
            for e in entries
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results "
                    "(tool, namespace, arguments, text, error, created) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")


def _parse_line(line: str, where: str) -> CacheEntry:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not a JSON object")
    fields: dict[str, tuple[type, ...]] = {
        "tool": (str,),
        "arguments": (dict,),
        "text": (str,),
        "namespace": (str,),
        "created": (int, float),
    }
    for name, types in fields.items():
        if name in ("namespace", "created") and name not in data:
            continue
        if not isinstance(data.get(name), types):
            raise ValueError(f"{where}: field {name!r} is missing or not a {types[0].__name__}")
    error = data.get("error")
    if error is not None and error not in _FAILURES:
        raise ValueError(f"{where}: field 'error' must be null, 'tool_error' or 'timeout'")
    return CacheEntry(
        data["tool"],
        data["arguments"],
        data.get("namespace", ""),
        data["text"],
        error,
        float(data.get("created", time.time())),
    )


_SHARED: dict[Path, ToolCache] = {}
_SHARED_LOCK = threading.Lock()


def shared_cache(path: str | os.PathLike[str]) -> ToolCache:
    """One open :class:`ToolCache` per file for the whole process (envs built per episode share it)."""
    key = Path(path).resolve()
    with _SHARED_LOCK:
        cache = _SHARED.get(key)
        if cache is None:
            cache = _SHARED[key] = ToolCache(key)
        return cache


class CachedTool:
    """A tool answered from a :class:`ToolCache`: same spec, same results, same errors.

    Modes: ``read_write`` returns a stored success and calls the tool otherwise (a stored failure
    is retried: it may have been transient), storing the outcome; ``record`` always calls and
    stores; ``replay`` only reads, re-raising stored failures, and a call that is not stored is a
    :class:`ToolError`; ``off`` just calls the tool.

    ``namespace`` separates results of differently configured tools with one name (another
    region, another page size). ``time_limit``, when set to the caller's time limit (what
    :func:`~matpo_gym.tools.base.run_tool` was given), stores a call that outlasted it as the
    timeout the agent saw, rather than as the result that came too late.

    Errors other than ToolError / ToolTimeout are bugs, not outcomes: they pass through unstored.
    ``pop_events`` and ``distractor`` of the wrapped tool are passed through when it has them.
    """

    def __init__(
        self,
        tool: Tool,
        cache: ToolCache,
        mode: CacheMode = "read_write",
        *,
        namespace: str = "",
        time_limit: float | None = None,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"Unknown cache mode {mode!r}; valid modes: {', '.join(CACHE_MODES)}")
        if time_limit is not None and time_limit <= 0:
            raise ValueError(f"time_limit must be positive, got {time_limit}")
        self.tool = tool
        self.cache = cache
        self.mode = mode
        self.namespace = namespace
        self.time_limit = time_limit
        self.spec: ToolSpec = tool.spec
        for name in ("pop_events", "distractor"):
            if hasattr(tool, name):
                setattr(self, name, getattr(tool, name))

    def __call__(self, **arguments: Any) -> str:
        name = self.spec.name
        if self.mode == "off":
            return self.tool(**arguments)
        if self.mode != "record":
            entry = self.cache.get(name, arguments, namespace=self.namespace)
            if self.mode == "replay":
                if entry is None:
                    where = f" (namespace {self.namespace!r})" if self.namespace else ""
                    raise ToolError(
                        f"not in the replay cache: {name}({canonical_arguments(arguments)}){where}. "
                        "Record it first with cache_mode 'record' or 'read_write'."
                    )
                return entry.raise_or_return()
            if entry is not None and entry.ok:
                return entry.text
        return self._call_and_store(arguments)

    def _call_and_store(self, arguments: dict[str, Any]) -> str:
        name = self.spec.name
        start = call_submitted() or time.monotonic()  # the agent's clock: a wait for a thread counts
        try:
            text = self.tool(**arguments)
        except ToolTimeout as exc:
            self.cache.put(name, arguments, str(exc), error="timeout", namespace=self.namespace)
            raise
        except ToolError as exc:
            self.cache.put(name, arguments, str(exc), error="tool_error", namespace=self.namespace)
            raise
        text = text if isinstance(text, str) else str(text)
        if self.time_limit is not None and time.monotonic() - start > self.time_limit:
            late = ToolTimeout(f"no answer within {self.time_limit:g} s.")
            self.cache.put(name, arguments, str(late), error="timeout", namespace=self.namespace)
            raise late
        self.cache.put(name, arguments, text, namespace=self.namespace)
        return text
