"""Every command the README and docs/ print, checked against reality.

Commands come from the ```sh / ```bash / ```console code blocks of README.md
and docs/*.md. Each is one of:

- run as printed against a gateway and emulator started for the test (curl
  calls, with 127.0.0.1:8045 / :8046 swapped for their ports), or run as is
  when harmless (``--help``, ``--version``, ``accounts list`` on an empty
  home directory);
- checked: every option it passes must appear in the ``--help`` of the
  command it names (``./scripts/run`` → ``twist antigravity-gateway``,
  ``./scripts/accounts add`` → ``antigravity-gateway accounts add`` …);
- external (pip, systemctl, sudo, claude …): named in ``EXTERNAL`` so that a
  new kind of command fails here until someone decides how to check it.

Python blocks are compiled, and run against the same gateway when the
libraries they import are installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.processes import ROOT, TWIST, call, child_env, start

VENV_BIN = Path(TWIST).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"sh", "bash", "console", "shell"}
#: Programs the docs may name that this test does not run or check (installs, system tools, other vendors' CLIs).
EXTERNAL = {"python3", "sudo", "pip", "export", "claude", "gemini", "codex", "systemctl", "cd", "git"}


@dataclass
class Command:
    source: str
    text: str
    argv: list[str]


def blocks(path: Path) -> Iterator[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    text = path.read_text()
    for match in re.finditer(r"^```([A-Za-z]*)\n(.*?)^```", text, re.S | re.M):
        yield match.group(1).lower(), match.group(2)


def commands(path: Path, body: str, lang: str = "sh") -> Iterator[Command]:
    """Shell commands of a block: continuation lines joined, comments dropped, ``&&`` chains split.

    In a ``console`` block whose lines start with ``$ ``, only those lines are
    commands; the others are what the commands print.
    """
    if lang == "console" and any(line.startswith("$ ") for line in body.splitlines()):
        body = "\n".join(line[2:] for line in body.splitlines() if line.startswith("$ "))
    joined = re.sub(r"\\\n\s*", " ", body)
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        part: list[str] = []
        for word in words + ["&&"]:
            if word in ("&&", "||", ";", "|"):
                if part:
                    yield Command(f"{path.relative_to(ROOT)}", line.strip(), part)
                part = []
            else:
                part.append(word)


def all_commands() -> list[Command]:
    found = []
    for path in DOCS:
        for lang, body in blocks(path):
            if lang in SHELL_LANGS:
                found.extend(commands(path, body, lang))
    return found


def program(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the program with its subcommands, the rest), environment assignments skipped."""
    words = [w for w in argv]
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    if not words:
        return [], []
    head = words[0]
    if head.endswith("/twist") or head == "twist":
        return words[:2], words[2:]
    if head in ("./scripts/accounts",) or head.endswith("antigravity-gateway"):
        if head.endswith("antigravity-gateway") and len(words) > 2 and words[1] in ("accounts", "keys"):
            return words[:3], words[3:]
        if head == "./scripts/accounts" or (len(words) > 1 and words[1] == "usage"):
            return words[:2], words[2:]
        return words[:1], words[1:]
    return words[:1], words[1:]


def help_text(prog: list[str]) -> str:
    """The ``--help`` of the command that ``prog`` runs, from this checkout's environment."""
    head = prog[0]
    env = child_env()
    if head in ("./scripts/run",):
        argv = [TWIST, "antigravity-gateway", "--help"]
    elif head.endswith("twist"):
        argv = [TWIST, *prog[1:], "--help"]
    elif head == "./scripts/accounts":
        argv = [str(VENV_BIN / "antigravity-gateway"), "accounts", *prog[1:], "--help"]
    elif head.endswith("antigravity-gateway"):
        argv = [str(VENV_BIN / "antigravity-gateway"), *prog[1:], "--help"]
    elif head == "./scripts/demo":
        argv = ["bash", str(ROOT / "scripts" / "demo"), "--help"]
    elif head == "./scripts/test":
        argv = [sys.executable, "-m", "pytest", "--help"]
    elif head == "bench/run":
        argv = [sys.executable, str(ROOT / "bench" / "bench.py"), "--help"]
    elif head == "bench/run-scaling":
        argv = [sys.executable, str(ROOT / "bench" / "scaling.py"), "--help"]
    elif head == "bench/run-instructions":
        argv = [sys.executable, str(ROOT / "bench" / "instructions.py"), "--help"]
    elif head == "bench/run-gc":
        argv = [sys.executable, str(ROOT / "bench" / "gc_time.py"), "--help"]
    elif head == "curl":
        argv = ["curl", "--help", "all"]
    else:
        raise AssertionError(f"no --help known for {prog}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{argv}: {done.stderr[-2000:]}"
    return done.stdout + done.stderr


def options(rest: list[str]) -> list[str]:
    found = []
    for word in rest:
        if word == "--":
            break
        if re.fullmatch(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", word):
            found.append(word.split("=", 1)[0])
        elif re.fullmatch(r"-[A-Za-z]", word):
            found.append(word)
    return found


def inline_commands() -> list[Command]:
    """Commands quoted in running text (`./scripts/run --port 9000`), for the option check."""
    found = []
    starts = ("./scripts/", "twist antigravity-", "antigravity-gateway ", "bench/run")
    for path in DOCS:
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
        for span in re.findall(r"`([^`\n]+)`", text.replace("\n", " ")):
            if span.startswith(starts) and "…" not in span and "<" not in span:
                found.extend(commands(path, span))
    return found


COMMANDS = all_commands()
INLINE = inline_commands()


def test_the_docs_have_commands_and_every_program_is_known() -> None:
    assert len(COMMANDS) > 20
    known = {"./scripts/run", "./scripts/test", "./scripts/demo", "./scripts/accounts", "bench/run", "bench/run-scaling", "bench/run-instructions", "bench/run-gc", "curl"}
    for command in COMMANDS:
        prog, _ = program(command.argv)
        head = prog[0] if prog else ""
        ours = head in known or head.endswith("/twist") or head.endswith("antigravity-gateway") or head.startswith(".venv/bin/")
        assert ours or head in EXTERNAL, f"{command.source}: `{command.text}` runs {head!r}: check it here or add it to EXTERNAL"
        for word in command.argv:  # files of this repository that a command names must exist
            if re.match(r"(contrib|scripts|bench|docs|tests|gateway)/", word):
                assert (ROOT / word.split()[0]).exists(), f"{command.source}: `{command.text}` names {word}, which does not exist"


@pytest.mark.parametrize("command", [c for c in COMMANDS + INLINE if program(c.argv)[0] and program(c.argv)[0][0] not in EXTERNAL
                                     and not program(c.argv)[0][0].startswith(".venv/bin/pip")],
                         ids=lambda c: f"{c.source}:{c.text[:60]}")
def test_every_option_is_one_the_command_has(command: Command) -> None:
    prog, rest = program(command.argv)
    if prog[0].endswith("twist") and len(prog) > 1 and prog[1].startswith("-"):
        pytest.fail(f"{command.source}: twist options before the plugin are not checked: {command.text}")
    text = help_text(prog)
    for option in options(rest):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), \
            f"{command.source}: `{command.text}` passes {option}, which `{' '.join(prog)} --help` does not list"


def test_help_and_version_commands_run_as_printed(tmp_path: Path) -> None:
    ran = 0
    # An empty data and config home: `accounts list` reads no one's real store.
    env = child_env() | {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("STATE_DIRECTORY", None)
    for command in COMMANDS:
        prog, rest = program(command.argv)
        safe = "--help" in rest or "--version" in rest or (prog[-1:] == ["list"] and prog[0] == "./scripts/accounts")
        if not safe or prog[0] in EXTERNAL:
            continue
        argv = list(command.argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command.source}: `{command.text}` exited {done.returncode}: {done.stderr[-2000:]}"
        ran += 1
    assert ran >= 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    running = start(tmp_path_factory.mktemp("docs"), store_accounts=3)
    yield running
    running.close()


def _swap(text: str, stack) -> str:  # type: ignore[no-untyped-def]
    gateway = stack.gateway_url.split("://", 1)[1]
    emulator = stack.emulator_url.split("://", 1)[1]
    return text.replace("127.0.0.1:8045", gateway).replace("127.0.0.1:8046", emulator)


def test_curl_commands_work_as_printed(stack) -> None:  # type: ignore[no-untyped-def]
    ran = 0
    for command in COMMANDS:
        if program(command.argv)[0][:1] != ["curl"]:
            continue
        argv = ["curl", "--fail-with-body", "--max-time", "30", *[_swap(w, stack) for w in command.argv[1:]]]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command.source}: `{command.text}` failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-500:]}"
        assert done.stdout.strip(), f"{command.source}: `{command.text}` answered nothing"
        call("DELETE", f"{stack.emulator_url}/_emulator/faults")  # a fault a doc adds must not leak into the next command
        ran += 1
    assert ran >= 4


def python_blocks() -> list[tuple[str, str]]:
    return [(f"{path.relative_to(ROOT)}#{i}", body) for path in DOCS
            for i, (lang, body) in enumerate(blocks(path)) if lang == "python"]


def test_python_examples_compile_and_run_against_the_gateway(stack) -> None:  # type: ignore[no-untyped-def]
    ran = 0
    for name, body in python_blocks():
        compile(body, name, "exec")
        modules = re.findall(r"^(?:from|import)\s+([A-Za-z_][\w.]*)", body, re.M)
        if any(importlib.util.find_spec(m.split(".")[0]) is None for m in modules):
            continue  # e.g. litellm: not a test dependency; the block still compiled
        done = subprocess.run([sys.executable, "-c", _swap(body, stack)], capture_output=True, text=True, timeout=120,
                              env=child_env(), stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{name} failed:\n{body}\n{done.stderr[-3000:]}"
        ran += 1
    assert ran >= 4


# -- the docs can be found, and their links lead somewhere --------------------------------------------


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a markdown file (lower case, punctuation dropped, spaces to '-', repeats -1, -2 …)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def _links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def test_every_docs_file_is_indexed_in_the_readme_and_in_docs_readme() -> None:
    docs = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "README.md")
    readme = set(_links(ROOT / "README.md"))
    index = set(_links(ROOT / "docs" / "README.md"))
    assert [d for d in docs if f"docs/{d}" not in readme] == [], "README.md's 'Where everything else is' misses these docs"
    assert [d for d in docs if d not in index] == [], "docs/README.md misses these docs"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_exists(path: Path) -> None:
    for link in _links(path):
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.relative_to(ROOT)}: link to {link}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{path.relative_to(ROOT)}: link to {link}: no such heading"
