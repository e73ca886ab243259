"""Tool-noise injection for robustness studies: flaky, slow, wrong and garbled tool results.

:class:`NoisyTool` wraps any tool and overrides one thing, its result. Whether a call is disturbed,
and how, depends only on the seed, the tool, the call's arguments and how often that same call was
made before, so a rerun, or a batch that interleaves episodes differently, sees the same noise.
Every disturbance is recorded as a :class:`NoiseEvent`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matpo_gym.tools.base import Tool, ToolError, ToolSpec, ToolTimeout

ALL_KINDS: tuple[str, ...] = ("error", "timeout", "irrelevant", "truncate", "corrupt", "shuffle")
"""Every kind of noise, in a fixed order (the order matters for reproducibility)."""

TRANSIENT_ERRORS: tuple[str, ...] = (
    "503 Service Unavailable: the server is temporarily overloaded. Try again later.",
    "502 Bad Gateway: the upstream server sent an invalid response.",
    "429 Too Many Requests: rate limit exceeded. Wait and retry.",
    "500 Internal Server Error.",
    "Connection reset by peer.",
)
_GARBAGE = "#$%&*@~^?!§¤¿"
_RANK = re.compile(r"^(\s*)(\d+)\.(\s)")

Irrelevant = Callable[[random.Random], "str | None"]
"""Makes an unrelated result for the 'irrelevant' kind; None means it has none to offer."""


@dataclass(frozen=True, slots=True)
class NoiseEvent:
    """One disturbance of one tool call."""

    tool: str
    kind: str
    arguments: dict[str, Any]
    detail: str
    """What was done, in words (the error message, how much was kept, the new order, ...)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (what :attr:`~matpo_gym.tools.base.ToolResult.noise` holds)."""
        return {
            "tool": self.tool,
            "kind": self.kind,
            "arguments": dict(self.arguments),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """How much tool noise to inject, and of which kinds (the robustness-ablation knob)."""

    rate: float = 0.0
    """Probability that a call is disturbed; 0 leaves the tools untouched."""
    kinds: tuple[str, ...] = ALL_KINDS
    """Kinds to draw from, uniformly: error, timeout, irrelevant, truncate, corrupt, shuffle."""
    seed: int = 0
    """Seeds every per-call decision: same seed, same noise on the same calls."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", _check(self.rate, self.kinds))

    @classmethod
    def parse(cls, rate: float, kinds: str = "all", seed: int = 0) -> NoiseConfig:
        """From command-line form: ``kinds`` is ``all`` or comma-separated names (``error,timeout``).

        >>> NoiseConfig.parse(0.2, "error, timeout").kinds
        ('error', 'timeout')
        """
        names = ALL_KINDS if kinds.strip() == "all" else tuple(k.strip() for k in kinds.split(",") if k.strip())
        return cls(rate=rate, kinds=names, seed=seed)


def apply_noise(tools: Mapping[str, Tool], config: NoiseConfig) -> dict[str, Tool]:
    """Wrap every tool in a :class:`NoisyTool`; with ``rate == 0`` return the tools as they are."""
    if config.rate == 0:
        return dict(tools)
    return {
        name: NoisyTool(tool, rate=config.rate, kinds=config.kinds, seed=config.seed)
        for name, tool in tools.items()
    }


class NoisyTool:
    """A tool whose results are sometimes disturbed, reproducibly, each disturbance recorded.

    With probability ``rate`` per call one kind of noise, drawn uniformly from ``kinds``, replaces
    the clean result: ``error`` and ``timeout`` raise (ToolError / ToolTimeout, without calling the
    tool), ``irrelevant`` returns an unrelated result, ``truncate`` keeps a 10-50% prefix,
    ``corrupt`` garbles some words and ``shuffle`` reorders a ranked list (or the lines of a page).

    ``irrelevant`` makes the unrelated result; by default the wrapped tool's own ``distractor(rng)``
    (search and browse have one), else its output for the previous different call. With neither,
    the result is truncated instead and recorded as ``truncate``.

    >>> from matpo_gym.tools.base import ToolSpec
    >>> class Echo:
    ...     spec = ToolSpec("echo", "Repeat the text.", {"type": "object",
    ...         "properties": {"text": {"type": "string"}}, "required": ["text"]})
    ...     def __call__(self, text: str) -> str:
    ...         return text
    >>> noisy = NoisyTool(Echo(), rate=1.0, kinds=["truncate"], seed=3)
    >>> noisy(text="The quick brown fox jumps over the lazy dog.")
    'The quick brown f'
    >>> [(event.kind, event.detail) for event in noisy.pop_events()]
    [('truncate', 'kept the first 17 of 44 characters')]
    >>> NoisyTool(Echo(), **noisy.config())(text="The quick brown fox jumps over the lazy dog.")
    'The quick brown f'
    >>> NoisyTool(Echo(), rate=0.0)(text="clean")
    'clean'
    """

    def __init__(
        self,
        tool: Tool,
        *,
        rate: float,
        kinds: Sequence[str] = ALL_KINDS,
        seed: int = 0,
        irrelevant: Irrelevant | None = None,
    ) -> None:
        self.tool = tool
        self.spec: ToolSpec = tool.spec
        self.kinds = _check(rate, kinds)
        self.rate = float(rate)
        self.seed = seed
        self._irrelevant = irrelevant or getattr(tool, "distractor", None)
        self._lock = threading.Lock()
        self._events: list[NoiseEvent] = []
        self._generation = 0
        """Resets so far: a call records only into the episode it started in."""
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._recent: OrderedDict[str, str] = OrderedDict()

    def config(self) -> dict[str, Any]:
        """The arguments that rebuild this wrapper: ``NoisyTool(tool, **noisy.config())``."""
        return {"rate": self.rate, "kinds": self.kinds, "seed": self.seed}

    def reset(self, seed: int | None = None) -> None:
        """Start counting calls afresh (under a new seed if given), as if no call had been made."""
        with self._lock:
            if seed is not None:
                self.seed = seed
            self._counts.clear()
            self._recent.clear()
            self._events.clear()
            # a call of the last episode still running (abandoned at its timeout) writes nothing
            # into this one when it ends
            self._generation += 1

    def pop_events(self) -> list[NoiseEvent]:
        """The noise injected since the last pop, oldest first."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def __call__(self, **arguments: Any) -> str:
        if self.rate == 0:
            return self.tool(**arguments)
        generation = self._generation
        key = json.dumps(
            arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        rng = self._rng_for(key)
        kind = rng.choice(self.kinds) if rng.random() < self.rate else None
        if kind == "error":
            message = rng.choice(TRANSIENT_ERRORS)
            self._record(kind, arguments, message, generation)
            raise ToolError(message)
        if kind == "timeout":
            self._record(kind, arguments, "raised a timeout without calling the tool", generation)
            raise ToolTimeout("the request took too long and was abandoned.")
        text = self.tool(**arguments)
        previous = self._remember(key, text, generation)
        if kind is None:
            return text
        if kind == "irrelevant":
            other = self._unrelated(rng, text, previous)
            if other is not None:
                self._record(
                    kind, arguments, f"replaced by an unrelated result: {_first_line(other)!r}", generation
                )
                return other
        applied = "truncate" if kind == "irrelevant" else kind
        noisy, detail = _TRANSFORMS[applied](text, rng)
        if applied != kind:
            detail += " (irrelevant was drawn, but no unrelated result was available)"
        self._record(applied, arguments, detail, generation)
        return noisy

    def _rng_for(self, key: str) -> random.Random:
        """A generator seeded by (seed, tool, arguments, how many times this call came before)."""
        with self._lock:
            occurrence = self._counts[key]
            self._counts[key] = occurrence + 1
        material = f"{self.seed}\x1f{self.spec.name}\x1f{key}\x1f{occurrence}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))

    def _remember(self, key: str, text: str, generation: int) -> str | None:
        """Store this call's clean output; return the latest output of a different call, if any."""
        with self._lock:
            previous = next((out for k, out in reversed(self._recent.items()) if k != key), None)
            if generation != self._generation:  # a call from before the last reset
                return previous
            self._recent.pop(key, None)
            self._recent[key] = text
            while len(self._recent) > 2:
                self._recent.popitem(last=False)
        return previous

    def _unrelated(self, rng: random.Random, text: str, previous: str | None) -> str | None:
        if self._irrelevant is not None:
            for _ in range(3):
                other = self._irrelevant(rng)
                if other is None:
                    break
                if other != text:
                    return other
        return previous if previous is not None and previous != text else None

    def _record(self, kind: str, arguments: dict[str, Any], detail: str, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._events.append(NoiseEvent(self.spec.name, kind, dict(arguments), detail))


def truncate(text: str, rng: random.Random) -> tuple[str, str]:
    """Keep a random 10-50% prefix."""
    if not text:
        return text, "empty result; nothing to truncate"
    keep = max(1, int(len(text) * rng.uniform(0.1, 0.5)))
    return text[:keep], f"kept the first {keep} of {len(text)} characters"


def corrupt(text: str, rng: random.Random) -> tuple[str, str]:
    """Replace 10-30% of the words (at least one) with same-length garbage."""
    parts = re.split(r"(\s+)", text)
    words = [i for i, part in enumerate(parts) if part and not part.isspace()]
    if not words:
        return text, "no words; unchanged"
    count = max(1, round(len(words) * rng.uniform(0.1, 0.3)))
    for i in sorted(rng.sample(words, count)):
        parts[i] = "".join(rng.choice(_GARBAGE) for _ in parts[i])
    return "".join(parts), f"garbled {count} of {len(words)} words"


def shuffle(text: str, rng: random.Random) -> tuple[str, str]:
    """Reorder and renumber a ranked list (``1.``, ``2.``, ...); otherwise reorder the lines."""
    lines = text.split("\n")
    heads = [i for i, line in enumerate(lines) if _RANK.match(line)]
    if len(heads) >= 2:
        preamble = lines[: heads[0]]
        blocks = [lines[a:b] for a, b in zip(heads, [*heads[1:], len(lines)], strict=True)]
        order = _nontrivial_permutation(len(blocks), rng)
        renumbered = [
            [_RANK.sub(rf"\g<1>{new}.\g<3>", blocks[old][0], count=1), *blocks[old][1:]]
            for new, old in enumerate(order, start=1)
        ]
        out = preamble + [line for block in renumbered for line in block]
        return "\n".join(out), f"reordered {len(blocks)} ranked results as {[i + 1 for i in order]}"
    paragraphs = [line for line in lines if line.strip()]
    if len(paragraphs) < 2:
        return text, "a single paragraph; unchanged"
    order = _nontrivial_permutation(len(paragraphs), rng)
    return "\n".join(paragraphs[i] for i in order), f"reordered {len(paragraphs)} paragraphs"


_TRANSFORMS: dict[str, Callable[[str, random.Random], tuple[str, str]]] = {
    "truncate": truncate,
    "corrupt": corrupt,
    "shuffle": shuffle,
}


def _nontrivial_permutation(n: int, rng: random.Random) -> list[int]:
    """A random permutation of range(n) that is not the identity (n >= 2)."""
    order = list(range(n))
    rng.shuffle(order)
    if order == list(range(n)):
        order = order[1:] + order[:1]
    return order


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= 80 else line[:77] + "..."


def _check(rate: float, kinds: Sequence[str]) -> tuple[str, ...]:
    """Validate a rate and kinds; the kinds come back as a duplicate-free tuple."""
    valid = ", ".join(ALL_KINDS)
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or math.isnan(rate)
        or not 0 <= rate <= 1
    ):
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")
    if isinstance(kinds, str):
        raise ValueError(f"kinds must be a list of names, not the string {kinds!r}; valid: {valid}")
    checked = tuple(dict.fromkeys(kinds))
    for kind in checked:
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown noise kind {kind!r}; valid kinds: {valid}")
    if not checked:
        raise ValueError(f"kinds is empty; choose from: {valid}")
    return checked
