"""Cost/quality routing wired into the policy: a route with two backends of different price,
an artefact trained with `gateway train-outcomes`, and the pipeline putting the chosen one first."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.cli import main as gateway_main
from gateway.config import PolicyError, load_policy, parse_policy
from gateway.settings import Settings
from tests.classifiers_outcomes.conftest import STRONG, WEAK, synthetic_rows, write_csv
from tests.gateway.fakes import MockUpstream

POLICY = """
name: cq
backends:
  - {{name: cheap, path: frontier, base_url: "http://up.test/v1", model: m-cheap, max_context_tokens: 8000,
     price_per_mtok_in: 0.5, price_per_mtok_out: 0.5}}
  - {{name: strong, path: frontier, base_url: "http://up.test/v1", model: m-strong, max_context_tokens: 8000,
     price_per_mtok_in: 10, price_per_mtok_out: 30}}
routes:
  frontier:
    backends: [strong, cheap]
    cost_quality:
      artefact: {artefact}
      encoder: hash
      threshold: 0.5
      outcome_names: {{cheap: {weak}, strong: {strong}}}
default_route: frontier
rules: {{long_context: null}}
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    outcomes = write_csv(tmp_path / "outcomes.csv", synthetic_rows(150))
    artefact = tmp_path / "cq"
    code = gateway_main(
        ["train-outcomes", str(outcomes), "--encoder", "hash", "--out", str(artefact),
         "--cheap", WEAK, "--strong", STRONG]
    )  # fmt: skip
    assert code == 0
    path = tmp_path / "cq.yaml"
    path.write_text(POLICY.format(artefact=artefact, weak=WEAK, strong=STRONG))
    return path


async def route(client: httpx.AsyncClient, text: str) -> dict[str, object]:
    r = await client.post("/v1/route", json={"messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_cheap_backend_first_when_predicted_good_enough(policy_file: Path) -> None:
    upstream = MockUpstream()
    app = create_app(
        Settings(policy_path=policy_file),
        transport=upstream.transport(),
        registry=CollectorRegistry(),
    )
    async with app.router.lifespan_context(app):
        from tests.gateway.conftest import _wait_ready

        await _wait_ready(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            trivia = await route(client, "which capital city is famous for landmark 7")
            maths = await route(client, "compute the integral of polynomial number 9 step by step")
            assert trivia["reason"] == "cost_quality"
            assert trivia["backends"] == ["cheap", "strong"]
            assert maths["backends"] == ["strong", "cheap"]
            assert "cost/quality chose 'strong'" in str(maths["explanation"])
            r = await client.post(
                "/v1/chat/completions",
                json={
                    "model": "auto",
                    "messages": [{"role": "user", "content": "which capital city is famous"}],
                },
            )
            assert r.headers["x-gateway-backend"] == "cheap"
            assert upstream.calls[-1]["model"] == "m-cheap"


def test_exactly_one_knob(policy_file: Path) -> None:
    text = policy_file.read_text().replace("threshold: 0.5", "threshold: 0.5\n      quality_floor: 7")
    with pytest.raises(PolicyError, match="exactly one of threshold"):
        parse_policy(text, policy_file)


def test_outcome_names_must_be_route_backends(policy_file: Path) -> None:
    text = policy_file.read_text().replace("{cheap:", "{ghost:")
    with pytest.raises(PolicyError, match="'ghost' is not a backend of this route"):
        parse_policy(text, policy_file)


def test_shipped_cost_quality_policy_loads() -> None:
    policy = load_policy(Path(__file__).resolve().parents[2] / "policies" / "cost-quality.yaml")
    cq = policy.routes["frontier"].cost_quality
    assert cq is not None and (cq.artefact / "meta.json").is_file()
