"""Trajectories: the record of what each role saw and generated in an episode.

One :class:`Trajectory` per role instance: the planner (or single agent) of an episode, and one per
worker it spawned, linked to the planner by ``parent_id``. Each :class:`Turn` keeps the exact
prompt the model saw (after any context truncation) and the text it generated, so a trainer can
rebuild the generated-vs-environment token mask; policies that return token ids and log-probs
attach them to the turn, so no re-tokenisation is needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from matpo_gym.core.messages import Message, Role


@dataclass(slots=True)
class Turn:
    """One model call: the prompt it saw and what it generated."""

    prompt: tuple[Message, ...]
    completion: str
    action: str
    """``"tool_call"``, ``"answer"`` or ``"invalid"``."""
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None

    @property
    def valid(self) -> bool:
        return self.action != "invalid"


@dataclass(slots=True)
class Trajectory:
    """Everything one role instance did in one episode."""

    id: str
    episode_id: str
    role: Role
    parent_id: str | None = None
    """The planner trajectory that spawned this worker; None for planners and single agents."""
    messages: list[Message] = field(default_factory=list)
    """The full, untruncated conversation."""
    turns: list[Turn] = field(default_factory=list)
    final: str | None = None
    """The answer (planner, single) or summary (worker) this trajectory ended with."""
    stop_reason: str | None = None

    @property
    def format_score(self) -> float:
        """Fraction of turns that were well-formed actions (1.0 for a trajectory with no turns)."""
        if not self.turns:
            return 1.0
        return sum(t.valid for t in self.turns) / len(self.turns)

    def to_dict(self, *, with_prompts: bool = False) -> dict[str, Any]:
        """JSON-ready form; per-turn prompts are large and left out unless asked for."""
        turns = []
        for turn in self.turns:
            data = asdict(turn)
            data["prompt"] = [m.to_dict() for m in turn.prompt] if with_prompts else None
            turns.append(data)
        return {
            "id": self.id,
            "episode_id": self.episode_id,
            "role": self.role.value,
            "parent_id": self.parent_id,
            "messages": [m.to_dict() for m in self.messages],
            "turns": turns,
            "final": self.final,
            "stop_reason": self.stop_reason,
        }


TOOL_COUNTERS: tuple[str, ...] = ("calls", "errors", "timeouts", "noise", "blocked")
"""What :attr:`EpisodeStats.per_tool` counts for every tool."""
UNKNOWN_TOOL = "<unknown>"
"""The :attr:`EpisodeStats.per_tool` key of calls to tools the caller does not have."""


def _per_role() -> dict[str, int]:
    return {role.value: 0 for role in Role}


@dataclass(slots=True)
class EpisodeStats:
    """Counters an episode keeps so that nothing fails or gets cut silently."""

    tool_calls: int = 0
    """Calls of search/browse (and unknown tools); worker calls are ``workers_spawned``."""
    tool_errors: int = 0
    """Failed tool calls, worker calls with bad arguments included."""
    tool_timeouts: int = 0
    invalid_actions: int = 0
    context_truncations: int = 0
    """Prompts cut to fit a per-call budget (the middle dropped), all roles."""
    workers_spawned: int = 0
    noise_events: list[dict[str, Any]] = field(default_factory=list)
    per_tool: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per tool name (``worker``, ``search``, ``browse``; ``<unknown>`` for tools the caller does
    not have): ``calls``, ``errors`` (timeouts included), ``timeouts``, ``noise`` (injected noise
    events) and ``blocked`` (results or URLs removed by the leakage guard)."""
    truncations: dict[str, int] = field(default_factory=_per_role)
    """Per role (``planner``, ``worker``, ``single``): prompts cut to fit plus context-limit
    stops, so the values sum to ``context_truncations + context_limit_stops``."""
    context_limit_stops: int = 0
    """Times a context limit ended a role's turns: a worker over its per-call or total budget
    asked for its summary or stopped, a planner or single agent over its total budget stopped."""
    turn_limit_summaries: int = 0
    """Workers that used up their turns and were asked for their summary (the answer they then
    write ends them, so their stop reason alone does not show it)."""

    def count_tool(
        self, name: str, *, ok: bool, timeout: bool, noise: int = 0, blocked: int = 0
    ) -> None:
        """Add one call of tool ``name`` to :attr:`per_tool`."""
        counts = self.per_tool.setdefault(name, dict.fromkeys(TOOL_COUNTERS, 0))
        counts["calls"] += 1
        counts["errors"] += not ok
        counts["timeouts"] += timeout
        counts["noise"] += noise
        counts["blocked"] += blocked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class EpisodeResult:
    """The outcome of one finished episode: score, reward and every trajectory."""

    episode_id: str
    task_id: str
    question: str
    gold: str
    prediction: str | None
    score: float
    """Answer correctness in [0, 1] (the scorer's metric)."""
    reward: float
    """What an RL trainer optimises: score plus the optional format term."""
    stop_reason: str
    trajectories: list[Trajectory]
    stats: EpisodeStats
    metrics: dict[str, float] = field(default_factory=dict)
    """Every metric the scorer declares."""
    error: str | None = None
    """Why the episode was aborted, when ``stop_reason == "error"``."""

    @property
    def planner(self) -> Trajectory:
        """The root trajectory (planner or single agent)."""
        return next(t for t in self.trajectories if t.parent_id is None)

    def to_dict(self, *, with_trajectories: bool = True) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "task_id": self.task_id,
            "question": self.question,
            "gold": self.gold,
            "prediction": self.prediction,
            "score": self.score,
            "metrics": self.metrics,
            "reward": self.reward,
            "stop_reason": self.stop_reason,
            "error": self.error,
            "stats": self.stats.to_dict(),
            "trajectories": [t.to_dict() for t in self.trajectories] if with_trajectories else None,
        }
