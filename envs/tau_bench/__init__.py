"""τ²-bench's retail and airline domains (Tau-Bench), on their published data. See ``env.py``."""

from agentbench.envs.tau_bench.env import TauBench

__all__ = ["TauBench"]
