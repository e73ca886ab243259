"""Peak memory of one MATPO step vs one GRPO step on the same tiny model and budget.

Each trainer runs in a fresh subprocess so that its peak resident set size is its own. A small
KL coefficient makes every generated token go through the update (zero-advantage turns are
otherwise skipped), so the backward pass is measured even with a randomly initialised model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

SCRIPT = """
import json, resource, sys, tempfile
from pathlib import Path
from matpo_gym.trainers import main
from matpo_gym.trainers.config import TrainConfig
out = Path(tempfile.mkdtemp())
main(TrainConfig(algo=sys.argv[1], model="tiny", env="world-tiny", out=out, steps=1, questions_per_step=8,
                 group_size=4, max_new_tokens=32, kl_coef=0.01, eval_every=0, eval_questions=8, save_every=0,
                 quiet=True, device="cpu"))
row = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()][-1]
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "trained_tokens": row["trained_tokens"], "samples": row["samples"]}))
"""


@pytest.mark.parametrize("algo", ["grpo", "matpo"])
def test_trainer_peak_memory(benchmark, algo):
    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", SCRIPT, algo], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    figures = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    assert figures["trained_tokens"] > 0
