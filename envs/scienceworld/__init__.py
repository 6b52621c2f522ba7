"""ScienceWorld (``--env scienceworld``).

Modules: ``env`` (the env: observations, scoring, the gold-path expert, the splits) and
``simulator`` (the jar's worlds in one shared JVM per process, kept deterministic).
"""

from agentbench.envs.scienceworld.env import ScienceWorld, ScienceWorldConfig

__all__ = ["ScienceWorld", "ScienceWorldConfig"]
