"""How `make test` hands tests to its pytest-xdist workers: xdist's `--dist load`, in the suite's order
(long tests first, see conftest), with two rules added.

- **Lab tests wait more than they compute**: packet captures, resolver timeouts, dropped SYNs. At most
  half the workers run a lab test at a time, and the others take the CPU-bound tests meanwhile. Handed
  out purely in order, every worker would sit in the lab together and leave a core idle.
- **A worker keeps to its module**: it gets the next test of the module it is in before anything else,
  and a worker looking for a new module takes one no other worker is in, so a module-scoped fixture
  (a lab, a seeded desk, a live worker) is built once, not once per worker.

Only the controller uses this (the hook is xdist's); a run without xdist never sees it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from xdist.scheduler import LoadScheduling


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def is_lab(module: str) -> bool:
    """A module of real hosts in network namespaces (tests/lab.py): `test_*_lab.py`."""
    return module.removesuffix(".py").endswith("_lab")


class LabLaneScheduling(LoadScheduling):
    """`--dist load` whose next test for a worker is chosen by the two rules above, then by order."""

    def __init__(self, config, log=None) -> None:
        super().__init__(config, log)
        # By collection index, filled once the collection is known; the counts spare a scan of the
        # whole pending list when a module, or the lab, has nothing left (a crashed worker's tests
        # going back to the list are not counted, which only costs them the preference).
        self._modules: list[str] = []
        self._labs: list[bool] = []
        self._left: Counter[str] = Counter()
        self._last_module: dict[object, str] = {}

    def _send_tests(self, node, num: int) -> None:
        chosen = []
        for _ in range(min(num, len(self.pending))):
            index = self._choose(node)
            self.pending.remove(index)
            self.node2pending[node].append(index)
            self._last_module[node] = self._modules[index]
            self._left[self._modules[index]] -= 1
            self._left["lab" if self._labs[index] else "not lab"] -= 1
            chosen.append(index)
        if chosen:
            node.send_runtest_some(chosen)

    def _choose(self, node) -> int:
        if not self._modules:
            assert self.collection is not None
            self._modules = [module_of(nodeid) for nodeid in self.collection]
            self._labs = [is_lab(module) for module in self._modules]
            self._left = Counter(self._modules) + Counter("lab" if lab else "not lab" for lab in self._labs)
        module = self._last_module.get(node)
        if module is not None and self._left[module] > 0:
            same = next((i for i in self.pending if self._modules[i] == module), None)
            if same is not None:
                return same
        lanes = max(1, len(self.node2pending) // 2)
        in_lab = sum(
            1 for other, items in self.node2pending.items() if other is not node and any(self._labs[i] for i in items)
        )
        want_lab = in_lab < lanes
        if self._left["lab" if want_lab else "not lab"] == 0:
            return self.pending[0]
        # A module no other worker is in, if there is one of the kind wanted: two workers sharing a
        # module would build its fixtures twice.
        taken = {
            self._last_module.get(other) for other, items in self.node2pending.items() if other is not node and items
        }
        wanted = (i for i in self.pending if self._labs[i] == want_lab)
        first = next(wanted)
        if self._modules[first] not in taken:
            return first
        return next((i for i in wanted if self._modules[i] not in taken), first)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "load":
        return LabLaneScheduling(config, log)
    return None
