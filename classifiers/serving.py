"""An asyncio front for a route model: micro-batching onto one worker thread, with an LRU cache.

``classify(text)`` never runs model code on the event loop. Requests wait in a queue; a
dispatcher task takes the first one, then gathers whatever else is queued (requests that
arrived while the previous batch was running) and keeps gathering for up to ``max_wait_ms``
until ``max_batch`` rows are in hand; the batch runs on the single worker thread. One thread
because the encoders are themselves multi-threaded numeric code: two batches side by side
only contend for the same cores.

Repeats are answered from an LRU cache keyed on the normalised text (case-folded, whitespace
collapsed, stripped) without touching the thread; identical texts already waiting share one
row. The model sees the normalised text, so equal keys always get equal predictions.

A caller that is cancelled leaves its row in the batch (its result goes to the cache); an
exception raised by the model reaches the callers of that batch only.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cachetools import LRUCache

from classifiers.errors import ClassifierClosed
from classifiers.model import Classifier, Prediction, StageTimes

_CACHED = StageTimes(0.0, 0.0, 1, cached=True)


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class _Pending:
    key: str
    future: asyncio.Future[tuple[Prediction, StageTimes]]


class BatchingClassifier:
    def __init__(
        self, model: Classifier, *, max_batch: int = 32, max_wait_ms: float = 0.0, cache_size: int = 20000
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms}")
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._cache: LRUCache[str, Prediction] | None = LRUCache(cache_size) if cache_size > 0 else None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._waiting: dict[str, asyncio.Future[tuple[Prediction, StageTimes]]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def labels(self) -> tuple[str, ...]:
        return self.model.labels

    async def start(self, *, warmup: bool = True) -> None:
        """Start the worker thread and dispatcher; ``warmup`` runs one row through the model now."""
        if self._closed:
            raise ClassifierClosed("this classifier was closed; build a new one")
        if self._dispatcher is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="route-classifier")
        if warmup:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self.model.predict_timed, ["warm up"]
            )
        self._dispatcher = asyncio.create_task(self._dispatch(), name="route-classifier-dispatch")

    async def aclose(self) -> None:
        """Stop the dispatcher, fail waiting callers with :class:`ClassifierClosed`, join the thread."""
        self._closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ClassifierClosed("the classifier was closed while this request waited"))
        self._waiting.clear()
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None

    async def classify(self, text: str) -> tuple[Prediction, StageTimes]:
        if self._closed:
            raise ClassifierClosed("the classifier is closed")
        if self._dispatcher is None:
            raise ClassifierClosed("call start() before classify()")
        key = normalise(text)
        if self._cache is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached, _CACHED
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            self._queue.put_nowait(_Pending(key, future))
        # shield: a cancelled caller must not cancel the row that other callers share.
        return await asyncio.shield(future)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather(loop)
            keys = [p.key for p in batch]
            try:
                predictions, times = await loop.run_in_executor(
                    self._executor, self.model.predict_timed, keys
                )
                if len(predictions) != len(batch):
                    raise RuntimeError(
                        f"the model returned {len(predictions)} predictions for {len(batch)} texts"
                    )
            except asyncio.CancelledError:
                self._fail(batch, ClassifierClosed("the classifier was closed while this request ran"))
                raise
            except Exception as exc:  # handed to exactly this batch's callers
                self._fail(batch, exc)
                continue
            for pending, prediction in zip(batch, predictions, strict=True):
                if self._cache is not None:
                    self._cache[pending.key] = prediction
                self._waiting.pop(pending.key, None)
                if not pending.future.done():
                    pending.future.set_result((prediction, times))

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[_Pending]:
        # Rows that queued up while the previous batch ran form the next one at once; with
        # max_wait_s > 0 the dispatcher also lingers that long for more, trading latency at low
        # load for bigger batches.
        batch = [await self._queue.get()]
        if self.max_wait_s > 0:
            deadline = loop.time() + self.max_wait_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    while len(batch) < self.max_batch:
                        batch.append(await self._queue.get())
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        for pending in batch:
            self._waiting.pop(pending.key, None)
            if not pending.future.done():
                pending.future.set_exception(exc)
