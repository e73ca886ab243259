"""The environment spec: one TOML file in ``envs/`` describes a named environment."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from matpo_gym.catalogue import CatalogueError, resolve
from matpo_gym.config import ConfigError, from_dict, load_toml
from matpo_gym.tools.leakage import DEFAULT_BLOCKED_DOMAINS, parse_rules

Mode = Literal["matpo", "single"]
MODES: tuple[Mode, ...] = ("matpo", "single")
ROLE_VALUES: tuple[str, ...] = ("planner", "worker", "single")
"""The role names that limits are kept per (``Role`` values)."""


@dataclass(frozen=True)
class SourceSpec:
    """Where the tasks come from."""

    kind: Literal["world", "frames", "webwalkerqa", "gaia", "musique", "matpo_data", "jsonl"] = "world"
    """``world`` is the offline synthetic world; the others are the real benchmarks or a file."""
    family: str = "frames"
    """World question family: ``frames``, ``webwalker``, ``gaia`` or ``musique``."""
    difficulty: str | None = None
    """Keep only tasks of this difficulty (``easy``, ``medium``, ``hard``); None keeps all."""
    path: str | None = None
    """Local data file or folder (real benchmarks, ``jsonl``)."""
    split: str = "test"
    """Dataset split to draw tasks from."""


@dataclass(frozen=True)
class WorldSpec:
    """Offline world generation knobs (see :class:`~matpo_gym.data.world.WorldConfig`)."""

    seed: int = 0
    """World seed: a different seed is a different encyclopedia."""
    num_entities: int = 400
    """Entities in the world (pages grow with distractors and categories)."""
    distractors_per_entity: float = 0.3
    """Near-duplicate distractor pages per entity."""
    filler_paragraphs: int = 2
    """Irrelevant prose paragraphs per page: the page-length knob."""


@dataclass(frozen=True)
class ToolsSpec:
    """Which tools the acting role gets and how they behave."""

    names: tuple[str, ...] = ("search", "browse")
    """Tools of the worker (MATPO mode) or the single agent."""
    search_top_k: int = 5
    """Results per search call."""
    browse_max_chars: int = 4000
    """Characters per browse window; longer pages are paged."""
    timeout_s: float = 30.0
    """Per-call time limit."""
    backend: Literal["local", "web"] = "local"
    """``local``: the offline world's page store; ``web``: live search and HTTP browsing."""
    cache_path: str | None = None
    """SQLite file of recorded tool results (a relative path is relative to the working
    directory)."""
    cache_mode: Literal["off", "read_write", "record", "replay"] = "off"
    """``read_write`` reuses hits and stores misses; ``record`` always calls and stores;
    ``replay`` only reads, and a miss is a tool error (exact offline replays)."""
    search_region: str = "wt-wt"
    """Live search region (ddgs), e.g. ``us-en``; ``wt-wt`` is no region."""
    safe_search: Literal["on", "moderate", "off"] = "moderate"
    """Live search safe-search level."""
    leakage_guard: bool = False
    """Drop search results on ``blocked_domains`` and refuse to browse them, so an agent cannot
    copy a benchmark's gold answer from a page that hosts the dataset (the reference does this)."""
    blocked_domains: tuple[str, ...] = DEFAULT_BLOCKED_DOMAINS
    """What the leakage guard blocks: ``host[/path]`` prefixes, subdomains included. The default
    is Hugging Face datasets and spaces (also under ``hf.co``), where the benchmarks are hosted."""

    def __post_init__(self) -> None:
        try:
            parse_rules(self.blocked_domains)
        except ValueError as exc:
            raise ConfigError(f"tools.blocked_domains: {exc}") from None


@dataclass(frozen=True)
class LimitsSpec:
    """Turn and context limits (the reference uses 20 turns per role)."""

    planner_turns: int = 20
    """Planner turns before the episode is truncated."""
    worker_turns: int = 20
    """Worker turns before the env asks for its final summary (or stops it, see forced_summary)."""
    single_turns: int = 20
    """Single-agent turns before the episode is truncated."""
    context_tokens: int = 32768
    """Prompt budget per model call; beyond it the middle of the conversation is dropped."""
    summary_chars: int = 2000
    """Longest worker summary handed back to the planner; 0 or less: no limit (the paper cuts
    summaries so one worker cannot flood the planner's context)."""
    forced_summary: bool = True
    """Ask a worker that runs out of turns or context for its final summary (the paper's
    insight). Off: it is just stopped, and the planner gets a note and the worker's last message."""
    planner_context_tokens: int | None = None
    """Planner prompt budget per call; None: ``context_tokens``. Roles need different budgets
    because a worker reads whole pages while a planner reads short summaries."""
    worker_context_tokens: int | None = None
    """Worker prompt budget per call; None: ``context_tokens``. A worker over it is asked for its
    summary (or stopped)."""
    single_context_tokens: int | None = None
    """Single-agent prompt budget per call; None: ``context_tokens``."""
    planner_total_tokens: int | None = None
    """Cap on the planner's whole untruncated conversation; over it the episode is truncated
    (stop reason ``context_limit``). None: no cap. Models a real context window, where dropping
    the middle is not an option."""
    worker_total_tokens: int | None = None
    """Cap on a worker's whole conversation; over it the worker is asked for its summary (or
    stopped, see ``forced_summary``). None: no cap."""
    single_total_tokens: int | None = None
    """Cap on the single agent's whole conversation, as for the planner. None: no cap."""
    total_tokens: int | None = None
    """Whole-conversation cap of every role without its own ``<role>_total_tokens``; None: no cap.
    One number for all roles is the paper's setting: one model, one context window."""

    def __post_init__(self) -> None:
        for name in ("planner_turns", "worker_turns", "single_turns", "context_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"limits.{name} must be at least 1, got {getattr(self, name)}")
        names = [f"{role}_{kind}_tokens" for role in ROLE_VALUES for kind in ("context", "total")]
        for name in (*names, "total_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"limits.{name} must be positive, got {value}")

    def context_budget(self, role: str) -> int:
        """The per-call prompt budget of ``role`` (``planner``, ``worker`` or ``single``)."""
        own: int | None = getattr(self, f"{role}_context_tokens")
        return self.context_tokens if own is None else own

    def total_budget(self, role: str) -> int | None:
        """The whole-conversation cap of ``role``; None when it has none."""
        own: int | None = getattr(self, f"{role}_total_tokens")
        return self.total_tokens if own is None else own


@dataclass(frozen=True)
class ScoringSpec:
    """How answers are scored and rewarded."""

    scorer: str = "exact_match"
    """Scorer name (``exact_match``, ``f1``, ``gaia``)."""
    format_weight: float = 0.0
    """Reward = (1 - w) * accuracy + w * mean format validity (the reference uses 0.1)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.format_weight <= 1.0:  # NaN fails too
            raise ConfigError(f"scoring.format_weight must be in [0, 1], got {self.format_weight}")


@dataclass(frozen=True)
class PromptsSpec:
    """Prompt template files, relative to the spec file (or the built-in prompts folder)."""

    planner: str = "prompts/planner.md"
    worker: str = "prompts/worker.md"
    single: str = "prompts/single.md"
    worker_task: str = "prompts/worker_task.md"
    """The worker's first user message: the subtask, with the question recapped."""
    query_recap: bool = True
    """Recap the original question in the worker's task message (the paper finds this matters)."""
    strip_thinking: bool = True
    """Remove ``<think>`` blocks from the worker's summary before the planner reads it, as the
    reference does: the planner gets conclusions, not the worker's reasoning. Off: the worker's
    final message reaches the planner as written, thinking included (answer tags removed)."""


@dataclass(frozen=True)
class EvalSpec:
    """The evaluation protocol of the env's benchmark."""

    repeats: int = 1
    """Episodes per question when a run does not say (the reference: GAIA-text 8, FRAMES and
    WebWalkerQA 2); scores are reported as mean pass@1 over them, plus pass@k."""

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"eval.repeats must be at least 1, got {self.repeats}.")


@dataclass(frozen=True)
class EnvSpec:
    """A named environment: a task source, tools, limits, scoring and prompts."""

    name: str
    description: str = ""
    version: int = 0
    mode: Mode = "matpo"
    """The mode ``gym.make`` plays unless given ``mode=``. ``matpo-bench run`` plays its own ``--mode``
    (both modes unless told otherwise), so a file's mode never hides the other mode's figures."""
    source: SourceSpec = field(default_factory=SourceSpec)
    world: WorldSpec = field(default_factory=WorldSpec)
    tools: ToolsSpec = field(default_factory=ToolsSpec)
    limits: LimitsSpec = field(default_factory=LimitsSpec)
    scoring: ScoringSpec = field(default_factory=ScoringSpec)
    prompts: PromptsSpec = field(default_factory=PromptsSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    root: str = "."
    """Folder the prompt paths are relative to (set from the file's location)."""

    @property
    def gym_id(self) -> str:
        return f"matpo/{self.name}-v{self.version}"

    def prompt_text(self, which: str) -> str:
        """The text of prompt template ``which`` (``planner``, ``worker``, ...), relative to the env
        file; one not there is looked up in the shipped catalogue's ``prompts/`` (a copy of a catalogue
        file moved elsewhere, or an env file written by another checkout, keeps its prompts)."""
        named = Path(getattr(self.prompts, which))
        path = Path(self.root) / named
        if not path.is_file():
            from matpo_gym.catalogue import builtin_dir

            # a relative path of a copied catalogue file, or an absolute one into another checkout's catalogue
            shipped = builtin_dir("envs") / (named if not named.is_absolute() else Path(*named.parts[-2:]))
            path = shipped if shipped.is_file() else path
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Env {self.name!r}: cannot read prompt {which!r} at {path}: {exc}"
            ) from None

    def with_overrides(self, **changes: Any) -> EnvSpec:
        return replace(self, **changes)


PROMPT_FILES = tuple(f.name for f in fields(PromptsSpec) if isinstance(f.default, str))
"""The fields of :class:`PromptsSpec` that name a file."""


def read_env_table(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """An env file's table with the env it ``extends`` merged in underneath, table by table, so a
    variant (another world seed, other limits) names only what it changes. ``extends`` is a
    catalogue name or a ``.toml`` path relative to the file; the variant is its own env, so it
    never takes the parent's name. Prompt paths stay relative to the file that names them."""
    path = path.resolve()
    if path in _chain:
        raise ConfigError("Env files extend each other in a cycle: " + " -> ".join(p.name for p in (*_chain, path)))
    data = load_toml(path)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data
    if not isinstance(parent_name, str) or not parent_name:
        raise ConfigError(f"{path}: 'extends' must be an env name or a .toml path, got {parent_name!r}.")
    beside = path.parent / parent_name
    try:
        parent_path = beside if beside.suffix == ".toml" and beside.is_file() else resolve("envs", parent_name)
    except CatalogueError as exc:
        raise ConfigError(f"{path}: extends {parent_name!r}: {exc}") from None
    parent = read_env_table(parent_path, (*_chain, path))
    parent.pop("name", None)
    parent_folder = parent_path.resolve().parent
    if parent_folder != path.parent:
        prompts = parent.setdefault("prompts", {})
        for key in PROMPT_FILES:
            named = prompts.get(key, getattr(PromptsSpec(), key))
            prompts[key] = str((parent_folder / named).resolve())
    return _merge(parent, data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys on top, tables merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict)
                       else value)
    return merged


def load_env_spec(name_or_path: str) -> EnvSpec:
    """Resolve ``name_or_path`` in the catalogue and validate it."""
    path = resolve("envs", name_or_path)
    data = read_env_table(path)
    data.setdefault("name", path.stem)
    try:
        spec = from_dict(EnvSpec, {**data, "root": str(path.parent)})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return spec
