"""Wordle: feedback colours (repeated letters), guess validation, the word splits, the expert."""

from __future__ import annotations

import random

import numpy as np
import pytest

from agentbench.envs.wordle import (
    GREEN,
    GREY,
    MAX_GUESSES,
    YELLOW,
    Wordle,
    code_of,
    encode,
    feedback,
    feedback_codes,
    word_lists,
)

G, Y, X = GREEN, YELLOW, GREY


@pytest.fixture(scope="module")
def env():
    return Wordle()


@pytest.mark.parametrize(("guess", "target", "expected"), [
    ("crane", "crane", (G, G, G, G, G)),
    ("speed", "abide", (X, X, Y, X, Y)),   # one e in the target: only the first e is yellow
    ("geese", "those", (X, X, X, G, G)),   # the green e uses the target's only e
    ("allee", "eagle", (Y, Y, X, Y, G)),   # the second l finds no copy left; the first e finds one
    ("llama", "hello", (Y, Y, X, X, X)),   # two l's in both, neither in place
    ("abbey", "babes", (Y, Y, G, G, X)),
])
def test_feedback_handles_repeated_letters(guess, target, expected):
    assert feedback(guess, target) == expected


def test_vectorised_feedback_matches_the_reference():
    answers = word_lists().answers
    rng = random.Random(0)
    targets = rng.sample(answers, 300)
    matrix = encode(targets)
    for guess in [*rng.sample(answers, 40), "speed", "geese", "llama"]:
        codes = feedback_codes(encode([guess])[0], matrix)
        assert codes.tolist() == [code_of(feedback(guess, t)) for t in targets]


def test_word_splits_are_disjoint_and_ood_words_are_rarer(env):
    lists = word_lists()
    words = {split: {t.spec["target"] for t in env.tasks(split)} for split in ("train", "test", "ood")}
    assert not words["train"] & words["test"] and not words["train"] & words["ood"]
    assert not words["test"] & words["ood"]
    assert max(lists.zipf[w] for w in words["ood"]) < min(lists.zipf[w] for w in words["test"])
    assert all(w in lists.allowed and len(w) == 5 for split in words.values() for w in split)
    assert {"words", "crane", "hello"} <= lists.allowed  # plurals and everyday words are valid guesses


@pytest.mark.parametrize(("guess", "reason"), [
    ("abc", "not a five-letter word"),
    ("hello world", "not a five-letter word"),
    ("qzxvj", "not in the word list"),
    ("", "empty"),
])
def test_invalid_guesses_are_refused_without_using_a_guess(env, guess, reason):
    env.reset(env.tasks("test")[0])
    step = env.step(guess)
    assert not step.info.valid and not step.done and reason in step.observation
    assert f"You have {MAX_GUESSES} guesses left." in step.observation


@pytest.mark.parametrize("spelling", ["crane", "CRANE", "guess: crane", "[crane]", "'crane'."])
def test_guess_spellings(env, spelling):
    env.reset(env.tasks("test")[0])
    assert env.step(spelling).info.extra["guess"] == "crane"


def test_observation_restates_every_guess_with_colours_and_a_summary(env):
    task = next(t for t in env.tasks("test") if t.spec["target"] not in ("crane", "sloth"))
    env.reset(task)
    env.step("crane")
    text = env.step("sloth").observation
    target = task.spec["target"]
    colours = {G: "green", Y: "yellow", X: "grey"}
    for n, guess in enumerate(("crane", "sloth"), 1):
        marks = ", ".join(f"{g} {colours[c]}" for g, c in zip(guess, feedback(guess, target), strict=True))
        assert f"{n}. {guess}: {marks}" in text
    assert "Known: " in text and "Not in the word: " in text
    assert "You have 4 guesses left." in text


def test_six_wrong_guesses_end_the_game_and_reveal_the_word(env):
    task = next(t for t in env.tasks("test") if t.spec["target"] != "crane")
    env.reset(task)
    for n in range(MAX_GUESSES):
        step = env.step("crane")
        assert step.done == (n == MAX_GUESSES - 1)
    assert not step.info.success and task.spec["target"] in step.observation
    assert not env.step("crane").info.valid


def test_expert_solves_test_words_and_only_guesses_consistent_candidates(env):
    tasks = env.tasks("test")
    solved, guesses_used = 0, []
    for task in tasks[:150]:
        env.reset(task)
        for n in range(1, MAX_GUESSES + 1):
            action = env.expert_step().action
            if n > 1:
                assert action in env.candidates()
            step = env.step(action)
            if step.done:
                break
        solved += step.info.success
        guesses_used.append(n)
    assert solved / 150 >= 0.95
    assert np.mean(guesses_used) < 4.5
