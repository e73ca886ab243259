"""The failure breakdown, on hand-written records whose every stage is known."""

from __future__ import annotations

import math

from matpo_gym.bench.diagnose import breakdown


def message(role: str, content: str, name: str | None = None) -> dict:
    return {"role": role, "content": content, **({"name": name} if name else {})}


def record(gold: str, score: float, stop: str, trajectories: list[dict], truncations: int = 0) -> dict:
    return {"gold": gold, "score": score, "stop_reason": stop, "trajectories": trajectories,
            "stats": {"context_truncations": truncations}}


def single(*tool_results: str, stop: str = "answer") -> dict:
    messages = [message("system", "s"), message("user", "q")]
    for text in tool_results:
        messages += [message("assistant", "<tool_call>...</tool_call>"), message("tool", text, "browse")]
    messages.append(message("assistant", "<answer>x</answer>"))
    return {"role": "single", "messages": messages, "stop_reason": stop}


def test_single_agent_stages():
    records = [
        record("55", 1.0, "answer", [single("Employees: 55")]),
        record("1955", 0.0, "turn_limit", [single("Founded: 19550", "nothing")], truncations=2),  # no whole-token match
    ]
    b = breakdown(records)
    assert (b.episodes, b.accuracy, b.read_gold, b.answered) == (2, 0.5, 0.5, 0.5)
    assert math.isnan(b.reported_gold) and math.isnan(b.relayed)
    assert b.workers == 0 and math.isnan(b.worker_stopped)
    assert b.model_calls == (2 + 3) / 2 and b.truncations == 1.0


def test_planner_and_worker_stages():
    worker_found = {"role": "worker", "stop_reason": "answer",
                    "messages": [message("tool", "Population: 812", "browse"), message("assistant", "report")]}
    worker_lost = {"role": "worker", "stop_reason": "turn_limit",
                   "messages": [message("tool", "Population: 812", "search"), message("assistant", "call")]}
    planner_told = {"role": "planner", "stop_reason": "answer",
                    "messages": [message("assistant", "delegate"), message("tool", "Answer: 812", "worker"),
                                 message("assistant", "<answer>812</answer>")]}
    planner_untold = {"role": "planner", "stop_reason": "turn_limit",
                      "messages": [message("assistant", "delegate"),
                                   message("tool", "The worker was stopped; Population: 812 was read", "browse"),
                                   message("tool", "not found", "worker")]}
    records = [record("812", 1.0, "answer", [planner_told, worker_found]),
               record("812", 0.0, "turn_limit", [planner_untold, worker_lost])]
    b = breakdown(records)
    assert b.read_gold == 1.0           # both workers read it
    assert b.reported_gold == 0.5       # only the first report stated it (other tool text is no report)
    assert b.relayed == 1.0             # and its planner answered it
    assert b.workers == 1.0 and b.worker_stopped == 0.5
    assert b.model_calls == (2 + 1 + 1 + 1) / 2  # assistant turns of planner and worker, per episode


def test_relayed_counts_the_planner_answers_of_reports_that_stated_the_gold():
    def episode(report: str, score: float) -> dict:
        planner = {"role": "planner", "stop_reason": "answer",
                   "messages": [message("assistant", "delegate"), message("tool", report, "worker"),
                                message("assistant", "<answer>x</answer>")]}
        worker = {"role": "worker", "stop_reason": "answer", "messages": [message("tool", "Elevation: 126", "browse")]}
        return record("126", score, "answer", [planner, worker])

    records = [episode("Answer: 126", 1.0), episode("Answer: 126", 0.0), episode("Answer: 126", 1.0),
               episode("Answer: 442", 0.0)]  # a wrong report: not the planner's failure to relay
    b = breakdown(records)
    assert b.reported_gold == 0.75 and b.relayed == 2 / 3
    assert math.isnan(breakdown([episode("Answer: 442", 0.0)]).relayed)
