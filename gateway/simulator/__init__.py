"""A local OpenAI-compatible upstream that stands in for the gateway's backends.

    gateway simulate --port 9100                         # or: python -m gateway.simulator
    sim = await start_simulator(SimulatorSettings(), port=0)   # in-process; sim.port, await sim.stop()

See `cli.py` for the flags, `settings.py` for the config JSON, `faults.py` for faults.
"""

from gateway.simulator.cli import main
from gateway.simulator.faults import FaultKind, FaultSpec, SimulatorConfigError
from gateway.simulator.server import RunningSimulator, running_simulator, serve, start_simulator
from gateway.simulator.settings import SimulatorSettings, apply_config

__all__ = [
    "FaultKind",
    "FaultSpec",
    "RunningSimulator",
    "SimulatorConfigError",
    "SimulatorSettings",
    "apply_config",
    "main",
    "running_simulator",
    "serve",
    "start_simulator",
]
