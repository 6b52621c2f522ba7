"""SearchQA: search-augmented question answering (Search-R1 / AgentGym's setting), an adapter.

The user gives the data (none ships or downloads here): ``--set data_dir=DIR`` with FlashRAG's
JSONL files, ``DIR/<dataset>/<split>.jsonl`` (one ``{"id", "question", "golden_answers": [...]}``
per line; ``train``, and ``test`` or else ``dev``) and the corpus ``DIR/corpus.jsonl`` (FlashRAG's
``{"id", "contents"}`` lines, the title on the first line of ``contents``). Actions:
``search[query]`` returns the top ``top_k`` passages, retrieved with BM25 (PyPI ``bm25s``) or a
dense index the user provides (``retriever=dense``: ``dense_dir`` holding ``embeddings.npy``, one
normalised row per corpus line, and ``encoder``, a Hugging Face encoder folder; mean pooling);
``answer[text]`` ends the episode, scored by exact match after SQuAD's normalisation (lower case,
no punctuation, articles or extra spaces) against any golden answer. Splits: ``train`` and
``test`` of ``dataset``, ``ood``: ``test`` of ``ood_dataset``. The expert searches the question,
then answers the first golden answer. Checked only on made data in FlashRAG's schema.
"""

from __future__ import annotations

import json
import re
import string
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentbench.env import (
    AdapterEnv,
    Availability,
    EnvConfig,
    ExpertStep,
    NoExpert,
    Split,
    Step,
    StepInfo,
    Task,
)
from agentbench.errors import ConfigError

_ACTION = re.compile(r"^(search|answer)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


class SearchQAConfig(EnvConfig):
    data_dir: str | None = Field(None, description="folder with FlashRAG JSONL: <dataset>/<split>.jsonl and corpus.jsonl")
    dataset: str = Field("nq", description="the in-domain dataset (train and test)")
    ood_dataset: str | None = Field("hotpotqa", description="the ood split's dataset (its test or dev file)")
    corpus: str = Field("corpus.jsonl", description="the corpus file, relative to data_dir")
    retriever: Literal["bm25", "dense"] = "bm25"
    dense_dir: str | None = Field(None, description="retriever=dense: folder with embeddings.npy (corpus order)")
    encoder: str | None = Field(None, description="retriever=dense: a Hugging Face encoder folder for queries")
    top_k: int = Field(3, ge=1, le=20)
    passage_chars: int = Field(400, ge=50, description="each passage is cut to this many characters")
    max_tasks: int | None = Field(None, ge=1, description="at most this many tasks per split")


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golden: list[str]) -> bool:
    return any(normalize_answer(prediction) == normalize_answer(g) for g in golden)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def _corpus(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = _jsonl(Path(path))
    return tuple(str(r["id"]) for r in rows), tuple(str(r["contents"]) for r in rows)


@cache
def _bm25(path: str):
    import bm25s

    _, texts = _corpus(path)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False)
    return retriever


class SearchQA(AdapterEnv):
    name: ClassVar[str] = "searchqa"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("search-augmented QA (Search-R1 / Early Experience) over a user corpus: "
                                  "search[query] with BM25 or a dense index, exact match; adapter, needs data_dir")
    Config = SearchQAConfig
    default_max_turns: ClassVar[int] = 6
    default_history_turns: ClassVar[int | None] = None
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: SearchQAConfig | None = None):
        super().__init__(config)
        self.config: SearchQAConfig
        self._ep: dict[str, Any] | None = None

    @classmethod
    def availability_for(cls, config: EnvConfig) -> Availability:
        c = SearchQAConfig.model_validate(config.model_dump())
        if not c.data_dir:
            return Availability(False, "adapter without data here: --set data_dir=DIR with FlashRAG JSONL "
                                       f"(DIR/{c.dataset}/train.jsonl, test.jsonl, DIR/{c.corpus}); "
                                       "retrieval: pip install bm25s==0.3.16 or a dense index (dense_dir, encoder)")
        root = Path(c.data_dir)
        if not (root / c.corpus).exists():
            return Availability(False, f"no corpus {root / c.corpus}")
        if c.retriever == "bm25":
            try:
                import bm25s  # noqa: F401
            except ImportError:
                return Availability(False, "retriever=bm25 needs pip install bm25s==0.3.16")
        elif not (c.dense_dir and c.encoder and (Path(c.dense_dir) / "embeddings.npy").exists()):
            return Availability(False, "retriever=dense needs dense_dir (with embeddings.npy) and encoder")
        return Availability(True, f"data in {root}")

    @property
    def instructions(self) -> str:
        return ("Answer the question. You may search a document collection first. Each reply holds one action: "
                "search[query] shows the most relevant passages; answer[text] gives your final, short answer "
                "(a few words, e.g. a name or a date) and ends the episode.")

    def _file(self, dataset: str, split: str) -> Path | None:
        root = Path(str(self.config.data_dir)) / dataset
        names = [f"{split}.jsonl"] if split == "train" else ["test.jsonl", "dev.jsonl"]
        return next((root / n for n in names if (root / n).exists()), None)

    def tasks(self, split: Split) -> list[Task]:
        c = self.config
        dataset = c.ood_dataset if split == "ood" else c.dataset
        if dataset is None:
            return []
        path = self._file(dataset, "train" if split == "train" else "test")
        if path is None:
            return []
        rows = _jsonl(path)[: c.max_tasks]
        return [Task(f"{dataset}-{r['id']}", split, {"dataset": dataset, "id": str(r["id"]), "question": r["question"],
                                                     "golden_answers": [str(a) for a in r["golden_answers"]]})
                for r in rows]

    def reset(self, task: Task, seed: int = 0) -> str:
        if "question" not in task.spec:
            raise ConfigError(f"searchqa: task {task.id} has no question")
        self._ep = {"spec": task.spec, "searches": 0, "done": False, "searched": False}
        return f"Question: {task.spec['question']}"

    def step(self, action: str) -> Step:
        ep = self._require()
        if ep["done"]:
            return Step("The episode is over.", 0.0, True, StepInfo(valid=False))
        match = _ACTION.match(action.strip())
        if not match or not match.group(2).strip():
            return Step("Invalid action: reply with search[query] or answer[text].", 0.0, False, StepInfo(valid=False))
        kind, text = match.group(1).lower(), match.group(2).strip()
        if kind == "search":
            ep["searches"] += 1
            ep["searched"] = True
            return Step(self.search(text), 0.0, False, StepInfo(progress=0.0))
        ep["done"] = True
        correct = exact_match(text, ep["spec"]["golden_answers"])
        return Step(f"Your answer is {'correct' if correct else 'wrong'}.", float(correct), True,
                    StepInfo(success=correct, progress=float(correct),
                             extra={"exact_match": correct, "searches": ep["searches"]}))

    def search(self, query: str) -> str:
        c = self.config
        path = str(Path(str(c.data_dir)) / c.corpus)
        _, texts = _corpus(path)
        indices = self._dense(query) if c.retriever == "dense" else self._bm25(path, query)
        lines = []
        for rank, i in enumerate(indices, 1):
            passage = texts[i].replace("\n", " | ", 1)
            lines.append(f"Doc {rank}: {passage[: c.passage_chars]}")
        return "\n".join(lines) or "No results."

    def _bm25(self, path: str, query: str) -> list[int]:
        import bm25s

        retriever = _bm25(path)
        k = min(self.config.top_k, len(_corpus(path)[1]))
        docs, scores = retriever.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=k,
                                          show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0]) if s > 0]

    def _dense(self, query: str) -> list[int]:  # pragma: no cover - needs the user's index and encoder
        import numpy as np
        import torch
        from transformers import AutoModel, AutoTokenizer

        c = self.config
        embeddings = np.load(Path(str(c.dense_dir)) / "embeddings.npy", mmap_mode="r")
        tokenizer, model = AutoTokenizer.from_pretrained(c.encoder), AutoModel.from_pretrained(c.encoder)
        with torch.no_grad():
            batch = tokenizer([query], return_tensors="pt", truncation=True)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1)
            vector = ((hidden * mask).sum(1) / mask.sum(1))[0].numpy()
        vector = vector / (np.linalg.norm(vector) or 1.0)
        return [int(i) for i in np.argsort(-(embeddings @ vector))[: c.top_k]]

    def expert_step(self) -> ExpertStep:
        ep = self._require()
        if ep["done"]:
            raise NoExpert("the episode is over")
        if not ep["searched"]:
            return ExpertStep(f"search[{ep['spec']['question']}]")
        return ExpertStep(f"answer[{ep['spec']['golden_answers'][0]}]")

    def snapshot(self) -> dict[str, Any]:
        return dict(self._require())

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._ep = dict(snapshot)

    def _require(self) -> dict[str, Any]:
        if self._ep is None:
            raise RuntimeError("call reset(task) before step()")
        return self._ep
