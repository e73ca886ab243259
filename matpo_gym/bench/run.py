"""``matpo-bench run``: evaluate a policy on an env in one or more modes, resumably."""

from __future__ import annotations

import functools
import hashlib
import platform
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import tyro
from tqdm.auto import tqdm

from matpo_gym.bench.protocol import PlannedEpisode
from matpo_gym.bench.results import ResultsFile, write_json_atomic
from matpo_gym.bench.resume import check_resume, policy_settings, policy_slug, prompt_digests
from matpo_gym.bench.run_folder import RunFolder, UnreadableRun
from matpo_gym.bench.summary import ModeSummary, format_categories, format_table, summarize
from matpo_gym.config import to_dict
from matpo_gym.core.trajectory import EpisodeResult
from matpo_gym.data.tasks import Task
from matpo_gym.envs.context import approx_tokens
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.spec import MODES, EnvSpec, load_env_spec
from matpo_gym.policies.base import Policy
from matpo_gym.policies.registry import load_policy
from matpo_gym.rollout import EpisodeRequest, rollout
from matpo_gym.scoring.judge import JudgeScorer, LLMJudge, Verdict, gold_text, judge_scorer
from matpo_gym.scoring.scorers import get_scorer
from matpo_gym.tools.noise import NoiseConfig


@dataclass
class RunConfig:
    """Evaluate a policy on an environment (the offline world by default)."""

    env: str = "world-frames"
    """Env name from the catalogue (``envs/``), or a path to an env .toml file."""
    mode: str = "matpo,single"
    """Comma-separated modes: ``matpo`` (planner + worker) and/or ``single``."""
    policy: str = "scripted"
    """Policy name from ``policies/``, a built-in type, or ``module:Class``."""
    noise: float = 0.0
    """Probability that a tool call is hit by injected noise."""
    noise_kinds: str = "all"
    """Comma-separated noise kinds, or ``all`` (error, timeout, irrelevant, truncate, corrupt,
    shuffle)."""
    limit: int | None = 50
    """Questions to evaluate (a seeded sample); None for all."""
    samples: int | None = None
    """Episodes per question (repeats for pass@k); None: the env's ``[eval] repeats`` (else 1)."""
    split: str | None = None
    """Task split; defaults to the env's."""
    seed: int = 0
    """Seed for question sampling and tool noise."""
    out: Path = Path("runs")
    """Folder for run folders."""
    name: str | None = None
    """Run folder name; defaults to ``<env>-<policy>-noise<rate>-seed<seed>`` (and the ``--set``
    overrides). Reusing it resumes."""
    batch_size: int = 16
    """Episodes played at once (their turns share one generate call)."""
    threads: int = 8
    """Threads for concurrent tool calls."""
    tool_cache: str | None = None
    """SQLite file of tool results to reuse or record (see ``cache_mode``)."""
    cache_mode: Literal["off", "read_write", "record", "replay"] = "off"
    """``read_write`` reuses recorded results and records new ones (what ``off`` becomes when a
    ``tool_cache`` is given), ``record`` always calls and records, ``replay`` answers every tool
    call from ``tool_cache`` (an exact offline rerun)."""
    judge: str | None = None
    """Policy that grades answers as an LLM judge (e.g. a copy of ``policies/openai.toml``)."""
    judge_kind: Literal["simpleqa", "frames", "webwalker"] = "simpleqa"
    """Judge rubric: SimpleQA grader, FRAMES auto-rater or WebWalkerQA grader."""
    save_trajectories: bool = True
    """Keep every trajectory in the results file."""
    quiet: bool = False
    """No progress bar."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """Env spec overrides, e.g. query_recap=off or limits.worker_turns=5 (repeat ``--set``)."""

    def modes(self) -> list[str]:
        modes = [m.strip() for m in self.mode.split(",") if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            shown = bad[0] if bad else self.mode
            raise ValueError(f"Unknown mode {shown!r}; use {', '.join(MODES)}.")
        return modes

    def noise_config(self) -> NoiseConfig:
        return NoiseConfig.parse(self.noise, self.noise_kinds, self.seed)

    def env_spec(self) -> EnvSpec:
        """The env spec with this run's overrides and tool-cache settings applied."""
        spec = load_env_spec(self.env)
        if self.set:
            from matpo_gym.envs.overrides import apply_overrides

            spec = apply_overrides(spec, self.set)
        if self.cache_mode == "off" and self.tool_cache is None:
            return spec
        mode = self.cache_mode if self.cache_mode != "off" else "read_write"
        return replace(spec, tools=replace(spec.tools, cache_path=self.tool_cache, cache_mode=mode))

    def sample_count(self, spec: EnvSpec) -> int:
        """Episodes per question: ``samples``, else the env's default repeats (1 without one)."""
        samples = self.samples if self.samples is not None else default_repeats(spec)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer, got {samples!r}")
        return samples

    def run_name(self) -> str:
        """The folder name; the policy (class and all), noise kinds and overrides change it, so
        runs with other settings never resume it."""
        noise = f"noise{self.noise:g}" + (kinds_slug(self.noise_kinds) if self.noise else "")
        base = f"{Path(self.env).stem}-{policy_slug(self.policy)}-{noise}-seed{self.seed}"
        return self.name or (f"{base}-{overrides_slug(self.set)}" if self.set else base)


def kinds_slug(noise_kinds: str) -> str:
    """``""`` for every noise kind, else ``-kind+kind`` (a folder name's suffix)."""
    kinds = [k.strip() for k in noise_kinds.split(",") if k.strip()]
    return "" if kinds == ["all"] else "-" + "+".join(kinds)


def default_repeats(spec: EnvSpec) -> int:
    """The env's ``[eval] repeats`` (the reference protocol's samples per question), else 1."""
    return int(getattr(getattr(spec, "eval", None), "repeats", 1))


_SAFE = re.compile(r"^[A-Za-z0-9_.=-]+$")


def overrides_slug(overrides: Sequence[str]) -> str:
    """A short, stable, file-name-safe name for a list of overrides.

    Readable (``query_recap=off+limits.worker_turns=5``) when the text is short and safe, else a
    hash of it (``set-1a2b3c4d``); two different lists never get the same name.
    """
    items = [o.strip() for o in overrides]
    text = "+".join(items)
    if len(text) <= 48 and all(_SAFE.match(o) for o in items):
        return text
    return "set-" + hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()[:8]


def switch_record(spec: EnvSpec, overrides: Sequence[str]) -> dict[str, Any]:
    """What run.json keeps of the switches: the overrides as given and the value of every switch."""
    record: dict[str, Any] = {"overrides": [o.strip() for o in overrides]}
    try:
        from matpo_gym.envs.overrides import switch_values
    except ImportError:
        return record
    record["values"] = switch_values(spec)
    return record


def kept_plans(folder: Path, meta: dict[str, Any] | None, modes: Sequence[str]) -> dict[str, list[PlannedEpisode]]:
    """The planned episodes of the modes an earlier invocation (``meta``, its run.json) played into
    ``folder`` and this one does not (``--mode`` narrowed), so their records stay counted against
    their own plan; a mode whose plan is missing or unreadable is left out, as before plans."""
    if meta is None:
        return {}
    earlier, kept = RunFolder(folder, meta, {}, None), {}
    for mode in MODES:
        if mode in modes or not (folder / f"{mode}.jsonl").is_file():
            continue
        try:
            plan = earlier.plan(mode)
        except UnreadableRun:
            continue
        if plan is not None:
            kept[mode] = plan
    return kept


def take_verdict(scorer: JudgeScorer, task: Task, result: EpisodeResult) -> Verdict | None:
    """The judge's verdict on this episode's own answer, removed from ``scorer.verdicts`` so that
    the next sample of the question, judged in the same batch, gets its own."""
    prompt = "" if result.prediction is None else scorer.judge.prompt_text(task.question, gold_text(task),
                                                                            result.prediction)
    for index, verdict in enumerate(scorer.verdicts):
        if verdict.task_id == task.id and verdict.prompt == prompt and verdict.score == result.score:
            return scorer.verdicts.pop(index)
    return None


def versions() -> dict[str, str]:
    """Versions of the packages that decide a run's outcome."""
    out = {"python": platform.python_version()}
    for package in ("matpo-gym", "gymnasium", "bm25s", "torch", "transformers"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def result_record(
    result: EpisodeResult, *, key: str, mode: str, sample: int, seconds: float, family: str,
    metadata_: dict[str, Any], with_trajectories: bool,
) -> dict[str, Any]:
    """The JSONL record of one finished episode."""
    record = result.to_dict(with_trajectories=with_trajectories)
    record.update(
        key=key,
        mode=mode,
        sample=sample,
        family=family,
        task_metadata=metadata_,
        turns=sum(len(t.turns) for t in result.trajectories),
        seconds=seconds,
    )
    return record


def planned_episodes(tasks: Sequence[Task], samples: int) -> list[PlannedEpisode]:
    """Every (question, sample) of the run, keyed as the results file keys them."""
    return [
        PlannedEpisode(f"{task.id}/s{sample}", task.id, task.family, task.metadata)
        for task in tasks for sample in range(samples)
    ]


def select_tasks(env: MatpoEnv, limit: int | None, seed: int) -> list:
    tasks = list(env.tasks)
    random.Random(seed).shuffle(tasks)
    return tasks if limit is None else tasks[:limit]


def run(
    config: RunConfig, policy: Policy | None = None, *, stream: TextIO | None = None
) -> list[ModeSummary]:
    """Evaluate; resumes from the run folder's results files when they exist."""
    stream = stream or sys.stdout
    modes = config.modes()
    if config.limit is not None and (isinstance(config.limit, bool) or config.limit < 1):
        raise ValueError(f"limit must be a positive number of questions (or left out for all), got {config.limit!r}")
    spec = config.env_spec()
    samples = config.sample_count(spec)
    noise = config.noise_config()
    policy_given = policy
    policy = policy or load_policy(config.policy)
    folder = config.out / config.run_name()
    # a policy handed in is described by its caller's settings, not by the catalogue entry config.policy names
    catalogue_entry = policy_settings(config.policy) if policy_given is None else None
    prompts = prompt_digests(spec)
    earlier = check_resume(folder, config.set, to_dict(config), to_dict(spec), catalogue_entry, prompts)
    scorer = None
    if config.judge is not None:
        fallback = get_scorer(spec.scoring.scorer).primary
        judge = LLMJudge(load_policy(config.judge), kind=config.judge_kind)
        scorer = judge_scorer(judge, fallback_metric=fallback)
    # a model policy's own tokenizer sizes the context budgets, as in training; others: an estimate
    count_tokens = getattr(policy, "count_tokens", approx_tokens)

    def make_env(mode: str) -> MatpoEnv:
        return MatpoEnv(spec, mode=mode, split=config.split, noise=noise, scorer=scorer,  # type: ignore[arg-type]
                        count_tokens=count_tokens)

    probes = {mode: make_env(mode) for mode in modes}  # an env that cannot be built fails before the folder exists
    kept = kept_plans(folder, earlier, modes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").unlink(missing_ok=True)  # claims of an earlier invocation, rewritten at the end
    meta: dict[str, Any] = {
        "config": to_dict(config),
        "samples": samples,
        "switches": switch_record(spec, config.set),
        "env_spec": to_dict(spec),
        "policy": policy.name,
        "policy_settings": catalogue_entry,
        "prompt_digests": prompts,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "plan": {mode: [asdict(p) for p in plan] for mode, plan in kept.items()},
    }
    write_json_atomic(folder / "run.json", meta)
    summaries = []
    for mode in MODES:
        if mode in kept:  # a mode of an earlier invocation, not played now: still summarised, as planned then
            records = ResultsFile(folder / f"{mode}.jsonl").records
            summaries.append(summarize(mode, records, planned=kept[mode], seed=config.seed))
            continue
        if mode not in modes:
            continue
        probe = probes[mode]
        tasks = select_tasks(probe, config.limit, config.seed)
        if config.limit is not None and len(tasks) < config.limit and not config.quiet:
            print(f"{spec.name} [{mode}]: --limit {config.limit}, but the split has {len(tasks)} questions; "
                  "playing them all", file=sys.stderr)
        results = ResultsFile(folder / f"{mode}.jsonl")
        done = results.done_keys
        planned = planned_episodes(tasks, samples)
        # what a summary of this folder counts, missing episodes as 0 (the leaderboard, verify)
        meta["plan"][mode] = [asdict(p) for p in planned]
        write_json_atomic(folder / "run.json", meta)
        by_id = {task.id: task for task in tasks}
        requests = [EpisodeRequest(by_id[p.task_id], p.key) for p in planned if p.key not in done]
        families = {task.id: (task.family, task.metadata) for task in tasks}
        aliases = {task.id: list(task.aliases) for task in tasks}
        total = len(planned)
        if len(requests) < total and not config.quiet:
            print(f"{spec.name} [{mode}]: resuming {folder}, {total - len(requests)} of {total} episodes already "
                  "played", file=sys.stderr)
        bar = tqdm(total=total, initial=total - len(requests), desc=f"{spec.name} [{mode}]",
                   unit="ep", disable=config.quiet, file=sys.stderr, dynamic_ncols=True)
        started = time.perf_counter()
        correct = sum(r["score"] for r in results.records)
        played = rollout(functools.partial(make_env, mode), policy, requests, batch_size=config.batch_size,
                         threads=config.threads)
        for result in played:
            family, task_metadata = families[result.task_id]
            sample = int(result.episode_id.rsplit("/s", 1)[1])
            record = result_record(
                result, key=result.episode_id, mode=mode, sample=sample,
                seconds=time.perf_counter() - started, family=family, metadata_=task_metadata,
                with_trajectories=config.save_trajectories,
            )
            if aliases[result.task_id]:
                record["aliases"] = aliases[result.task_id]  # a verifier re-scores as the run did
            if isinstance(scorer, JudgeScorer):
                verdict = take_verdict(scorer, by_id[result.task_id], result)
                record["judge"] = verdict.to_dict() if verdict is not None else None
            results.append(record)
            correct += result.score
            bar.update(1)
            bar.set_postfix(acc=f"{correct / len(results.records):.3f}")
        bar.close()
        summaries.append(summarize(mode, results.records, planned=planned, seed=config.seed))
    write_json_atomic(folder / "summary.json", [s.to_dict() for s in summaries])
    switches = f" | {', '.join(config.set)}" if config.set else ""
    print(f"\n{spec.name} | policy {policy.name} | noise {config.noise:g} | "
          f"{samples} sample(s) per question{switches} | results in {folder}", file=stream)
    print(format_table(summaries), file=stream)
    categories = format_categories(summaries)
    if categories:
        print(f"\naccuracy per category (questions):\n{categories}", file=stream)
    return summaries
