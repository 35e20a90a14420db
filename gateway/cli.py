"""The ``gateway`` command: serve, simulate, route, policy validate, train, eval."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.keys_cli import add_keys_parser
from gateway.settings import DEFAULT_POLICY, Settings


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _serve(args: argparse.Namespace) -> int:
    from gateway.config import PolicyError, load_policy
    from gateway.runtime import compile_policy
    from gateway.shutdown import serve

    # Flags win over GATEWAY_* environment variables, which win over defaults.
    flags = {
        "GATEWAY_POLICY_PATH": str(Path(args.policy).resolve()) if args.policy else None,
        "GATEWAY_HOST": args.host,
        "GATEWAY_PORT": None if args.port is None else str(args.port),
        "GATEWAY_WORKERS": None if args.workers is None else str(args.workers),
        "GATEWAY_DECISION_LOG": args.decision_log,
        "GATEWAY_DECISION_LOG_MAX_MB": _opt(args.decision_log_max_mb),
        "GATEWAY_DECISION_LOG_BACKUPS": _opt(args.decision_log_backups),
        "GATEWAY_DECISION_LOG_SAMPLE_RATE": _opt(args.decision_log_sample_rate),
        "GATEWAY_CLASSIFIER_ENABLED": "false" if args.no_classifier else None,
        "GATEWAY_SHUTDOWN_GRACE_S": None if args.shutdown_grace_s is None else str(args.shutdown_grace_s),
        "GATEWAY_DRAIN_S": None if args.drain_s is None else str(args.drain_s),
        "GATEWAY_KEYS_FILE": str(Path(args.keys).resolve()) if args.keys else None,
        "GATEWAY_REDIS_URL": args.redis_url,
        "GATEWAY_LIMITER_FAIL_MODE": args.limiter_fail_mode,
    }
    os.environ.update({k: v for k, v in flags.items() if v is not None})
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: bad setting: {exc}", file=sys.stderr)
        return 2
    try:  # fail fast, with the policy's own words, before any worker starts
        compile_policy(load_policy(settings.policy_path))
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from gateway.auth import KeysFileError, check_routes, load_ring

    try:  # the keys file too, and the routes it names must exist in the policy
        ring = load_ring(settings.keys_file, settings.api_keys, settings.admin_key_sha256)
        check_routes(ring, load_policy(settings.policy_path).routes, settings.keys_file)
    except KeysFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from gateway.multiproc import multiprocess_metrics

    with (
        _simulator(args) if args.with_simulator else contextlib.nullcontext(),
        multiprocess_metrics(settings.workers),  # before any worker imports prometheus_client
    ):
        serve(settings, log_level=args.log_level)
    return 0


@contextlib.contextmanager
def _simulator(args: argparse.Namespace) -> Iterator[None]:
    """Start the upstream simulator next to the gateway (the out-of-the-box setup)."""
    import httpx

    port = args.simulator_port
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.simulator", "--host", "127.0.0.1", "--port", str(port)],
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    break
            if process.poll() is not None:
                raise SystemExit(f"error: the simulator exited with code {process.returncode}")
            time.sleep(0.1)
        print(f"simulator answering on http://127.0.0.1:{port}/v1", file=sys.stderr)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def _simulate(args: argparse.Namespace) -> int:
    from gateway.simulator import main as simulator_main

    return simulator_main(args.simulator_args)


def _route(args: argparse.Namespace) -> int:
    from gateway.config import PolicyError, load_policy
    from gateway.errors import GatewayError
    from gateway.route_cli import decide_once

    try:
        policy = load_policy(args.policy)
        result = asyncio.run(decide_once(policy, args.query, use_classifier=not args.no_classifier))
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(json.dumps(exc.body(), indent=2))
        return 1
    print(json.dumps(result, indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from gateway.config import PolicyError, load_policy
    from gateway.route_cli import check_policy

    status = 0
    for path in args.files:
        try:
            policy = load_policy(path)
            warnings = check_policy(policy)
        except PolicyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        for warning in warnings:
            print(f"warning: {path}: {warning}", file=sys.stderr)
        print(
            f"ok: {path}: policy {policy.name!r} version {policy.version}: "
            f"{len(policy.backends)} backends, {len(policy.routes)} routes"
        )
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible LLM routing gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--policy", help=f"policy YAML (env GATEWAY_POLICY_PATH; default {DEFAULT_POLICY})")
    serve.add_argument("--host", help="address to listen on (env GATEWAY_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env GATEWAY_PORT; default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (env GATEWAY_WORKERS; default 1)")
    serve.add_argument(
        "--decision-log",
        metavar="FILE|stdout|off",
        help="one JSON line per request (env GATEWAY_DECISION_LOG; default off); with --workers N > 1 "
        "each worker writes FILE with its pid before the suffix (decisions.<pid>.jsonl)",
    )
    serve.add_argument(
        "--decision-log-max-mb", type=float, help="rotate the decision log file at this size (default 100)"
    )
    serve.add_argument("--decision-log-backups", type=int, help="rotated decision log files kept (default 5)")
    serve.add_argument(
        "--decision-log-sample-rate",
        type=float,
        help="share of requests (0..1) logged with their prompt, redacted (default 0: only a SHA-256)",
    )
    serve.add_argument("--no-classifier", action="store_true", help="route by rules only")
    serve.add_argument(
        "--shutdown-grace-s",
        type=float,
        help="after the listener closes, seconds in-flight requests get to finish (env GATEWAY_SHUTDOWN_GRACE_S; default 30)",
    )
    serve.add_argument(
        "--drain-s",
        type=float,
        help="after SIGTERM, seconds /readyz answers 503 before the listener closes (env GATEWAY_DRAIN_S; default 0)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--with-simulator",
        action="store_true",
        help="also start the upstream simulator the default policy uses",
    )
    serve.add_argument("--simulator-port", type=int, default=9100)
    serve.add_argument(
        "--keys", metavar="FILE", help="API keys file (env GATEWAY_KEYS_FILE); no keys: authentication off"
    )
    serve.add_argument(
        "--redis-url",
        help="Redis shared by replicas for rate limits and budgets (env GATEWAY_REDIS_URL, which keeps "
        "a password out of the process list); default: counted in each process",
    )
    serve.add_argument(
        "--limiter-fail-mode",
        choices=["open", "closed"],
        help="when Redis is unreachable: open = serve without limits, closed = 503 (default open)",
    )
    serve.set_defaults(func=_serve)

    simulate = sub.add_parser(
        "simulate", help="run the local OpenAI-compatible upstream simulator", add_help=False
    )
    simulate.add_argument("simulator_args", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=_simulate)

    route = sub.add_parser("route", help="print the routing decision for a query (nothing is forwarded)")
    route.add_argument("query")
    route.add_argument("--policy", default=str(DEFAULT_POLICY))
    route.add_argument("--no-classifier", action="store_true")
    route.set_defaults(func=_route)

    policy = sub.add_parser("policy", help="policy tools")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = policy_sub.add_parser("validate", help="check policy files")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=_validate)

    from gateway.report_cli import add_report_parser

    add_report_parser(sub)
    add_keys_parser(sub)
    _add_classifier_commands(sub)
    return parser


def _add_classifier_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from classifiers import cli as classifier_cli

    for name in ("add_train_parser", "add_eval_parser"):
        add = getattr(classifier_cli, name, None)
        if add is not None:
            add(sub)
    with contextlib.suppress(ImportError):
        from classifiers import outcomes

        add_outcomes = getattr(outcomes, "add_train_outcomes_parser", None)
        if add_outcomes is not None:
            add_outcomes(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
