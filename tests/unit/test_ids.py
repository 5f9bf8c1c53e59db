from ulid import ULID

from agentsms.ids import has_prefix, new_id, new_ids


def test_bulk_ids_are_unique_sorted_valid_ulids() -> None:
    ids = new_ids("msg", 5000)
    assert len(ids) == 5000
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    for value in ids[:3] + ids[-3:]:
        assert has_prefix(value, "msg")
        ULID.from_str(value.removeprefix("msg_"))


def test_bulk_ids_sort_after_earlier_ids() -> None:
    earlier = new_id("msg")
    later = new_ids("msg", 10)
    assert all(earlier[:14] <= value[:14] for value in later)  # same or later millisecond
    assert new_ids("msg", 0) == []
    assert len(new_ids("msg", 1)) == 1


def test_two_bulk_runs_never_collide() -> None:
    first, second = new_ids("msg", 2000), new_ids("msg", 2000)
    assert not set(first) & set(second)
