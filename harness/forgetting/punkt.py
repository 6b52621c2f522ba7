"""Offline sentence-tokenizer data for IF-Eval's verifiers.

lm-eval's IF-Eval checks count sentences and words with NLTK's Punkt tokenizer, whose English
model (``punkt_tab``) NLTK downloads from the web; no package ships it and nothing may be
downloaded here. So agentbench trains its own English Punkt model once, with NLTK's own
unsupervised ``PunktTrainer``, on a corpus that every Python installation carries under a
permissive licence: the text of the Python Language Reference and Library topics in the
standard library's ``pydoc_data.topics`` (PSF License 2.0). That corpus is technical prose,
short of titles and months, so a fixed list of common English abbreviations (below) is added
to the learnt ones. The model is saved in the ``punkt_tab`` layout NLTK loads
(``tokenizers/punkt_tab/english/*``) under ``<agentbench cache>/nltk_data``, which is put first
on ``nltk.data.path``; how it was made and the sha256 of its files are recorded beside it and in
every forgetting result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from agentbench.errors import AgentbenchError
from agentbench.models import cache_dir

PUNKT_BUILD_VERSION = "1"
"""Bumped when the recipe below changes, so that a new build lands in a new folder."""

MODEL_FILES = ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt")
PROVENANCE_FILE = "agentbench_punkt.json"

EXTRA_ABBREVIATIONS = (
    # titles and name suffixes (the ones lm-eval's own regex sentence splitter also knows)
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "inc", "ltd", "co", "capt", "lt", "gen", "rev",
    # months and weekdays
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    # Latin and other everyday abbreviations
    "e.g", "i.e", "etc", "vs", "cf", "approx", "a.m", "p.m", "u.s", "u.k", "ph.d",
)
"""Added to the learnt abbreviations: lower case, without the final period, as Punkt keeps them."""


def nltk_data_root() -> Path:
    return cache_dir() / "nltk_data" / f"agentbench-punkt-v{PUNKT_BUILD_VERSION}"


def _model_dir(root: Path) -> Path:
    return root / "tokenizers" / "punkt_tab" / "english"


def _corpus() -> tuple[str, dict[str, Any]]:
    try:
        from pydoc_data.topics import topics
    except ImportError as exc:  # some minimal Python builds strip the docs
        raise AgentbenchError("cannot build the offline Punkt model: this Python has no pydoc_data "
                              "(the standard library's documentation topics)") from exc
    text = "\n\n".join(topics[name] for name in sorted(topics))
    return text, {"corpus": "pydoc_data.topics (the Python Language Reference and Library topics)",
                  "corpus_license": "PSF-2.0", "corpus_python": platform.python_version(),
                  "corpus_topics": len(topics), "corpus_chars": len(text),
                  "corpus_sha256": hashlib.sha256(text.encode()).hexdigest()}


def files_sha256(folder: Path) -> str:
    """sha256 over the model files' names and contents, in name order."""
    digest = hashlib.sha256()
    for name in MODEL_FILES:
        digest.update(name.encode())
        digest.update(hashlib.sha256((folder / name).read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def _train(dest: Path) -> dict[str, Any]:
    import nltk
    from nltk.tokenize.punkt import PunktTrainer, save_punkt_params

    text, corpus = _corpus()
    trainer = PunktTrainer()
    trainer.train(text, finalize=True)
    params = trainer.get_params()
    learnt = sorted(params.abbrev_types)
    params.abbrev_types.update(EXTRA_ABBREVIATIONS)
    dest.mkdir(parents=True, exist_ok=True)
    # NLTK's own writer (it refuses folders outside its data path, hence the path entry).
    added = str(dest.parents[2]) not in nltk.data.path
    if added:
        nltk.data.path.insert(0, str(dest.parents[2]))
    try:
        save_punkt_params(params, dir=str(dest))
    finally:
        if added:
            nltk.data.path.remove(str(dest.parents[2]))
    for name in MODEL_FILES:  # NLTK writes them private; a shared cache should be readable
        (dest / name).chmod(0o644)
    return {
        "made_by": "nltk.tokenize.punkt.PunktTrainer (default settings), trained by agentbench",
        "build_version": PUNKT_BUILD_VERSION, "nltk": nltk.__version__, **corpus,
        "learnt_abbreviations": learnt, "added_abbreviations": list(EXTRA_ABBREVIATIONS),
        "abbrev_types": len(params.abbrev_types), "collocations": len(params.collocations),
        "sent_starters": len(params.sent_starters), "ortho_context": len(params.ortho_context),
        "files": list(MODEL_FILES), "files_sha256": files_sha256(dest),
    }


def _build(root: Path) -> None:
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        provenance = _train(_model_dir(tmp))
        (_model_dir(tmp) / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
        with contextlib.suppress(OSError):  # another process built it first; the recipe is the same
            tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_punkt() -> dict[str, Any]:
    """Build the model once, put it first on NLTK's data path, and return its provenance
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
