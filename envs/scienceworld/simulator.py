"""ScienceWorld's simulators, all in one JVM per process.

The PyPI package's ``ScienceWorldEnv`` launches a JVM (a py4j gateway onto its bundled jar) per
instance; the rollout engine keeps one env per live episode, so that would be 12-64 JVMs. Here
one gateway is launched lazily per process and every :class:`Simulator` is its own
``PythonInterface`` object (the jar's entry point, one world each) inside it.

Sharing a JVM needs care, because the jar keeps per-world state in JVM-wide places:

- ``scala.util.Random`` (the global generator) is reseeded with the variation at every load and
  drawn from while the world runs (wandering animals, bees) and while gold paths are made;
- ``util.UniqueIdentifier`` (the global object-id counter) is reset at every load and advanced
  whenever an object is created (e.g. steam from boiling water);
- objects live in hash sets of identity-hashed objects, so the order in which they are listed,
  and in which heat and matter flow between them, changes from one load to the next
  (allenai/ScienceWorld issue #33: the same actions sometimes boil the water, sometimes not).

So every simulator owns its own generator and counter, switched in (under its JVM's lock)
around each of its calls, and the JVM hashes identities with a constant (``-XX:hashCode=2``),
which makes set iteration follow insertion order. With both, the same variation and actions
give the same observations in any interleaving with other simulators, and across processes.

One JVM serialises its worlds' calls. ``AGENTBENCH_SCIENCEWORLD_JVMS=N`` spreads the worlds of a
process over N JVMs (round robin, each with its own lock), so that the rollout engine's env
workers (``--set limits.env_workers=N``) step N worlds at once; since no world depends on which
JVM holds it, the episodes are the same for any N.

The server-level calls are used directly: the package's ``step`` also lists every valid action
each step, which costs 10-20x the step itself.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError

_T = TypeVar("_T")

# Identity hashes become a constant: hash sets of the jar's objects iterate in insertion order.
JAVA_OPTIONS = ("-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2")
JVMS_VARIABLE = "AGENTBENCH_SCIENCEWORLD_JVMS"
_POOL_LOCK = threading.Lock()
_LOCKS: dict[int, threading.RLock] = {}
_JVMS: dict[int, _Jvm] = {}
_SLOTS = itertools.count()


def jvm_count() -> int:
    """JVMs the worlds of this process are spread over (``AGENTBENCH_SCIENCEWORLD_JVMS``, default 1)."""
    text = os.environ.get(JVMS_VARIABLE, "1")
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        from agentbench.errors import ConfigError

        raise ConfigError(f"{JVMS_VARIABLE} must be a positive integer, got {text!r}")
    return count


def _lock(slot: int) -> threading.RLock:
    with _POOL_LOCK:
        return _LOCKS.setdefault(slot, threading.RLock())


class JavaUnavailable(RuntimeError):
    """No ``java`` on the PATH, or the gateway did not start."""


class JvmDied(RuntimeError):
    """The JVM ended under a live world (the next load starts a new JVM)."""


class _Jvm:
    """One launched gateway, with handles on the JVM-wide state a simulator must own."""

    def __init__(self) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
        from scienceworld.constants import BASEPATH, JAR_PATH

        java = shutil.which("java")
        if java is None:
            raise JavaUnavailable("ScienceWorld needs Java (e.g. apt-get install default-jre-headless)")
        # The JVM's own stdout and stderr go to os.devnull (py4j's default): ours stays clean.
        # die_on_exit: the JVM ends with this process, however it ends.
        try:
            port, process = launch_gateway(classpath=JAR_PATH, javaopts=list(JAVA_OPTIONS), java_path=java,
                                           die_on_exit=True, cwd=BASEPATH, return_proc=True)
        except Exception as exc:  # py4j raises plain exceptions when the JVM does not come up
            raise JavaUnavailable(f"ScienceWorld's JVM did not start with {java}: {exc}") from exc
        self.process = process
        self.owner_pid = os.getpid()
        self.lost = False  # set when a call finds the JVM gone
        self.gateway = JavaGateway(gateway_parameters=GatewayParameters(port=port),
                                   java_process=process)
        jvm = self.gateway.jvm
        classes = jvm.java.lang.Class
        self._random = classes.forName("scala.util.Random$").getField("MODULE$").get(None)
        self._random_source = classes.forName("scala.util.Random").getDeclaredField("self")
        self._random_source.setAccessible(True)
        self._ids = jvm.util.UniqueIdentifier
        self.interface = jvm.scienceworld.runtime.pythonapi.PythonInterface
        self.new_random = jvm.java.util.Random
        self._scratch = jvm.java.util.Random(0)

    @property
    def alive(self) -> bool:
        return not self.lost and self.process.poll() is None and self.owner_pid == os.getpid()

    def still_running(self) -> bool:
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return True
        return False

    def switch_to(self, random: Any, next_id: int) -> None:
        self._random_source.set(self._random, random)
        getattr(self._ids, "count_$eq")(next_id)

    def scratch_random(self) -> Any:
        self._scratch.setSeed(0)
        return self._scratch

    def next_id(self) -> int:
        return int(self._ids.count())

    def discard(self) -> None:
        """Let go of a JVM that was lost: close the connections, end the process if it lingers."""
        with contextlib.suppress(Exception):  # it is gone already: nothing to report
            self.gateway.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def shared_jvm(slot: int = 0) -> _Jvm:
    """The process's JVM number ``slot``, launched on first use (and again if it died or the
    process forked). Callers hold ``_lock(slot)``."""
    with _lock(slot):
        jvm = _JVMS.get(slot)
        if jvm is None or not jvm.alive:
            if jvm is not None and jvm.owner_pid == os.getpid():
                jvm.discard()  # (a forked child leaves its parent's JVM alone)
            jvm = _JVMS[slot] = _Jvm()
        return jvm


def discard_jvm(slot: int) -> None:
    """End the process's JVM number ``slot`` (worlds still in it are lost; a later world there
    starts a new one)."""
    with _lock(slot):
        jvm = _JVMS.pop(slot, None)
        if jvm is not None and jvm.owner_pid == os.getpid():
            jvm.discard()


def java_processes() -> list[int]:
    """Process ids of the ScienceWorld JVMs this process launched (for tests and checks)."""
    from scienceworld.constants import JAR_FILE

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and JAR_FILE in command:
            found.append(int(entry))
    return found


class Simulator:
    """One ScienceWorld world in one of the process's JVMs. Calls are serialised per JVM (the
    JVM-wide state is switched to this simulator's for each), so threads may share simulators
    safely, and worlds in different JVMs run at once."""

    def __init__(self) -> None:
        self._slot = next(_SLOTS) % jvm_count()
        self._lock = _lock(self._slot)
        self._jvm: _Jvm | None = None
        self._server: Any = None
        self._random: Any = None
        self._next_id = 0

    def _run(self, work: Callable[[Any], _T], scratch: bool = False, fresh_world: bool = False) -> _T:
        """``work(server)`` with this simulator's JVM-wide state switched in. ``scratch``: a
        fixed generator and a counter put back afterwards, for queries that must neither depend
        on nor change the world's future (listing valid actions draws random numbers).
        ``fresh_world``: the work makes a new world, so a dead JVM may be replaced first."""
        with self._lock:
            if self._jvm is None or not self._jvm.alive:
                if self._jvm is not None and not fresh_world:
                    raise JvmDied("ScienceWorld's JVM has died: this episode's world is lost")
                self._attach(shared_jvm(self._slot))
            jvm = self._jvm
            try:
                jvm.switch_to(jvm.scratch_random() if scratch else self._random, self._next_id)
                out = work(self._server)
                if not scratch:
                    self._next_id = jvm.next_id()
                return out
            except Py4JJavaError:
                raise  # the JVM is fine: a call failed there
            except Py4JError as exc:  # the connection broke (py4j reports it in several ways)
                if isinstance(exc, Py4JNetworkError) or not jvm.still_running():
                    jvm.lost = True
                    raise JvmDied("ScienceWorld's JVM has died: this episode's world is lost") from exc
                raise

    def _attach(self, jvm: _Jvm) -> None:
        # Making an interface draws random numbers: from a scratch generator, not another world's.
        jvm.switch_to(jvm.scratch_random(), 0)
        self._jvm, self._server = jvm, jvm.interface()
        self._random, self._next_id = jvm.new_random(0), 0

    # -- the jar's calls ------------------------------------------------------------------
    def load(self, task: str, variation: int, simplifications: str = "", gold_path: bool = False) -> None:
        """A fresh world of ``task``'s ``variation`` (a gold path is made only on request: it
        costs up to seconds)."""
        self._run(lambda s: s.load(task, variation, simplifications, gold_path), fresh_world=True)

    def step(self, action: str) -> tuple[str, float, bool, str]:
        """The game's reply, the score afterwards (1.0 = solved, negative = failed), whether the
        game considers the task completed, and the room's description (a free action)."""
        return self._run(lambda s: (str(s.step(action)), float(s.getScore()), bool(s.getCompleted()),
                                    str(s.freeActionLook())))

    def inventory(self) -> str:
        return self._run(lambda s: str(s.freeActionInventory()))

    def settle_score(self) -> float:
        """The score of the world as it is. ScienceWorld updates its score only on the next
        input, so an empty one (it parses to no action: no time passes) makes it current."""
        return self._run(lambda s: (s.step(""), float(s.getScore()))[1], scratch=True)

    def task_description(self) -> str:
        return self._run(lambda s: str(s.getTaskDescription()))

    def valid_actions(self) -> list[str]:
        """Every valid action-object combination here (slow: tens to hundreds of ms). The same
        list for the same state, and listing it leaves the world's course unchanged."""
        return self._run(lambda s: [str(a) for a in s.getValidActionObjectCombinations()], scratch=True)

    def gold_actions(self) -> list[str]:
        """The gold path of the world as loaded (load with ``gold_path=True`` first)."""
        return self._run(lambda s: [str(a) for a in s.getGoldActionSequence()])

    def variations(self, task: str) -> dict[str, list[int]]:
        """ScienceWorld's official train, dev and test variations of ``task``."""
        def work(s: Any) -> dict[str, list[int]]:
            s.load(task, 0, "", False)
            return {"train": [int(v) for v in s.getVariationsTrain()],
                    "dev": [int(v) for v in s.getVariationsDev()],
                    "test": [int(v) for v in s.getVariationsTest()]}

        return self._run(work, fresh_world=True)

    def close(self) -> None:
        """Free this world in the JVM (the JVM itself stays for the other simulators)."""
        with self._lock:
            if self._jvm is not None and self._jvm.alive:
                for java_object in (self._server, self._random):
                    self._jvm.gateway.detach(java_object)
            self._jvm = self._server = self._random = None
