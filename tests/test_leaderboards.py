"""The committed leaderboards are data that others cite: every result must validate against the
schema, and every file kept beside it must be the one the run wrote (the hash its result
records), with the success rates the result reports recomputable from its episodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbench.evaluation import EpisodeLog
from agentbench.models import file_sha256
from agentbench.results import read_result

LEADERBOARDS = Path(__file__).parent.parent / "leaderboards"
RESULTS = sorted(LEADERBOARDS.rglob("result.json"))


def _artifact_path(run_dir: Path, key: str) -> Path:
    """``points/k=1/episodes_jsonl_sha256`` -> ``run_dir/points/k=1/episodes.jsonl``."""
    stem = key.removesuffix("_sha256")
    folder, _, name = stem.rpartition("/")
    base, _, ext = name.rpartition("_")
    return run_dir / folder / f"{base}.{ext}"


def test_there_are_committed_results():
    assert len(RESULTS) >= 10


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(LEADERBOARDS).parent))
def test_committed_result_validates_and_its_files_match(path: Path):
    result = read_result(path)
    assert result.status == "complete"
    kept = 0
    for key, sha in result.artifacts.items():
        file = _artifact_path(path.parent, key)
        if file.exists():
            assert file_sha256(file) == sha, f"{file} is not the file the run wrote"
            kept += 1
    assert kept >= 1, "a committed result keeps at least one of its episode files (compare pairs on them)"
    episodes_file = path.parent / "episodes.jsonl"
    if result.scaling or not episodes_file.exists():
        return
    episodes = EpisodeLog(episodes_file).load(repair=False)
    for env in result.envs:
        mine = [e for e in episodes if e.env == env.name and e.split == env.split]
        assert len(mine) == env.n_episodes.completed
        assert sum(e.success for e in mine) / len(mine) == pytest.approx(env.success_rate.value)
