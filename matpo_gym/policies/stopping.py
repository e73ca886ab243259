"""Where a generated completion ends: at an end-of-turn id, or once its text holds a stop string.

Each step decodes only the last few tokens of every unfinished row and records the step a row
ended at, so the policy cuts each completion exactly there (the closing tag kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """End-of-turn ids: the generation config's, else the tokenizer's EOS (none when neither has one)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


class StopCriteria(StoppingCriteria):
    """Ends each row at an end-of-turn id or when its generated text contains a stop string,
    and records where, so the caller cuts each row exactly there."""

    def __init__(
        self, tokenizer: Any, prompt_len: int, batch: int, eos_ids: set[int], stop: Sequence[str]
    ):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.eos_ids = eos_ids
        self.stop = tuple(s for s in stop if s)
        # A token decodes to at least one byte, so this many tokens cover any stop string.
        self.window = max((len(s.encode()) for s in self.stop), default=0) + 1
        self.ends: list[int | None] = [None] * batch
        """Generated length (stop token included) of each finished row."""

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids[:, self.prompt_len :]  # (B, steps so far)
        length = generated.shape[1]
        last = generated[:, -1].tolist()
        pending = [row for row, end in enumerate(self.ends) if end is None]
        for row in pending:
            if last[row] in self.eos_ids:
                self.ends[row] = length
        if self.stop:
            rows = [row for row in pending if self.ends[row] is None]
            tails = (
                self.tokenizer.batch_decode(
                    generated[rows, -self.window :].tolist(),
                    skip_special_tokens=False,
                    clean_up_tokenization_spaces=False,
                )
                if rows
                else []
            )
            for row, tail in zip(rows, tails):
                if any(s in tail for s in self.stop):
                    self.ends[row] = length
        done = [end is not None for end in self.ends]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


__all__ = ["StopCriteria", "eos_ids"]
