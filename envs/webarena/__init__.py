"""WebArena-Lite in a real browser (``--env webarena-lite``).

Modules: ``env`` (the env), ``tasks`` (task schema and the 165 shipped configs), ``browser``
(Chromium and the site allowlist), ``observation`` (accessibility-tree text), ``actions`` (the
action grammar), ``evaluators`` and ``judge`` (scoring), ``login``, ``expert`` (the expert JSONL
format) and ``fixture_site`` (a loopback imitation of the shopping site, for tests and demos).
"""

from agentbench.envs.webarena.env import WebArenaConfig, WebArenaLite

__all__ = ["WebArenaConfig", "WebArenaLite"]
