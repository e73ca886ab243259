"""OpenAIPolicy and the serve endpoint, over real HTTP on loopback."""

import json
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from loopback import serve_on_loopback

from matpo_gym.bench.run import RunConfig, run
from matpo_gym.cli import main
from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.policies.base import Completion
from matpo_gym.policies.chat_schema import infer_role, to_messages, tool_names
from matpo_gym.policies.openai import (
    OpenAIPolicy,
    PolicyRequestError,
    close_stop_tag,
    to_openai_messages,
)
from matpo_gym.policies.registry import load_policy
from matpo_gym.policies.scripted import SearchReadPolicy
from matpo_gym.policies.serve import ServeConfig, serve, serve_policy

REPO = Path(__file__).parents[2]


def read_records(path):
    return {r["key"]: r for r in map(json.loads, path.read_text().splitlines())}


def prompt(text: str, role: Role = Role.SINGLE) -> Prompt:
    return Prompt(role, (Message("system", "You are a research assistant."), Message("user", text)))


class RecordingPolicy:
    """Echoes the last message; records batch sizes and every prompt it was given."""

    name = "recorder"

    def __init__(self, delay: float = 0.0, reply: str | None = None):
        self.delay = delay
        self.reply = reply
        self.batches: list[int] = []
        self.prompts: list[Prompt] = []

    def generate(self, prompts):
        self.batches.append(len(prompts))
        self.prompts.extend(prompts)
        time.sleep(self.delay)
        return [Completion(self.reply if self.reply is not None else p.messages[-1].content) for p in prompts]


class FailingPolicy:
    name = "failing"

    def generate(self, prompts):
        raise RuntimeError("model exploded")


# -- acceptance: a served policy evaluated through OpenAIPolicy matches the local policy -----------


def assert_runs_played_alike(out, questions: int) -> list[dict]:
    """The ``local`` and ``remote`` runs in ``out`` answered the same ``questions`` alike in both
    modes, down to every message of every trajectory (tool results included); the local records."""
    runs = []
    for mode in ("matpo", "single"):
        local = read_records(out / "local" / f"{mode}.jsonl")
        served = read_records(out / "remote" / f"{mode}.jsonl")
        assert len(local) == questions and local.keys() == served.keys()
        for key in local:
            assert served[key]["prediction"] == local[key]["prediction"]
            assert served[key]["score"] == local[key]["score"]
            assert [t["messages"] for t in served[key]["trajectories"]] == [
                t["messages"] for t in local[key]["trajectories"]
            ]
        runs.append(local)
    return runs


def test_served_scripted_policy_matches_local_results(tmp_path):
    config = {"env": "world-frames", "mode": "matpo,single", "limit": 10, "out": tmp_path, "quiet": True}
    run(RunConfig(name="local", **config), policy=SearchReadPolicy())
    with serve_policy(SearchReadPolicy()) as url, OpenAIPolicy(model="scripted", base_url=url) as remote:
        assert remote.name == "openai:scripted"
        run(RunConfig(name="remote", **config), policy=remote)
    for local in assert_runs_played_alike(tmp_path, questions=10):
        assert any(r["score"] > 0 for r in local.values())


def test_served_hf_policy_matches_the_local_hf_policy_greedily(tiny_model_dir, tmp_path):
    """The same check on a real model: the tiny model served over HTTP and evaluated through
    OpenAIPolicy plays every episode as the local HF policy does. Greedy, and one prompt per forward
    pass on both sides (the server's micro-batches hold one request), so both compute with the same
    shapes; every message of every trajectory must then be equal, model turns included. The weights
    are random, so the turns are text the env answers with format feedback, not tool calls; the
    scripted test above covers tool calls and workers through the same server."""
    pytest.importorskip("torch")
    from matpo_gym.policies.hf import HFPolicy

    def tiny():
        return HFPolicy(str(tiny_model_dir), temperature=0.0, max_new_tokens=24, seed=0, batch_size=1)

    config = {"env": "world-tiny", "mode": "matpo,single", "limit": 3, "out": tmp_path, "quiet": True}
    run(RunConfig(name="local", **config), policy=tiny())
    with serve_policy(tiny(), max_batch=1) as url, OpenAIPolicy(model="tiny", base_url=url, max_tokens=24) as remote:
        run(RunConfig(name="remote", **config), policy=remote)
    turns = sum(m["role"] == "assistant" for local in assert_runs_played_alike(tmp_path, questions=3)
                for record in local.values() for t in record["trajectories"] for m in t["messages"])
    assert turns >= 6  # every episode had model turns to compare


def test_served_prompts_equal_local_prompts():
    messages = (
        Message("system", 'You are a worker on a research team.\n{"name": "search", "description": "d", '
                          '"parameters": {}}\n{"name": "browse", "description": "d", "parameters": {}}'),
        Message("user", "Your subtask: find X"),
        Message("assistant", '<tool_call>{"name": "search", "arguments": {"query": "X"}}</tool_call>'),
        Message("tool", "1. X\nURL: http://x", name="search"),
        Message("user", "[3 earlier message(s) removed to fit the context window]"),
    )
    recorder = RecordingPolicy(reply="<answer>ok</answer>")
    with serve_policy(recorder) as url, OpenAIPolicy(model="m", base_url=url) as policy:
        [completion] = policy.generate([Prompt(Role.WORKER, messages, "t1", ("search", "browse"))])
    assert completion.text == "<answer>ok</answer>"
    [seen] = recorder.prompts
    assert seen.messages == messages
    assert seen.role is Role.WORKER and seen.tool_names == ("search", "browse")


def test_role_and_tool_inference():
    assert infer_role("You are the planner of a research team. Workers help.\n...") is Role.PLANNER
    assert infer_role("You are a worker on a research team.\nThe planner reads your summary.") is Role.WORKER
    assert infer_role("You are a research assistant.\nNo planner or worker here.") is Role.SINGLE
    assert infer_role("") is Role.SINGLE
    system = 'Tools:\n{"name": "worker", "description": "x", "parameters": {"properties": {"name": {}}}}\nbye'
    assert tool_names(system) == ("worker",)
    assert to_messages([{"role": "user", "content": "[tool result]\nhi"}]) == (Message("tool", "hi"),)
    assert to_openai_messages([Message("tool", "r", name="browse")]) == [
        {"role": "user", "content": "[tool result: browse]\nr"}
    ]


# -- micro-batching ---------------------------------------------------------------------------------


def test_concurrent_requests_are_micro_batched():
    recorder = RecordingPolicy(delay=0.02)
    prompts = [prompt(f"q{i}") for i in range(24)]
    with (
        serve_policy(recorder, max_batch=8, batch_window_s=0.02) as url,
        OpenAIPolicy(model="m", base_url=url, concurrency=24, stop=()) as policy,
    ):
        completions = policy.generate(prompts)
    assert [c.text for c in completions] == [f"q{i}" for i in range(24)]  # order kept
    assert sum(recorder.batches) == 24
    assert max(recorder.batches) > 1 and max(recorder.batches) <= 8


# -- stop sequences ---------------------------------------------------------------------------------


def test_stop_sequence_is_cut_by_server_and_tag_reappended():
    reply = '<think>hm</think>\n<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call> trailing'
    with serve_policy(RecordingPolicy(reply=reply)) as url:
        raw = requests.post(f"{url}/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["</tool_call>"],
        }).json()
        assert raw["choices"][0]["message"]["content"] == reply.split("</tool_call>")[0]
        assert raw["choices"][0]["finish_reason"] == "stop"
        assert raw["usage"]["completion_tokens"] > 0 and raw["object"] == "chat.completion"
        with OpenAIPolicy(model="m", base_url=url) as policy:
            [completion] = policy.generate([prompt("hi")])
    assert completion.text == reply.split(" trailing")[0]
    assert completion.finish_reason == "stop"
    stops = ("</tool_call>", "</answer>")
    assert close_stop_tag("<answer>42", stops) == "<answer>42</answer>"
    assert close_stop_tag("<answer>42</answer>", stops) == "<answer>42</answer>"
    assert close_stop_tag("no tags", stops) == "no tags"
    assert (
        close_stop_tag('<answer>a</answer> <tool_call>{"x": 1}', stops)
        == '<answer>a</answer> <tool_call>{"x": 1}</tool_call>'
    )


def test_a_turn_ended_with_its_tag_open_is_not_repaired_when_the_server_says_why_it_stopped():
    # locally, "<answer>42" ended at end-of-turn is an invalid action; served, it must stay one
    with serve_policy(RecordingPolicy(reply="<answer>42")) as url, OpenAIPolicy(model="m", base_url=url) as policy:
        raw = requests.post(f"{url}/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["</answer>"]}).json()
        [completion] = policy.generate([prompt("hi")])
    assert raw["choices"][0]["stop_reason"] is None and raw["choices"][0]["finish_reason"] == "stop"
    assert completion.text == "<answer>42"
    with serve_policy(RecordingPolicy(reply="<answer>42</answer> more")) as url:
        raw = requests.post(f"{url}/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["</answer>"]}).json()
        with OpenAIPolicy(model="m", base_url=url) as policy:
            [completion] = policy.generate([prompt("hi")])
    assert raw["choices"][0]["stop_reason"] == "</answer>" and completion.text == "<answer>42</answer>"


def test_one_stop_string_is_one_sequence():
    assert OpenAIPolicy(model="m", stop="</answer>").stop == ("</answer>",)


def test_a_busy_port_is_a_one_line_error(capsys):
    with serve_policy(RecordingPolicy()) as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
        code = main(["serve", "--policy", "scripted", "--port", port])
    err = capsys.readouterr().err
    assert code == 2 and f"Cannot listen on 127.0.0.1:{port}" in err and "--port 0" in err


def test_logprobs_pass_through_when_asked():
    class WithLogprobs:
        name = "lp"

        def generate(self, prompts):
            return [Completion("<answer>a</answer>", [1, 2], [7, 8, 9], [-0.5, -0.25, -0.1]) for _ in prompts]

    with serve_policy(WithLogprobs()) as url, OpenAIPolicy(model="m", base_url=url, logprobs=True) as policy:
        [completion] = policy.generate([prompt("hi")])
        raw = requests.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}).json()
    assert completion.logprobs == [-0.5, -0.25, -0.1]
    assert raw["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert raw["choices"][0]["logprobs"] is None and raw["model"] == "lp"


# -- the endpoint's other routes and its errors ------------------------------------------------------


def test_health_models_and_request_errors():
    with serve_policy(RecordingPolicy()) as url:
        root = url.removesuffix("/v1")
        assert requests.get(f"{root}/health").json()["status"] == "ok"
        assert requests.get(f"{url}/models").json()["data"][0]["id"] == "recorder"
        endpoint = f"{url}/chat/completions"
        bad_json = requests.post(endpoint, data=b"{not json", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["type"] == "invalid_request_error"
        missing = requests.post(endpoint, json={"model": "m"})
        assert missing.status_code == 400 and "messages" in missing.json()["error"]["message"]
        for body in ({"messages": []}, {"messages": [{"role": "robot", "content": "x"}]},
                     {"messages": [{"role": "user", "content": "x"}], "n": 2}):
            assert requests.post(endpoint, json=body).status_code == 400
        assert requests.get(f"{root}/nope").status_code == 404
    with serve_policy(FailingPolicy()) as url:
        failed = requests.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
        assert failed.status_code == 500 and "model exploded" in failed.json()["error"]["message"]
        with pytest.raises(PolicyRequestError, match="HTTP 500.*model exploded"):
            OpenAIPolicy(model="m", base_url=url, max_retries=0).generate([prompt("x")])


# -- retries against a scripted loopback server -------------------------------------------------------


@contextmanager
def scripted_server(responses: list[tuple[int, dict[str, str], dict]]):
    """Answers POSTs with ``responses`` in turn (the last one repeats); records request times."""
    seen: list[tuple[float, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((time.monotonic(), {"body": body, "auth": self.headers.get("Authorization")}))
            status, headers, payload = responses[min(len(seen), len(responses)) - 1]
            data = json.dumps(payload).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    with serve_on_loopback(Handler) as base:
        yield f"{base}/v1", seen


OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "<answer>fine"}, "finish_reason": "stop"}]}
UNAVAILABLE = {"error": {"message": "overloaded"}}


def test_retries_with_backoff_and_retry_after(monkeypatch):
    monkeypatch.setenv("MATPO_TEST_KEY", "sk-test")
    responses = [(503, {"Retry-After": "0.4"}, UNAVAILABLE), (503, {}, UNAVAILABLE), (200, {}, OK)]
    with scripted_server(responses) as (url, seen):
        policy = OpenAIPolicy(model="m", base_url=url, backoff_s=0.01, api_key_env="MATPO_TEST_KEY", seed=3)
        [completion] = policy.generate([prompt("x")])
    assert completion.text == "<answer>fine</answer>"
    assert len(seen) == 3
    assert seen[1][0] - seen[0][0] >= 0.4  # Retry-After honoured
    assert seen[2][0] - seen[1][0] < 0.4  # otherwise the (short) exponential backoff
    assert seen[0][1]["auth"] == "Bearer sk-test"
    assert seen[0][1]["body"]["seed"] == 3 and seen[0][1]["body"]["stop"] == ["</tool_call>", "</answer>"]
    assert "sk-test" not in repr(policy) and "sk-test" not in json.dumps(vars(policy), default=str)


def test_exhausted_retries_and_client_errors_are_clear():
    with scripted_server([(503, {}, UNAVAILABLE)]) as (url, seen):
        with pytest.raises(PolicyRequestError, match=r"after 3 attempts: HTTP 503: overloaded") as info:
            OpenAIPolicy(model="m", base_url=url, max_retries=2, backoff_s=0.01).generate([prompt("x")])
        assert info.value.url == f"{url}/chat/completions" and len(seen) == 3
    unauthorized = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    with scripted_server([(401, {}, unauthorized)]) as (url, seen), pytest.raises(PolicyRequestError) as info:
        OpenAIPolicy(model="m", base_url=url, backoff_s=0.01).generate([prompt("x"), prompt("y")])
    assert info.value.status == 401 and "Incorrect API key provided" in str(info.value)
    assert url in str(info.value) and 1 <= len(seen) <= 2  # not retried: one attempt per prompt


def test_stopped_server_is_a_clear_error_not_a_hang():
    policy = OpenAIPolicy(model="m", max_retries=1, backoff_s=0.01, timeout_s=5)
    with serve_policy(RecordingPolicy()) as url:
        policy.base_url = url
        assert policy.generate([prompt("x")])[0].text == "x"  # leaves a keep-alive connection open
    # The port is closed; the old connection answers 503 and the retry finds no server.
    with pytest.raises(PolicyRequestError, match="no response: ConnectError"):
        policy.generate([prompt("x")])


# -- construction and the CLI ---------------------------------------------------------------------------


def test_openai_policy_from_registry(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    policy = load_policy("openai", model="qwen", stop=["</answer>"])
    assert isinstance(policy, OpenAIPolicy) and policy.name == "openai:qwen"
    assert policy.url == "http://127.0.0.1:9/v1/chat/completions" and policy.stop == ("</answer>",)


def test_serve_cli_refuses_remote_hosts(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matpo-bench: error:") and "--allow-remote" in err
    with pytest.raises(ValueError, match="non-loopback"):
        serve(ServeConfig(host="192.168.1.10"))


def test_serve_cli_prints_the_url_and_stops_on_ctrl_c():
    command = [sys.executable, "-m", "matpo_gym.cli", "serve", "--port", "0"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
        assert found, f"no URL in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        url = found.group(0)
        assert requests.get(f"{url}/models", timeout=5).json()["data"][0]["id"] == "scripted"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "server stopped" in out
