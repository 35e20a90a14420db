"""Command line: `gateway simulate ...` or `python -m gateway.simulator ...`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from types import MappingProxyType

from gateway.simulator.faults import FaultSpec, SimulatorConfigError, check_rates, fault_from_arg
from gateway.simulator.server import serve
from gateway.simulator.settings import SimulatorSettings, apply_config

_DESCRIPTION = """\
Local OpenAI-compatible upstream simulator: sim-small, sim-rag, sim-long and sim-frontier (any
other model name gets a generic profile), with realistic usage, SSE pacing and injectable faults.
Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
GET /__sim/stats, POST /__sim/reset, GET|POST /__sim/config.
"""

_EPILOG = """\
fault spec: KIND[:RATE][:delay_ms=N][:after_chunks=N], KIND one of status_500 status_502
status_503 status_429 slow_first_byte stall_mid_stream reset_mid_stream reset_before_response
malformed_json malformed_sse. Examples:
  --fault status_503:0.1 --fault slow_first_byte:0.05:delay_ms=3000
  --model-fault sim-frontier=reset_mid_stream:1:after_chunks=4
  --ttft-ms 0 --tokens-per-second 0        answer instantly (benchmarks)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gateway simulate",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9100, help="port (default 9100; 0 = any free port)")
    p.add_argument(
        "--ttft-ms",
        type=float,
        default=None,
        help="time to first token for every model (overrides the profiles)",
    )
    p.add_argument(
        "--tokens-per-second",
        type=float,
        default=None,
        help="generation pace for every model, 0 = all at once (overrides the profiles)",
    )
    p.add_argument("--error-rate", type=float, default=0.0, help="shorthand for --fault status_500:RATE")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC", help="global fault (repeatable)")
    p.add_argument(
        "--model-fault",
        action="append",
        default=[],
        metavar="MODEL=SPEC",
        help="fault for one model name only (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for fault draws and answer wording")
    p.add_argument(
        "--max-tokens-default",
        type=int,
        default=64,
        help="answer length in tokens when the request's max_tokens is unset or larger",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="JSON file in the POST /__sim/config format, applied after the flags",
    )
    p.add_argument("--lifetime-s", type=float, default=0.0, help="exit after this many seconds (0 = never)")
    p.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio event loop")
    return p


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    for name in ("ttft_ms", "tokens_per_second"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise SimulatorConfigError(f"--{name.replace('_', '-')} must be >= 0")
    if args.max_tokens_default < 1:
        raise SimulatorConfigError("--max-tokens-default must be >= 1")
    faults: list[FaultSpec] = [fault_from_arg(spec) for spec in args.fault]
    if args.error_rate:
        faults.append(fault_from_arg(f"status_500:{args.error_rate}"))
    model_faults: dict[str, list[FaultSpec]] = {}
    for item in args.model_fault:
        model, sep, spec = item.partition("=")
        if not sep or not model:
            raise SimulatorConfigError(f"--model-fault {item!r}: expected MODEL=SPEC")
        model_faults.setdefault(model, []).append(fault_from_arg(spec))
    settings = SimulatorSettings(
        ttft_ms=args.ttft_ms,
        tokens_per_second=args.tokens_per_second,
        max_tokens_default=args.max_tokens_default,
        seed=args.seed,
        faults=check_rates(faults),
        model_faults=MappingProxyType({m: check_rates(fs) for m, fs in model_faults.items()}),
    )
    if args.config is not None:
        try:
            obj = json.loads(args.config.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SimulatorConfigError(f"cannot read {args.config}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise SimulatorConfigError(f"{args.config} is not valid JSON: {exc}") from None
        settings = apply_config(settings, obj)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SimulatorConfigError as exc:
        print(f"gateway simulate: {exc}", file=sys.stderr)
        return 2
    coro = serve(settings, args.host, args.port, lifetime_s=args.lifetime_s, announce=True)
    try:
        if not args.no_uvloop:
            try:
                import uvloop
            except ImportError:
                pass
            else:
                uvloop.run(coro)
                return 0
        asyncio.run(coro)
    except OSError as exc:
        print(f"gateway simulate: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
