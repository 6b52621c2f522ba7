"""The papers' reported numbers (``reference_data.json``), shown only on request.

They are context, not results: other models, data and evaluation sets. They are rendered as
separate, marked rows (never with an interval, never marked best) and in their own tables.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReferenceRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = Field(description="the method (or difference of methods) as the paper names it")
    cells: dict[str, str] = Field(description="ENV/SPLIT (registered env names) -> the reported number, as text")


class ReferenceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="stable identifier")
    paper: str = Field(description="the paper's title")
    authors: str = Field(description="first author(s) and year")
    arxiv: str = Field(description="arXiv id")
    table: str = Field(description="which of the paper's tables or figures the numbers come from")
    kind: Literal["success", "gain"] = Field(description="success: a success rate; gain: a difference in points")
    unit: str = Field(description="what the numbers measure")
    rows: list[ReferenceRow] = Field(description="the reported rows")

    @property
    def citation(self) -> str:
        return f"{self.authors}, arXiv {self.arxiv}, {self.table}"

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row.cells))
        return list(seen)


class ReferenceData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str = Field(description="where the numbers come from and how to read them")
    tables: list[ReferenceTable] = Field(description="one entry per reported table")


@cache
def reference_data() -> ReferenceData:
    text = resources.files("agentbench.publish").joinpath("reference_data.json").read_text()
    return ReferenceData.model_validate(json.loads(text))


def env_key(env: str, split: str) -> str:
    """The key a reference cell uses for one of our columns (``agentgym:webshop`` -> ``webshop``)."""
    return f"{env.rsplit(':', 1)[-1]}/{split}"
