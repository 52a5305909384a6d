"""What a run routed, per Singer stream (delivery/audit.py): the mistakes it shows."""

from __future__ import annotations

from target_kinesis.config.events import EventSpec
from target_kinesis.delivery.audit import RoutingAudit, closest_names


def test_closest_names_find_the_schema_table_form_first() -> None:
    assert closest_names("users", ["public-orders", "usr", "public-users"]) == ["public-users", "usr"]
    assert closest_names("orders", ["public.orders"]) == ["public.orders"]
    assert closest_names("ordres", ["orders", "users"]) == ["orders"]
    assert closest_names("zzz", ["orders"]) == []


def _audit(events: dict[str, EventSpec], *streams: tuple[str, int, int]) -> RoutingAudit:
    audit = RoutingAudit(events, ["identify"])
    for stream, read, unmapped in streams:
        audit.declare(stream)
        audit.count(stream, read, unmapped)
    return audit


def test_a_key_naming_no_stream_while_nothing_is_routed_is_a_mistake() -> None:
    audit = _audit({"users": EventSpec(type="identify")}, ("public-users", 2000, 2000), ("public-orders", 10, 10))
    assert audit.mistaken()
    line = audit.failure_line()
    assert line is not None
    assert line.startswith("events key 'users' matched no stream (closest: public-users)")
    assert "streams read: public-users, public-orders" in line
    assert "none of the 2010 record(s)" in line and "no STATE" in line


def test_nothing_routed_on_purpose_is_no_mistake() -> None:
    """Every events key names a declared stream: the records go nowhere on purpose."""
    audit = _audit({"public-users": EventSpec(type="identify")}, ("public-users", 0, 0), ("public-orders", 5, 5))
    assert not audit.mistaken() and audit.failure_line() is None
    warnings = audit.warnings()
    assert len(warnings) == 1
    assert warnings[0].startswith("stream 'public-orders': all 5 record(s) were routed nowhere")


def test_some_records_routed_make_it_warnings_not_an_error() -> None:
    audit = _audit({"users": EventSpec(type="identify")}, ("public-users", 20, 20), ("orders", 10, 0))
    assert not audit.mistaken()
    warnings = audit.warnings()
    assert warnings[0].startswith("events key 'users' matched no stream read")
    assert "closest: public-users" in warnings[0]
    assert "stream 'public-users': all 20 record(s) were routed nowhere: they became track events named " in warnings[1]
    assert "closest: users" in warnings[1]
    assert len(warnings) == 2, "a stream with routed records is not warned about"


def test_a_run_that_read_nothing_is_no_mistake() -> None:
    audit = _audit({"users": EventSpec()})
    assert not audit.mistaken()
    assert audit.warnings() == [
        "events key 'users' matched no stream read (streams read: none); its settings were not used"
    ]


def test_tallies_are_shared_by_stream() -> None:
    audit = RoutingAudit({}, ["*"])
    tally = audit.tally("s")
    tally[0] += 3
    assert audit.tally("s") is tally
    audit.count("s", 2, 1)
    assert audit.tally("s") == [5, 1]
