"""What an installed (not editable) matpo-gym holds, and what a user without the extras is told."""

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from matpo_gym.catalogue import builtin_dir, resolve

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_package_data_covers_every_data_file():
    # a data file the code reads but the wheel leaves out works from a checkout and fails installed
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["matpo_gym"]
    tracked = subprocess.run(["git", "ls-files", "matpo_gym"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    data = [p for p in tracked if not p.endswith(".py") and not (ROOT / p).is_symlink()]
    missing = [p for p in data if not any(fnmatch.fnmatch(p.removeprefix("matpo_gym/"), g) for g in globs)]
    assert data and not missing, f"not in [tool.setuptools.package-data], so not in the wheel: {missing}"


def test_catalogue_paths_as_the_docs_write_them_work_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("trainers", "trainers/tiny-matpo.toml") == builtin_dir("trainers") / "tiny-matpo.toml"
    assert resolve("envs", "envs/world-tiny.toml") == builtin_dir("envs") / "world-tiny.toml"


def test_a_command_that_needs_a_missing_extra_names_it(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from matpo_gym.cli import main; "
            f"raise SystemExit(main(['train', '--recipe', 'tiny-sft', '--steps', '1', '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "matpo-bench: error: this needs 'torch': pip install \"matpo-gym[hf]\""
