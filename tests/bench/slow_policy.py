"""A scripted policy slowed down, so a test can interrupt a run mid-way."""

import time

from matpo_gym.policies.scripted import SearchReadPolicy


class SlowPolicy(SearchReadPolicy):
    name = "slow-scripted"

    def generate(self, prompts):
        time.sleep(0.2)
        return super().generate(prompts)
