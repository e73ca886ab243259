"""The browse tool over real HTTP against the offline world served on loopback."""

from matpo_gym.data.world import WorldConfig, build_world, serve_site
from matpo_gym.tools.base import run_tool
from matpo_gym.tools.browse import Browse, HttpFetcher, StoreFetcher


def test_http_browse_reads_the_served_world_like_the_local_store():
    world = build_world(WorldConfig(seed=3, num_entities=60))
    task = world.tasks("frames", n=1)[0]
    path = "/" + task.metadata["gold_urls"][0].split("/", 3)[3]
    with serve_site(world.store) as base:
        over_http = run_tool(Browse(HttpFetcher(timeout=5)), {"url": base + path})
        root = run_tool(Browse(HttpFetcher(timeout=5)), {"url": base + "/"})
        missing = run_tool(Browse(HttpFetcher(timeout=5)), {"url": base + "/wiki/No_Such_Page"})
    local = run_tool(Browse(StoreFetcher(world.store)), {"url": path})
    assert over_http.ok and local.ok
    assert over_http.text.split("\n", 2)[2] == local.text.split("\n", 2)[2].replace(world.store.base_url, base)
    assert f"]({base}/category/" in root.text, "links resolve against the server, so an agent can follow them"
    assert not missing.ok and "404" in missing.text
