"""``matpo-bench ablate``: accuracy against tool-noise rate and env switches, per mode, with
bootstrap intervals.

The grid is (switch settings x) noise rate x mode. ``--vary NAME=v1,v2`` adds a switch axis (each
``--vary`` another one; the grid is their cartesian product). Each (settings, rate) is one
ordinary, resumable run folder, ``<out>/<name>/noise<rate>/<mode>.jsonl`` without switch axes and
``<out>/<name>/<settings>/noise<rate>/<mode>.jsonl`` with them (see :mod:`matpo_gym.bench.run`),
so rerunning an ablation, or adding a rate or a value to it, only plays the episodes that are not
on disk yet. The ablation then reads every cell's records and writes, next to the cells:

- ``ablation.json``: per (settings, mode, rate) the number of questions, the accuracy and its
  percentile bootstrap 95% interval over questions;
- ``ablation.md``: the same as a Markdown table (rows: settings and rates; columns: modes);
- ``accuracy_vs_noise.png`` and ``.svg``: accuracy against rate per mode and settings (against the
  settings when there is a single rate), with interval bands (needs matplotlib,
  ``pip install "matpo-gym[plot]"``; skipped with a note without it).
"""

from __future__ import annotations

import io
import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TextIO

import tyro

from matpo_gym.bench.results import ResultsFile, question_means, write_bytes_atomic, write_json_atomic
from matpo_gym.bench.run import RunConfig, kinds_slug, overrides_slug, policy_slug, run, select_tasks
from matpo_gym.bench.stats import mean_ci
from matpo_gym.config import to_dict
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.spec import MODES
from matpo_gym.policies.base import Policy
from matpo_gym.policies.registry import load_policy

CONFIDENCE = 0.95
"""Coverage of the reported intervals."""

Settings = tuple[tuple[str, str], ...]
"""One point on the switch axes: ``(("query_recap", "off"), ...)``; ``()`` without axes."""


def settings_overrides(settings: Settings) -> tuple[str, ...]:
    """``(("query_recap", "off"),)`` -> ``("query_recap=off",)``."""
    return tuple(f"{name}={value}" for name, value in settings)


def switch_grid(axes: Sequence[tuple[str, Sequence[str]]]) -> list[Settings]:
    """Every point of the axes' cartesian product, first axis outermost; ``[()]`` without axes."""
    names = [name for name, _ in axes]
    return [tuple(zip(names, values)) for values in itertools.product(*(v for _, v in axes))]


def settings_text(settings: Settings) -> str:
    """``query_recap=off, limits.worker_turns=5``; empty without axes."""
    return ", ".join(settings_overrides(settings))


@dataclass
class AblateConfig:
    """Accuracy against tool-noise rate and env switches (``--vary``) per mode: a resumable run per
    cell, a table and a plot."""

    env: str = "world-frames"
    """Env name from the catalogue (``envs/``), or a path to an env .toml file."""
    policy: str = "scripted"
    """Policy name from ``policies/``, a built-in type, or ``module:Class``."""
    noise: str = "0,0.1,0.2,0.4"
    """Comma-separated noise rates to compare, each in [0, 1]."""
    mode: str = "matpo,single"
    """Comma-separated modes: ``matpo`` (planner + worker) and/or ``single``."""
    noise_kinds: str = "all"
    """Comma-separated noise kinds, or ``all`` (error, timeout, irrelevant, truncate, corrupt,
    shuffle)."""
    limit: int | None = 50
    """Questions per cell (the same seeded sample in every cell); None for all."""
    samples: int | None = None
    """Episodes per question (a question's score is the mean over its episodes); None for the env's
    ``[eval] repeats`` (else 1)."""
    seed: int = 0
    """Seed for question sampling, tool noise and the bootstrap."""
    out: Path = Path("runs/ablations")
    """Folder for ablation folders."""
    name: str | None = None
    """Ablation folder name; defaults to ``<env>-<policy>-seed<seed>`` (and the ``--set``
    overrides). Reusing it resumes."""
    batch_size: int = 16
    """Episodes played at once (their turns share one generate call)."""
    bootstrap: int = 2000
    """Bootstrap resamples for each 95% interval."""
    quiet: bool = False
    """No progress bars and no per-cell tables; the final table is still printed."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """Env spec overrides for every cell, e.g. limits.worker_turns=5 (repeat ``--set``)."""
    vary: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """A switch axis ``NAME=v1,v2[,...]``, e.g. query_recap=on,off; repeat ``--vary`` for a grid."""

    def axes(self) -> list[tuple[str, list[str]]]:
        """The switch axes in the order given; ValueError names a malformed or repeated one."""
        axes: list[tuple[str, list[str]]] = []
        for text in self.vary:
            name, sep, values_text = str(text).partition("=")
            name = name.strip()
            values = list(dict.fromkeys(v.strip() for v in values_text.split(",") if v.strip()))
            if not sep or not name or not values:
                raise ValueError(
                    f"--vary {text!r}: expected NAME=v1,v2[,...], e.g. query_recap=on,off"
                )
            if any(name == seen for seen, _ in axes):
                raise ValueError(
                    f"--vary names {name!r} twice; give all its values in one NAME=v1,v2"
                )
            axes.append((name, values))
        return axes

    def settings(self) -> list[Settings]:
        """Every point of the switch grid (the axes' cartesian product); ``[()]`` without axes."""
        return switch_grid(self.axes())

    def rates(self) -> list[float]:
        """The noise rates, ascending and without duplicates; ValueError names a bad one."""
        tokens = [t.strip() for t in str(self.noise).split(",") if t.strip()]
        if not tokens:
            raise ValueError(
                f"No noise rates in {self.noise!r}; give a comma list such as 0,0.1,0.2"
            )
        rates = []
        for token in tokens:
            try:
                rate = float(token)
            except ValueError:
                raise ValueError(
                    f"Noise rate {token!r} is not a number; give a comma list of rates in [0, 1], "
                    "such as 0,0.1,0.2"
                ) from None
            if not (math.isfinite(rate) and 0 <= rate <= 1):
                raise ValueError(
                    f"Noise rate {token!r} is outside [0, 1]; a rate is a probability per tool call"
                )
            rates.append(rate)
        return sorted(set(rates))

    def modes(self) -> list[str]:
        """The modes, in the order given, without duplicates; ValueError names an unknown one."""
        modes = list(dict.fromkeys(m.strip() for m in self.mode.split(",") if m.strip()))
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            shown = repr(bad[0]) if bad else repr(self.mode)
            raise ValueError(f"Unknown mode {shown}; use a comma list of {', '.join(MODES)}")
        return modes

    def ablation_name(self) -> str:
        base = f"{Path(self.env).stem}-{policy_slug(self.policy)}{kinds_slug(self.noise_kinds)}-seed{self.seed}"
        return self.name or (f"{base}-{overrides_slug(self.set)}" if self.set else base)

    def cell_folder(self, rate: float, settings: Settings = ()) -> str:
        """The cell's run folder, relative to the ablation folder: one per settings and rate."""
        rate_folder = f"noise{rate:g}"
        if not settings:
            return rate_folder
        return f"{overrides_slug(settings_overrides(settings))}/{rate_folder}"

    def cell_config(self, rate: float, settings: Settings = ()) -> RunConfig:
        """The run behind every mode at one noise rate and one point of the switch grid."""
        return RunConfig(
            env=self.env,
            mode=",".join(self.modes()),
            policy=self.policy,
            noise=rate,
            noise_kinds=self.noise_kinds,
            limit=self.limit,
            samples=self.samples,
            seed=self.seed,
            out=self.out,
            name=f"{self.ablation_name()}/{self.cell_folder(rate, settings)}",
            batch_size=self.batch_size,
            quiet=self.quiet,
            set=tuple(self.set) + settings_overrides(settings),
        )

    def validate(self) -> None:
        """Raise ValueError with a clear message for any bad setting, before anything runs."""
        self.rates()
        self.modes()
        self.cell_config(0.0).noise_config()  # checks the noise kinds
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            raise ValueError(
                f"limit must be a positive number of questions or None, got {self.limit!r}"
            )
        for name in ("samples", "batch_size", "bootstrap"):
            value = getattr(self, name)
            if name == "samples" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.set or self.vary:
            for settings in self.settings():  # a bad switch name or value fails here, not mid-grid
                cell = self.cell_config(0.0, settings)
                cell.sample_count(cell.env_spec())


@dataclass(frozen=True)
class AblationCell:
    """Accuracy of one mode at one noise rate, over questions."""

    mode: str
    rate: float
    n: int
    """Questions scored (a question's score is the mean over its samples)."""
    episodes: int
    accuracy: float
    """Mean question score; NaN when ``n == 0``."""
    ci_low: float
    """Lower end of the percentile-bootstrap 95% interval."""
    ci_high: float
    """Upper end of the percentile-bootstrap 95% interval."""
    run: str
    """The cell's run folder, relative to the ablation folder."""
    settings: Settings = ()
    """The cell's point on the switch axes."""

    @property
    def name(self) -> str:
        """The cell named by its settings: ``query_recap=off, noise=0.1, mode=matpo``."""
        parts = [*settings_overrides(self.settings), f"noise={self.rate:g}", f"mode={self.mode}"]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def number(x: float) -> float | None:  # JSON has no NaN
            return None if math.isnan(x) else x

        return {
            "name": self.name, "mode": self.mode, "rate": self.rate,
            "settings": dict(self.settings), "n": self.n, "episodes": self.episodes,
            "accuracy": number(self.accuracy), "ci_low": number(self.ci_low),
            "ci_high": number(self.ci_high), "run": self.run,
        }

    def label(self) -> str:
        """``acc [lo, hi] (n)``."""
        if self.n == 0:
            return "- (0)"
        return f"{self.accuracy:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] ({self.n})"


@dataclass
class AblationResult:
    """Every cell of an ablation, and where its files are."""

    name: str
    folder: Path
    env: str
    policy: str
    modes: list[str]
    rates: list[float]
    cells: list[AblationCell]
    resamples: int
    files: dict[str, Path] = field(default_factory=dict)
    """``json``, ``md``, and ``png`` / ``svg`` when matplotlib is installed."""
    axes: list[tuple[str, list[str]]] = field(default_factory=list)
    """The switch axes (``--vary``): name and values, in the order given."""
    overrides: tuple[str, ...] = ()
    """Overrides every cell shares (``--set``)."""

    @property
    def grid(self) -> list[Settings]:
        """Every point of the switch grid, in table order; ``[()]`` without axes."""
        return switch_grid(self.axes)

    def cell(self, mode: str, rate: float, settings: Settings = ()) -> AblationCell:
        for cell in self.cells:
            if cell.mode == mode and cell.rate == rate and cell.settings == tuple(settings):
                return cell
        where = f" with {settings_text(settings)}" if settings else ""
        raise KeyError(f"No cell for mode {mode!r} at noise rate {rate:g}{where}")

    def markdown_table(self) -> str:
        """Rows: switch settings and noise rates; columns: modes; cells: ``acc [lo, hi] (n)``."""
        names = [name for name, _ in self.axes]
        lines = [
            "| " + "".join(f"{name} | " for name in names) + "noise | "
            + " | ".join(self.modes) + " |",
            "| " + "".join("--- | " for _ in names) + "---: | "
            + " | ".join("---:" for _ in self.modes) + " |",
        ]
        for settings in self.grid:
            for rate in self.rates:
                labels = [self.cell(mode, rate, settings).label() for mode in self.modes]
                values = "".join(f"{value} | " for _, value in settings)
                lines.append(f"| {values}{rate:g} | " + " | ".join(labels) + " |")
        return "\n".join(lines)

    def markdown(self) -> str:
        varied = "".join(f" and {name}" for name, _ in self.axes)
        shared = f"Every cell runs with {', '.join(self.overrides)}.\n\n" if self.overrides else ""
        return (
            f"# Accuracy vs tool noise{varied}: {self.env}, policy {self.policy}\n\n{shared}"
            f"Cells: accuracy [95% percentile-bootstrap interval over questions, {self.resamples} "
            "resamples] (questions).\n\n" + self.markdown_table() + "\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "env": self.env, "policy": self.policy, "modes": self.modes,
            "rates": self.rates, "vary": {name: values for name, values in self.axes},
            "overrides": list(self.overrides), "confidence": CONFIDENCE,
            "bootstrap_resamples": self.resamples, "cells": [c.to_dict() for c in self.cells],
        }


def question_scores(records: Sequence[dict[str, Any]], keys: set[str] | None = None) -> list[float]:
    """One score per question: the mean over its samples (records outside ``keys`` are ignored)."""
    return list(question_means(records, keys).values())


def ablate(
    config: AblateConfig, policy: Policy | None = None, *, stream: TextIO | None = None
) -> AblationResult:
    """Run the (settings x noise rate x mode) grid, resuming finished cells; tabulate, plot."""
    stream = stream or sys.stdout
    config.validate()
    rates, modes, grid = config.rates(), config.modes(), config.settings()
    spec = config.cell_config(rates[0], grid[0]).env_spec()
    policy = policy or load_policy(config.policy)
    folder = config.out / config.ablation_name()
    cell_stream = io.StringIO() if config.quiet else stream

    cells = []
    for settings in grid:
        # The questions every cell is scored on, so an old cell run with a larger limit stays
        # comparable; switches may change the tasks or the repeats, so each setting has its own.
        cell_spec = config.cell_config(rates[0], settings).env_spec()
        samples = config.cell_config(rates[0], settings).sample_count(cell_spec)
        keys = {}
        for mode in modes:
            env = MatpoEnv(cell_spec, mode=mode)  # type: ignore[arg-type]
            tasks = select_tasks(env, config.limit, config.seed)
            keys[mode] = {f"{task.id}/s{sample}" for task in tasks for sample in range(samples)}
        for rate in rates:
            cell_config = config.cell_config(rate, settings)
            run(cell_config, policy, stream=cell_stream)
            run_folder = config.out / cell_config.run_name()
            for mode in modes:
                records = ResultsFile(run_folder / f"{mode}.jsonl").records
                records = [r for r in records if r["key"] in keys[mode]]
                stat = mean_ci(question_scores(records), resamples=config.bootstrap,
                               confidence=CONFIDENCE, seed=config.seed)
                cells.append(AblationCell(
                    mode=mode, rate=rate, n=stat.n, episodes=len(records), accuracy=stat.mean,
                    ci_low=stat.low, ci_high=stat.high, run=config.cell_folder(rate, settings),
                    settings=settings,
                ))

    result = AblationResult(
        name=config.ablation_name(), folder=folder, env=spec.name, policy=policy.name,
        modes=modes, rates=rates, cells=cells, resamples=config.bootstrap, axes=config.axes(),
        overrides=tuple(config.set),
    )
    result.files["json"] = folder / "ablation.json"
    result.files["md"] = folder / "ablation.md"
    from matpo_gym.bench.ablate_plot import plot_accuracy  # needs this module's result types

    result.files.update(plot_accuracy(result, config.noise_kinds))
    write_json_atomic(result.files["json"], {**result.to_dict(), "config": to_dict(config)})
    write_bytes_atomic(result.files["md"], result.markdown().encode("utf-8"))

    varied = "".join(f" and {name}" for name, _ in result.axes)
    print(f"\n{spec.name} | policy {policy.name} | accuracy vs tool noise{varied}, "
          f"{CONFIDENCE:.0%} bootstrap CI | results in {folder}", file=stream)
    print(result.markdown_table(), file=stream)
    if "png" not in result.files:
        print('(no plot: matplotlib is not installed; pip install "matpo-gym[plot]")', file=stream)
    return result
