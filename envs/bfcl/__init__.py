"""BFCL v3 multi-turn tool use on bfcl-eval's simulated APIs and checker. See ``env.py``."""

from agentbench.envs.bfcl.env import BFCL

__all__ = ["BFCL"]
