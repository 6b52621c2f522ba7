"""Sokoban: TextArena's rules and rooms, a breadth-first expert. See ``env.py``."""

from agentbench.envs.sokoban.env import Sokoban

__all__ = ["Sokoban"]
