"""Secrets out of every output: pure functions over URLs, headers, scenarios and free text.

A scenario may carry credentials (``Authorization``/``Cookie`` headers, ``?token=`` in the URL,
``user:password@`` userinfo) because the target needs them. Results directories get shared,
attached to CI artifacts and pasted into tickets, so nothing wsload writes or prints keeps them:
the resolved ``scenario.toml``, ``summary.json`` (its ``scenario`` copy and hash), the terminal,
``--record-connections`` lines and error messages all pass through here. Only the values go;
names stay, so a reader still sees *that* a token was sent. Over-redacting a harmless
``key=`` parameter is the accepted price of never leaking a real one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from wsload.core.matching import Matcher
from wsload.core.script import Expect, Repeat, Send, Step
from wsload.core.templates import Template
from wsload.scenario.model import Scenario

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
    "is_secret_header",
    "is_secret_param",
    "redact_headers",
    "redact_scenario",
    "redact_secrets",
    "redact_text",
    "redact_url",
]

REDACTED = "REDACTED"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
    }
)
"""Header names (lower case) whose values are secrets."""

SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth",
        "key",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "session",
        "sessionid",
        "jwt",
    }
)
"""URL query parameter names (lower case) whose values are secrets."""

_SECRET_SUFFIXES = ("token", "secret", "password", "_key", "-key")
_URL_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_PARAM_RE = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)=(?P<value>[^&\s'\"<>;,]+)")
_HEADER_RE = re.compile(
    r"(?<![\w.-])(?P<name>" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS)) + r")"
    r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)(?P<value>[^\r\n'\"]+)",
    re.IGNORECASE,
)


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a secret (by name, case-insensitive)."""
    return name.lower() in SECRET_HEADERS


def is_secret_param(name: str) -> bool:
    """Whether a query parameter's value is a secret: a known name or a telling suffix."""
    lower = name.lower()
    return lower in SECRET_PARAMS or lower.endswith(_SECRET_SUFFIXES)


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, sep, value = item.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and value and is_secret_param(name) else item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url`` without userinfo secrets and secret query values; anything else unchanged.

    ``ws://alice:pw@host/p?token=abc&id={seq}`` → ``ws://REDACTED@host/p?token=REDACTED&id={seq}``.
    The text is edited in place (not re-encoded), so ``{seq}`` and the rest stay as written.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index >= 0:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        authority = REDACTED + authority[authority.rindex("@") :]
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        tail = f"{path}?{_redact_query(query)}{hash_}{fragment}"
    return f"{scheme}://{authority}{tail}"


def redact_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The same headers with secret values replaced."""
    return tuple((name, REDACTED if is_secret_header(name) else value) for name, value in headers)


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret (``{env:NAME}`` values) replaced."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_scenario(scenario: Scenario) -> Scenario:
    """``scenario`` as it may be written or shown: URL, header and ``{env:NAME}`` secrets
    replaced (the environment's values wherever they went: URL, headers, origin, payloads),
    and every value of a managed server's ``[target.process] env``.

    The result still parses and dumps like any scenario (``REDACTED`` is a valid header value
    and query value), so the resolved copy stays a readable, loadable file.
    """
    target, secrets = scenario.target, scenario.secrets
    url = redact_url(redact_secrets(target.url, secrets))
    headers = tuple(
        (name, redact_secrets(value, secrets)) for name, value in redact_headers(target.headers)
    )
    origin = None if target.origin is None else redact_secrets(target.origin, secrets)
    steps, rules = scenario.session.steps, scenario.session.on
    if secrets:
        steps = _redact_steps(steps, secrets, scenario.columns)
        rules = tuple(  # a rule's reply is a payload like a send step's
            replace(rule, send=_redact_template(rule.send, secrets, scenario.columns))
            for rule in rules
        )
    process = target.process
    if process is not None and process.env:
        # a managed server's environment is where its secrets live (design.md §7)
        process = replace(process, env=tuple((name, REDACTED) for name, _ in process.env))
    if (url, headers, origin, steps, rules, process) == (
        target.url,
        target.headers,
        target.origin,
        scenario.session.steps,
        scenario.session.on,
        target.process,
    ):
        return scenario
    return replace(
        scenario,
        target=replace(target, url=url, headers=headers, origin=origin, process=process),
        session=replace(scenario.session, steps=steps, on=rules),
    )


def _redact_template(
    template: Template | None, secrets: tuple[str, ...], columns: tuple[str, ...]
) -> Template | None:
    if template is None:
        return None
    return Template.compile(redact_secrets(template.source, secrets), columns)


def _redact_steps(
    steps: tuple[Step, ...], secrets: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[Step, ...]:
    out: list[Step] = []
    for step in steps:
        if isinstance(step, Send):
            if step.template is not None:
                step = replace(step, template=_redact_template(step.template, secrets, columns))
            else:
                data = step.data
                for secret in secrets:
                    data = data.replace(secret.encode("utf-8"), REDACTED.encode("ascii"))
                step = replace(step, data=data)
        elif isinstance(step, Expect) and step.matcher.kind != "any":
            value = _redact_value(step.matcher.value, secrets)
            try:
                matcher = Matcher.build(step.matcher.kind, value)
            except ValueError:  # a regex that no longer compiles: shown as text
                matcher = Matcher.build("equals", REDACTED)
            step = replace(step, matcher=matcher)
        elif isinstance(step, Repeat):
            step = replace(step, steps=_redact_steps(step.steps, secrets, columns))
        out.append(step)
    return tuple(out)


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact_secrets(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text (an error, a log line, a connection's detail) with secrets replaced.

    Catches URLs (userinfo, secret query values), ``name=value`` pairs with a secret name,
    ``Authorization: ...``-style header values up to the end of the line or quote, and every
    one of ``secrets`` (the scenario's ``{env:NAME}`` values).
    """
    if not text:
        return text
    text = redact_secrets(text, secrets)
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    text = _PARAM_RE.sub(
        lambda m: f"{m['name']}={REDACTED}" if is_secret_param(m["name"]) else m.group(0), text
    )
    return _HEADER_RE.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
