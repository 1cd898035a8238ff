"""docs/configuration.md against the code: every key, its default and its reload column.

The doc's ``### `[section]` `` tables are parsed; their rows must be exactly
the keys ``gateway.config.SCHEMA`` accepts (and the ``[upstream.oauth_clients.NAME]``
keys its validator accepts), a default written as a TOML value must equal
the dataclass default, and "SIGHUP" must be claimed exactly for the keys a
reload applies. Every command-line option of the server must be listed, and
every TOML block in README.md and docs/ that configures the gateway must be
accepted by ``gateway.config.parse``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError, Settings
from gateway.reload import RELOADED_SECTIONS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
OAUTH = "upstream.oauth_clients.NAME"
#: Keys of a reloaded section that a reload nevertheless does not apply (the log writer is chosen at start).
START_ONLY_IN_RELOADED = {"logging.format"}


def documented() -> dict[str, dict[str, str]]:
    """``section.key`` -> the row's cells (key, default, meaning, reload, more)."""
    rows: dict[str, dict[str, str]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        heading = re.fullmatch(r"###\s+`\[([A-Za-z_.]+)\]`\s*", line)
        if heading:
            section = heading.group(1)
            continue
        if line.startswith("## "):
            section = None
        if section is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, f"{DOC.name}: a row of [{section}] needs key | default | meaning | reload | more: {line}"
        key = re.fullmatch(r"`([a-z_]+)`", cells[0])
        assert key, f"{DOC.name}: the first cell must be one `key`: {line}"
        name = f"{section}.{key.group(1)}"
        assert name not in rows, f"{DOC.name}: {name} is listed twice"
        rows[name] = dict(zip(("key", "default", "meaning", "reload", "more"), cells))
    return rows


def oauth_client_keys() -> set[str]:
    """The keys an ``[upstream.oauth_clients.NAME]`` table accepts, as the validator's own error lists them."""
    with pytest.raises(ConfigError) as caught:
        config.parse({"upstream": {"oauth_clients": {"probe": {"client_id": "a", "client_secret": "b", "zz_unknown": 1}}}})
    known = re.search(r"\(known: ([^)]*)\)", str(caught.value))
    assert known, str(caught.value)
    return {k.strip() for k in known.group(1).split(",")}


def accepted() -> set[str]:
    keys = {f"{section}.{key}" for section, table in config.SCHEMA.items() for key in table}
    return keys | {f"{OAUTH}.{key}" for key in oauth_client_keys()}


ROWS = documented()


def test_every_accepted_key_is_documented_and_every_documented_key_exists() -> None:
    missing = sorted(accepted() - set(ROWS))
    stale = sorted(set(ROWS) - accepted())
    assert not missing, f"docs/configuration.md does not list: {', '.join(missing)}"
    assert not stale, f"docs/configuration.md lists keys the gateway no longer accepts: {', '.join(stale)}"


def test_every_section_of_the_settings_has_a_table() -> None:
    sections = {f.name for f in fields(Settings) if f.name != "source"}
    assert sections == set(config.SCHEMA), "a Settings section without a SCHEMA table (or the reverse)"
    assert {name.split(".")[0] for name in ROWS} >= sections


def _plain(value: object) -> object:
    """A TOML value in the shape the settings keep it (lists and tables as tuples)."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _plain(v)) for k, v in value.items())
    return value


@pytest.mark.parametrize("name", sorted(n for n in ROWS if not n.startswith(OAUTH)))
def test_a_default_written_as_a_value_is_the_code_default(name: str) -> None:
    section, key = name.split(".")
    cell = ROWS[name]["default"]
    span = re.match(r"`([^`]*)`", cell)
    if not span:  # a default described in words (a path that depends on the environment)
        return
    try:
        written = tomllib.loads(f"v = {span.group(1)}")["v"]
    except tomllib.TOMLDecodeError:
        return  # a name or a path in backquotes, not a value
    actual = getattr(getattr(Settings(), section), key)
    assert _plain(written) == actual, f"docs/configuration.md says {name} defaults to {span.group(1)}; the code says {actual!r}"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_reload_column_says_what_a_reload_does(name: str) -> None:
    reload = ROWS[name]["reload"]
    applied = name.split(".")[0] in RELOADED_SECTIONS and name not in START_ONLY_IN_RELOADED
    assert reload == ("SIGHUP" if applied else "restart"), f"{name}: reload column {reload!r}"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_key_links_to_an_existing_topic_doc(name: str) -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", ROWS[name]["more"])
    assert links, f"{name}: no link to the doc that explains it"
    for link in links:
        assert (DOC.parent / link).is_file(), f"{name}: {link} does not exist"


def test_the_reload_exceptions_are_real() -> None:
    """Guard the exception list itself: each names a key of a reloaded section."""
    for name in START_ONLY_IN_RELOADED:
        section, key = name.split(".")
        assert section in RELOADED_SECTIONS and key in config.SCHEMA[section]


def test_every_server_option_is_documented() -> None:
    from gateway.tap import Options

    names = {p[0] for p in Options.optParameters} | {f[0] for f in Options.optFlags}
    names |= {m[4:].replace("_", "-") for m in dir(Options) if m.startswith("opt_") and m not in ("opt_help",)}
    text = DOC.read_text()
    missing = sorted(n for n in names if f"`--{n}" not in text)
    assert not missing, f"docs/configuration.md does not list the options: {', '.join(missing)}"


def toml_blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, match in enumerate(re.finditer(r"^```toml\n(.*?)^```", path.read_text(), re.S | re.M)):
            found.append((f"{path.relative_to(ROOT)}#{i}", match.group(1)))
    return found


@pytest.mark.parametrize("name,body", toml_blocks(), ids=[n for n, _ in toml_blocks()])
def test_gateway_config_examples_are_accepted(name: str, body: str) -> None:
    document = tomllib.loads(body)  # every TOML block is valid TOML
    if not set(document) & set(config.SCHEMA):
        return  # another program's file (Codex's ~/.codex/config.toml)
    try:
        config.parse(document, source=str(ROOT / "config.toml"))
    except ConfigError as e:
        pytest.fail(f"{name}: the gateway refuses this example: {e}")
