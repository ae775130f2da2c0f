"""Decoder prompts per room, built from an already loaded lexicon."""

from __future__ import annotations

import pytest

from monitor.asr.bias import BASE_PROMPT, MAX_BIAS_TERMS, BiasMode, RoomBias
from monitor.config import REPO_ROOT
from monitor.text.lexicon import Lexicon, load_lexicons


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicons(REPO_ROOT / "lexicons")


def test_prompt_terms_are_the_rooms_lexicon_terms_in_lexicon_order(lexicon: Lexicon) -> None:
    bias = RoomBias(lexicon, BiasMode.PROMPT_TERMS)
    expected = list(dict.fromkeys(rule.term for rule in lexicon if "jade" in rule.rooms))[:MAX_BIAS_TERMS]
    assert expected and bias.terms("jade") == expected
    assert bias.prompt("jade") == (f"{BASE_PROMPT}{'、'.join(expected)}。", None)


def test_hotwords_carry_the_terms_and_the_prompt_stays_the_base(lexicon: Lexicon) -> None:
    bias = RoomBias(lexicon, BiasMode.HOTWORDS)
    initial_prompt, hotwords = bias.prompt("jade")
    assert initial_prompt == BASE_PROMPT and hotwords == "，".join(bias.terms("jade"))


@pytest.mark.parametrize("mode", [BiasMode.BASE, BiasMode.PROMPT_TERMS, BiasMode.HOTWORDS])
def test_no_room_no_lexicon_or_an_unknown_room_gets_the_base_prompt(lexicon: Lexicon, mode: BiasMode) -> None:
    assert RoomBias(lexicon, mode).prompt(None) == (BASE_PROMPT, None)
    assert RoomBias(lexicon, mode).prompt("spaceships") == (BASE_PROMPT, None)
    assert RoomBias(None, mode).prompt("jade") == (BASE_PROMPT, None)


def test_no_bias_means_no_prompt(lexicon: Lexicon) -> None:
    assert RoomBias(lexicon, BiasMode.NONE).prompt("jade") == (None, None)
