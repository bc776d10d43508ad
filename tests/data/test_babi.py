"""The bAbI reader on every task file of the 1k set, and its errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqlab.data.readers import babi_tokens, parse_babi, read_babi
from seqlab.errors import DataError

NAMES = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    4: "two-arg-relations",
    5: "three-arg-relations",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
    9: "simple-negation",
    10: "indefinite-knowledge",
    11: "basic-coreference",
    12: "conjunction",
    13: "compound-coreference",
    14: "time-reasoning",
    15: "basic-deduction",
    16: "basic-induction",
    17: "positional-reasoning",
    18: "size-reasoning",
    19: "path-finding",
    20: "agents-motivations",
}
# supporting facts per question: task 1 one, 2 two, 3 three; 4 and 5 name one; 19 two
FACTS = {1: {1}, 2: {2}, 3: {3}, 4: {1}, 5: {1}, 19: {2}, 20: {1}}


@pytest.mark.parametrize("task", sorted(NAMES))
def test_every_1k_task_file_parses(shared_data: Path, task: int) -> None:
    for split in ("train", "test"):
        path = shared_data / "babi" / "en" / f"qa{task}_{NAMES[task]}_{split}.txt"
        examples = read_babi(path)
        assert len(examples) == 1000  # 1,000 questions per file (PROVENANCE.md)
        for e in examples:
            assert e.story and e.question.endswith("?") and e.answer
            assert [e.story[i] for i in e.supporting_index] == [
                e.story[e.story_ids.index(i)] for i in e.supporting
            ]
        assert examples[0].story_number == 0
        numbers = [e.story_number for e in examples]
        assert numbers == sorted(numbers)  # stories counted in file order
        if task in FACTS:
            assert {len(e.supporting) for e in examples} == FACTS[task]
        answers = {e.answer for e in examples}
        if task == 8:  # lists: 'nothing', one object, or several joined by commas
            assert "nothing" in answers and any("," in a for a in answers)
        if task == 19:  # paths of two steps
            assert all(len(a.split(",")) == 2 for a in answers)
            assert {p for a in answers for p in a.split(",")} == {"n", "s", "e", "w"}
        if task == 6:
            assert answers == {"yes", "no"}


def test_story_resets_at_id_1_and_earlier_questions_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "qa1_x_train.txt"
    path.write_text(
        "1 Mary moved to the bathroom.\n2 John went to the hallway.\n"
        "3 Where is Mary? \tbathroom\t1\n4 Daniel went back to the hallway.\n"
        "5 Where is Daniel? \thallway\t4\n1 Sandra picked up the football.\n"
        "2 Where is the football? \tgarden,kitchen\t1\n",
        encoding="utf-8",
    )
    first, second, third = read_babi(path)
    assert second.story == (
        "Mary moved to the bathroom.",
        "John went to the hallway.",
        "Daniel went back to the hallway.",
    )
    assert second.story_ids == (1, 2, 4) and second.supporting_index == (2,)
    assert (first.story_number, second.story_number, third.story_number) == (0, 0, 1)
    assert third.story == ("Sandra picked up the football.",) and third.line == 7
    assert third.answer == "garden,kitchen"  # a list answer is kept whole
    assert babi_tokens("Where is the football? ") == ["where", "is", "the", "football"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 Where is Mary? \tbathroom\t1\n", r"bad\.txt:1: a question before any statement"),
        ("1 Mary went home.\n2 Where is Mary? \thome\t7\n", r"bad\.txt:2: supporting ids \[7\]"),
        ("1 Mary went home.\n2 Where is Mary? \thome\tx\n", r"bad\.txt:2: supporting ids 'x'"),
        ("1 Mary went home.\n2 Where is Mary? \t\t1\n", r"bad\.txt:2: expected 'ID question"),
        ("Mary went home.\n", r"bad\.txt:1: expected 'ID text'"),
        ("", r"bad\.txt: no bAbI questions \(empty task file\)"),
        ("1 Mary went home.\n", r"bad\.txt: no bAbI questions"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_babi(path)


def test_stories_without_answers_for_predict() -> None:
    lines = ["1 Mary went to the garden.", "2 Where is Mary?", "3 John went home."]
    [example] = parse_babi(enumerate(lines, 1), "<story>", answers=False)
    assert example.question == "Where is Mary?" and example.answer == ""
    assert example.story == ("Mary went to the garden.",)
