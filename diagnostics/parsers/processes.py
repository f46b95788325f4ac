"""The processes probe (``ps -eo pid,ppid,user,stat,etimes,pcpu,rss,nlwp,args``, or ``ps auxww``) and the
fd_usage probe (``file-nr`` plus ``pid name open soft_limit`` lines) -> ``processes``, ``fd_usage``,
``file_nr``.

``ps`` goes through jc (its ``ps`` parser reads any column set by its header, so both our custom
columns and the ``ps auxww`` fallback); we only convert its strings to numbers and add the program
name. fd_usage is the probe's own format (see ``diagnostics.probes.system``): our own split.
"""

from __future__ import annotations

from typing import TypedDict, TypeVar

from diagnostics.parsers.sections import is_noise, jc_parse, lines_of, to_float, to_int


class Process(TypedDict):
    line_no: int | None
    pid: int | None
    ppid: int | None
    user: str | None
    stat: str | None
    etimes: int | None  # seconds since start
    pcpu: float | None
    rss_kb: int | None
    nlwp: int | None  # threads
    args: str
    name: str  # argv[0] without its path ("sshd: root@notty" -> "sshd"; kernel threads keep "[kthreadd]")


class FdUsage(TypedDict):
    line_no: int
    pid: int
    process: str | None
    open: int
    soft_limit: int | None  # None when unknown or unlimited
    ratio: float | None  # open / soft_limit


class FileNr(TypedDict):
    allocated: int
    unused: int
    max: int  # fs.file-max
    used_ratio: float | None  # (allocated - unused) / max: the system-wide share in use


class FdFacts(TypedDict):
    fd_usage: list[FdUsage]
    file_nr: list[FileNr]


def program_name(args: str) -> str:
    """The program name a tech would say: basename of argv[0], without a proctitle's trailing colon."""
    args = args.strip()
    if args.startswith("[") and args.endswith("]"):
        return args
    first = args.split(None, 1)[0] if args else ""
    return first.rsplit("/", 1)[-1].rstrip(":") or first


_N = TypeVar("_N", int, float)


def _number(value: object, kind: type[_N]) -> _N | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return kind(value)
    parsed = to_int(str(value)) if kind is int else to_float(str(value))
    return None if parsed is None else kind(parsed)


def parse_processes(text: str) -> list[Process]:
    numbered = [(n, line) for n, line in enumerate(lines_of(text), start=1) if line.strip() and not is_noise(line)]
    if not numbered:
        return []
    parsed = jc_parse("ps", [line for _, line in numbered]) or []
    # jc returns one row per line after the header; keep line numbers when that holds.
    line_nos = [n for n, _ in numbered[1:]] if len(parsed) == len(numbered) - 1 else [None] * len(parsed)
    rows: list[Process] = []
    for line_no, row in zip(line_nos, parsed, strict=True):
        args = str(row.get("command") or "")
        rows.append({
            "line_no": line_no, "pid": _number(row.get("pid"), int), "ppid": _number(row.get("ppid"), int),
            "user": row.get("user"), "stat": row.get("stat"), "etimes": _number(row.get("elapsed"), int),
            "pcpu": _number(row.get("cpu_percent"), float), "rss_kb": _number(row.get("rss"), int),
            "nlwp": _number(row.get("nlwp"), int), "args": args, "name": program_name(args),
        })  # fmt: skip
    return rows


def parse_fd_usage(text: str) -> FdFacts:
    usage: list[FdUsage] = []
    file_nr: list[FileNr] = []
    for line_no, line in enumerate(lines_of(text), start=1):
        fields = line.split()
        if len(fields) < 4 or is_noise(line):
            continue
        if fields[0] == "file-nr":
            allocated, unused, most = (to_int(f) for f in fields[1:4])
            if allocated is not None and unused is not None and most is not None:
                file_nr.append(
                    {
                        "allocated": allocated,
                        "unused": unused,
                        "max": most,
                        "used_ratio": round((allocated - unused) / most, 6) if most else None,
                    }
                )
            continue
        pid, opened, limit = to_int(fields[0]), to_int(fields[-2]), to_int(fields[-1])
        if pid is None or opened is None:
            continue  # the header, or a cut line
        name = " ".join(fields[1:-2])
        usage.append(
            {
                "line_no": line_no,
                "pid": pid,
                "process": None if name == "?" else name,
                "open": opened,
                "soft_limit": limit,
                "ratio": round(opened / limit, 6) if limit else None,
            }
        )
    return {"fd_usage": usage, "file_nr": file_nr}
