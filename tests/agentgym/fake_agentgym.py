"""An imitation of AgentGym's original env servers' JSON shapes, for the client's tolerance tests.

This is a FAKE of the remote servers' *schemas* (WebShop, ALFWorld, BabyAI, SciWorld and a
gym-style variant), written from their published FastAPI code: the real servers need their
data and dependencies (WebShop's product index and Java search engine, ALFWorld's games,
SciWorld's JVM), which cannot run on this machine. The game behind every flavour is trivial:
task ``data_idx`` k is won by the action ``win``; ``half`` earns half the full score;
``look`` does nothing; ``crash`` makes the server report an error the way that server does;
``slow`` answers after a second.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

FLAVOURS = ("webshop", "alfworld", "babyai", "sciworld", "gym")
FULL = {"sciworld": 100.0}


def make_fake(flavour: str, flaky_gets: int = 0, flaky_steps: int = 0) -> Starlette:
    calls: Counter[str] = Counter()
    envs: dict[int, dict] = {}
    full = FULL.get(flavour, 1.0)
    state = {"flaky_gets": flaky_gets, "flaky_steps": flaky_steps, "next": 4711 if flavour == "webshop" else 0}

    def session_of(data: dict) -> int | None:
        key = "env_idx" if flavour == "webshop" else "id"
        return data.get(key)

    async def body(request: Request) -> dict:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    def first_observation(k: int) -> str:
        return f"Task {k}. A button says win."

    async def create(request: Request) -> Response:
        calls["create"] += 1
        sid = state["next"]
        state["next"] += 1
        envs[sid] = {"k": None, "n": 0, "score": 0.0, "obs": ""}
        return JSONResponse(sid if flavour == "webshop" else {"id": sid})

    async def reset(request: Request) -> Response:
        calls["reset"] += 1
        data = await body(request)
        sid = session_of(data)
        if sid is None:  # FastAPI's answer to a body without the required field
            return JSONResponse({"detail": [{"msg": "Field required"}]}, status_code=422)
        if sid not in envs:
            return JSONResponse({"error": f"The id {sid} is not valid."})
        k = {"webshop": data.get("session_id"), "alfworld": data.get("game")}.get(flavour, data.get("data_idx"))
        env = envs[sid] = {"k": k, "n": 0, "score": 0.0, "obs": first_observation(k)}
        if flavour == "webshop":
            return JSONResponse([env["obs"], None])
        if flavour == "alfworld":
            return JSONResponse({"id": sid, "observation": env["obs"], "available_actions": ["win", "look"],
                                 "task_type": "pick"})
        if flavour == "sciworld":
            return JSONResponse({"task_name": "boil", "var_num": k, "task_description": "Your task is to win.",
                                 "observation": env["obs"], "reward": 0, "score": 0, "deleted": False, "done": False})
        return JSONResponse({"observation": env["obs"], "reward": 0, "score": 0, "deleted": False, "done": False})

    async def step(request: Request) -> Response:
        calls["step"] += 1
        if state["flaky_steps"] > 0:
            state["flaky_steps"] -= 1
            return PlainTextResponse("upstream busy", status_code=503)
        data = await body(request)
        sid, action = session_of(data), data.get("action")
        if sid not in envs:
            if flavour == "webshop":
                return PlainTextResponse("Internal Server Error", status_code=500)
            return JSONResponse({"error": f"The id {sid} is not valid."})
        if action == "crash":
            if flavour == "webshop":
                return PlainTextResponse("Internal Server Error", status_code=500)
            return JSONResponse({"error": "something broke in the simulator"})
        if action == "slow":
            time.sleep(1.0)
        env = envs[sid]
        env["n"] += 1
        reward = {"win": full, "half": full / 2}.get(action, 0.0)
        env["score"] += reward
        done = action == "win"
        env["obs"] = f"You did {action} (step {env['n']})."
        if flavour == "webshop":  # reward only at the end
            return JSONResponse({"state": env["obs"], "reward": reward if done else 0.0, "done": done, "info": None})
        if flavour == "alfworld":
            return JSONResponse({"observation": env["obs"], "reward": float(done), "available_actions": ["win", "look"],
                                 "done": done})
        if flavour == "gym":
            return JSONResponse({"observation": env["obs"], "reward": reward, "terminated": done, "truncated": False})
        return JSONResponse({"observation": env["obs"], "reward": reward, "score": env["score"], "done": done})

    async def observation(request: Request) -> Response:
        calls["observation"] += 1
        if state["flaky_gets"] > 0:
            state["flaky_gets"] -= 1
            return PlainTextResponse("upstream busy", status_code=503)
        key = "env_idx" if flavour == "webshop" else "id"
        sid = int(request.query_params[key])
        return JSONResponse(envs[sid]["obs"])

    async def available_actions(request: Request) -> Response:
        return JSONResponse({"has_search_bar": True, "clickables": ["search", "item a", "item b"]})

    async def close(request: Request) -> Response:
        calls["close"] += 1
        data = await body(request)
        return JSONResponse({"closed": envs.pop(session_of(data), None) is not None})

    async def hello(request: Request) -> Response:
        return JSONResponse(f"This is environment {flavour}.")

    routes = [Route("/", hello), Route("/create", create, methods=["POST"]), Route("/reset", reset, methods=["POST"]),
              Route("/step", step, methods=["POST"]), Route("/observation", observation)]
    if flavour == "webshop":
        routes += [Route("/available_actions", available_actions), Route("/close", close, methods=["POST"])]
    app = Starlette(routes=routes)
    app.state.calls = calls
    return app
