"""The docs cannot drift from the code: their examples run, and what they print is checked.

**Examples.** Every ```python block of README.md and docs/*.md runs, top to bottom; the
blocks of one file share a namespace (a later block builds on an earlier one), and they
run in a temporary directory holding a copy of docs/examples.

**Printed output.** Each block runs one top-level statement at a time with stdout
captured. A statement that prints must say what it prints, in one of two ways:

- one line of output: a comment on the statement's own (last) line::

      print(sorted(seen))   # ['a', 'b']

- any number of lines: comment lines right after the statement, each starting with
  ``# `` (a bare ``#`` is an empty line), ending at the first line that is not one::

      for entry in eng.history(case.id):
          print(entry.seq, entry.event)
      # 1 open
      # 2 register

The comment is compared with what was printed exactly, after stripping trailing
whitespace from each line. A statement that prints with no such comment fails too
("say what it prints"), so no example prints anything unchecked. A comment after a
statement that prints nothing (and contains no ``print``) is an ordinary comment.

**The README's lists.** The command list names exactly the commands of ``baoflow
--help``; the facade sentence names exactly the public methods of ``Engine``; the
layout names exactly the top-level folders git tracks.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import re
import shutil
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from baoflow.engine import StorageError, open_engine

from baoflow import Engine
from baoflow.cli import main as cli_main

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = ROOT / "README.md"

BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


@dataclass(frozen=True)
class Block:
    """A ```python block: its source and the file line its first line of code is on."""

    source: str
    first_line: int


def python_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [Block(m.group(1), text.count("\n", 0, m.start(1)) + 1) for m in BLOCK.finditer(text)]


def _comments(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """The block's comments by line: those after code on a line, and those alone on one."""
    trailing: dict[int, str] = {}
    alone: dict[int, str] = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            (alone if not lines[row - 1][:col].strip() else trailing)[row] = tok.string
    return trailing, alone


def _comment_text(comment: str) -> str:
    """'# x' -> 'x'; '#' -> '' (an empty line of output)."""
    return comment[2:] if comment.startswith("# ") else comment[1:]


def _says_it_prints(stmt: ast.stmt) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
        for node in ast.walk(stmt)
    )


def _expected_output(
    stmt: ast.stmt, trailing: dict[int, str], alone: dict[int, str], lines: list[str]
) -> list[str] | None:
    """What the statement's output comment says it prints, line by line; None if none."""
    last = stmt.end_lineno or stmt.lineno
    if last in trailing:
        return [_comment_text(trailing[last])]
    said: list[str] = []
    row = last + 1
    while row in alone and lines[row - 1].lstrip() == lines[row - 1]:  # not indented
        said.append(_comment_text(alone[row]))
        row += 1
    return said or None


def check_examples(path: Path, namespace: dict[str, object] | None = None) -> list[str]:
    """Run every ```python block of ``path`` statement by statement; return each statement
    whose printed output is not what its comment says (or that prints and says nothing).

    An example that raises propagates, with the doc's file and line in its traceback.
    """
    namespace = {"__name__": "__doc_example__"} if namespace is None else namespace
    failures: list[str] = []
    for block in python_blocks(path):
        tree = ast.parse(block.source, filename=str(path))
        trailing, alone = _comments(block.source)
        lines = block.source.splitlines()
        for stmt in tree.body:
            said = _expected_output(stmt, trailing, alone, lines)  # block lines, so first
            where = f"{path.name}:{block.first_line + (stmt.end_lineno or stmt.lineno) - 1}"
            module = ast.Module(body=[stmt], type_ignores=[])
            ast.increment_lineno(module, block.first_line - 1)  # tracebacks name the doc's line
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(module, str(path), "exec"), namespace)
            out = [line.rstrip() for line in printed.getvalue().rstrip().splitlines()]
            if not out and not _says_it_prints(stmt):
                continue  # its comments, if any, are ordinary comments
            shown = "\n".join(f"    | {line}" for line in out) or "    | (nothing)"
            if said is None:
                failures.append(
                    f"{where}: this statement prints, but no comment says what it "
                    f"prints (say what it prints):\n{shown}"
                )
            elif [line.rstrip() for line in said] != out:
                comment = "\n".join(f"    | {line}" for line in said)
                failures.append(
                    f"{where}: the comment says it prints\n{comment}\n  but it printed\n{shown}"
                )
    return failures


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_the_python_examples_in_the_docs_run_and_print_what_they_say(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples write their SQLite files here
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")  # and read these
    failures = check_examples(path)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def _doc(tmp_path: Path, code: str) -> Path:
    doc = tmp_path / "synthetic.md"
    doc.write_text(f"# A doc\n\nSome prose.\n\n```python\n{code}```\n", encoding="utf-8")
    return doc


def test_a_wrong_output_comment_fails_with_the_line_the_comment_and_the_output(
    tmp_path: Path,
) -> None:
    doc = _doc(tmp_path, "seen = ['b', 'a']\nprint(sorted(seen))   # ['b', 'a']\n")
    assert check_examples(doc) == [
        "synthetic.md:7: the comment says it prints\n"
        "    | ['b', 'a']\n"
        "  but it printed\n"
        "    | ['a', 'b']"
    ]


def test_a_wrong_line_of_a_multi_line_output_comment_fails(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "for n in (1, 2):\n    print(n, n * n)\n# 1 1\n# 2 2\n")
    (failure,) = check_examples(doc)
    assert failure.startswith("synthetic.md:7: the comment says it prints\n")
    assert failure.endswith("    | 1 1\n    | 2 4")


def test_a_print_without_an_output_comment_fails(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "x = 2  # a comment, not output: nothing printed\nprint(x * 21)\n")
    assert check_examples(doc) == [
        "synthetic.md:7: this statement prints, but no comment says what it prints "
        "(say what it prints):\n    | 42"
    ]


def test_output_comments_that_say_what_is_printed_pass(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        "print('one')   # one\n"
        "print('a\\n\\nb  ')\n"
        "# a\n"
        "#\n"
        "# b\n"
        "\n"
        "# a blank line ends the output; a comment before a statement that prints nothing:\n"
        "y = 1  # and one after it\n",
    )
    assert check_examples(doc) == []


# --- the README's lists --------------------------------------------------------------


def _readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert found, f"README.md has no '## {title}' section"
    return found.group(1)


def _first_plain_block(section: str) -> list[str]:
    found = re.search(r"^```\n(.*?)^```", section, flags=re.S | re.M)
    assert found, "the section has no ``` block"
    return found.group(1).splitlines()


def _cli_commands(
    group: click.Group, prefix: tuple[str, ...] = ("baoflow",)
) -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found.update(_cli_commands(command, path))
        else:
            found[" ".join(path)] = command
    return found


def _readme_commands() -> dict[str, str]:
    """Each line of the README's command list by the command it names (its leading words,
    up to the first argument or option: `baoflow cases show CASE --url URL`); an indented
    line goes on describing the command above it."""
    listed: dict[str, str] = {}
    last = ""
    for line in _first_plain_block(_readme_section("Command line")):
        if line[:1].isspace() and last:
            listed[last] += "\n" + line
            continue
        words: list[str] = []
        for word in line.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        assert words[:1] == ["baoflow"], f"README.md's Command line: not a command: {line!r}"
        last = " ".join(words)
        assert last not in listed, f"README.md's Command line names `{last}` twice"
        listed[last] = line
    return listed


def test_the_readme_lists_every_command_of_baoflow_help_and_no_other() -> None:
    commands = set(_cli_commands(cli_main))
    listed = set(_readme_commands())
    assert not commands - listed, f"README.md's Command line leaves out {sorted(commands - listed)}"
    assert not listed - commands, (
        f"README.md's Command line names {sorted(listed - commands)}, which baoflow --help does not have"
    )


def test_every_option_the_readme_gives_a_command_is_one_it_takes() -> None:
    commands = _cli_commands(cli_main)
    for name, line in _readme_commands().items():
        takes = {opt for p in commands[name].params for opt in getattr(p, "opts", ())}
        given = set(re.findall(r"--[a-z][a-z-]*", line))
        assert given <= takes, f"README.md: `{name}` takes no {sorted(given - takes)} ({line!r})"


# `register` is open_engine's plumbing (an app passes `workflows=` to open_engine), so
# the README's facade sentence leaves it out; every other public method it names.
NOT_IN_THE_FACADE_SENTENCE = {"register"}


def test_the_facade_sentence_names_every_public_method_of_engine_and_no_other() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"The whole facade:(.*?)\.\n", text, flags=re.S)
    assert found, "README.md has no sentence beginning 'The whole facade:'"
    named = set(re.findall(r"`(\w+)(?:\(\))?`", found.group(1))) - {"open_engine", "Engine"}
    methods = {
        name
        for name, member in inspect.getmembers(Engine, inspect.isfunction)
        if not name.startswith("_")
    } - NOT_IN_THE_FACADE_SENTENCE
    assert not methods - named, f"the facade sentence leaves out {sorted(methods - named)}"
    assert not named - methods, (
        f"the facade sentence names {sorted(named - methods)}, not methods of Engine"
    )


def test_the_layout_lists_exactly_the_top_level_folders_git_tracks() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {f.split("/", 1)[0] + "/" for f in tracked if "/" in f}
    listed = {
        line.split()[0]
        for line in _first_plain_block(_readme_section("Layout"))
        if line[:1].strip()
    }
    assert not folders - listed, f"README.md's Layout leaves out {sorted(folders - listed)}"
    assert not listed - folders, (
        f"README.md's Layout names {sorted(listed - folders)}, which git does not track"
    )


def test_in_memory_sqlite_is_refused_with_a_way_out() -> None:
    with pytest.raises(StorageError, match="give a file"):
        open_engine("sqlite:///:memory:")
