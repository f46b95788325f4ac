"""The generalisation lab: the five war stories rebuilt with other details, and healthy look-alikes.

Each module builds one war story's variants (other daemon, port, timeout, fd limit, interface name, log
format, send_timeout) or the decoys that resemble them but are healthy, as real faults on lab hosts
(``tests.lab``). A builder returns a ``Scenario``: the host to collect from, the fix a senior tech would
apply first (None for a decoy), the shipped playbook meant for it and the shipped playbooks that collect
its evidence. ``tests/test_generalisation_lab.py`` asserts on them; ``bench/diagnosis.py`` prints a table
from the same builders.
"""
