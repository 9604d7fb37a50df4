"""Which hosts a certificate name covers (RFC 6125, as clients check it)."""

from __future__ import annotations

import pytest

from bastion.analysis.certificates import covers


@pytest.mark.parametrize(("name", "host", "covered"), [
    ("web.example.com", "web.example.com", True),
    ("WEB.example.com", "web.EXAMPLE.com", True),
    ("*.example.com", "web.example.com", True),
    ("*.example.com", "a.b.example.com", False),  # a wildcard covers one label
    ("*.example.com", "example.com", False),
    ("*.example.com", "*.example.com", True),  # a wildcard server host, the same wildcard
    ("web.example.com", "*.example.com", False),
    ("*.example.com", "*.b.example.com", False),
])
def test_covers(name: str, host: str, covered: bool) -> None:
    assert covers(name, host) is covered
