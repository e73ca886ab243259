"""One episode as a state machine: who acts next, what they see, and what their action does.

This is the multi-turn loop of the suite, kept free of Gymnasium so that the gym env, the batched
rollout and the trainers all drive the same code. In MATPO mode the planner's only tool is the
``worker``: calling it pushes a worker with a fresh context (its system prompt and one message
that recaps the question and states the subtask). The worker searches and browses until it
answers with a summary, which, thinking removed and cut to size, returns to the planner as the
worker tool's result. A worker that runs out of turns or context is asked for that summary once
(``limits.forced_summary``; when that is off it is stopped, and the planner reads a note and the
worker's last message instead); workers cannot spawn workers. In single mode the agent calls the
tools itself.

Context limits are per role: a per-call prompt budget (beyond it the middle of the conversation is
dropped; a worker is also asked for its summary) and an optional cap on the role's whole
conversation (a worker is asked for its summary or stopped; a planner or single agent is stopped).
They are applied after every action, to whichever role acts next.

Stop reasons: ``error`` (the episode was aborted, see :meth:`Episode.abort`), ``answer`` (the
planner or single agent answered: terminated), ``turn_limit`` and ``context_limit`` (truncated).
A worker's trajectory ends with ``answer``, ``no_summary`` when it ignored the request for one, or
``turn_limit`` / ``context_limit`` when it was stopped without being asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from matpo_gym.core.actions import Answer, ParseError, ToolCall, parse_action
from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.core.trajectory import UNKNOWN_TOOL, EpisodeResult, EpisodeStats, Trajectory, Turn
from matpo_gym.data.tasks import Task
from matpo_gym.envs.context import (
    Fitted,
    TokenCounter,
    approx_tokens,
    fit_context,
    message_tokens,
)
from matpo_gym.envs.prompts import WORKER_TOOL, PromptSet, question_message
from matpo_gym.envs.spec import LimitsSpec, Mode
from matpo_gym.envs.worker_report import SUMMARY_REQUEST, worker_report
from matpo_gym.scoring.scorers import Scorer
from matpo_gym.tools.base import Tool, ToolResult, run_tool, unknown_tool, validate_arguments


@dataclass(slots=True)
class TokenRecord:
    """Token-level detail of one completion, when the policy provides it."""

    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None


@dataclass(slots=True)
class _Agent:
    """One role instance in the episode's stack of active agents."""

    trajectory: Trajectory
    tools: Mapping[str, Tool]
    max_turns: int
    context_tokens: int
    """Per-call prompt budget of this role."""
    total_tokens: int | None
    """Cap on this role's whole conversation; None: no cap."""
    turns: int = 0
    summary_requested: bool = False
    counted_messages: int = 0
    conversation_tokens: int = 0
    """Tokens of the first ``counted_messages`` messages (kept up to date lazily)."""


@dataclass(slots=True)
class StepOutcome:
    """What one action did to the episode."""

    terminated: bool = False
    truncated: bool = False
    tool_result: ToolResult | None = None
    events: list[str] = field(default_factory=list)


class Episode:
    """Plays one task to the end in ``matpo`` or ``single`` mode."""

    def __init__(
        self,
        task: Task,
        *,
        mode: Mode,
        tools: Mapping[str, Tool],
        prompts: PromptSet,
        limits: LimitsSpec,
        scorer: Scorer,
        episode_id: str,
        format_weight: float = 0.0,
        count_tokens: TokenCounter = approx_tokens,
        tool_timeout: float | None = 30.0,
        site_base: str | None = None,
    ):
        if mode not in ("matpo", "single"):
            raise ValueError(f"Unknown mode {mode!r}; use 'matpo' or 'single'.")
        self.task = task
        self.mode = mode
        self.tools = dict(tools)
        self.prompts = prompts
        self.limits = limits
        self.scorer = scorer
        self.episode_id = episode_id
        self.format_weight = format_weight
        self.count_tokens = count_tokens
        self.tool_timeout = tool_timeout
        self.stats = EpisodeStats()
        self.trajectories: list[Trajectory] = []
        self.prediction: str | None = None
        self.stop_reason: str | None = None
        self.error: str | None = None
        self._ids = itertools.count()
        root_role = Role.PLANNER if mode == "matpo" else Role.SINGLE
        root_tools: Mapping[str, Tool] = {} if mode == "matpo" else self.tools
        specs = [WORKER_TOOL] if mode == "matpo" else [t.spec for t in self.tools.values()]
        max_turns = limits.planner_turns if mode == "matpo" else limits.single_turns
        root = self._new_trajectory(root_role, parent=None)
        self._question_text = question_message(task, site_base)
        root.messages += [
            Message("system", prompts.system(root_role, specs, max_turns)),
            Message("user", f"Question: {self._question_text}"),
        ]
        self._stack: list[_Agent] = [self._agent(root, root_tools, max_turns)]
        self._prompt_cache: tuple[tuple[str, int], Prompt] | None = None
        self._fit_cache: tuple[tuple[str, int], Fitted] | None = None
        self._enforce_context_limits(StepOutcome())

    # -- what the model sees -------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def acting(self) -> Trajectory:
        """The trajectory of the role that acts next."""
        return self._stack[-1].trajectory

    def prompt(self) -> Prompt:
        """The acting role's messages, fitted to its per-call context budget.

        Cached until the conversation changes, so asking twice counts one truncation.
        """
        if self.done:
            raise RuntimeError(f"The episode is over ({self.stop_reason}); no role acts next.")
        agent = self._stack[-1]
        key = (agent.trajectory.id, len(agent.trajectory.messages))
        if self._prompt_cache is not None and self._prompt_cache[0] == key:
            return self._prompt_cache[1]
        fitted = self._fit(agent)
        if fitted.truncated:
            self.stats.context_truncations += 1
            self.stats.truncations[agent.trajectory.role.value] += 1
        names = (WORKER_TOOL.name,) if agent.trajectory.role is Role.PLANNER else tuple(agent.tools)
        prompt = Prompt(agent.trajectory.role, fitted.messages, agent.trajectory.id, names)
        self._prompt_cache = (key, prompt)
        return prompt

    def _fit(self, agent: _Agent) -> Fitted:
        """The agent's conversation fitted to its budget (cached like :meth:`prompt`, uncounted)."""
        key = (agent.trajectory.id, len(agent.trajectory.messages))
        if self._fit_cache is None or self._fit_cache[0] != key:
            fitted = fit_context(agent.trajectory.messages, agent.context_tokens, self.count_tokens)
            self._fit_cache = (key, fitted)
        return self._fit_cache[1]

    # -- what an action does -------------------------------------------------------------------

    def step(self, text: str, tokens: TokenRecord | None = None) -> StepOutcome:
        """Apply the acting role's completion ``text``."""
        if self.done:
            raise RuntimeError("The episode is over; call reset() to start a new one.")
        agent = self._stack[-1]
        prompt = self.prompt()
        action = parse_action(text)
        if not isinstance(text, str):  # None or another non-text completion: an invalid turn, kept as
            text = "" if text is None else str(text)  # text so the conversation stays countable
        kind = {ToolCall: "tool_call", Answer: "answer", ParseError: "invalid"}[type(action)]
        tokens = tokens or TokenRecord()
        agent.trajectory.turns.append(
            Turn(
                prompt.messages,
                text,
                kind,
                tokens.prompt_ids,
                tokens.completion_ids,
                tokens.completion_logprobs,
            )
        )
        agent.trajectory.messages.append(Message("assistant", text))
        agent.turns += 1
        outcome = StepOutcome()

        self._apply(agent, action, outcome)
        self._enforce_context_limits(outcome)
        return outcome

    def _apply(
        self, agent: _Agent, action: ToolCall | Answer | ParseError, outcome: StepOutcome
    ) -> None:
        if isinstance(action, Answer):
            self._finish_agent(agent, action.text, "answer", outcome)
            return
        if agent.summary_requested:
            self._finish_agent(agent, None, "no_summary", outcome)
            return
        if isinstance(action, ParseError):
            self.stats.invalid_actions += 1
            agent.trajectory.messages.append(Message("user", action.message))
        else:
            outcome.tool_result = self._call_tool(agent, action)
            if self._stack[-1] is not agent:  # a worker was spawned; limits apply when it returns
                return
        self._check_turn_limit(agent, outcome)

    def abort(self, reason: str) -> None:
        """End the episode without an answer (e.g. the policy or a tool broke); it scores 0."""
        if not self.done:
            self.acting.stop_reason = "error"
            self.stop_reason = "error"
            self.error = reason

    def _check_turn_limit(self, agent: _Agent, outcome: StepOutcome) -> None:
        if agent.turns < agent.max_turns:
            return
        if agent.trajectory.role is Role.WORKER and self.limits.forced_summary:
            self.stats.turn_limit_summaries += 1
            self._request_summary(agent)
        else:
            self._finish_agent(agent, None, "turn_limit", outcome)

    def _enforce_context_limits(self, outcome: StepOutcome) -> None:
        """Apply the acting role's context limits; a stopped worker hands the turn to its planner,
        whose limits are then checked in turn."""
        while not self.done:
            agent = self._stack[-1]
            if not self._over_context_limit(agent):
                return
            self.stats.context_limit_stops += 1
            self.stats.truncations[agent.trajectory.role.value] += 1
            if agent.trajectory.role is Role.WORKER and self.limits.forced_summary:
                self._request_summary(agent)
                return
            self._finish_agent(agent, None, "context_limit", outcome)

    def _over_context_limit(self, agent: _Agent) -> bool:
        """Over the total budget, or, for a worker, over its per-call budget; a worker already
        asked for its summary is let write it."""
        if agent.summary_requested:
            return False
        if agent.total_tokens is not None and self._conversation_tokens(agent) > agent.total_tokens:
            return True
        return agent.trajectory.role is Role.WORKER and self._fit(agent).truncated

    def _conversation_tokens(self, agent: _Agent) -> int:
        """Tokens of the agent's whole, untruncated conversation, counted as fit_context does."""
        messages = agent.trajectory.messages
        for message in messages[agent.counted_messages :]:
            agent.conversation_tokens += message_tokens(message, self.count_tokens)
        agent.counted_messages = len(messages)
        return agent.conversation_tokens

    def _call_tool(self, agent: _Agent, call: ToolCall) -> ToolResult:
        role = agent.trajectory.role
        if role is Role.PLANNER and call.name == WORKER_TOOL.name:
            return self._spawn_worker(agent, call)
        self.stats.tool_calls += 1
        tool = agent.tools.get(call.name)
        blocked = 0
        if tool is None:
            available = [WORKER_TOOL.name] if role is Role.PLANNER else list(agent.tools)
            result = unknown_tool(call.name, call.arguments, available)
        else:
            result = run_tool(tool, call.arguments, timeout=self.tool_timeout)
            pop = getattr(tool, "pop_events", None)
            if pop is not None:
                result.noise = [event.to_dict() for event in pop()]
                self.stats.noise_events += [
                    {**event, "trajectory_id": agent.trajectory.id} for event in result.noise
                ]
            blocked = _pop_blocked(tool)
        if not result.ok:
            self.stats.tool_errors += 1
            self.stats.tool_timeouts += result.error == "timeout"
        self.stats.count_tool(
            call.name if tool is not None else UNKNOWN_TOOL,
            ok=result.ok,
            timeout=result.error == "timeout",
            noise=len(result.noise),
            blocked=blocked,
        )
        agent.trajectory.messages.append(Message("tool", result.text, name=call.name))
        return result

    def _spawn_worker(self, planner: _Agent, call: ToolCall) -> ToolResult:
        problem = validate_arguments(WORKER_TOOL, call.arguments)
        self.stats.count_tool(WORKER_TOOL.name, ok=problem is None, timeout=False)
        if problem is not None:
            self.stats.tool_errors += 1
            planner.trajectory.messages.append(Message("tool", problem, name=WORKER_TOOL.name))
            return ToolResult(
                WORKER_TOOL.name, call.arguments, problem, ok=False, error="bad_arguments"
            )
        self.stats.workers_spawned += 1
        worker = self._new_trajectory(Role.WORKER, parent=planner.trajectory.id)
        specs = [t.spec for t in self.tools.values()]
        worker.messages += [
            Message("system", self.prompts.system(Role.WORKER, specs, self.limits.worker_turns)),
            Message(
                "user", self.prompts.worker_message(self._question_text, call.arguments["subtask"])
            ),
        ]
        self._stack.append(self._agent(worker, self.tools, self.limits.worker_turns))
        return ToolResult(WORKER_TOOL.name, call.arguments, "(worker started)")

    def _request_summary(self, agent: _Agent) -> None:
        agent.summary_requested = True
        agent.trajectory.messages.append(Message("user", SUMMARY_REQUEST))

    def _finish_agent(
        self, agent: _Agent, final: str | None, reason: str, outcome: StepOutcome
    ) -> None:
        trajectory = agent.trajectory
        trajectory.final, trajectory.stop_reason = final, reason
        self._stack.pop()
        if trajectory.role is Role.WORKER:
            summary = worker_report(
                trajectory.messages, final, reason,
                keep_thinking=not self.prompts.strip_thinking, summary_chars=self.limits.summary_chars,
            )
            parent = self._stack[-1]
            parent.trajectory.messages.append(Message("tool", summary, name=WORKER_TOOL.name))
            outcome.events.append(f"worker {trajectory.id} returned ({reason})")
            self._check_turn_limit(parent, outcome)
            return
        self.prediction = final
        self.stop_reason = reason
        outcome.terminated = reason == "answer"
        outcome.truncated = not outcome.terminated

    def _agent(self, trajectory: Trajectory, tools: Mapping[str, Tool], max_turns: int) -> _Agent:
        role = trajectory.role.value
        return _Agent(
            trajectory,
            tools,
            max_turns,
            context_tokens=self.limits.context_budget(role),
            total_tokens=self.limits.total_budget(role),
        )

    def _new_trajectory(self, role: Role, parent: str | None) -> Trajectory:
        trajectory = Trajectory(
            id=f"{self.episode_id}/{role.value}-{next(self._ids)}",
            episode_id=self.episode_id,
            role=role,
            parent_id=parent,
        )
        self.trajectories.append(trajectory)
        return trajectory

    # -- the outcome ---------------------------------------------------------------------------

    def result(self) -> EpisodeResult:
        """Score the finished episode; reward = (1 - w) * score + w * mean format validity."""
        if not self.done:
            raise RuntimeError("The episode is not finished yet.")
        try:
            metrics = self.scorer.score(self.prediction, self.task)
        except Exception as exc:  # noqa: BLE001 - a broken scorer scores 0; it must not kill a batch
            metrics = {self.scorer.primary: 0.0}
            self.error = self.error or f"scorer failed: {type(exc).__name__}: {exc}"
        score = metrics[self.scorer.primary]
        format_mean = sum(t.format_score for t in self.trajectories) / len(self.trajectories)
        reward = (1 - self.format_weight) * score + self.format_weight * format_mean
        return EpisodeResult(
            episode_id=self.episode_id,
            task_id=self.task.id,
            question=self.task.question,
            gold=self.task.answer,
            prediction=self.prediction,
            score=score,
            reward=reward,
            stop_reason=self.stop_reason or "",
            trajectories=list(self.trajectories),
            stats=self.stats,
            metrics=metrics,
            error=self.error,
        )


def _pop_blocked(tool: object) -> int:
    """What the leakage guard somewhere in ``tool``'s wrapper chain blocked in the last call."""
    while tool is not None:
        pop = getattr(tool, "pop_blocked", None)
        if pop is not None:
            return int(pop())
        tool = getattr(tool, "tool", None)
    return 0
