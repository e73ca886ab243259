"""The loopback HTTP server: real sockets, real urllib requests."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from matpo_gym.data.world import World, WorldConfig, build_world, serve_site


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig(seed=5, num_entities=60))


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read().decode("utf-8")


def test_serves_root_and_entity_pages_over_http(world: World) -> None:
    entity = world.entities.of_kind("City")[0]
    with serve_site(world.store) as base:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        status, content_type, html = fetch(base + "/")
        assert status == 200 and content_type == "text/html; charset=utf-8"
        assert html == world.store.get("/").html
        status, _, html = fetch(f"{base}/wiki/{entity.slug}")
        assert status == 200 and f"<h1>{entity.name}</h1>" in html
        status, _, html = fetch(f"{base}/category/City?page=1")
        assert f'href="/wiki/{entity.slug}"' in html


def test_unknown_paths_get_404(world: World) -> None:
    with serve_site(world.store) as base:
        with pytest.raises(urllib.error.HTTPError) as caught:
            fetch(base + "/wiki/Nowhere_At_All")
        assert caught.value.code == 404
        assert caught.value.headers["Content-Type"] == "text/html; charset=utf-8"


def test_server_stops_when_the_block_exits(world: World) -> None:
    with serve_site(world.store) as base:
        fetch(base + "/")
    with pytest.raises(urllib.error.URLError):
        fetch(base + "/")


def test_command_line_serves_a_world() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "matpo_gym.data.world.server",
            "--port",
            "0",
            "--num-entities",
            "40",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        status, _, html = fetch(match.group(1) + "/")
        assert status == 200 and "<h1>Matpo World</h1>" in html
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Warning" not in proc.stderr.read()
