"""AgentGym's HTTP environment protocol, both ways.

*Serving* (``agentbench serve-env E``): any registered env behind the endpoints AgentGym's own
env servers expose (``POST /create``, ``/reset``, ``/step``, ``/close``, ``GET /observation``,
``/available_actions``, ``/detail``), so AgentGym's clients can drive it, plus agentbench
extras under ``/agentbench/`` (env metadata, task lists, the expert, snapshots, action
parsing) that make the remote env behave exactly like the in-process one.

*Driving* (``--env agentgym:<name> --set url=http://host:port``): the ``agentgym`` env talks to
our own servers through the extras, and to AgentGym's original servers (WebShop, ALFWorld,
BabyAI, SciWorld, TextCraft, ...) through their core endpoints, tolerating the small
differences between their JSON shapes.

Modules: :mod:`.wire` (paths, error codes, JSON), :mod:`.service` (sessions around env
instances, no HTTP), :mod:`.server` (the Starlette app and uvicorn), :mod:`.transport`
(HTTP with timeouts and retries), :mod:`.ours` and :mod:`.originals` (the two kinds of
server, seen from the client), :mod:`.trajectories` (user-provided expert trajectories).
"""
