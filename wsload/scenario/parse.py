"""Scenario TOML → frozen ``Scenario``. The only place scenario input is interpreted.

Every mistake raises ``ScenarioError`` naming the file, the key path and what was expected
(``scenario.toml: load.rate: must be > 0, got -5``); unknown keys get a "did you mean" hint.
Nothing here executes code from the file: TOML is data only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wsload.core.script import step_metrics
from wsload.errors import ScenarioError, UsageError
from wsload.scenario._table import Table
from wsload.scenario.close import CLOSE_KEYS, parse_closes
from wsload.scenario.data import DATA_KEYS, parse_data
from wsload.scenario.deploy import DEPLOY_TABLE_KEYS, parse_reconnect
from wsload.scenario.load import LOAD_TABLE_KEYS, parse_load
from wsload.scenario.model import Scenario, ServerConfig
from wsload.scenario.overrides import apply_settings, blame_settings, parse_setting
from wsload.scenario.server import SERVER_KEYS, parse_server
from wsload.scenario.session import SESSION_KEYS, parse_session
from wsload.scenario.steps import env_resolver
from wsload.scenario.target import TARGET_KEYS, parse_target
from wsload.scenario.thresholds import parse_thresholds

__all__ = [
    "TABLE_KEYS",
    "load_scenario",
    "parse_scenario",
    "parse_server_options",
]


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "": ("name", "seed", "description", "target", "load", "session", "close", "thresholds",
         "reconnect", "data"),
    "target": TARGET_KEYS,
    "target.server": SERVER_KEYS,
    **LOAD_TABLE_KEYS,
    "session": SESSION_KEYS,
    "close": CLOSE_KEYS,
    "delay": ("min", "max"),
    "data": DATA_KEYS,
    **DEPLOY_TABLE_KEYS,
}  # fmt: skip
"""Every key each table accepts (``thresholds`` and ``target.headers`` take free-form keys;
``delay`` is the ``{ min, max }`` form of a random delay). docs/scenarios.md documents each one
and a test keeps the two in sync."""


def load_scenario(
    path: str | Path, sets: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> Scenario:
    """Read and parse a scenario file, with ``--set KEY.PATH=VALUE`` overrides (``sets``;
    ``environ``: for ``{env:NAME}``, default ``os.environ``).

    Raises:
        ScenarioError: unreadable file, invalid TOML, a bad ``--set`` or any invalid key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "no such file") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not UTF-8 text") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    return parse_scenario(
        text,
        source=str(path),
        default_name=path.stem,
        base_dir=path.parent,
        sets=sets,
        environ=environ,
    )


def parse_scenario(
    text: str,
    *,
    source: str = "scenario.toml",
    default_name: str = "scenario",
    base_dir: Path | None = None,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Scenario:
    """Parse scenario TOML text into a frozen ``Scenario``. docs/scenarios.md has every key.

    Args:
        text: the TOML text.
        source: the file name that messages start with.
        default_name: ``name`` when the file sets none (``load_scenario``: the file's stem).
        base_dir: where a relative ``target.ca_file`` or ``send_file`` is looked up (None: the
            working directory).
        sets: ``KEY.PATH=VALUE`` overrides (``--set``), written into the document first.
        environ: where ``{env:NAME}`` reads variables (None: ``os.environ``); the values it
            takes become ``Scenario.secrets``.

    Raises:
        ScenarioError: invalid TOML or any invalid key, naming ``source``, the key path and
            what was expected (and ``--set`` when the value came from one).
    """
    settings = [parse_setting(source, text) for text in sets]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses on nested arrays/inline tables
        raise ScenarioError(source, "", "invalid TOML: values nested too deeply") from None
    apply_settings(source, data, settings)
    try:
        return _scenario(data, source, default_name, base_dir, environ)
    except ScenarioError as exc:
        raise blame_settings(exc, settings) from None


def _scenario(
    data: dict[str, Any],
    source: str,
    default_name: str,
    base_dir: Path | None,
    environ: Mapping[str, str] | None,
) -> Scenario:
    root = Table(source, "", data)
    root.allow(TABLE_KEYS[""])
    name = root.string("name", default_name)
    if not root.has("name") and not _NAME_RE.match(name):
        raise root.error(
            "name",
            f'the file name {name!r} is not a valid scenario name; set name = "..." '
            "(1-64 letters, digits, '.', '_' or '-'; it names the results directory)",
        )
    if not _NAME_RE.match(name):
        raise root.error(
            "name",
            f"must be 1-64 letters, digits, '.', '_' or '-' (it names the results directory), "
            f"got {name!r}",
        )
    seed = root.opt_integer("seed", 0)
    description = root.string("description", "")
    secrets: list[str] = []
    resolve = env_resolver(os.environ if environ is None else environ, secrets)
    feed = parse_data(root.table("data"), base_dir, secrets) if root.has("data") else None
    target = parse_target(root.table("target"), base_dir, resolve, feed)
    load = parse_load(root.table("load"))
    columns = () if feed is None else feed.columns
    session = parse_session(root.table("session"), target, base_dir, resolve, columns)
    closes = parse_closes(root, target, columns)
    thresholds = parse_thresholds(
        root.table("thresholds"),
        tuple(c.label for c in closes),
        step_metrics(session.steps),
        reconnect=root.has("reconnect"),
    )
    if load.model == "search" and not thresholds:
        raise root.error(
            "thresholds",
            'required by model = "search": a level passes when every threshold holds',
        )
    reconnect = parse_reconnect(root.table("reconnect")) if root.has("reconnect") else None
    root.finish()
    return Scenario(
        name=name,
        source=source,
        seed=seed,
        description=description,
        target=target,
        load=load,
        session=session,
        close=closes,
        thresholds=thresholds,
        secrets=tuple(dict.fromkeys(secrets)),
        reconnect=reconnect,
        data=feed,
    )


def parse_server_options(options: Mapping[str, Any]) -> ServerConfig:
    """``wsload serve`` flags → ``ServerConfig`` through the same rules as ``[target.server]``.

    ``options`` uses the TOML key names; ``None`` values mean "not given".
    """
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return parse_server(Table("wsload serve", "", given))
    except ScenarioError as exc:
        # "close_reply_delay.max" -> "--close-reply-delay: max: ..."
        flag, _, sub = exc.key.partition(".")
        where = f"--{flag.replace('_', '-')}: " + (f"{sub}: " if sub else "")
        raise UsageError(where + exc.message) from None
