"""A line naming only addresses this host does not have is not this host's evidence (``own_address``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.knowledge import matcher
from diagnostics.knowledge.addresses import host_addresses, named_addresses, names_this_host
from diagnostics.knowledge.signature import Document, SignatureError, compile_signature

FIXTURES = Path(__file__).parent / "fixtures"
DUPLICATE = "IPv6: eth0: IPv6 duplicate address fe80::38c0:6cff:fe41:c55a used by 3a:c0:6c:41:c5:5b detected!"


@pytest.mark.parametrize(("text", "expected"), [
    (DUPLICATE, {"fe80::38c0:6cff:fe41:c55a"}),  # the MAC address is not one
    ("martian source 10.0.0.5 from 192.168.1.1, on dev eth0", {"10.0.0.5", "192.168.1.1"}),
    ("conflict for [2001:DB8::1]:22 and fe80::1%eth0 and 192.0.2.9/24.", {"2001:db8::1", "fe80::1", "192.0.2.9"}),
    ("Nov 22 00:41:20 took 12.5 s, version 1.2.3, ratio 0.5", set()),
    (None, set()),
])  # fmt: skip
def test_the_addresses_a_line_names(text, expected):
    assert named_addresses(text) == expected


def test_a_row_is_kept_unless_it_names_addresses_none_of_them_the_hosts():
    own = host_addresses([[{"address": "10.0.0.5"}, {"address": "FE80::1"}]])
    assert own == {"10.0.0.5", "fe80::1"}
    assert names_this_host("martian source 10.0.0.5 from 192.168.1.1", own)
    assert names_this_host("duplicate address fe80:0::1 detected", own)
    assert not names_this_host("duplicate address fe80::2 detected", own)
    assert names_this_host("eth0: link is down", own)  # names no address
    assert names_this_host("duplicate address fe80::2 detected", None)  # nothing to compare with


def test_a_facts_leaf_drops_the_rows_of_other_hosts_when_the_interfaces_were_collected():
    signature = compile_signature(
        {"facts": "log_lines", "where": {"message": {"contains": "duplicate"}}, "own_address": "message"}
    )
    log = Document(probe="kernel_log", facts={"log_lines": [{"line_no": 1, "message": DUPLICATE}]})
    ours = Document(probe="interfaces", facts={"addresses": [{"address": "fe80::38c0:6cff:fe41:c55a"}]})
    theirs = Document(probe="interfaces", facts={"addresses": [{"address": "fe80::1"}, {"address": "10.0.0.5"}]})
    assert signature.evaluate([log, ours]).held
    assert not signature.evaluate([log, theirs]).held
    assert signature.evaluate([log]).held  # no interfaces evidence: nothing is dropped


def test_own_address_must_name_a_field_of_the_table():
    with pytest.raises(SignatureError, match="own_address"):
        compile_signature({"facts": "log_lines", "own_address": "nope"})


def test_a_duplicate_address_of_another_container_in_a_shared_ring_buffer_is_not_this_hosts(kb, make_run):
    kernel = (FIXTURES / "catalogue/duplicate-ip-address/positive.kernel_log.txt").read_text()
    interfaces = (FIXTURES / "interfaces/web.txt").read_text()
    assert "fe80::38c0:6cff:fe41:c55a" in interfaces

    def matched(evidence):
        return {m.symptom.key for m in matcher.match_run(run=make_run(evidence)) if m.matched}

    assert "duplicate-ip-address" in matched({"kernel_log": kernel, "interfaces": interfaces})
    elsewhere = interfaces.replace("fe80::38c0:6cff:fe41:c55a", "fe80::5054:ff:fe12:3456")  # another container
    assert "duplicate-ip-address" not in matched({"kernel_log": kernel, "interfaces": elsewhere})
