"""Run the benchmark suites and write their figures to ``benchmarks/RESULTS.md``.

    python benchmarks/report.py            # every suite
    python benchmarks/report.py -k search  # a subset (pytest -k expression)
    python benchmarks/report.py --from-json bench.json --output benchmarks/RESULTS-gpu.md  # a saved run
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def run_suites(expression: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        command = [sys.executable, "-m", "pytest", str(HERE), "-q", "--benchmark-only", f"--benchmark-json={out}"]
        if expression:
            command += ["-k", expression]
        subprocess.run(command, check=True)
        return json.loads(out.read_text())


def format_extra(extra: dict) -> str:
    return ", ".join(f"{k} = {v:,.1f}" if isinstance(v, float) else f"{k} = {v}" for k, v in extra.items())


def render(data: dict) -> str:
    machine = data.get("machine_info", {})
    when = str(data.get("datetime", ""))[:10] or time.strftime("%Y-%m-%d")
    python = machine.get("python_version", platform.python_version())
    lines = [
        "# Benchmark results",
        "",
        f"Measured {when} on {machine.get('cpu', {}).get('brand_raw', platform.processor())}"
        f" ({machine.get('cpu', {}).get('count', '?')} cores), Python {python}, {machine.get('gpu') or 'no GPU'}.",
        "Regenerate with `python benchmarks/report.py`.",
        "",
        "| benchmark | mean | min | rounds | figures |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        lines.append(
            f"| `{bench['name']}` | {stats['mean'] * 1e3:,.2f} ms | {stats['min'] * 1e3:,.2f} ms | "
            f"{stats['rounds']} | {format_extra(bench.get('extra_info', {}))} |"
        )
    return "\n".join(lines) + "\n"


def merge(previous: str, fresh: str) -> str:
    """``fresh`` with the rows of ``previous`` it did not rerun kept (a ``-k`` run updates its rows only)."""
    def rows(text: str) -> dict[str, str]:
        return {line.split("`")[1]: line for line in text.splitlines() if line.startswith("| `")}

    kept = {**rows(previous), **rows(fresh)}
    head = [line for line in fresh.splitlines() if not line.startswith("| `")]
    return "\n".join(head + list(kept.values())) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="expression", help="pytest -k expression selecting benchmarks; other rows are kept")
    parser.add_argument("--from-json", type=Path, help="render this pytest-benchmark JSON instead of running")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    path = args.output
    data = json.loads(args.from_json.read_text()) if args.from_json else run_suites(args.expression)
    text = render(data)
    if args.expression and path.is_file():
        text = merge(path.read_text(), text)
    path.write_text(text)
    print(path.read_text())


if __name__ == "__main__":
    main()
