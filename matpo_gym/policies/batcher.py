"""Micro-batching for a served policy: concurrent requests share one ``policy.generate`` call,
which is what makes serving a batched local model worthwhile.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future

from matpo_gym.core.messages import Prompt
from matpo_gym.policies.base import Completion, Policy, generate_checked


class ServerClosing(RuntimeError):
    """A request that arrived while the server was stopping (answered with HTTP 503)."""


class MicroBatcher:
    """Collects prompts from many threads and answers them with batched ``generate`` calls."""

    def __init__(self, policy: Policy, *, max_batch: int = 32, window_s: float = 0.01):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}.")
        self.policy = policy
        self.max_batch = max_batch
        self.window_s = window_s
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=10_000)
        """Sizes of the most recent batches sent to the policy, oldest first (for diagnostics)."""
        self._queue: queue.Queue[tuple[Prompt, Future[Completion]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="matpo-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompt: Prompt) -> Future[Completion]:
        """Queue ``prompt``; the future resolves when its batch has been generated."""
        future: Future[Completion] = Future()
        with self._lock:
            if self._closed:
                raise ServerClosing("The server is shutting down.")
            self._queue.put((prompt, future))
        return future

    def close(self) -> None:
        """Finish the batch being collected; requests still queued get :class:`ServerClosing`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return self._drain()
            batch = [item]
            deadline = time.monotonic() + self.window_s
            stop = False
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._run(batch)
            if stop:
                return self._drain()

    def _run(self, batch: list[tuple[Prompt, Future[Completion]]]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            completions = generate_checked(self.policy, [prompt for prompt, _ in batch])
        except Exception as exc:  # noqa: BLE001 - any policy failure is answered, never kills the queue
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), completion in zip(batch, completions):
            future.set_result(completion)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(ServerClosing("The server is shutting down."))
