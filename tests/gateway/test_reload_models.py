"""A reloaded policy gets the classifier it names: rebuilt when its settings change, kept otherwise."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.config import ClassifierSettings
from gateway.models import load_models
from gateway.settings import Settings
from tests.gateway.conftest import POLICY_YAML, _wait_ready, make_policy
from tests.gateway.fakes import KeywordClassifier, MockUpstream


async def test_classifier_rebuilt_only_when_its_settings_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BIG_KEY", "k")
    built: list[ClassifierSettings] = []

    def factory(settings: ClassifierSettings) -> KeywordClassifier:
        built.append(settings)
        return KeywordClassifier()

    app = create_app(
        Settings(),
        policy=make_policy(),
        classifier_factory=factory,
        transport=MockUpstream().transport(),
        registry=CollectorRegistry(),
    )
    async with app.router.lifespan_context(app):
        await _wait_ready(app)
        state = app.state.gateway
        first = state.classifier
        assert len(built) == 1

        same = make_policy(POLICY_YAML.replace('version: "7"', 'version: "8"'))
        await load_models(state, same, factory)
        state.activate(same)
        assert state.classifier is first and len(built) == 1

        changed = make_policy(POLICY_YAML.replace("confidence_threshold: 0.5", "confidence_threshold: 0.8"))
        await load_models(state, changed, factory)
        state.activate(changed)
        assert state.classifier is not first and len(built) == 2
        assert state.active.pipeline.classifier is state.classifier

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            r = await client.post("/v1/route", json={"messages": [{"role": "user", "content": "extract it"}]})
            assert r.json()["route"] == "small"
