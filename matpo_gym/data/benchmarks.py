"""The real benchmarks (FRAMES, WebWalkerQA, GAIA-text) and the paper's training data (MuSiQue,
MATPO-data): where their data lives and how it is read.

Every benchmark loads through ``datasets``, from one of three places:

* a local **file**: ``.parquet``, ``.jsonl``, ``.json``, ``.csv`` or ``.tsv``
  (``datasets.load_dataset(<format>, data_files=...)``);
* a local **folder**: every such file in it, searched recursively, or a ``save_to_disk`` folder
  (``datasets.load_from_disk``). A downloaded hub snapshot works as it is: when file or folder names
  mention the split (``test.tsv``, ``2023/validation/...``) only those files are read, a file that
  exists in several formats is read once, and GAIA reads its ``metadata`` table, not the
  attachments next to it;
* without a path, the **hub** (``datasets.load_dataset(<repo>, <config>, split=...)``; ``HF_TOKEN``
  is passed on, which gated GAIA needs). When that fails (offline, gated, missing) the error is a
  :class:`DatasetUnavailable` that says how to download the data and point an env at the copy.
  Data with no hub copy (plain MuSiQue) needs a path; without one the error says where to get it.

The benchmark rows are never shipped with matpo-gym; only the 103 GAIA-text task ids are
(``gaia_text_ids.txt``). :func:`load` is what ``envs/sources.py`` calls; the per-benchmark row
mapping lives in :mod:`~matpo_gym.data.frames`, :mod:`~matpo_gym.data.webwalkerqa`,
:mod:`~matpo_gym.data.gaia` and :mod:`~matpo_gym.data.musique`.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matpo_gym.data.tasks import Task


class DatasetUnavailable(RuntimeError):
    """The data an env needs is not on this machine; the message says how to get it."""


@dataclass(frozen=True)
class HubDataset:
    """Where one benchmark lives on the Hugging Face Hub, and how matpo-gym names it."""

    kind: str
    """``source.kind`` in an env spec, and the name of its env file (``envs/<kind>.toml``)."""
    repo: str
    """Dataset repository on the hub."""
    config: str | None
    """Dataset config (subset) name, if the repository has several."""
    splits: tuple[str, ...]
    """Known splits; the first is the default."""
    gated: bool = False
    """Needs an accepted licence on the hub and a token (``HF_TOKEN``)."""
    table_stem: str | None = None
    """In a downloaded folder, the file name (without extension) of the question table, when
    other data files (attachments) sit next to it: GAIA's ``metadata``."""
    loader: str = ""
    """``module:function`` that maps this benchmark's rows to tasks."""
    offline_env: str = ""
    """The synthetic-world env to use instead when the data cannot be had."""
    download: str = ""
    """How to get the data when it is not on the hub (``repo`` empty): it then needs a path."""

    @property
    def env_name(self) -> str:
        """The catalogue env that reads this data: ``envs/<kind>.toml``, ``_`` written as ``-``."""
        return self.kind.replace("_", "-")

    def describe(self) -> str:
        if not self.repo:
            return f"local files only (split {' | '.join(self.splits)}): {self.download}"
        config = f", config {self.config}" if self.config else ""
        gated = "; gated: accept the terms on the hub and set HF_TOKEN" if self.gated else ""
        return f"{self.repo} (split {' | '.join(self.splits)}{config}{gated})"


BENCHMARKS: dict[str, HubDataset] = {
    "frames": HubDataset(
        "frames", "google/frames-benchmark", None, ("test",),
        loader="matpo_gym.data.frames:load_frames", offline_env="world-frames",
    ),
    "webwalkerqa": HubDataset(
        "webwalkerqa", "callanwu/WebWalkerQA", None, ("main", "silver"),
        loader="matpo_gym.data.webwalkerqa:load_webwalkerqa", offline_env="world-webwalker",
    ),
    "gaia": HubDataset(
        "gaia", "gaia-benchmark/GAIA", "2023_all", ("validation", "test"), gated=True, table_stem="metadata",
        loader="matpo_gym.data.gaia:load_gaia", offline_env="world-gaia",
    ),
    "musique": HubDataset(
        "musique", "", None, ("train", "dev", "test"), loader="matpo_gym.data.musique:load_musique",
        offline_env="world-musique",
        download=(
            "MuSiQue is not on the Hugging Face Hub: clone "
            "https://github.com/StonyBrookNLP/musique and run `bash download_data.sh` there, which "
            "puts musique_ans_v1.0_{train,dev,test}.jsonl under data/ (copy them to data/musique)."
        ),
    ),
    "matpo_data": HubDataset(
        "matpo_data", "veggiebird/MATPO-data", None, ("train",),
        loader="matpo_gym.data.musique:load_matpo_data", offline_env="world-musique",
    ),
}

HOW_TO_GET = {kind: hub.describe() for kind, hub in BENCHMARKS.items()}
"""One line per benchmark: hub repository, splits, config, access."""

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
"""Local file extensions read by ``datasets``, and the builder that reads each."""
_PREFERENCE = (".parquet", ".jsonl", ".json", ".csv", ".tsv")
"""When one table exists in several formats (``metadata.parquet`` and ``metadata.jsonl``), read this one."""


def load(kind: str, *, path: str | None, split: str) -> list[Task]:
    """Tasks of ``kind`` (``frames``, ``webwalkerqa``, ``gaia``, ``musique``, ``matpo_data``) from
    ``path`` or the hub."""
    hub = BENCHMARKS.get(kind)
    if hub is None:
        raise DatasetUnavailable(f"Unknown benchmark {kind!r}; known: {', '.join(BENCHMARKS)}.")
    module, function = hub.loader.split(":")
    return getattr(importlib.import_module(module), function)(path=path, split=split)


def how_to_get(hub: HubDataset, split: str) -> str:
    """Step-by-step instructions for getting ``hub`` onto this machine and pointing an env at it."""
    folder = f"data/{hub.env_name}"
    if hub.download:
        get = hub.download
    else:
        config = f", config {hub.config!r}" if hub.config else ""
        token = (
            " The dataset is gated: accept its terms at "
            f"https://huggingface.co/datasets/{hub.repo} and export HF_TOKEN=<a read token> "
            "(or `huggingface-cli login`) first."
            if hub.gated else ""
        )
        config_arg = f", {hub.config!r}" if hub.config else ""
        get = (
            f"Get {hub.repo} (split {split!r}{config}) on a machine with access.{token} Either "
            f"download the files: `huggingface-cli download {hub.repo} --repo-type dataset "
            f"--local-dir {folder}`; or save the split: `python -c \"import datasets; "
            f"datasets.load_dataset({hub.repo!r}{config_arg}, split={split!r})"
            f".save_to_disk('{folder}')\"`."
        )
    offline = hub.offline_env or f"world-{hub.kind}"
    return (
        f"{get} Then point an env at the copy: write a file my-{hub.env_name}.toml holding "
        f"`extends = \"{hub.env_name}\"` and, under [source], `path = \"{folder}\"` (a file or a folder: "
        f"parquet, jsonl, json, csv, tsv, or a save_to_disk folder), and run with "
        f"`--env my-{hub.env_name}.toml`. Offline, the "
        f"synthetic world envs need no download (`matpo-bench run --env {offline}`)."
    )


def read_rows(hub: HubDataset, *, path: str | os.PathLike[str] | None, split: str) -> tuple[list[dict[str, Any]], str]:
    """The rows of ``split``, each a dict, and a short description of where they came from."""
    if path is None:
        if not hub.repo:
            raise DatasetUnavailable(
                f"The {hub.kind} data ({split!r} split) has no hub copy: the env needs a path. "
                + how_to_get(hub, split)
            )
        return _hub_rows(hub, split), f"{hub.repo} ({split})"
    where = Path(path).expanduser()
    if not where.exists():
        raise DatasetUnavailable(
            f"The {hub.kind} data path {str(where)!r} does not exist. " + how_to_get(hub, split)
        )
    if where.is_dir() and _is_saved_dataset(where):
        return _saved_rows(where, hub, split), str(where)
    files = [where] if where.is_file() else data_files(where, split=split, table_stem=hub.table_stem)
    if not files:
        raise DatasetUnavailable(
            f"No data files in {str(where)!r}: expected {', '.join(_PREFERENCE)} files or a save_to_disk "
            f"folder. " + how_to_get(hub, split)
        )
    unsupported = [f for f in files if f.suffix.lower() not in FORMATS]
    if unsupported:
        raise DatasetUnavailable(
            f"Cannot read {str(unsupported[0])!r}: supported formats are {', '.join(_PREFERENCE)} "
            "(or a save_to_disk folder)."
        )
    rows: list[dict[str, Any]] = []
    for suffix in _PREFERENCE:
        group = [f for f in files if f.suffix.lower() == suffix]
        if group:
            rows.extend(_file_rows(group, suffix))
    return rows, str(where)


def data_files(folder: Path, *, split: str, table_stem: str | None = None) -> list[Path]:
    """The data files of ``split`` under ``folder`` (see the module docstring for the rules)."""
    found = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in FORMATS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    # 1. the split: files named after it, or inside a folder named after it, win over files whose
    #    names merely contain it (``test_old.tsv``); with no mention of the split, all files count.
    def mention(p: Path) -> int:
        parts = [*p.relative_to(folder).parent.parts, p.stem]
        if split in parts:
            return 2
        return 1 if split in re.split(r"[\W_]+", "/".join(parts)) else 0

    best = max((mention(p) for p in found), default=0)
    found = [p for p in found if mention(p) == best]
    # 2. the question table, when attachments share its folder (GAIA's ``metadata``)
    if table_stem and any(p.stem == table_stem for p in found):
        found = [p for p in found if p.stem == table_stem]
    # 3. one table in several formats is read once, in the preferred format
    chosen: dict[tuple[Path, str], Path] = {}
    for p in found:
        key = (p.parent, p.stem)
        if key not in chosen or _PREFERENCE.index(p.suffix.lower()) < _PREFERENCE.index(chosen[key].suffix.lower()):
            chosen[key] = p
    return sorted(chosen.values())


# -- reading ---------------------------------------------------------------------------------------


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DatasetUnavailable(
            "Loading the real benchmarks needs the `datasets` package: pip install \"matpo-gym[data]\"."
        ) from None
    return datasets


def _hub_rows(hub: HubDataset, split: str) -> list[dict[str, Any]]:
    datasets = _datasets()
    if split not in hub.splits:
        raise DatasetUnavailable(
            f"{hub.repo} has no split {split!r}; known splits: {', '.join(hub.splits)}."
        )
    try:
        dataset = datasets.load_dataset(
            hub.repo, hub.config, split=split, token=os.environ.get("HF_TOKEN") or None
        )
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all explained the same way
        reason = f"{type(exc).__name__}: {exc}".strip()
        raise DatasetUnavailable(
            f"The {hub.kind} benchmark could not be loaded from the hub ({reason[:300]}). "
            + how_to_get(hub, split)
        ) from None
    return dataset.to_list()


def _file_rows(files: list[Path], suffix: str) -> list[dict[str, Any]]:
    datasets = _datasets()
    # an answer that reads "None", "NA" or "null" is an answer, not a missing value
    options: dict[str, Any] = {"keep_default_na": False} if suffix in (".csv", ".tsv") else {}
    if suffix == ".tsv":
        options["sep"] = "\t"
    try:
        dataset = datasets.load_dataset(
            FORMATS[suffix], data_files=[str(f) for f in files], split="train", **options
        )
    except Exception as exc:  # noqa: BLE001 - a bad file is a clear error, not a traceback
        names = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise DatasetUnavailable(f"Could not read {names} as {FORMATS[suffix]}: {type(exc).__name__}: {exc}") from None
    return dataset.to_list()


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _saved_rows(folder: Path, hub: HubDataset, split: str) -> list[dict[str, Any]]:
    datasets = _datasets()
    try:
        saved = datasets.load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001
        raise DatasetUnavailable(f"Could not read the saved dataset {str(folder)!r}: {exc}") from None
    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DatasetUnavailable(
                f"The saved dataset {str(folder)!r} has no split {split!r}; it has {', '.join(saved)}."
            )
        saved = saved[split]
    return saved.to_list()


# -- row helpers shared by the benchmark modules ----------------------------------------------------


def is_missing(value: Any) -> bool:
    """None, NaN (an empty CSV cell) or a blank string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def as_text(value: Any) -> str:
    """A cell as text: ``""`` when missing, ``3`` (not ``3.0``) for a whole number a CSV reader
    turned into a float, else ``str(value)`` stripped."""
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def column(row: dict[str, Any], *names: str) -> Any:
    """The value of the first of ``names`` present in ``row`` (exact name first, then any case)."""
    for name in names:
        if name in row:
            return row[name]
    lowered = {key.lower(): key for key in row}
    for name in names:
        if name.lower() in lowered:
            return row[lowered[name.lower()]]
    return None


def require_columns(rows: list[dict[str, Any]], where: str, kind: str, *required: tuple[str, ...]) -> None:
    """Every row has one of each group of column names; else a clear error naming what is there."""
    if not rows:
        raise DatasetUnavailable(f"No rows in {where}: the {kind} data is empty.")
    present = {key.lower() for key in rows[0]}
    missing = [names[0] for names in required if not any(n.lower() in present for n in names)]
    if missing:
        raise DatasetUnavailable(
            f"{where} does not look like {kind} data: no column {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(map(repr, rows[0]))})."
        )


def as_mapping(value: Any) -> dict[str, Any]:
    """A dict cell, or a JSON object stored as a string; ``{}`` for anything else."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def as_str_list(value: Any) -> list[str]:
    """A list cell (or one string) as a list of non-empty strings."""
    if is_missing(value):
        return []
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value if not is_missing(v)]
    return [as_text(value)]


def row_index(row: dict[str, Any], number: int, index_columns: Iterable[str] = ("Unnamed: 0", "index")) -> str:
    """The row's id: an index column's value when the file has one, else its position."""
    for name in index_columns:
        if name in row and not is_missing(row[name]):
            return as_text(row[name])
    return str(number)
