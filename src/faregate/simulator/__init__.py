"""The built-in provider simulator: OpenAI, Anthropic and Gemini wire formats on loopback, deterministic
answers, usage counted with the given token counter, and per-provider fault injection."""

from faregate.simulator.app import Simulator, run_simulator
from faregate.simulator.model import Received, SimModel, SimProvider

__all__ = ["Received", "SimModel", "SimProvider", "Simulator", "run_simulator"]
