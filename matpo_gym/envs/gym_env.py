"""The Gymnasium environment: one question per episode, planner + worker or a single agent.

Observations are chat messages for the role that acts next; actions are the model's text.
In MATPO mode the planner and its workers take turns inside one episode, and the observation's
``role`` says which one the policy is playing; one model, two system prompts.
"""

from __future__ import annotations

import hashlib
from typing import Any, SupportsFloat

import gymnasium as gym

from matpo_gym.core.messages import Prompt
from matpo_gym.data.tasks import Task
from matpo_gym.envs.context import TokenCounter, approx_tokens
from matpo_gym.envs.episode import Episode, TokenRecord
from matpo_gym.envs.prompts import PromptSet
from matpo_gym.envs.sources import load_source
from matpo_gym.envs.spaces import ROLE_NAMES, action_space, observation_space
from matpo_gym.envs.spec import EnvSpec, Mode, load_env_spec
from matpo_gym.envs.toolbox import build_tools
from matpo_gym.scoring.scorers import Scorer, get_scorer
from matpo_gym.tools.noise import NoiseConfig

Observation = dict[str, Any]


def stable_seed(*parts: object) -> int:
    """A seed from any values, the same in every process (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def prompt_observation(prompt: Prompt, turn: int) -> Observation:
    """The gym observation for a prompt."""
    return {
        "role": ROLE_NAMES.index(prompt.role.value),
        "messages": tuple({"role": m.role, "content": m.content} for m in prompt.messages),
        "trajectory_id": prompt.trajectory_id,
        "turn": turn,
    }


def _naming_the_env(exc: ValueError, spec: EnvSpec) -> ValueError:
    """``exc`` with the env it is about named, so a value wrong in one of several env files is
    found (errors of other types, and messages that name it already, are left as they are)."""
    if type(exc) is not ValueError or spec.name in str(exc):
        return exc
    return ValueError(f"env {spec.name!r}: {exc}")


class MatpoEnv(gym.Env[Observation, str]):
    """A multi-turn tool-use environment over one task source.

    Args:
        spec: an :class:`EnvSpec` or a catalogue name / path (``world-frames``, ``frames``, ...).
        mode: ``matpo`` (planner + worker) or ``single``; defaults to the spec's mode.
        split: task split (``train`` / ``test``); defaults to the spec's.
        noise: tool-noise settings (a :class:`NoiseConfig`, or a rate for every kind); no noise by default.
        count_tokens: token counter for the context budget (the policy's tokenizer, ideally).
        tasks: use these tasks instead of the spec's source (its site still backs the tools).
        scorer: score answers with this instead of the spec's scorer (e.g. an LLM judge).
        render_mode: ``"ansi"`` renders the acting role's transcript as text.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        spec: EnvSpec | str = "world-frames",
        *,
        mode: Mode | None = None,
        split: str | None = None,
        noise: NoiseConfig | float | None = None,
        count_tokens: TokenCounter = approx_tokens,
        tasks: list[Task] | None = None,
        scorer: Scorer | None = None,
        render_mode: str | None = None,
    ):
        self.spec_config = load_env_spec(spec) if isinstance(spec, str) else spec
        self.mode: Mode = mode or self.spec_config.mode
        if self.mode not in ("matpo", "single"):
            raise ValueError(f"Unknown mode {self.mode!r}; use 'matpo' or 'single'.")
        try:
            source = load_source(self.spec_config, split=split)
        except ValueError as exc:
            raise _naming_the_env(exc, self.spec_config) from None
        self.tasks: tuple[Task, ...] = tuple(tasks) if tasks is not None else source.tasks
        if not self.tasks:
            raise ValueError(
                f"Env {self.spec_config.name!r} has no tasks for this split/difficulty."
            )
        self.site = source.site
        if isinstance(noise, (int, float)) and not isinstance(noise, bool):
            noise = NoiseConfig(rate=float(noise))
        if noise is not None and not isinstance(noise, NoiseConfig):
            raise TypeError(f"noise must be a NoiseConfig or a rate in [0, 1], got {type(noise).__name__}.")
        self.noise = noise or NoiseConfig()
        try:
            self.tools = build_tools(self.spec_config.tools, self.site, self.noise)
            self.prompts = PromptSet.from_spec(self.spec_config)
            self.scorer = scorer or get_scorer(self.spec_config.scoring.scorer)
        except ValueError as exc:
            raise _naming_the_env(exc, self.spec_config) from None
        self.count_tokens = count_tokens
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space = action_space()
        self.episode: Episode | None = None
        self._over_at_reset = False
        self._task_index = {task.id: task for task in self.tasks}

    # -- Gymnasium API -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Start an episode.

        ``options`` may pick the task: ``{"task": Task}``, ``{"task_id": str}`` or
        ``{"index": int}``; otherwise one is drawn with the env's RNG. ``{"episode_id": str}``
        names the episode (the batched rollout uses this to keep ids unique).

        A question that alone overflows a whole-episode context cap ends the episode here; the
        first ``step()`` then returns ``truncated=True`` (whatever the action) with the result.
        """
        super().reset(seed=seed)
        options = options or {}
        task = self._pick_task(options)
        episode_id = options.get("episode_id") or f"{task.id}#{self.np_random.integers(2**62):x}"
        for tool in self.tools.values():
            reseed = getattr(tool, "reset", None)
            if reseed is not None:
                reseed(stable_seed(self.noise.seed, episode_id))
        self.episode = Episode(
            task,
            mode=self.mode,
            tools=self.tools,
            prompts=self.prompts,
            limits=self.spec_config.limits,
            scorer=self.scorer,
            episode_id=episode_id,
            format_weight=self.spec_config.scoring.format_weight,
            count_tokens=self.count_tokens,
            tool_timeout=self.spec_config.tools.timeout_s,
            site_base=self.site.base_url if self.site is not None else None,
        )
        # the question alone can be over a context cap: the episode is then over before it began,
        # which reset() cannot say; the next step() reports it as a truncation
        self._over_at_reset = self.episode.done
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the acting role's text.

        Returns ``(observation, reward, terminated, truncated, info)``:

        * ``observation``: the next prompt (for whichever role acts next);
        * ``reward``: 0 until the episode ends, then the episode reward (score and format term);
        * ``terminated``: the planner (or single agent) gave a final answer;
        * ``truncated``: the episode hit its turn or context limit without an answer;
        * ``info``: the acting role, the tool result of this step, and at the end ``result``
          (an :class:`~matpo_gym.core.trajectory.EpisodeResult` with every trajectory).

        ``action`` is the model's text; an object with ``.text`` (and optionally ``token_ids``,
        ``prompt_ids``, ``logprobs``) is accepted too, and its tokens are kept in the turn record.
        """
        if self.episode is None:
            raise RuntimeError("Call reset() before step().")
        if self._over_at_reset:
            self._over_at_reset = False
            info = self._info()
            return self._observation(), info["result"].reward, False, True, info
        text = getattr(action, "text", action)
        tokens = TokenRecord(
            prompt_ids=getattr(action, "prompt_ids", None),
            completion_ids=getattr(action, "token_ids", None),
            completion_logprobs=getattr(action, "logprobs", None),
        )
        outcome = self.episode.step(text, tokens)
        info = self._info()
        if outcome.tool_result is not None:
            info["tool_result"] = outcome.tool_result
        reward = info["result"].reward if self.episode.done else 0.0
        return self._observation(), reward, outcome.terminated, outcome.truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.episode is None:
            return None
        lines = []
        for message in self.episode.acting.messages:
            speaker = f"{message.role}:{message.name}" if message.name else message.role
            lines.append(f"[{speaker}] {message.content}")
        return "\n".join(lines)

    # -- helpers -------------------------------------------------------------------------------

    def prompt(self) -> Prompt:
        """The typed prompt for the role that acts next (what the observation encodes)."""
        if self.episode is None:
            raise RuntimeError("Call reset() first.")
        return self.episode.prompt()

    def _pick_task(self, options: dict[str, Any]) -> Task:
        if "task" in options:
            return options["task"]
        if "task_id" in options:
            try:
                return self._task_index[options["task_id"]]
            except KeyError:
                raise KeyError(f"No task with id {options['task_id']!r} in this env.") from None
        if "index" in options:
            return self.tasks[int(options["index"]) % len(self.tasks)]
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _observation(self) -> Observation:
        assert self.episode is not None
        if self.episode.done:
            root = self.episode.trajectories[0]
            prompt = Prompt(root.role, tuple(root.messages), root.id, ())
        else:
            prompt = self.episode.prompt()
        return prompt_observation(prompt, sum(len(t.turns) for t in self.episode.trajectories))

    def _info(self) -> dict[str, Any]:
        """Where the episode stands; once it is over, also its scored ``result`` and trajectories."""
        assert self.episode is not None
        info: dict[str, Any] = {
            "task_id": self.episode.task.id,
            "episode_id": self.episode.episode_id,
            "role": None if self.episode.done else self.episode.acting.role.value,
            "stop_reason": self.episode.stop_reason,
            "stats": self.episode.stats,
        }
        if self.episode.done:
            result = self.episode.result()
            info["result"], info["trajectories"] = result, result.trajectories
        return info
