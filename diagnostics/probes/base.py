"""What a probe is: a named, parameterised, read-only command with bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diagnostics.probes.params import Param

KIB = 1024
MIB = 1024 * KIB

DEFAULT_TIMEOUT = 15
MAX_TIMEOUT = 120  # no probe may hold an SSH channel longer than this
TEXT_CAP = 1 * MIB
LOG_CAP = 2 * MIB
SOCKETS_CAP = 4 * MIB  # thousands of CLOSE-WAIT sockets are the evidence, not noise
PCAP_CAP = 20 * MIB


class ProbeError(ValueError):
    """Bad probe parameters (or an unknown probe), in words a tech can act on.

    ``param`` names the offending parameter and ``step`` the playbook step (from
    1) when known, so a form can attach the message to the right field.
    """

    def __init__(self, message: str, *, param: str | None = None, step: int | None = None):
        super().__init__(message)
        self.param = param
        self.step = step


@dataclass(frozen=True)
class ProbeCommand:
    """One remote command, ready for the runner (which runs it with ``sh -c``)."""

    command: str  # one POSIX sh command line, every parameter shell-quoted
    timeout: int  # seconds the remote side allows (the runner wraps it in `timeout -k`)
    output_cap: int  # bytes of stdout kept (head + tail); stderr is capped by the runner
    binary: bool = False  # stdout is binary (pcap): offer a download, not text
    needs_root: bool = False  # runs root_tools: the runner feeds it the sudo password, if any
    # Seconds it waits by design (a capture window, a sample); the runner gives such a probe a channel of its
    # own, so a run takes about its slowest probe while quick probes share one channel.
    waits: int = 0


Params = Mapping[str, Any]


@dataclass(frozen=True)
class Probe:
    """A read-only diagnostic: typed parameters plus a renderer to one sh line.

    ``render`` receives parameters already cleaned by :meth:`validate` and must
    quote every one of them; ``timeout`` is seconds or a function of the
    cleaned parameters (captures last as long as asked, plus slack).
    """

    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    render: Callable[[Params], str] = field(repr=False, compare=False)
    timeout: int | Callable[[Params], int] = DEFAULT_TIMEOUT
    output_cap: int = TEXT_CAP
    binary: bool = False
    # Binaries the script runs as root (keys of diagnostics.probes.privilege.ROOT_COMMANDS), through
    # sudo when the login user is not root: the sudoers lines on the Access page come from these.
    root_tools: tuple[str, ...] = ()
    # Seconds the command waits by design (vmstat's one-second sample, a capture's window): 0 for a probe
    # that only reads and returns; a function of the cleaned parameters for captures.
    waits: int | Callable[[Params], int] = 0

    def validate(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Cleaned parameters with defaults filled; ProbeError on anything else."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ProbeError(f"{self.name}: parameters must be given as name/value pairs")
        known = {p.name for p in self.params}
        for key in raw:
            if key not in known:
                takes = ", ".join(p.name for p in self.params) or "nothing"
                raise ProbeError(
                    f"{key}: not a parameter of the {self.name} probe (it takes {takes})",
                    param=key if isinstance(key, str) else None,
                )
        return {p.name: p.clean(raw.get(p.name)) for p in self.params}

    def build(self, params: Mapping[str, Any] | None = None) -> ProbeCommand:
        """Validate and render: the command the runner will execute."""
        cleaned = self.validate(params)
        timeout = self.timeout(cleaned) if callable(self.timeout) else self.timeout
        if not 1 <= timeout <= MAX_TIMEOUT:
            raise ProbeError(f"{self.name}: timeout {timeout} s is outside 1..{MAX_TIMEOUT} s")
        return ProbeCommand(
            command=self.render(cleaned),
            timeout=timeout,
            output_cap=self.output_cap,
            binary=self.binary,
            needs_root=bool(self.root_tools),
            waits=self.waits(cleaned) if callable(self.waits) else self.waits,
        )
