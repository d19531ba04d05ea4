"""`torus ring`: every command in-process through ``main``, exit codes, files on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ring import ringfile
from ring.builder import RingBuilder
from tools import ring_cli

T0 = 1_700_000_000.0


class Clock:
    """The builder's and the backups' clock; tests move it by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs `torus ring <builder> ...` in-process against one builder file."""

    builder: Path
    capsys: pytest.CaptureFixture[str]
    clock: Clock

    @property
    def ring(self) -> Path:
        return self.builder.with_suffix(".ring")

    def __call__(self, *argv: str) -> Result:
        code = ring_cli.main([str(self.builder), *argv], clock=self.clock)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def ok(self, *argv: str) -> Result:
        result = self(*argv)
        assert result.code == 0, result
        return result

    def load(self) -> RingBuilder:
        return RingBuilder.load(str(self.builder), clock=self.clock)


DEVICES = [
    "r1z1-10.0.0.1:6200/sda",
    "r1z2-10.0.0.2:6200/sda",
    "r1z3-10.0.0.3:6200/sda",
    "r1z4-10.0.0.4:6200R10.1.0.4:6300/sdb_ssd",
]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path / "object.builder", capsys, Clock())


@pytest.fixture
def built(cli: Cli) -> Cli:
    """64 partitions, 3 replicas, min_part_hours 1, four devices in four zones, not rebalanced."""
    cli.ok("create", "6", "3", "1")
    cli.ok("add", *[arg for dev in DEVICES for arg in (dev, "100")])
    return cli


@pytest.fixture
def balanced(built: Cli) -> Cli:
    built.ok("rebalance", "--seed", "1")
    return built


def assert_error(result: Result, *words: str) -> None:
    """Exit 2 with exactly one `torus ring: error:` line on stderr, and no traceback."""
    assert result.code == 2, result
    assert result.err.startswith("torus ring: error: "), result.err
    assert result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, (word, result.err)


# -- create, add, summary ------------------------------------------------------


def test_create_then_summary(cli: Cli) -> None:
    assert cli("create", "6", "3", "1").code == 0
    out = cli.ok().out
    assert f"{cli.builder}, build version 0, id {cli.load().id}" in out
    assert "64 partitions, 3.000000 replicas, 0 regions, 0 zones, 0 devices, 0.00 balance" in out
    assert "reassigned is 1 (0:00:00 remaining)" in out
    assert "The overload factor is 0.00% (0.000000)" in out
    assert f"Ring file {cli.ring} not found" in out
    assert os.path.isdir(cli.builder.parent / "backups")


def test_create_refuses_an_existing_builder_file(built: Cli) -> None:
    before = built.builder.read_bytes()
    assert_error(built("create", "8", "3", "1"), "already exists")
    assert built.builder.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["6", "3"], ["create takes"]),
        (["x", "3", "1"], ["invalid part_power"]),
        (["6", "0.5", "1"], ["replicas"]),
        (["6", "3", "-1"], ["invalid min_part_hours"]),
    ],
)
def test_create_rejects_bad_parameters(cli: Cli, args: list[str], words: list[str]) -> None:
    assert_error(cli("create", *args), *words)
    assert not cli.builder.exists()


def test_add_compact_forms(built: Cli) -> None:
    out = built.ok(
        "add", "z5-[2001:DB8::5]:6200/sdc_rack 7", "50", "r2z1-10.0.0.9:6201/sdd", "0"
    ).out
    assert 'Device d4r1z5-[2001:db8::5]:6200R[2001:db8::5]:6200/sdc_"rack 7" with 50.0' in out
    devs = {d.id: d for d in built.load().devices()}
    assert len(devs) == 6
    assert (devs[3].replication_ip, devs[3].replication_port, devs[3].meta) == (
        "10.1.0.4",
        6300,
        "ssd",
    )
    assert (devs[4].region, devs[4].zone, devs[4].ip, devs[4].weight) == (1, 5, "2001:db8::5", 50)
    assert (devs[5].region, devs[5].port, devs[5].weight) == (2, 6201, 0.0)


def test_add_long_options(built: Cli) -> None:
    built.ok(
        "add", "--zone", "5", "--ip", "10.0.0.5", "--port", "6200", "--device", "sdx",
        "--weight", "25", "--replication-ip", "10.1.0.5", "--meta", "new",
    )  # fmt: skip
    dev = built.load().device(4)
    assert (dev.region, dev.zone, dev.ip, dev.replication_ip, dev.replication_port) == (
        1,
        5,
        "10.0.0.5",
        "10.1.0.5",
        6200,
    )
    assert (dev.device, dev.weight, dev.meta) == ("sdx", 25.0, "new")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["z5-10.0.0.5:6200/sdc", "-10"], ["invalid weight '-10'"]),
        (["z5-10.0.0.5:6200/sdc", "heavy"], ["invalid weight"]),
        (["z5-10.0.0.5:6200/sdc"], ["pairs"]),
        (["z5-10.0.0:6200/sdc", "1"], ["invalid IP address"]),
        (["z5-10.0.0.5:99999/sdc", "1"], ["invalid port"]),
        (["z5-10.0.0.5:62a/sdc", "1"], ["expected '/<device>'"]),
        (["z5-10.0.0.5/sdc", "1"], ["expected ':<port>'"]),
        (["10.0.0.5:6200/sdc", "1"], ["expected [r<region>]z<zone>"]),
        (["z1-10.0.0.1:6200/sda", "1"], ["already in the ring"]),
        (["z5-10.0.0.5:6200/sdc", "1", "z6-10.0.0.6:6200/sdc", "-1"], ["invalid weight"]),
        (["--zone", "5", "--ip", "10.0.0.5", "--device", "sdc", "--weight", "1"], ["--port"]),
        (
            ["--zone", "5", "--ip", "10.0.0.5", "--port", "0", "--device", "d", "--weight", "1"],
            ["invalid port"],
        ),
        (["--frobnicate", "1"], ["unknown option"]),
    ],
)
def test_add_rejects_bad_input_and_leaves_the_file_alone(
    built: Cli, args: list[str], words: list[str]
) -> None:
    before = built.builder.read_bytes()
    assert_error(built("add", *args), *words)
    assert built.builder.read_bytes() == before


def test_summary_shows_devices_flags_and_ring_state(balanced: Cli) -> None:
    balanced.ok("remove", "d2")
    out = balanced.ok().out
    assert "64 partitions, 3.000000 replicas, 1 regions, 4 zones, 4 devices" in out
    assert "reassigned is 1 (1:00:00 remaining)" in out  # the clock has not moved
    assert f"Ring file {balanced.ring} is obsolete" in out
    lines = out.splitlines()
    header = lines.index("Devices:") + 1
    assert lines[header].split()[:3] == ["id", "region", "zone"]
    rows = {line.split()[0]: line for line in lines[header + 1 :]}
    assert set(rows) == {"0", "1", "2", "3"}
    assert "10.0.0.4:6200" in rows["3"] and "10.1.0.4:6300" in rows["3"]
    assert rows["3"].rstrip().endswith("ssd")
    assert "removing" in rows["2"] and "removing" not in rows["1"]
    held = balanced.load().parts_held()
    assert rows["0"].split()[7] == str(held[0])


# -- rebalance -----------------------------------------------------------------


def test_rebalance_writes_a_ring_that_matches_the_builder(built: Cli) -> None:
    out = built.ok("rebalance", "--seed", "1").out
    assert "Reassigned 192 (100.00%) partition-replicas. Balance is now" in out
    assert "Dispersion is now 0.00" in out
    builder = built.load()
    assert not builder.devs_changed
    assert ringfile.read(built.ring) == builder.get_ring()
    assert f"Ring file {built.ring} is up-to-date" in built.ok().out


def test_rebalance_again_right_away_is_held_back_by_min_part_hours(balanced: Cli) -> None:
    files = (balanced.builder.read_bytes(), balanced.ring.read_bytes())
    result = balanced("rebalance")
    assert result.code == 1
    assert "min_part_hours: 1 hours" in result.out and "remaining" in result.out
    assert (balanced.builder.read_bytes(), balanced.ring.read_bytes()) == files


def test_a_new_device_waits_for_min_part_hours_then_the_clock_lets_it_fill(balanced: Cli) -> None:
    balanced.ok("add", "z5-10.0.0.5:6200/sda", "100")
    before = balanced.builder.read_bytes()
    held_back = balanced("rebalance")
    assert held_back.code == 1 and "min_part_hours" in held_back.out
    assert balanced.builder.read_bytes() == before  # the pending add is kept, not lost
    balanced.clock.now += 3601
    assert "Reassigned 0 " not in balanced.ok("rebalance").out
    assert balanced.load().parts_held()[4] > 0


def test_pretend_min_part_hours_passed_lets_the_next_rebalance_move(balanced: Cli) -> None:
    balanced.ok("add", "z5-10.0.0.5:6200/sda", "100")
    balanced.ok("pretend_min_part_hours_passed")
    assert balanced.load().min_part_seconds_left() == 0
    balanced.ok("rebalance")
    assert balanced.load().parts_held()[4] > 0


def test_rebalance_with_nothing_to_do_exits_1_and_force_writes_anyway(built: Cli) -> None:
    built.ok("set_min_part_hours", "0")
    built.ok("rebalance")
    version = built.load().version
    result = built("rebalance")
    assert result.code == 1 and "no need" in result.out
    assert built.load().version == version
    built.ok("rebalance", "--force")
    assert built.load().version > version
    assert ringfile.read(built.ring).version == built.load().version


def test_rebalance_that_misses_the_plan_saves_and_warns(built: Cli) -> None:
    built.ok("rebalance", "--seed", "1")
    built.ok("add", "z5-10.0.0.5:6200/sda", "100", "z6-10.0.0.6:6200/sda", "100",
             "z7-10.0.0.7:6200/sda", "100", "z8-10.0.0.8:6200/sda", "100")  # fmt: skip
    built.ok("pretend_min_part_hours_passed")
    result = built("rebalance", "--seed", "1")
    assert result.code == 1
    assert "NOTE: Balance of" in result.out and "rebalance/repush" in result.out
    assert ringfile.read(built.ring) == built.load().get_ring()  # saved all the same


def test_rebalance_with_fewer_weighted_devices_than_replicas_fails(cli: Cli) -> None:
    cli.ok("create", "6", "3", "1")
    cli.ok("add", "z1-10.0.0.1:6200/sda", "100", "z2-10.0.0.2:6200/sda", "100",
           "z3-10.0.0.3:6200/sda", "0")  # fmt: skip
    before = cli.builder.read_bytes()
    assert_error(cli("rebalance"), "replicas need at least 3 devices")
    assert cli.builder.read_bytes() == before and not cli.ring.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seed", "x"], ["invalid seed"]),
        (["1", "2"], ["one seed at most"]),
        (["--bogus"], ["unknown option"]),
    ],
)
def test_rebalance_rejects_bad_arguments(built: Cli, args: list[str], words: list[str]) -> None:
    assert_error(built("rebalance", *args), *words)
    assert not built.ring.exists()


def test_remove_then_rebalance_takes_the_device_out(balanced: Cli) -> None:
    out = balanced.ok("remove", "z4-10.0.0.4/sdb").out
    assert 'd3r1z4-10.0.0.4:6200R10.1.0.4:6300/sdb_"ssd" marked for removal' in out
    assert balanced.load().is_removed(3)
    result = balanced.ok("rebalance")  # removed devices ignore min_part_hours
    assert "Reassigned 48 " in result.out
    assert [d.id for d in balanced.load().devices()] == [0, 1, 2]
    ring = ringfile.read(balanced.ring)
    assert all(3 not in row for row in ring.replica2part2dev)
    assert_error(balanced("search", "d3"), "no device matches")


# -- changing devices ------------------------------------------------------------


def test_several_matches_without_yes_change_nothing(built: Cli) -> None:
    before = built.builder.read_bytes()
    for argv in (["remove", "r1"], ["set_weight", "r1", "5"], ["set_info", ":6200", "_x"]):
        result = built(*argv)
        assert_error(result, "matches 4 devices", "--yes")
        assert result.out.count("    d") == 4  # the matches are listed, one per line
    assert built.builder.read_bytes() == before


def test_yes_applies_a_change_to_every_match(built: Cli) -> None:
    built.ok("set_weight", "-10.0.0.1", "10", "z2", "20", "--yes")
    built.ok("set_weight", "--region", "1", "--port", "6200", "7", "--yes")
    assert [d.weight for d in built.load().devices()] == [7, 7, 7, 7]
    built.ok("remove", "--region", "1", "--yes")
    assert all(built.load().is_removed(i) for i in range(4))


def test_set_weight_pairs(built: Cli) -> None:
    out = built.ok("set_weight", "d0", "50", "1", "25.5").out
    assert 'd0r1z1-10.0.0.1:6200R10.0.0.1:6200/sda_"" weight set to 50.0' in out
    weights = {d.id: d.weight for d in built.load().devices()}
    assert weights == {0: 50.0, 1: 25.5, 2: 100.0, 3: 100.0}
    assert built.load().devs_changed


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["set_weight", "d0", "-1"], ["invalid weight '-1'"]),
        (["set_weight", "d0", "50", "d1"], ["pairs"]),
        (["set_weight", "d0", "50", "d9", "5"], ["no device matches 'd9'"]),
        (["set_weight", "--zone", "1", "5", "6"], ["exactly one new weight"]),
        (["remove", "d9"], ["no device matches 'd9'"]),
        (["remove"], ["needs a search value"]),
        (["remove", "d1", "--zone", "1"], ["not both"]),
        (["remove", "z1-10.0.0.1:6200:1"], ["invalid search value"]),
        (["set_info", "d9", "_m"], ["no device matches"]),
        (["set_info", "d0", "z1"], ["invalid change value"]),
        (["set_info", "d0", "10.0.0.2:6200/sda"], ["already in the ring as id 1"]),
        (["set_info", "--change-meta", "x"], ["needs search options"]),
        (["set_region", "d0", "x"], ["invalid region"]),
        (["set_zone", "d0"], ["pairs"]),
    ],
)
def test_device_changes_reject_bad_input(built: Cli, argv: list[str], words: list[str]) -> None:
    before = built.builder.read_bytes()
    assert_error(built(*argv), *words)
    assert built.builder.read_bytes() == before


def test_set_info_compact_and_long_forms(built: Cli) -> None:
    out = built.ok("set_info", "d0", "10.0.0.9:6201R10.1.0.9:6301/sdz_moved").out
    assert 'is now d0r1z1-10.0.0.9:6201R10.1.0.9:6301/sdz_"moved"' in out
    built.ok("set_info", "--ip", "10.0.0.2", "--change-ip", "10.0.0.22", "--change-meta", "m")
    built.ok("set_region", "d2", "2")
    built.ok("set_zone", "d3", "9")
    devs = {d.id: d for d in built.load().devices()}
    assert (devs[0].ip, devs[0].port, devs[0].replication_ip, devs[0].replication_port) == (
        "10.0.0.9",
        6201,
        "10.1.0.9",
        6301,
    )
    assert (devs[0].device, devs[0].meta) == ("sdz", "moved")
    assert (devs[1].ip, devs[1].meta, devs[1].port) == ("10.0.0.22", "m", 6200)
    assert (devs[2].region, devs[3].zone) == (2, 9)


def test_set_replicas_overload_and_min_part_hours(built: Cli) -> None:
    assert "now 3.500000" in built.ok("set_replicas", "3.5").out
    assert "now 10.00% (0.100000)" in built.ok("set_overload", "10%").out
    builder = built.load()
    assert (builder.replicas, builder.overload) == (3.5, 0.1)
    built.ok("set_overload", "0.25")
    assert built.load().overload == 0.25
    warned = built("set_overload", "2")
    assert warned.code == 1 and "over 100%" in warned.out
    assert built.load().overload == 2.0  # done, with a warning
    built.ok("set_min_part_hours", "12")
    assert built.load().min_part_hours == 12
    built.ok("rebalance")
    assert [len(row) for row in ringfile.read(built.ring).replica2part2dev] == [64, 64, 64, 32]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["set_replicas", "0.5"], ["replicas must be"]),
        (["set_replicas", "three"], ["invalid replicas"]),
        (["set_replicas"], ["takes one argument"]),
        (["set_overload", "-5%"], ["overload must be"]),
        (["set_overload", "lots"], ["invalid overload"]),
        (["set_min_part_hours", "-1"], ["invalid min_part_hours"]),
        (["set_min_part_hours", "1000"], ["min_part_hours must be"]),
    ],
)
def test_ring_parameters_reject_bad_values(built: Cli, argv: list[str], words: list[str]) -> None:
    before = built.builder.read_bytes()
    assert_error(built(*argv), *words)
    assert built.builder.read_bytes() == before


# -- reports -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "ids"),
    [
        (["d1"], ["1"]),
        (["2"], ["2"]),
        (["z1"], ["0"]),
        (["-10.0.0.3"], ["2"]),
        (["R10.1.0.4:6300"], ["3"]),
        (["/sdb"], ["3"]),
        (["_ss"], ["3"]),
        (["r1:6200"], ["0", "1", "2", "3"]),
        (["--zone", "2", "--device", "sda"], ["1"]),
        (["--weight", "100"], ["0", "1", "2", "3"]),
    ],
)
def test_search_prints_the_matching_devices(built: Cli, argv: list[str], ids: list[str]) -> None:
    lines = built.ok("search", *argv).out.splitlines()
    assert lines[0] == "Devices:" and lines[1].split()[0] == "id"
    assert [line.split()[0] for line in lines[2:]] == ids


def test_search_without_a_match_is_an_error(built: Cli) -> None:
    assert_error(built("search", "z9"), "no device matches 'z9'")
    assert_error(built("search"), "needs a search value")


def test_list_and_list_devices_print_every_device(balanced: Cli) -> None:
    listed = balanced.ok("list").out
    assert balanced.ok("list_devices").out == listed
    assert [line.split()[0] for line in listed.splitlines()[2:]] == ["0", "1", "2", "3"]


def test_list_parts_counts_replicas_on_matching_devices(balanced: Cli) -> None:
    lines = balanced.ok("list_parts", "d0", "d1").out.splitlines()
    assert lines[0] == "Partition   Matches"
    ring = ringfile.read(balanced.ring)
    expected = {
        part: sum(row[part] in (0, 1) for row in ring.replica2part2dev) for part in range(64)
    }
    listed = {int(p): int(n) for p, n in (line.split() for line in lines[1:])}
    assert listed == {p: n for p, n in expected.items() if n}
    assert [n for n in listed.values()] == sorted(listed.values(), reverse=True)


def test_validate(built: Cli) -> None:
    assert_error(built("validate"), "never been rebalanced")
    built.ok("rebalance")
    assert "is valid" in built.ok("validate").out


def test_dispersion_report_lists_tiers(balanced: Cli) -> None:
    quiet = balanced.ok("dispersion")
    assert quiet.out.startswith("Dispersion is 0.000000, Balance is")
    assert "Tier" not in quiet.out  # nothing at risk: no tier rows without -v
    assert "Required overload is 0.000000%" in quiet.out
    lines = balanced.ok("dispersion", "-v").out.splitlines()
    header = next(line for line in lines if line.startswith("Tier"))
    assert header.split() == ["Tier", "Parts", "%", "Max", "0", "1", "2", "3"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[lines.index(header) + 2 :]}
    assert rows["r1"] == ["192", "0.00", "3", "0", "0", "0", "64"]
    zone = rows["r1z4"]
    assert zone[2] == "1" and int(zone[3]) + int(zone[4]) == 64 and zone[5:] == ["0", "0"]
    assert "r1z4-10.0.0.4/sdb" in rows
    zones = balanced.ok("dispersion", r"r\d+z\d+$", "-v").out.splitlines()
    assert [line.split()[0] for line in zones[5:]] == ["r1z1", "r1z2", "r1z3", "r1z4"]
    assert_error(balanced("dispersion", "r1("), "invalid tier filter")


def test_dispersion_at_risk_exits_1_and_names_the_worst_tier(cli: Cli) -> None:
    cli.ok("create", "6", "2", "1")
    # Two replicas, and weight puts nearly everything in zone 1: one replica per
    # partition in zone 1 is all dispersion allows, so the rest are at risk.
    cli.ok("add", "z1-10.0.0.1:6200/sda", "100", "z1-10.0.0.2:6200/sda", "100",
           "z2-10.0.0.3:6200/sda", "1")  # fmt: skip
    rebalanced = cli("rebalance")
    assert rebalanced.code == 1 and "NOTE: Dispersion of" in rebalanced.out
    report = cli("dispersion")
    assert report.code == 1
    assert "Worst tier is" in report.out and "(r1z1)" in report.out
    # zone 2 weighs 2/201 of a replica and dispersion wants a whole one there
    assert "Required overload is 9950.000000%" in report.out
    rows = [line.split()[0] for line in report.out.splitlines() if line.startswith("r1")]
    assert rows == ["r1z1"]  # without -v only tiers with replicas at risk


def test_dispersion_before_rebalance_is_an_error(built: Cli) -> None:
    assert_error(built("dispersion"), "not been rebalanced")
