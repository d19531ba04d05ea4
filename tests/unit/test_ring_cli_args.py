"""Parsing of `torus ring` arguments: Swift's search values, add values, change values, options."""

from __future__ import annotations

import pytest

from tools.ring_args import (
    HelpRequested,
    add_from_options,
    change_from_options,
    parse_add_value,
    parse_change_value,
    parse_search_value,
    parse_weight,
    search_from_options,
    split_args,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d74", {"id": 74}),
        ("74", {"id": 74}),
        ("r4", {"region": 4}),
        ("z1", {"zone": 1}),
        ("z1-1.2.3.4", {"zone": 1, "ip": "1.2.3.4"}),
        ("1.2.3.4", {"ip": "1.2.3.4"}),
        ("-1.2.3.4", {"ip": "1.2.3.4"}),
        ("z1:5678", {"zone": 1, "port": 5678}),
        (":5678", {"port": 5678}),
        ("R5.6.7.8", {"replication_ip": "5.6.7.8"}),
        ("R:5678", {"replication_port": 5678}),
        ("1.2.3.4R5.6.7.8", {"ip": "1.2.3.4", "replication_ip": "5.6.7.8"}),
        ("/sdb1", {"device": "sdb1"}),
        ("_shiny", {"meta": "shiny"}),
        ("_snet: 5.6.7.8", {"meta": "snet: 5.6.7.8"}),
        ("[::1]", {"ip": "::1"}),
        ("-[::1]", {"ip": "::1"}),
        ("z1-[0:0::1]:5678", {"zone": 1, "ip": "::1", "port": 5678}),
        (
            "d74r4z1-1.2.3.4:5678R[fe80::1]:9/sdb1_snet",
            {
                "id": 74,
                "region": 4,
                "zone": 1,
                "ip": "1.2.3.4",
                "port": 5678,
                "replication_ip": "fe80::1",
                "replication_port": 9,
                "device": "sdb1",
                "meta": "snet",
            },
        ),
    ],
)
def test_search_values_in_swift_syntax(text: str, expected: dict) -> None:
    assert parse_search_value(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "names nothing"),
        ("z", "'z' must be followed by a number"),
        ("dx", "'d' must be followed by a number"),
        ("z1-1.2.3", "invalid IP address"),
        ("[::1", "unclosed"),
        (":0", "invalid port"),
        (":70000", "invalid port"),
        (":", "invalid port"),
        ("z1 junk", "cannot read ' junk'"),
        ("/", "device name"),
    ],
)
def test_bad_search_values_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid search value") as info:
        parse_search_value(text)
    assert why in str(info.value)


def test_add_value_defaults_region_to_1_and_replication_to_the_primary_address() -> None:
    assert parse_add_value("z2-10.0.0.1:6200/sda") == {
        "region": 1,
        "zone": 2,
        "ip": "10.0.0.1",
        "port": 6200,
        "device": "sda",
    }


def test_add_value_full_form_with_ipv6_replication_and_meta() -> None:
    assert parse_add_value("r3z2-[2001:DB8::1]:6200R[2001:db8::2]:6300/sdb_rack 7, row b") == {
        "region": 3,
        "zone": 2,
        "ip": "2001:db8::1",
        "port": 6200,
        "replication_ip": "2001:db8::2",
        "replication_port": 6300,
        "device": "sdb",
        "meta": "rack 7, row b",
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("r1-10.0.0.1:6200/sda", "expected [r<region>]z<zone>"),
        ("z1:10.0.0.1:6200/sda", "expected '-' after the zone"),
        ("z1-10.0.0:6200/sda", "invalid IP address"),
        ("z1-host.example:6200/sda", "expected an IP address"),
        ("z1-10.0.0.1/sda", "expected ':<port>'"),
        ("z1-10.0.0.1:/sda", "invalid port"),
        ("z1-10.0.0.1:65536/sda", "invalid port"),
        ("z1-10.0.0.1:6200", "expected '/<device>'"),
        ("z1-10.0.0.1:6200/", "device name"),
        ("z1-10.0.0.1:6200R10.0.0.2/sda", "expected ':<port>'"),
    ],
)
def test_bad_add_values_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid device") as info:
        parse_add_value(text)
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.9", {"ip": "10.0.0.9"}),
        (":6201", {"port": 6201}),
        (
            "10.0.0.9:6201/sdz_new meta",
            {"ip": "10.0.0.9", "port": 6201, "device": "sdz", "meta": "new meta"},
        ),
        ("R[::2]:6300", {"replication_ip": "::2", "replication_port": 6300}),
        ("_", {"meta": ""}),
    ],
)
def test_change_values(text: str, expected: dict) -> None:
    assert parse_change_value(text) == expected


@pytest.mark.parametrize("text", ["", "z1", "10.0.0.9:x"])
def test_bad_change_values(text: str) -> None:
    with pytest.raises(ValueError, match="invalid change value"):
        parse_change_value(text)


def test_split_args_keeps_dash_ip_search_values_positional() -> None:
    args = split_args(
        ["-10.0.0.1", "-[::1]", "--zone", "3", "--meta=a b", "-y", "5"],
        values=("zone", "meta"),
        flags={"-y": "yes"},
    )
    assert args.positional == ["-10.0.0.1", "-[::1]", "5"]
    assert args.options == {"zone": "3", "meta": "a b"}
    assert args.flags == {"yes"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus", "1"], "unknown option '--bogus'"),
        (["-x"], "unknown option '-x'"),
        (["--zone"], "option --zone needs a value"),
        (["--zone", "1", "--zone", "2"], "given twice"),
    ],
)
def test_split_args_rejects_bad_options(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_args(argv, values=("zone",))


def test_split_args_double_dash_ends_options_and_help_is_a_request() -> None:
    assert split_args(["--", "--zone"], values=("zone",)).positional == ["--zone"]
    with pytest.raises(HelpRequested):
        split_args(["d1", "--help"])


def test_long_option_forms() -> None:
    options = {"region": "2", "zone": "3", "ip": "[::1]", "port": "6200", "device": "sda",
               "weight": "1.5", "replication-port": "6300", "change-ip": "10.0.0.1",
               "change-meta": "m"}  # fmt: skip
    assert search_from_options(options) == {
        "region": 2,
        "zone": 3,
        "ip": "::1",
        "port": 6200,
        "device": "sda",
        "weight": 1.5,
        "replication_port": 6300,
    }
    assert change_from_options(options) == {"ip": "10.0.0.1", "meta": "m"}


def test_add_from_options_needs_the_address_and_weight_and_defaults_region() -> None:
    dev = add_from_options({"zone": "1", "ip": "10.0.0.1", "port": "6200", "device": "sda",
                            "weight": "100"})  # fmt: skip
    assert dev["region"] == 1 and dev["weight"] == 100.0
    with pytest.raises(ValueError, match="add needs --port, --weight"):
        add_from_options({"zone": "1", "ip": "10.0.0.1", "device": "sda"})


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "heavy", ""])
def test_bad_weights(text: str) -> None:
    with pytest.raises(ValueError, match="invalid weight"):
        parse_weight(text)
