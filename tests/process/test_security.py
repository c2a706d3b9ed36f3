"""Security: secrets redacted in every output, TLS verified by default, scenarios inert.

The redaction functions are pure (tested on their own); then a real ``wsload run`` whose
scenario carries a password, URL tokens, an Authorization header and a cookie is searched,
file by file and stream by stream, for any of them.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from peers import WebsocketsPeer

from wsload.report.redact import (
    REDACTED,
    redact_headers,
    redact_scenario,
    redact_text,
    redact_url,
)
from wsload.runner.modes.execute import execute_run
from wsload.scenario.dump import scenario_to_toml
from wsload.scenario.parse import parse_scenario

pytestmark = pytest.mark.usefixtures("bounded_sync")

SECRETS = ("hunter2", "tok-AAAA", "acc-BBBB", "bearer-CCCC", "sid-DDDD", "api-EEEE")


# --- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h/p", "ws://h/p"),
        ("ws://alice:pw@h:81/p", f"ws://{REDACTED}@h:81/p"),
        ("ws://alice@h/p", f"ws://{REDACTED}@h/p"),
        ("wss://h/p?token=abc&id={seq}", f"wss://h/p?token={REDACTED}&id={{seq}}"),
        (
            "ws://h/?Access_Token=a&x=1&api_key=k",
            f"ws://h/?Access_Token={REDACTED}&x=1&api_key={REDACTED}",
        ),
        (
            "ws://h/?my_token=a&monkey=b&empty=&flag",
            f"ws://h/?my_token={REDACTED}&monkey=b&empty=&flag",
        ),
        ("ws://h/a@b?password=x#f", f"ws://h/a@b?password={REDACTED}#f"),  # @ in the path only
        ("builtin", "builtin"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_headers_keeps_names_and_harmless_values() -> None:
    headers = (("Authorization", "Bearer x"), ("X-Trace", "42"), ("cookie", "a=b"))
    assert redact_headers(headers) == (
        ("Authorization", REDACTED),
        ("X-Trace", "42"),
        ("cookie", REDACTED),
    )


@pytest.mark.parametrize(
    "text",
    [
        "invalid URL 'ws://u:hunter2@h:99999/': port out of range",
        "see wss://h/x?token=tok-AAAA for details",
        "token=tok-AAAA&other=1",
        "Authorization: Bearer bearer-CCCC",
        "{'Cookie': 'sid=sid-DDDD'}",
        "X-Api-Key=api-EEEE",
    ],
)
def test_redact_text_removes_the_secret(text: str) -> None:
    out = redact_text(text)
    assert REDACTED in out
    assert not any(secret in out for secret in SECRETS), out


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "server closed TCP without a Close frame (1006); seq=12 id=3"
    assert redact_text(text) == text


def test_redacted_scenario_still_dumps_and_parses() -> None:
    scenario = parse_scenario(_scenario_text("ws://127.0.0.1:9/echo"))
    shown = redact_scenario(scenario)
    again = parse_scenario(scenario_to_toml(shown))
    assert again == shown
    assert shown.target.headers[0] == ("Authorization", REDACTED)
    assert shown.load == scenario.load and shown.close == scenario.close


# --- a real run: every output ------------------------------------------------------------------


def _scenario_text(base: str) -> str:
    host = base.split("//", 1)[1]
    return f"""
name = "secret"
[target]
url = "ws://alice:hunter2@{host}?token=tok-AAAA&access_token=acc-BBBB&n={{seq}}"
[target.headers]
Authorization = "Bearer bearer-CCCC"
Cookie = "sid=sid-DDDD"
X-Api-Key = "api-EEEE"
X-Trace = "visible"
[load]
model = "arrival"
rate = 50
connections = 10
[session]
messages = 1
[[close]]
kind = "clean"
timeout = "2s"
"""


@pytest.fixture(scope="module")
def ws_peer() -> Iterator[WebsocketsPeer]:
    with WebsocketsPeer(close_timeout=0.5) as peer:
        yield peer


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_secret_in_any_output_of_a_real_run(ws_peer: WebsocketsPeer, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_scenario_text(f"ws://127.0.0.1:{ws_peer.port}/echo"), encoding="utf-8")
    out, records = tmp_path / "out", tmp_path / "connections.jsonl"
    outputs = []
    for extra in ([], ["--json", "--force"]):  # the second run replaces the first's files
        proc = subprocess.run(
            [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out),
             "--record-connections", str(records), *extra],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
        files = [*sorted(p for p in out.iterdir() if p.is_file()), records]
        assert {p.name for p in files} >= {"summary.json", "histograms.hlog", "scenario.toml"}
        for file in files:
            assert _leaks(file.read_text(encoding="utf-8")) == [], file.name
    assert all(_leaks(text) == [] for text in outputs), outputs
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcomes"]["clean"] == 10  # the secrets were really used: the run worked
    target = summary["scenario"]["target"]
    assert target["headers"]["X-Trace"] == "visible"
    assert target["headers"]["Authorization"] == REDACTED
    assert "token=REDACTED" in target["url"] and "n={seq}" in target["url"]
    assert len(records.read_text(encoding="utf-8").splitlines()) == 10
    validate = subprocess.run(
        [sys.executable, "-m", "wsload", "validate", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert validate.returncode == 0
    assert _leaks(validate.stdout + validate.stderr) == []


@pytest.mark.parametrize(
    "target",
    [
        'url = "ws://u:hunter2@127.0.0.1:99999/?token=tok-AAAA"',  # bad port: URL in the error
        'url = "ws://127.0.0.1:1/"\nheaders = { Authorization = "Bearer\\nbearer-CCCC" }',
        'url = "ws://127.0.0.1:1/"\nheaders = { Cookie = "sid=sid-DDDD \u20ac" }',  # not Latin-1
        'url = "ws://u:hunter2@127.0.0.1:1/\u20ac?token=tok-AAAA"',  # cannot go on the wire
        'url = "ws://127.0.0.1:1/"\norigin = "https://a\\nX-Injected: 1"',  # header injection
    ],
)
def test_errors_do_not_echo_secrets(target: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\n[target]\n{target}\n[load]\nrate = 1\n', encoding="utf-8")
    for command in ("validate", "run"):
        extra = ["--out", str(tmp_path / "o")] if command == "run" else ["-q"]
        proc = subprocess.run(
            [sys.executable, "-m", "wsload", command, str(path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "target." in proc.stderr  # names the key
        assert _leaks(proc.stdout + proc.stderr) == [], proc.stderr


# --- TLS on by default -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebsocketsPeer, Path]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with WebsocketsPeer(close_timeout=0.5, ssl_context=context) as peer:
        yield peer, ca_file


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ("", "tls_error"),  # verification is on unless said otherwise
        ('ca_file = "{ca}"', "clean"),
        ("insecure = true", "clean"),
    ],
)
def test_tls_verification_is_on_by_default(
    tls_peer: tuple[WebsocketsPeer, Path], extra: str, outcome: str, tmp_path: Path
) -> None:
    peer, ca_file = tls_peer
    text = f"""
name = "tls"
[target]
url = "wss://127.0.0.1:{peer.port}/echo"
{extra.format(ca=ca_file)}
[load]
rate = 50
connections = 3
[[close]]
kind = "clean"
timeout = "2s"
"""
    code = execute_run(parse_scenario(text), out=tmp_path / "out", quiet=True)
    assert code == (1 if outcome == "tls_error" else 0)  # no connection opened: not a pass
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in summary["outcomes"].items() if v} == {outcome: 3}


# --- scenario files are data, never code ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "$(touch {marker})",
        "`touch {marker}`",
        "${{HOME}}",
        "%(HOME)s",
        "{{__import__('os').system('touch {marker}')}}",
        "__import__('os').system('touch {marker}')",
    ],
)
def test_scenario_values_are_never_evaluated(value: str, tmp_path: Path) -> None:
    """Shell, env, format and Python syntax in a scenario stay literal text: the marker file is
    never created and the resolved copy shows the value exactly as written."""
    marker = tmp_path / "marker"
    literal = value.format(marker=marker)
    escaped = literal.replace("\\", "\\\\").replace('"', '\\"')
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "inert"\ndescription = "{escaped}"\n'
        f'[target]\nheaders = {{ X-Note = "{escaped}" }}\n'
        f'[load]\nrate = 1\nconnections = 1\n[[close]]\nkind = "clean"\nreason = "{escaped}"\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", "validate", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    resolved = parse_scenario(proc.stdout.split("\n", 1)[1])
    assert resolved.description == literal
    assert resolved.target.headers == (("X-Note", literal),)
    assert resolved.close[0].reason == literal


def _search_text(base: str) -> str:
    text = _scenario_text(base).replace(
        '[load]\nmodel = "arrival"\nrate = 50\nconnections = 10\n',
        '[load]\nmodel = "search"\n[load.search]\nover = "rate"\nstart = 20\nmax = 40\n'
        'step_duration = "500ms"\ncooldown = "0s"\n',
    )
    return text + '[thresholds]\n"outcomes.clean" = "> 0%"\n'


@pytest.mark.parametrize(
    ("make", "extra"),
    [(_scenario_text, ["--workers", "2"]), (_search_text, [])],
    ids=["workers", "search"],
)
def test_no_secret_in_any_file_of_a_split_run_or_a_search(
    ws_peer: WebsocketsPeer,
    tmp_path: Path,
    make: Callable[[str], str],
    extra: list[str],
) -> None:
    """Worker segments (segments/<i>ofN/, totals.json) and a search (its levels, report.html)
    write the scenario in more places than a plain run: none of them may carry a secret."""
    path = tmp_path / "s.toml"
    path.write_text(make(f"ws://127.0.0.1:{ws_peer.port}/echo"), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), *extra],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _leaks(proc.stdout + proc.stderr) == []
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert {"summary.json", "scenario.toml", "report.html"} <= {p.name for p in written}
    for file in written:
        assert _leaks(file.read_text(encoding="utf-8")) == [], file
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["scenario"]["target"]["headers"]["Authorization"] == REDACTED
    assert summary["totals"]["clean"] > 0  # the secrets were really sent: the run worked


# --- {env:NAME}: values from the environment are secrets everywhere ------------------------------

ENV_SECRETS = {"WSL_PATH": "envpath-1A2B", "WSL_TOKEN": "envtok-3C4D", "WSL_ORIGIN": "envorg-5E6F"}


def _env_scenario_text(base: str) -> str:
    host = base.split("//", 1)[1]
    return f"""
name = "env-secret"
[target]
url = "ws://{host}/echo?p={{env:WSL_PATH}}&n={{seq}}"
origin = "https://{{env:WSL_ORIGIN}}"
[target.headers]
X-Session = "s-{{env:WSL_TOKEN}}"
[load]
model = "arrival"
rate = 50
connections = 6
[[session.steps]]
send = '{{"auth":"{{env:WSL_TOKEN}}","n":{{seq}}}}'
[[session.steps]]
expect = {{ regex = "{{env:WSL_TOKEN}}" }}
name = "auth"
[[close]]
kind = "clean"
timeout = "2s"
"""


@pytest.mark.parametrize(
    "extra", [[], ["--json"], ["--workers", "2"]], ids=["plain", "json", "workers"]
)
def test_env_values_are_redacted_in_every_output(
    ws_peer: WebsocketsPeer, tmp_path: Path, extra: list[str]
) -> None:
    """Planted secrets in the URL, a header, the origin and a payload, taken from the
    environment: the run works (the echo matched the secret), and no file, stream or resolved
    copy holds any of them."""
    path = tmp_path / "s.toml"
    path.write_text(_env_scenario_text(f"ws://127.0.0.1:{ws_peer.port}"), encoding="utf-8")
    out, records = tmp_path / "out", tmp_path / "connections.jsonl"
    env = {**os.environ, **ENV_SECRETS}
    record = [] if "--workers" in extra else ["--record-connections", str(records)]
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(out), *record, *extra],
        capture_output=True, text=True, timeout=90, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    leaks = [v for v in ENV_SECRETS.values() if v in proc.stdout + proc.stderr]
    assert leaks == []
    written = [*sorted(p for p in out.rglob("*") if p.is_file()), *([records] if record else [])]
    assert {"summary.json", "scenario.toml", "totals.json", "histograms.hlog"} <= {
        p.name for p in written
    }
    for file in written:
        text = file.read_text(encoding="utf-8")
        assert [v for v in ENV_SECRETS.values() if v in text] == [], file
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcomes"]["clean"] == 6  # the secrets were really used
    assert summary["latency_us"]["step.auth"]["count"] == 6
    assert REDACTED in summary["scenario"]["target"]["url"]
    validate = subprocess.run(
        [sys.executable, "-m", "wsload", "validate", str(path)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert validate.returncode == 0
    assert [v for v in ENV_SECRETS.values() if v in validate.stdout + validate.stderr] == []


def test_an_unset_env_variable_is_exit_2_without_any_value(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_env_scenario_text("ws://127.0.0.1:9"), encoding="utf-8")
    env = {**os.environ, **ENV_SECRETS}
    del env["WSL_ORIGIN"]
    proc = subprocess.run(
        [sys.executable, "-m", "wsload", "run", str(path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{path}: target.origin: environment variable WSL_ORIGIN is not set" in proc.stderr
    assert [v for v in ENV_SECRETS.values() if v in proc.stdout + proc.stderr] == []
    assert not (tmp_path / "o").exists()
