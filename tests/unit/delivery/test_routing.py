"""Unit tests of target_kinesis.routing against SPEC.md "Routing (destinations)".

Name (track events) beats type beats `*`; matching ignores case; all rules at the
winning level receive the event; an unmatched event goes nowhere.
"""

from __future__ import annotations

import pytest

from target_kinesis.config.destinations import Destination, Rule
from target_kinesis.delivery.routing import Router

K = "kinesis"
F = "firehose"


def rule(event: str, stream: str, service: str = K) -> Rule:
    return Rule(event, Destination(service, stream))


def streams(found: tuple[Destination, ...]) -> list[str]:
    return [d.stream for d in found]


ROUTER = Router(
    [
        rule("*", "everything"),
        rule("track", "all-tracks"),
        rule("identify", "users"),
        rule("Order Completed", "orders"),
        rule("page", "pages"),
    ]
)


def test_name_beats_type_beats_star() -> None:
    assert streams(ROUTER.route("track", "Order Completed")) == ["orders"]
    assert streams(ROUTER.route("track", "Product Viewed")) == ["all-tracks"]
    assert streams(ROUTER.route("identify", None)) == ["users"]
    assert streams(ROUTER.route("group", None)) == ["everything"]
    assert streams(ROUTER.route("alias", None)) == ["everything"]


def test_star_only() -> None:
    router = Router([rule("*", "all")])
    for event_type in ("track", "identify", "page", "screen", "group", "alias"):
        assert streams(router.route(event_type, "Anything" if event_type == "track" else None)) == ["all"]


@pytest.mark.parametrize("name", ["order completed", "ORDER COMPLETED", "Order Completed", "oRDER cOMPLETED"])
def test_event_names_match_case_insensitively(name: str) -> None:
    # Event types reach the router lower-cased (the mapper normalises them); names do not.
    assert streams(ROUTER.route("track", name)) == ["orders"]


def test_rule_case_does_not_matter_either() -> None:
    router = Router([rule("Page", "Pages-Stream"), rule("IDENTIFY", "Users")])
    assert streams(router.route("page", None)) == ["Pages-Stream"]
    assert streams(router.route("identify", None)) == ["Users"]


def test_stream_names_are_used_exactly_as_given() -> None:
    router = Router([rule("*", "My.Stream_Name-1")])
    assert router.route("track", "x") == (Destination(K, "My.Stream_Name-1"),)


def test_fan_out_to_every_rule_of_the_winning_level() -> None:
    router = Router(
        [
            rule("Signed Up", "crm", F),
            rule("signed up", "analytics"),
            rule("track", "tracks"),
            rule("*", "all"),
        ]
    )
    found = router.route("track", "Signed Up")
    assert set(found) == {Destination(F, "crm"), Destination(K, "analytics")}
    assert len(found) == 2
    # The lower levels do not also receive it.
    assert Destination(K, "tracks") not in found
    assert Destination(K, "all") not in found


def test_fan_out_at_type_and_star_levels() -> None:
    router = Router([rule("identify", "a"), rule("identify", "b", F), rule("*", "c"), rule("*", "d")])
    assert set(router.route("identify", None)) == {Destination(K, "a"), Destination(F, "b")}
    assert set(router.route("page", None)) == {Destination(K, "c"), Destination(K, "d")}


def test_same_stream_on_two_services_is_two_destinations() -> None:
    router = Router([rule("*", "events", K), rule("*", "events", F)])
    assert set(router.route("track", "x")) == {Destination(K, "events"), Destination(F, "events")}


def test_duplicate_identical_rules_send_once() -> None:
    router = Router([rule("track", "s"), rule("track", "s"), rule("TRACK", "s"), rule(" track ", "s")])
    assert router.route("track", "x") == (Destination(K, "s"),)
    assert router.destinations == [Destination(K, "s")]


def test_non_track_events_do_not_match_by_name() -> None:
    router = Router([rule("Home", "home-pages"), rule("identify", "users"), rule("*", "rest")])
    # A page named "Home" is matched by its type (here: `*`), never by its name.
    assert streams(router.route("page", "Home")) == ["rest"]
    assert streams(router.route("screen", "Home")) == ["rest"]
    # An identify event whose name-like value equals another rule still goes by type.
    assert streams(router.route("identify", "Home")) == ["users"]
    # A track event named Home does match by name.
    assert streams(router.route("track", "Home")) == ["home-pages"]


def test_no_match_is_empty() -> None:
    router = Router([rule("Order Completed", "orders"), rule("identify", "users")])
    assert router.route("track", "Product Viewed") == ()
    assert router.route("page", None) == ()
    assert router.route("group", None) == ()
    assert Router([]).route("track", "x") == ()


def test_repeated_lookups_give_the_same_answer() -> None:
    # Results are cached; a cached answer must be the same as the first.
    router = Router([rule("a", "s1"), rule("track", "s2")])
    for _ in range(3):
        assert streams(router.route("track", "A")) == ["s1"]
        assert streams(router.route("track", "b")) == ["s2"]
        assert router.route("identify", None) == ()


def test_destinations_lists_each_destination_once() -> None:
    router = Router([rule("a", "s1"), rule("b", "s1"), rule("*", "s2", F), rule("c", "s2", K)])
    assert sorted(router.destinations) == sorted({Destination(K, "s1"), Destination(F, "s2"), Destination(K, "s2")})
    assert len(router.destinations) == 3


def test_destination_str_names_service_and_stream() -> None:
    assert str(Destination(F, "clicks")) == "firehose:clicks"
