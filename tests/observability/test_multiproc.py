"""The metrics directory `gateway serve --workers N` sets up around the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.multiproc import ENV, multiprocess_metrics


def test_fresh_directory_for_several_workers_removed_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with multiprocess_metrics(2) as path:
        assert path is not None and path.parent == tmp_path
        assert os.environ[ENV] == str(path) and not any(path.iterdir())
        (path / "counter_1.db").write_bytes(b"x")
    assert not path.exists()
    assert ENV not in os.environ


def test_one_worker_uses_the_plain_registry_even_with_an_inherited_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV, "/somewhere/else")
    with multiprocess_metrics(1) as path:
        assert path is None
        assert ENV not in os.environ
    assert os.environ[ENV] == "/somewhere/else"
