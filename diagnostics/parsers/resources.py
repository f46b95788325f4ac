"""The disk, memory and load probes -> ``filesystems``, ``memory``, ``vmstat_counters``, ``load``.

jc reads every format here: ``df`` (both ``-PT`` and ``-Pi``), ``proc_meminfo``, ``free``,
``proc_vmstat``, ``proc_loadavg``, ``uptime`` and ``vmstat``. What is ours is the join (df's two
listings by mountpoint), units (meminfo's kB become bytes) and turning jc's occasional strings
(``"inodes": "16777216"``, ``"iuse%": "4%"``) into numbers.
"""

from __future__ import annotations

from typing import Any, TypedDict

from diagnostics.parsers.sections import Section, jc_parse, split_sections, to_float, to_int


class Filesystem(TypedDict):
    mountpoint: str
    source: str | None
    fstype: str | None
    size_kb: int | None
    used_kb: int | None
    avail_kb: int | None
    use_pct: int | None
    inodes_use_pct: int | None


class Memory(TypedDict):
    mem_total: int | None  # bytes
    mem_available: int | None
    swap_total: int | None
    swap_free: int | None


class VmstatCounter(TypedDict):
    name: str
    value: int


class Load(TypedDict):
    load1: float | None
    load5: float | None
    load15: float | None
    nproc: int | None
    running: int | None  # runnable tasks now (/proc/loadavg's 4th field, before the slash)
    total_tasks: int | None
    run_queue: int | None  # vmstat's r in its second (one-second) sample
    cpu_iowait: int | None  # vmstat's wa, percent
    cpu_idle: int | None


class MemoryFacts(TypedDict):
    memory: list[Memory]
    vmstat_counters: list[VmstatCounter]


def _jc(parser: str, part: Section | None) -> Any:
    if part is None:
        return None
    lines = [line for _, line in part.numbered()]
    return jc_parse(parser, lines)


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return to_int(str(value).strip().rstrip("%"))


def _titled(sections: list[Section], title: str) -> Section | None:
    return next((s for s in sections if s.title == title), None)


def parse_disk(text: str) -> list[Filesystem]:
    sections = split_sections(text)
    space = _jc("df", _titled(sections, "df -PT")) or []
    inodes = _jc("df", _titled(sections, "df -Pi")) or []
    inode_use = {row.get("mounted_on"): _int(row.get("iuse%", row.get("iuse_percent"))) for row in inodes}
    rows: list[Filesystem] = []
    for row in space:
        mountpoint = row.get("mounted_on")
        if not mountpoint:
            continue
        rows.append({
            "mountpoint": mountpoint, "source": row.get("filesystem"), "fstype": row.get("type"),
            "size_kb": _int(row.get("1024_blocks")), "used_kb": _int(row.get("used")),
            "avail_kb": _int(row.get("available")), "use_pct": _int(row.get("capacity_percent")),
            "inodes_use_pct": inode_use.get(mountpoint),
        })  # fmt: skip
    seen = {row["mountpoint"] for row in rows}
    for row in inodes:  # df -PT may have timed out (a dead NFS server) while df -Pi answered
        mountpoint = row.get("mounted_on")
        if mountpoint and mountpoint not in seen:
            rows.append(
                {
                    "mountpoint": mountpoint,
                    "source": row.get("filesystem"),
                    "fstype": None,
                    "size_kb": None,
                    "used_kb": None,
                    "avail_kb": None,
                    "use_pct": None,
                    "inodes_use_pct": inode_use.get(mountpoint),
                }
            )
    return rows


def parse_memory(text: str) -> MemoryFacts:
    sections = split_sections(text)
    meminfo = _jc("proc_meminfo", _titled(sections, "/proc/meminfo")) or {}
    memory: list[Memory] = []
    if meminfo:

        def kib(key: str) -> int | None:
            value = _int(meminfo.get(key))
            return value * 1024 if value is not None else None

        memory.append(
            {
                "mem_total": kib("MemTotal"),
                "mem_available": kib("MemAvailable"),
                "swap_total": kib("SwapTotal"),
                "swap_free": kib("SwapFree"),
            }
        )
    elif free := _jc("free", _titled(sections, "free -b")):
        by_type = {str(row.get("type", "")).rstrip(":").lower(): row for row in free}
        mem, swap = by_type.get("mem", {}), by_type.get("swap", {})
        memory.append(
            {
                "mem_total": _int(mem.get("total")),
                "mem_available": _int(mem.get("available")),
                "swap_total": _int(swap.get("total")),
                "swap_free": _int(swap.get("free")),
            }
        )
    vmstat = _jc("proc_vmstat", _titled(sections, "/proc/vmstat")) or {}
    counters: list[VmstatCounter] = [
        {"name": name, "value": number} for name, value in vmstat.items() if (number := _int(value)) is not None
    ]
    return {"memory": memory, "vmstat_counters": counters}


def parse_load(text: str) -> list[Load]:
    sections = split_sections(text)
    loadavg = _jc("proc_loadavg", _titled(sections, "/proc/loadavg")) or {}
    if not loadavg:
        loadavg = _jc("uptime", _titled(sections, "uptime")) or {}
    nproc_part = _titled(sections, "nproc")
    nproc = next((_int(line) for _, line in nproc_part.numbered()), None) if nproc_part else None
    vmstat = _jc("vmstat", _titled(sections, "vmstat 1 2")) or []
    sample = vmstat[-1] if vmstat else {}
    if not loadavg and nproc is None and not sample:
        return []
    return [{
        "load1": to_float(str(loadavg.get("load_1m"))), "load5": to_float(str(loadavg.get("load_5m"))),
        "load15": to_float(str(loadavg.get("load_15m"))), "nproc": nproc,
        "running": _int(loadavg.get("running")), "total_tasks": _int(loadavg.get("available")),
        "run_queue": _int(sample.get("runnable_procs")), "cpu_iowait": _int(sample.get("io_wait_time")),
        "cpu_idle": _int(sample.get("idle_time")),
    }]  # fmt: skip
