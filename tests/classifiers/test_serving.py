from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from classifiers.errors import ClassifierClosed
from classifiers.model import Prediction, StageTimes
from classifiers.serving import BatchingClassifier, normalise


class FakeModel:
    """Labels a text by its length; records batches and the thread each ran on."""

    labels = ("short", "long")

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.threads: set[threading.Thread] = set()
        self.gate = threading.Event()
        self.gate.set()

    def predict_timed(self, texts: Sequence[str]) -> tuple[list[Prediction], StageTimes]:
        self.gate.wait(5)
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread())
        if self.delay:
            threading.Event().wait(self.delay)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"cannot classify {self.fail_on!r}")
        predictions = []
        for text in texts:
            label = "short" if len(text) < 10 else "long"
            probs = (("short", 0.9 if label == "short" else 0.1), ("long", 0.1 if label == "short" else 0.9))
            predictions.append(Prediction(label, 0.9, probs, "fake"))
        return predictions, StageTimes(0.001, 0.0001, len(texts))


async def _started(
    model: FakeModel, *, max_batch: int = 32, max_wait_ms: float = 2.0, cache_size: int = 20000
) -> BatchingClassifier:
    classifier = BatchingClassifier(
        model, max_batch=max_batch, max_wait_ms=max_wait_ms, cache_size=cache_size
    )
    await classifier.start(warmup=False)
    return classifier


def test_normalise() -> None:
    assert normalise("  Hello\t\nWORLD  ") == "hello world"


async def test_concurrent_calls_are_batched_off_the_event_loop() -> None:
    model = FakeModel(delay=0.01)
    classifier = await _started(model, max_batch=8, max_wait_ms=1.0)
    results = await asyncio.gather(*(classifier.classify(f"text number {i}") for i in range(40)))
    await classifier.aclose()
    assert [p.label for p, _ in results] == ["long"] * 40
    assert sum(len(b) for b in model.batches) == 40
    assert max(len(b) for b in model.batches) > 1
    assert all(len(b) <= 8 for b in model.batches)
    assert len(model.batches) < 40
    assert threading.main_thread() not in model.threads
    assert len(model.threads) == 1
    batch_sizes = {t.batch_size for _, t in results}
    assert batch_sizes <= {len(b) for b in model.batches}


async def test_requests_arriving_during_a_batch_form_the_next_batch() -> None:
    model = FakeModel()
    model.gate.clear()
    classifier = await _started(model, max_batch=32, max_wait_ms=0.0)
    first = asyncio.create_task(classifier.classify("first"))
    await asyncio.sleep(0.01)  # the first batch is now blocked in the worker
    rest = [asyncio.create_task(classifier.classify(f"later {i}")) for i in range(5)]
    await asyncio.sleep(0.01)
    model.gate.set()
    await asyncio.gather(first, *rest)
    await classifier.aclose()
    assert model.batches == [["first"], [f"later {i}" for i in range(5)]]


async def test_cache_answers_repeats_without_the_model() -> None:
    model = FakeModel()
    classifier = await _started(model)
    first, times = await classifier.classify("Hello  World")
    again, cached_times = await classifier.classify("  hello world ")
    await classifier.aclose()
    assert model.batches == [["hello world"]]
    assert again == first
    assert not times.cached and cached_times.cached
    assert cached_times.embed_seconds == 0.0


async def test_identical_waiting_texts_share_one_row() -> None:
    model = FakeModel()
    model.gate.clear()
    classifier = await _started(model, cache_size=0)
    blocker = asyncio.create_task(classifier.classify("blocker"))
    await asyncio.sleep(0.01)
    same = [asyncio.create_task(classifier.classify("Same text")) for _ in range(3)]
    await asyncio.sleep(0.01)
    model.gate.set()
    await asyncio.gather(blocker, *same)
    await classifier.aclose()
    assert model.batches == [["blocker"], ["same text"]]


async def test_lru_cache_is_bounded() -> None:
    model = FakeModel()
    classifier = await _started(model, cache_size=2)
    for text in ("a", "b", "c", "a"):
        await classifier.classify(text)
    await classifier.aclose()
    assert [b[0] for b in model.batches] == ["a", "b", "c", "a"]


async def test_cancelled_caller_does_not_break_the_batch() -> None:
    model = FakeModel()
    model.gate.clear()
    classifier = await _started(model)
    blocker = asyncio.create_task(classifier.classify("blocker"))
    await asyncio.sleep(0.01)
    doomed = asyncio.create_task(classifier.classify("doomed"))
    kept = asyncio.create_task(classifier.classify("kept"))
    await asyncio.sleep(0.01)
    doomed.cancel()
    model.gate.set()
    prediction, _ = await kept
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await doomed
    # The cancelled row was still classified and cached: asking again does not run the model.
    batches_before = len(model.batches)
    await classifier.classify("doomed")
    await classifier.aclose()
    assert prediction.label == "short"
    assert len(model.batches) == batches_before
    assert ["doomed", "kept"] in model.batches


async def test_exception_reaches_only_that_batch() -> None:
    model = FakeModel(fail_on="bad")
    model.gate.clear()
    classifier = await _started(model, max_wait_ms=0.0)
    blocker = asyncio.create_task(classifier.classify("blocker"))
    await asyncio.sleep(0.01)
    same_batch = [asyncio.create_task(classifier.classify(t)) for t in ("bad", "innocent")]
    await asyncio.sleep(0.01)
    model.gate.set()
    results = await asyncio.gather(blocker, *same_batch, return_exceptions=True)
    after, _ = await classifier.classify("after")
    await classifier.aclose()
    assert isinstance(results[0], tuple)
    assert all(isinstance(r, RuntimeError) and "cannot classify 'bad'" in str(r) for r in results[1:])
    assert after.label == "short"


async def test_aclose_stops_the_worker_thread_and_refuses_new_work() -> None:
    model = FakeModel()
    classifier = await _started(model)
    await classifier.classify("hello")
    (worker,) = model.threads
    assert worker.is_alive()
    await classifier.aclose()
    assert not worker.is_alive()
    with pytest.raises(ClassifierClosed):
        await classifier.classify("hello again")


async def test_aclose_fails_waiting_callers() -> None:
    model = FakeModel()
    model.gate.clear()
    classifier = await _started(model)
    running = asyncio.create_task(classifier.classify("running"))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(classifier.classify("waiting"))
    await asyncio.sleep(0)
    closing = asyncio.create_task(classifier.aclose())
    await asyncio.sleep(0.01)
    model.gate.set()
    await closing
    for task in (running, waiting):
        with pytest.raises(ClassifierClosed):
            await task


async def test_classify_before_start_is_refused() -> None:
    classifier = BatchingClassifier(FakeModel())
    with pytest.raises(ClassifierClosed, match="start"):
        await classifier.classify("x")


async def test_start_warms_up_on_the_worker() -> None:
    model = FakeModel()
    classifier = BatchingClassifier(model)
    await classifier.start()
    await classifier.aclose()
    assert model.batches == [["warm up"]]
    assert threading.main_thread() not in model.threads
