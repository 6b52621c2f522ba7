"""Wordle (AgentGym's Wordle, from LMRL-Gym), in text.

The agent has six guesses to find a hidden five-letter word; after each guess every letter is
marked green (right letter, right spot), yellow (in the word, elsewhere) or grey (not in the
word; a repeated letter is grey once the word's copies are used up), as in the original game.
A guess that is not five letters or not an allowed word is an invalid move: it is refused, the
observation says why, and no guess is used up.

Words come from two PyPI packages, installed with the project (nothing downloads at run time):

- ``english-words`` (Webster's 2nd ``web2`` and GCIDE dictionaries) and ``wordfreq``:
  the *answer list* is the five-letter lower-case words both dictionaries hold, ranked by
  wordfreq's Zipf frequency; ``train`` and ``test`` split the common ones (Zipf >= 3) into
  disjoint sets of target words, ``ood`` holds rarer ones (2 <= Zipf < 3);
- the *allowed guesses* are the answer list plus every five-letter word of either dictionary
  and of wordfreq's 30,000 most frequent English words (so plurals such as "words" count).

The observation restates every guess with its feedback and a summary of what is known, so it is
the whole state (no history needed). The expert eliminates candidates: among the answer-list words
still consistent with the feedback, it guesses the one whose feedback would split the remaining
candidates best (smallest expected number left), alphabetical order breaking ties.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from agentbench.env import Availability, BaseEnv, EnvConfig, ExpertStep, NoExpert, Split, Step, StepInfo, Task
from agentbench.errors import ConfigError
from agentbench.extras import has_module, needs_extra, require_extra

WORD_LENGTH = 5
MAX_GUESSES = 6
COMMON_ZIPF = 3.0
RARE_ZIPF = 2.0
TEST_WORDS = 300
SPLIT_SEED = 0
GUESS_VOCAB = 30_000
FIVE_LETTERS = re.compile(r"[a-z]{5}")
GREY, YELLOW, GREEN = 0, 1, 2
COLOUR = {GREY: "grey", YELLOW: "yellow", GREEN: "green"}
LEGEND = ("green = right letter, right spot; yellow = in the word, wrong spot; "
          "grey = not in the word (or no more copies of it)")


class WordleConfig(EnvConfig):
    n_train: int = Field(1000, ge=1, description="target words in the train split")
    n_test: int = Field(TEST_WORDS, ge=1, le=TEST_WORDS, description="target words in the test split")
    n_ood: int = Field(300, ge=1, description="rarer target words in the ood split")


@dataclass(frozen=True)
class WordLists:
    answers: tuple[str, ...]
    """Every possible target word, sorted (the expert's candidates)."""
    allowed: frozenset[str]
    """Every word accepted as a guess."""
    zipf: dict[str, float]
    splits: dict[str, tuple[str, ...]]


@cache
def word_lists() -> WordLists:
    get_english_words_set = require_extra("english_words", extra="wordle", what="env wordle",
                                          package="english-words").get_english_words_set
    wordfreq = require_extra("wordfreq", extra="wordle", what="env wordle")
    top_n_list, zipf_frequency = wordfreq.top_n_list, wordfreq.zipf_frequency

    web2 = {w for w in get_english_words_set(["web2"]) if FIVE_LETTERS.fullmatch(w)}
    gcide = {w for w in get_english_words_set(["gcide"], lower=True) if FIVE_LETTERS.fullmatch(w)}
    zipf = {w: zipf_frequency(w, "en") for w in web2 & gcide}
    common = sorted(w for w, z in zipf.items() if z >= COMMON_ZIPF)
    rare = sorted(w for w, z in zipf.items() if RARE_ZIPF <= z < COMMON_ZIPF)
    rng = random.Random(SPLIT_SEED)
    rng.shuffle(common)
    rng.shuffle(rare)
    answers = tuple(sorted(common + rare))
    frequent = {w for w in top_n_list("en", GUESS_VOCAB) if FIVE_LETTERS.fullmatch(w)}
    allowed = frozenset(web2 | gcide | frequent | set(answers))
    splits = {"test": tuple(common[:TEST_WORDS]), "train": tuple(common[TEST_WORDS:]), "ood": tuple(rare)}
    return WordLists(answers, allowed, {w: zipf[w] for w in answers}, splits)


def feedback(guess: str, target: str) -> tuple[int, ...]:
    """Wordle's colours for ``guess`` against ``target``: greens first, then yellows left to right
    while the target has unmatched copies of the letter."""
    colours = [GREEN if g == t else GREY for g, t in zip(guess, target, strict=True)]
    unmatched: dict[str, int] = {}
    for t, colour in zip(target, colours, strict=True):
        if colour != GREEN:
            unmatched[t] = unmatched.get(t, 0) + 1
    for i, g in enumerate(guess):
        if colours[i] != GREEN and unmatched.get(g, 0) > 0:
            colours[i] = YELLOW
            unmatched[g] -= 1
    return tuple(colours)


def encode(words: Sequence[str]) -> np.ndarray:
    return np.frombuffer("".join(words).encode("ascii"), dtype=np.uint8).reshape(len(words), WORD_LENGTH)


def feedback_codes(guess: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``feedback(guess, t)`` for every row ``t`` of ``targets`` at once, as base-3 integers."""
    green = targets == guess
    unmatched = {int(letter): ((targets == letter) & ~green).sum(axis=1) for letter in np.unique(guess)}
    codes = np.zeros(len(targets), dtype=np.int64)
    for i in range(WORD_LENGTH):
        letter = int(guess[i])
        yellow = ~green[:, i] & (unmatched[letter] > 0)
        unmatched[letter] = unmatched[letter] - yellow
        codes = codes * 3 + np.where(green[:, i], GREEN, yellow.astype(np.int64))
    return codes


def code_of(colours: Sequence[int]) -> int:
    code = 0
    for colour in colours:
        code = code * 3 + colour
    return code


def best_guess(candidates: Sequence[str]) -> str:
    """The candidate whose feedback leaves the fewest candidates on average (ties: alphabetical)."""
    ordered = sorted(candidates)
    if len(ordered) <= 2:
        return ordered[0]
    matrix = encode(ordered)
    best, best_score = ordered[0], None
    for word, row in zip(ordered, matrix, strict=True):
        sizes = np.bincount(feedback_codes(row, matrix), minlength=3**WORD_LENGTH)
        score = int((sizes * sizes).sum())
        if best_score is None or score < best_score:
            best, best_score = word, score
    return best


@cache
def _opening_guess() -> str:
    return best_guess(word_lists().answers)


class Wordle(BaseEnv):
    name: ClassVar[str] = "wordle"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Wordle, six guesses at a five-letter word (AgentGym/LMRL-Gym); elimination expert"
    Config = WordleConfig
    default_max_turns: ClassVar[int] = 8
    # Every observation restates all guesses and their feedback: no history needed.
    default_history_turns: ClassVar[int | None] = 0
    supports_snapshot: ClassVar[bool] = True

    def __init__(self, config: WordleConfig | None = None):
        super().__init__(config)
        self._target: str | None = None
        self._guesses: list[tuple[str, tuple[int, ...]]] = []
        self._done = False

    @classmethod
    def availability(cls) -> Availability:
        for module, package in (("wordfreq", "wordfreq"), ("english_words", "english-words")):
            if not has_module(module):
                return Availability(False, needs_extra("wordle", package))
        return Availability(True)

    @property
    def instructions(self) -> str:
        return (
            "You are playing Wordle. Find the hidden five-letter English word in at most six guesses. "
            f"After each guess every letter is marked: {LEGEND}. "
            "Use the feedback: keep green letters in place, move yellow letters, drop grey ones.\n"
            "Each turn, guess one five-letter English word, e.g. Action: crane"
        )

    def tasks(self, split: Split) -> list[Task]:
        count = {"train": self.config.n_train, "test": self.config.n_test, "ood": self.config.n_ood}[split]
        lists = word_lists()
        words = lists.splits[split]
        if count > len(words):
            raise ConfigError(f"wordle has {len(words)} {split} words; asked for {count}")
        return [Task(f"{split}-{i:04d}", split, {"target": w, "zipf": lists.zipf[w]})
                for i, w in enumerate(words[:count])]

    # -- episode ------------------------------------------------------------------------
    def reset(self, task: Task, seed: int = 0) -> str:
        # The target is the task; the game itself has no randomness.
        target = str(task.spec["target"])
        if target not in word_lists().allowed:
            raise ConfigError(f"wordle: target {target!r} is not an allowed word")
        self._target, self._guesses, self._done = target, [], False
        return self._describe("Guess the hidden five-letter word.")

    def step(self, action: str) -> Step:
        target = self._require_target()
        if self._done:
            return Step("The game is over.", 0.0, True, StepInfo(valid=False, progress=self._progress()))
        guess, problem = _parse_guess(action)
        if guess is None:
            return Step(self._describe(f"Invalid guess: {problem}. No guess was used."), 0.0, False,
                        StepInfo(valid=False, progress=self._progress()))
        colours = feedback(guess, target)
        self._guesses.append((guess, colours))
        extra = {"guess": guess, "feedback": [COLOUR[c] for c in colours]}
        if guess == target:
            self._done = True
            return Step(f"{guess} is the word. You win in {len(self._guesses)} guesses!", 1.0, True,
                        StepInfo(success=True, progress=1.0, extra=extra))
        if len(self._guesses) >= MAX_GUESSES:
            self._done = True
            return Step(f"{guess} is not the word, and you have no guesses left. The word was {target}.",
                        0.0, True, StepInfo(progress=self._progress(), extra=extra))
        return Step(self._describe(f"{guess} is not the word."), 0.0, False,
                    StepInfo(progress=self._progress(), extra=extra))

    def expert_step(self) -> ExpertStep:
        self._require_target()
        if self._done:
            raise NoExpert("the game is over")
        if not self._guesses:
            guess = _opening_guess()
            return ExpertStep(guess, f"Any word may be the answer; {guess} splits the possibilities best.")
        left = self.candidates()
        if not left:
            raise NoExpert("no answer-list word fits the feedback")
        guess = best_guess(left)
        if len(left) == 1:
            return ExpertStep(guess, f"Only {guess} fits the feedback.")
        return ExpertStep(guess, f"{len(left)} words fit the feedback; {guess} splits them best.")

    def candidates(self) -> list[str]:
        """The answer-list words consistent with every guess's feedback so far."""
        answers = word_lists().answers
        keep = np.ones(len(answers), dtype=bool)
        matrix = _answer_matrix()
        for guess, colours in self._guesses:
            keep &= feedback_codes(encode([guess])[0], matrix) == code_of(colours)
        return [w for w, k in zip(answers, keep, strict=True) if k]

    def admissible_actions(self) -> list[str]:
        """Every allowed guess, sorted (about 13,000 words)."""
        return list(_sorted_allowed())

    def snapshot(self) -> dict[str, Any]:
        self._require_target()
        return {"guesses": list(self._guesses), "done": self._done}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._require_target()
        self._guesses = list(snapshot["guesses"])
        self._done = snapshot["done"]

    # -- helpers --------------------------------------------------------------------------
    def _require_target(self) -> str:
        if self._target is None:
            raise RuntimeError("call reset(task) before step()")
        return self._target

    def _progress(self) -> float:
        """Fraction of the word's letters placed (green) in some guess so far."""
        placed = {i for _, colours in self._guesses for i, c in enumerate(colours) if c == GREEN}
        return len(placed) / WORD_LENGTH

    def _describe(self, feedback_line: str) -> str:
        lines = [feedback_line]
        if self._guesses:
            lines.append("Your guesses:")
            for n, (guess, colours) in enumerate(self._guesses, 1):
                marks = ", ".join(f"{g} {COLOUR[c]}" for g, c in zip(guess, colours, strict=True))
                lines.append(f"{n}. {guess}: {marks}")
            lines.append(_summary(self._guesses))
        left = MAX_GUESSES - len(self._guesses)
        lines.append(f"You have {left} guess{'es' * (left != 1)} left.")
        return "\n".join(lines)


@cache
def _answer_matrix() -> np.ndarray:
    return encode(word_lists().answers)


@cache
def _sorted_allowed() -> tuple[str, ...]:
    return tuple(sorted(word_lists().allowed))


def _summary(guesses: Sequence[tuple[str, tuple[int, ...]]]) -> str:
    """What the feedback says, in one line: placed letters, letters to move, letters absent."""
    placed = ["_"] * WORD_LENGTH
    present: set[str] = set()
    for guess, colours in guesses:
        for i, (g, c) in enumerate(zip(guess, colours, strict=True)):
            if c == GREEN:
                placed[i] = g
            elif c == YELLOW:
                present.add(g)
    in_word = set(placed) | present
    absent = sorted({g for guess, colours in guesses for g, c in zip(guess, colours, strict=True)
                     if c == GREY and g not in in_word})
    elsewhere = sorted(present - set(placed))
    return (f"Known: {' '.join(placed)}. Also in the word: {' '.join(elsewhere) or 'none'}. "
            f"Not in the word: {' '.join(absent) or 'none'}.")


def _parse_guess(action: str) -> tuple[str | None, str]:
    """The guessed word, or None and what is wrong with it."""
    text = action.strip().lower()
    text = re.sub(r"^(guess|answer|word)\s*[:=]?\s*", "", text)
    text = text.strip(" \t[](){}<>\"'`*.,!?")
    if not text:
        return None, "the guess is empty"
    shown = text if len(text) <= 20 else text[:20] + "..."
    if not FIVE_LETTERS.fullmatch(text):
        return None, f"{shown!r} is not a five-letter word (letters a-z only)"
    if text not in word_lists().allowed:
        return None, f"{text!r} is not in the word list"
    return text, ""
