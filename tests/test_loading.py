"""``load_workflow`` takes TOML text, a path or a mapping, decided by type and content, and
an input it cannot read is a DefinitionError that says what it took the input for
(issue #11, item 4). TOML text used to raise a bare ``OSError: File name too long``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Hooks, load_workflow

TEXT = """\
[workflow]
name = "toy"
version = 1
case_number_prefix = "TY"
initial = "new"

[states.new]
[states.done]
final = true

[[transitions]]
event = "finish"
source = "new"
target = "done"
"""


def refusal(spec: Any) -> DefinitionError:
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, Hooks())
    return exc.value


def test_a_str_with_a_newline_is_toml_text() -> None:
    d = load_workflow(TEXT, Hooks())
    assert d.name == "toy" and d.source == "<TOML text>"


def test_a_str_starting_with_a_bracket_is_toml_text_even_on_one_line() -> None:
    err = refusal("[workflow] # all on one line, as from a config field")
    assert err.source == "<TOML text>"
    assert "states" in {p.location for p in err.problems}  # read as TOML, not as a file


def test_a_path_and_a_str_naming_a_file_both_load_the_file(tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    path.write_text(TEXT, encoding="utf-8")
    assert load_workflow(path, Hooks()).source == str(path)
    assert load_workflow(str(path), Hooks()).source == str(path)


def test_a_mapping_is_the_parsed_definition() -> None:
    assert load_workflow(tomllib.loads(TEXT), Hooks()).source == "<mapping>"


def test_a_str_path_that_does_not_exist_says_it_was_taken_for_a_path() -> None:
    err = refusal("x.toml")
    assert err.source == "x.toml"
    (problem,) = err.problems
    assert problem.message.startswith("the path 'x.toml' does not exist (")
    assert "is taken for a path" in problem.message


def test_a_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    (problem,) = refusal(missing).problems
    assert problem.message.startswith(f"the path {str(missing)!r} does not exist")
    assert "taken for a path" not in problem.message  # a Path is one; no guessing to explain


def test_a_directory_is_not_a_definition(tmp_path: Path) -> None:
    (problem,) = refusal(tmp_path).problems
    assert problem.message == f"the path {str(tmp_path)!r} is a directory; give the TOML file in it"


def test_a_path_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    # A file's parent that is itself a file: unreadable for every user, root included.
    (tmp_path / "claim.toml").write_text(TEXT, encoding="utf-8")
    path = tmp_path / "claim.toml" / "inner.toml"
    (problem,) = refusal(path).problems
    assert problem.message == f"the path {str(path)!r} cannot be read: Not a directory"


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(TEXT.replace('"toy"', '"理赔"').encode("gbk"))
    (problem,) = refusal(path).problems
    assert problem.message.startswith(f"the file at path {str(path)!r} is not UTF-8 text")
    assert problem.message.endswith("save it as UTF-8")


def test_a_file_saved_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"
    path.write_bytes(TEXT.encode("utf-8-sig"))
    assert load_workflow(path, Hooks()).name == "toy"


def test_invalid_toml_text_says_it_was_toml_text_and_where() -> None:
    err = refusal("[workflow]\nname = 'x'\nversion = = 1\n")
    assert err.source == "<TOML text>"
    (problem,) = err.problems
    assert problem.message.startswith("the TOML text given is not valid TOML: ")
    assert "line 3" in problem.message


def test_an_invalid_toml_file_says_which_file_and_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[workflow\nname = 'x'", encoding="utf-8")
    (problem,) = refusal(path).problems
    assert problem.message.startswith(f"the file at path {str(path)!r} is not valid TOML: ")
    assert "line 1" in problem.message


@pytest.mark.parametrize("spec, kind", [(42, "int"), (TEXT.encode(), "bytes"), (None, "NoneType")])
def test_anything_else_is_refused_naming_the_type_received(spec: Any, kind: str) -> None:
    err = refusal(spec)
    assert err.source == f"<{kind}>"
    (problem,) = err.problems
    assert problem.message.endswith(f"or a mapping; it got {kind}")
