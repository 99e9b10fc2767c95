"""One reading of a URL for the policy and the fetch tool: spellings that two parsers read differently are
refused by both, and the decision is made on the address that is connected to.

Everything runs in a network namespace the test makes (tests/security/netns.py): the metadata and private
addresses are on its loopback with a listener each, names resolve through its own /etc/hosts, and a
name it does not list fails to resolve at once (there is no route out).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.netns import NETNS_AVAILABLE, run_in_netns

pytestmark = pytest.mark.skipif(not NETNS_AVAILABLE, reason="cannot make a network namespace here (needs root)")

# Spellings a browser, curl or the C resolver read as an address while Python reads a name (or the
# reverse), user info and backslashes that move the host: refused before anything is looked up.
AMBIGUOUS = [
    "http://127.0.0.1%25.example.com/",
    "http://169.254.169.254%25.example.com/latest/meta-data/",
    "http://[fe80::1%25lo]/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://127.0.0.1./",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://169.254.43518/latest/meta-data/",
    "http://0251.0376.0251.0376/latest/meta-data/",
    "http://0xa.0.0.5/",
    "http://user@169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:80@169.254.169.254/latest/meta-data/",
    "http://169.254.169.254\\@127.0.0.1/",
    "http://127.0.0.1\\@169.254.169.254/",
    "http://127.0.0.1 /",
]
# Cloud metadata however it is reached: refused with -y and even with a rule that names it.
METADATA = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://meta.example.com/latest/meta-data/",  # a name that resolves there
]
# Names that resolve to this machine or the private network: refused on the resolved address.
RESOLVED_INSIDE = ["http://sneaky.example.com/", "http://intranet.example.com/"]
CONTROL = "http://127.0.0.1/control"


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return run_in_netns("fetch_spellings", {"urls": [*AMBIGUOUS, *METADATA, *RESOLVED_INSIDE, CONTROL,
                                                     "http://nowhere.example.com/"]})


@pytest.mark.parametrize("url", AMBIGUOUS)
def test_ambiguous_spellings_are_refused_by_the_policy_and_the_tool(facts: dict[str, Any], url: str) -> None:
    seen = facts["outcome"][url]
    assert seen["yolo"][0] == "deny" and seen["ruled"][0] == "deny", seen
    assert seen["tool"][0] and "refused" in seen["tool"][1], seen


@pytest.mark.parametrize("url", METADATA)
def test_metadata_is_refused_with_yolo_and_with_a_rule(facts: dict[str, Any], url: str) -> None:
    seen = facts["outcome"][url]
    assert seen["yolo"][0] == "deny" and seen["ruled"][0] == "deny", seen
    assert "metadata" in seen["ruled"][1], seen
    assert seen["tool"][0], seen


@pytest.mark.parametrize("url", RESOLVED_INSIDE)
def test_names_are_judged_on_the_address_they_resolve_to(facts: dict[str, Any], url: str) -> None:
    seen = facts["outcome"][url]
    assert seen["yolo"][0] == "deny" and "resolves to" in seen["yolo"][1], seen
    assert seen["tool"][0] and "resolves to" in seen["tool"][1], seen


def test_nothing_but_the_plain_loopback_url_was_reached(facts: dict[str, Any]) -> None:
    assert facts["outcome"][CONTROL]["yolo"][0] == "allow" and not facts["outcome"][CONTROL]["tool"][0]
    assert facts["hits"] == {"127.0.0.1:/control": 1}


def test_a_name_outside_the_namespace_fails_to_resolve_without_leaving_it(facts: dict[str, Any]) -> None:
    assert facts["lookup"].startswith("failed"), facts["lookup"]
    seen = facts["outcome"]["http://nowhere.example.com/"]
    assert seen["tool"][0] and "resolve" in seen["tool"][1], seen
