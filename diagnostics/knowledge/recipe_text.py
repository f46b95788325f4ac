"""A recipe's steps and snippets filled in for one host: the placeholder syntax, its validation,
and ``recipe_for_host``.

Placeholders are a closed list, substituted by one regex over the text; nothing is eval'd or
passed to ``str.format``, so ``{__class__}`` or ``{0.__dict__}`` are only characters::

    {interface}           the interface the cited lines name (bnx2: enp3s0f1 NIC Copper Link is Down)
    {process}  {pid}      the process the cited rows name (fd_usage, sockets, log lines, strace pids)
    {service}             that process as known software (cache-main -> varnish), the name its unit has
    {config_path}         the config file found for {service}; {config_path:tcpserver} for named software
    {peer}  {peer_port}   the peer address (most cited first) and its port the cited rows name
    {mountpoint}          the mount point the cited rows name
    {measured:NAME}       a number the cited rows measured: wait_seconds, fd_open, fd_limit
    {setting:NAME}        a service setting as the service_settings probe read it ({setting:send_timeout})

``{{interface}}`` stays the literal text ``{interface}``, and ``${name}`` (a shell variable) is never
a placeholder. A value the evidence does not give renders as a visible generic word in angle
brackets (``<interface>``): pasted into a shell it fails loudly instead of acting on ``eth0``.
Several values (two flapping interfaces) are listed in a step and left generic in a snippet, which
is copied as is. Values from the evidence must match a strict character set for their kind (see
``host_context``), so a log line cannot put ``$(...)`` into a command a tech will paste; the page
escapes them like any other text.

A step is text or ``{text, for: [software]}``; a snippet ``{label, language, text, for}``. ``for``
names software of ``host_context.SOFTWARE``. On a host where the evidence shows that none of it
runs, the step or snippet is kept but moved out of the default view (``steps_not_on_host``,
``on_host: False``): the process list is a snapshot, and the daemon a ticket is about may be the one
that crashed, so advice is folded away and labelled rather than deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from diagnostics.knowledge.host_context import MEASURES, SOFTWARE, HostContext

# name -> (generic word shown when the evidence gives no value, argument: "none" | "optional" | "required")
PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "interface": ("<interface>", "none"),
    "process": ("<process>", "none"),
    "pid": ("<PID>", "none"),
    "service": ("<service>", "none"),
    "config_path": ("<config file>", "optional"),
    "peer": ("<peer address>", "none"),
    "peer_port": ("<port>", "none"),
    "mountpoint": ("<mount point>", "none"),
    "measured": ("<measured value>", "required"),
    "setting": ("<setting>", "required"),
}
SETTING_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
# {name} or {name:arg}, not after "$" (shell's ${name}); {{...}} is the escape for the literal text.
_TOKEN = re.compile(r"\{\{([a-z_]+(?::[^{}\s]*)?)\}\}|(?<!\$)\{([a-z_]+)(?::([^{}\s]*))?\}")
STEP_FIELDS = ("text", "for")
SNIPPET_FIELDS = ("label", "language", "for", "text")  # export order: "for" before a long text


def placeholder_errors(text: str) -> list[str]:
    """Problems with the placeholders in ``text`` (unknown names, bad arguments); empty when fine."""
    errors = []
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            continue  # {{...}}: literal text
        name, arg = match.group(2), match.group(3)
        token = match.group(0)
        if name not in PLACEHOLDERS:
            errors.append(
                f"unknown placeholder {token} (known: {', '.join(sorted(PLACEHOLDERS))}; "
                f"write {{{token}}} for the literal text)"
            )
            continue
        takes = PLACEHOLDERS[name][1]
        if takes == "none" and arg is not None:
            errors.append(f"placeholder {token} takes no argument")
        elif takes == "required" and not arg:
            errors.append(f"placeholder {token} needs an argument, such as {{{name}:...}}")
        elif name == "measured" and arg not in MEASURES:
            errors.append(f"unknown measured value {token} (known: {', '.join(sorted(MEASURES))})")
        elif name == "setting" and not SETTING_NAME.fullmatch(arg or ""):
            errors.append(f"placeholder {token}: expected a setting name of letters, digits, _ and .")
        elif name == "config_path" and arg is not None and arg not in SOFTWARE:
            errors.append(f'placeholder {token}: unknown software "{arg}" (known: {", ".join(sorted(SOFTWARE))})')
    return errors


def software_errors(value: Any) -> list[str]:
    """Problems with a ``for`` list, each starting with the sub-path it is about ("" or "[1]")."""
    if not isinstance(value, list) or not value:
        return [f": expected a list of software names (known: {', '.join(sorted(SOFTWARE))})"]
    errors = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in SOFTWARE:
            errors.append(f'[{i}]: unknown software "{name}" (known: {", ".join(sorted(SOFTWARE))})')
        elif value.index(name) != i:
            errors.append(f'[{i}]: "{name}" is listed twice')
    return errors


def step_text(step: Any) -> str:
    """A step's text as written (placeholders unfilled), whatever its form."""
    return str(step.get("text", "")) if isinstance(step, dict) else str(step)


# --- rendering -------------------------------------------------------------------------------


@dataclass
class _Fill:
    context: HostContext | None
    for_snippet: bool
    filled: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def __call__(self, match: re.Match) -> str:
        if match.group(1) is not None:
            return "{" + match.group(1) + "}"
        name, arg = match.group(2), match.group(3)
        token = match.group(0)
        if name not in PLACEHOLDERS:
            # Saved past validation (an ORM edit): inert, and visibly not a value.
            self.missing.add(token)
            return f"<{name}>"
        values = self.context.values(name, arg) if self.context is not None else ()
        generic = PLACEHOLDERS[name][0]
        if name == "measured" and arg in MEASURES:
            generic = MEASURES[arg]
        elif name == "setting" and arg:
            generic = f"<{arg}>"
        if not values or (self.for_snippet and len(values) > 1):
            self.missing.add(token)
            return generic
        shown = ", ".join(values)
        self.filled[token] = shown
        return shown


def render_text(text: str, *, context: HostContext | None, for_snippet: bool = False) -> tuple[str, dict, set]:
    """``text`` with its placeholders filled from ``context``: (text, {token: value}, {tokens left generic})."""
    fill = _Fill(context, for_snippet)
    return _TOKEN.sub(fill, str(text)), fill.filled, fill.missing


@dataclass
class RenderedRecipe:
    """A recipe as this host needs it. ``steps``: the steps to show, filled in; ``steps_not_on_host``:
    ``{text, for}`` of steps for software the evidence shows is not running; ``snippets``: each
    ``{label, language, text, for, on_host, running}`` (``on_host`` None: general, or the run did not
    look; ``running``: the software of ``for`` seen running),
    those for software not on this host last; ``filled``/``missing``: which placeholders the
    evidence filled and which were left as generic words."""

    steps: list[str]
    snippets: list[dict]
    steps_not_on_host: list[dict] = field(default_factory=list)
    filled: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _software(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def recipe_for_host(*, recipe: Any, context: HostContext | None) -> RenderedRecipe:
    """``recipe`` (a FixRecipe, or anything with ``steps`` and ``snippets``) filled in for the host
    ``context`` describes; with no context, every placeholder shows its generic word."""
    filled: dict[str, str] = {}
    missing: set[str] = set()

    def render(text: Any, *, for_snippet: bool = False) -> str:
        out, got, lacking = render_text(str(text), context=context, for_snippet=for_snippet)
        filled.update(got)
        missing.update(lacking)
        return out

    def on_host(software: list[str]) -> bool | None:
        return context.runs_any(software) if software and context is not None else None

    steps, elsewhere = [], []
    for step in getattr(recipe, "steps", None) or []:
        software = _software(step.get("for")) if isinstance(step, dict) else []
        if on_host(software) is False:
            elsewhere.append({"text": render(step_text(step)), "for": software})
        else:
            steps.append(render(step_text(step)))
    snippets = []
    for snippet in getattr(recipe, "snippets", None) or []:
        if not isinstance(snippet, dict):
            continue
        software = _software(snippet.get("for"))
        snippets.append(
            {
                "label": render(snippet.get("label", "")),
                "language": str(snippet.get("language", "")),
                "text": render(snippet.get("text", ""), for_snippet=True),
                "for": software,
                "on_host": on_host(software),
                "running": [name for name in software if context is not None and context.runs(name)],
            }
        )
    snippets.sort(key=lambda s: s["on_host"] is False)  # stable: the rest keep their order
    return RenderedRecipe(steps, snippets, elsewhere, filled, sorted(missing))
