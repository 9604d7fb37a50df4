"""A layered map behaves exactly like the dict it stands for, through any sequence of changes
(Hypothesis against a plain dict), and folds its changes into a new base past the bound."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.layered import FOLD_AFTER, Layered, with_changes

keys = st.sampled_from([f"k{i}" for i in range(12)])
steps = st.lists(st.tuples(st.dictionaries(keys, st.integers(), max_size=4),
                           st.lists(keys, max_size=3)), max_size=40)


@given(st.dictionaries(keys, st.integers()), steps)
def test_equals_the_plain_dict(start: dict[str, int], changes) -> None:  # type: ignore[no-untyped-def]
    layered = with_changes(start, {})
    plain = dict(start)
    for updates, removed in changes:
        layered = with_changes(layered, updates, removed)
        for key in removed:
            if key not in updates:
                plain.pop(key, None)
        plain.update(updates)
        assert dict(layered) == plain
        assert len(layered) == len(plain)
        assert sorted(layered) == sorted(plain)
        assert all((k in layered) == (k in plain) for k in [f"k{i}" for i in range(12)])


def test_changes_share_the_base_until_the_bound() -> None:
    base = {f"k{i}": i for i in range(1000)}
    layered = with_changes(base, {"k1": -1})
    assert isinstance(layered, Layered) and layered._base is base
    for i in range(FOLD_AFTER + 1):
        layered = with_changes(layered, {f"k{i}": -i})
    assert isinstance(layered, Layered) and layered._base is not base
    assert layered["k3"] == -3 and layered["k999"] == 999 and len(layered) == 1000
