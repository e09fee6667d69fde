"""The log level classifier (domain, pure): formats, level words, whole tracebacks."""

from __future__ import annotations

import pytest

from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import LogLevel
from modelops.domain.logs import LogClassifier, levels_at_least, parse_level

E, W, I, D = LogLevel.ERROR, LogLevel.WARNING, LogLevel.INFO, LogLevel.DEBUG  # noqa: E741


def classify(text: str) -> list[LogLevel]:
    classifier = LogClassifier()
    return [classifier.classify(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("WARNING:root:disk almost full", W),
        ("ERROR:trainer:could not read row 7", E),
        ("CRITICAL:db:gone", E),
        ("INFO:root:an ERROR word later does not matter", I),
        ("DEBUG:loader:cache hit", D),
        ("2024-05-01 12:00:00,123 - trainer - ERROR - fit failed", E),
        ("2024-05-01 12:00:00 [WARN] slow disk", W),
        ("[error] could not connect", E),
        ("error: No solution found when resolving dependencies", E),
        ("Warning: learning rate is high", W),
        ("/x/train.py:3: UserWarning: feature names missing", W),
        ("ValueError: bad value", E),
        ("epoch 3 loss=0.31 error=0.12", I),
        ("0 errors, 2 warnings so far", I),
        ("training finished", I),
        ("", I),
    ],
)
def test_a_single_line_gets_the_level_its_text_says(line: str, level: LogLevel) -> None:
    assert LogClassifier().classify(line) is level


def test_every_line_of_a_traceback_is_an_error_through_the_exception_line() -> None:
    text = (
        "about to fail\n"
        "Traceback (most recent call last):\n"
        '  File "job.py", line 9, in <module>\n'
        "    inner()\n"
        '  File "job.py", line 7, in inner\n'
        "    raise KeyError(\"k\")\n"
        "    ^^^^^^^^^^^^^^^^^^^^\n"
        "KeyError: 'k'\n"
        "cleanup done\n"
    )
    assert classify(text) == [I, E, E, E, E, E, E, E, I]


def test_a_chained_traceback_is_error_on_both_parts_and_the_chain_line() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "ZeroDivisionError: division by zero\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 4, in <module>\n'
        "RuntimeError\n"
        "next line\n"
    )
    assert classify(text) == [E, E, E, I, E, I, E, E, E, I]


def test_an_exception_group_block_is_error_until_it_closes() -> None:
    text = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "<string>", line 2, in <module>\n'
        "  | ExceptionGroup: grp (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | ValueError: a\n"
        "    +---------------- 2 ----------------\n"
        "    | TypeError: b\n"
        "    +------------------------------------\n"
        "after the group\n"
    )
    assert classify(text) == [E] * 8 + [I]


def test_the_source_line_under_a_python_warning_is_part_of_the_warning() -> None:
    text = "/x/job.py:3: DeprecationWarning: old api\n  warnings.warn('old api')\nplain line\n"
    assert classify(text) == [W, W, I]


def test_streams_do_not_share_traceback_state() -> None:
    stderr, stdout = LogClassifier(), LogClassifier()
    assert stderr.classify("Traceback (most recent call last):") is E
    assert stdout.classify("  indented progress line") is I
    assert stderr.classify('  File "x.py", line 1') is E


def test_levels_are_parsed_from_user_input_and_ordered() -> None:
    assert parse_level("WARN") is W
    assert parse_level(" error ") is E
    assert levels_at_least(W) == [W, E]
    with pytest.raises(InvalidInput, match="choose one of debug, info, warning, error"):
        parse_level("loud")
