"""tests/scheduling.py, driven as xdist's controller drives it: four workers collect the same tests, the
scheduler hands them out, and each worker reports its tests done in turn."""

from __future__ import annotations

from types import SimpleNamespace

from tests.scheduling import LabLaneScheduling, is_lab, module_of


class Options:
    """The options xdist's controller reads when it builds a scheduler, as `make test` sets them."""

    values = {"tx": ["4*popen"], "maxschedchunk": 1, "dist": "load"}

    def getvalue(self, name: str):
        return self.values[name]

    getoption = getvalue


class Worker:
    """What the scheduler sees of an xdist worker: it is sent test indices and told to shut down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.received: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.received.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


# Long modules first, as tests/conftest.py sorts them: a browser module, two lab modules, then quick ones.
COLLECTION = [
    *(f"tests/test_browser_x.py::test_{i}" for i in range(6)),
    *(f"tests/test_a_lab.py::test_{i}" for i in range(8)),
    *(f"tests/test_b_lab.py::test_{i}" for i in range(8)),
    *(f"tests/test_quick_{m}.py::test_{i}" for m in range(4) for i in range(10)),
]


def run_to_the_end(scheduler: LabLaneScheduling, workers: list[Worker]) -> list[int]:
    """Complete each worker's running test in turn; returns, step by step, how many workers held a lab test."""
    in_lab = []
    while any(scheduler.node2pending.values()):
        in_lab.append(sum(any(is_lab(module_of(COLLECTION[i])) for i in scheduler.node2pending[w]) for w in workers))
        for worker in workers:
            if scheduler.node2pending[worker]:
                scheduler.mark_test_complete(worker, scheduler.node2pending[worker][0])
    return in_lab


def test_at_most_half_the_workers_hold_lab_tests_and_each_keeps_to_its_module():
    scheduler = LabLaneScheduling(Options())  # type: ignore[arg-type]
    workers = [Worker(f"gw{i}") for i in range(4)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()

    in_lab = run_to_the_end(scheduler, workers)

    # Every test went to exactly one worker.
    sent = sorted(i for worker in workers for i in worker.received)
    assert sent == list(range(len(COLLECTION)))
    # Two lab lanes, both used from the start, never three.
    assert max(in_lab) == 2 and in_lab[0] == 2
    # A lab module stays on the worker that began it: its module fixture (the lab) is built once.
    for module in ("tests/test_a_lab.py", "tests/test_b_lab.py"):
        holders = {w.name for w in workers for i in w.received if COLLECTION[i].startswith(module)}
        assert len(holders) == 1, (module, holders)
    # The browser module, first in the order, went to the workers outside the lab.
    lab_workers = {w.name for w in workers for i in w.received if is_lab(module_of(COLLECTION[i]))}
    browser_workers = {w.name for w in workers for i in w.received if "browser" in COLLECTION[i]}
    assert browser_workers and not browser_workers & lab_workers
