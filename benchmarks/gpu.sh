#!/usr/bin/env bash
# Every GPU check in one go, for a machine lent for minutes: the CUDA tests, the model benchmarks
# on the GPU (both with the vLLM checks where vLLM is installed), then `matpo-bench reproduce
# --preset $PRESET` (default gpu) for at most REPRODUCE_SECONDS (a cut run still gets its report,
# from whatever stages finished). TESTS_SECONDS, BENCH_SECONDS or REPRODUCE_SECONDS of 0 skips that
# step. Everything worth keeping lands in OUT.
#
#   benchmarks/gpu.sh OUT [reproduce flags...]
#
# Run from the repository root with matpo-gym importable (installed, or on PYTHONPATH).
set -u -o pipefail
out=${1:?usage: benchmarks/gpu.sh OUT [reproduce flags...]}
shift
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# an image with JAX would otherwise let it take most of the GPU's memory the moment anything imports it
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python=${PYTHON:-python3}
started=$SECONDS
stamp() { echo "== $1 (t = $((SECONDS - started)) s)"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$python -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

stamp "tiny model"
$python -c "from matpo_gym.models.tiny import ensure_tiny; print(ensure_tiny())"

if [ "${TESTS_SECONDS:-150}" != 0 ]; then
  stamp "CUDA tests"
  timeout "${TESTS_SECONDS:-150}" $python -m pytest -q -p no:cacheprovider tests/gpu tests/trainers/test_precision.py \
    2>&1 | tee "$out/tests-gpu.log" | tail -25
fi

if [ "${BENCH_SECONDS:-120}" != 0 ]; then
  stamp "model benchmarks on the GPU"
  timeout "${BENCH_SECONDS:-120}" $python -m pytest -q -p no:cacheprovider benchmarks/test_model_speed.py \
    --benchmark-json="$out/bench-gpu.json" 2>&1 | tail -12
  [ -s "$out/bench-gpu.json" ] && $python benchmarks/report.py --from-json "$out/bench-gpu.json" \
    --output "$out/RESULTS-gpu.md" >/dev/null
fi

if [ "${REPRODUCE_SECONDS:-330}" = 0 ]; then stamp "done"; exit 0; fi
stamp "reproduce"
preset=${PRESET:-gpu}
run=runs/reproduce-$preset
report=leaderboards/reproduce-$preset
# HF rollouts of a tiny model are bound by per-token latency on a GPU; vLLM's are not
engine=hf
$python -c "import vllm" 2>/dev/null && engine=vllm
timeout --signal=INT --kill-after=20 "${REPRODUCE_SECONDS:-330}" \
  $python -m matpo_gym.cli reproduce --preset "$preset" --out "$run" --report "$report" --rollout-engine $engine --quiet "$@" \
  2>&1 | grep -v "Loading weights" | tee "$out/reproduce.log" | tail -30
stamp "report from the records"
$python -m matpo_gym.cli reproduce --out "$run" --report "$report" --report-only 2>&1 | tail -3
tar czf "$out/reproduce-$preset.tgz" --exclude=checkpoints "$run" "$report"
stamp "done"
