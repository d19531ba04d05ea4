"""Daemon gauges from recon records (service/metrics_daemons.py), written by the daemons' own
writer (replicator/recon.py), so the two stay in step."""

from __future__ import annotations

from pathlib import Path

from replicator import recon
from service.metrics_daemons import decode, families, read_last_passes
from service.metrics_text import parse, render


def record(daemon: str, ok: bool = True, **stats: object) -> recon.PassRecord:
    return recon.PassRecord(
        daemon=daemon,
        devices="/srv/node",
        host="node1",
        pid=42,
        started_at=1000.0,
        duration_s=2.5,
        ok=ok,
        error=None if ok else "OSError: boom",
        stats=stats,
    )


def gauges(devices: Path, now: float) -> dict[tuple[str, str], float]:
    """(metric name, daemon label or "") -> value, through the text format and back."""
    passes, unreadable = read_last_passes(devices)
    out = {}
    for family in parse(render(families(passes, unreadable, now))):
        assert family.kind == "gauge"
        for sample in family.samples:
            out[sample.name, dict(sample.labels).get("daemon", "")] = sample.value
    return out


def test_each_daemons_last_pass_becomes_gauges(tmp_path: Path) -> None:
    auditor = record("object-auditor", objects=7, quarantined=1, throttled_s=0.25, note="text")
    recon.write(recon.recon_path(tmp_path, "object-auditor"), auditor)
    replicator = record("object-replicator", partitions=3, **{"odd-name": 2, "ok": 5})
    recon.write(recon.recon_path(tmp_path, "object-replicator"), replicator)
    recon.write(recon.recon_path(tmp_path, "object-updater"), record("object-updater", ok=False))
    (tmp_path / "sda").mkdir()  # a device: not a record
    seen = gauges(tmp_path, now=1010.0)
    assert seen["torus_daemon_last_pass_objects", "object-auditor"] == 7
    assert seen["torus_daemon_last_pass_quarantined", "object-auditor"] == 1
    assert seen["torus_daemon_last_pass_throttled_s", "object-auditor"] == 0.25
    assert ("torus_daemon_last_pass_note", "object-auditor") not in seen  # text: no gauge
    assert seen["torus_daemon_last_pass_partitions", "object-replicator"] == 3
    assert seen["torus_daemon_last_pass_odd_name", "object-replicator"] == 2  # made a name
    for daemon in ("object-auditor", "object-replicator", "object-updater"):
        assert seen["torus_daemon_last_pass_duration_seconds", daemon] == 2.5
        assert seen["torus_daemon_last_pass_age_seconds", daemon] == 1010.0 - 1002.5
    # "ok" is ours (did the pass complete); a counter of that name does not overwrite it.
    assert seen["torus_daemon_last_pass_ok", "object-replicator"] == 1
    assert seen["torus_daemon_last_pass_ok", "object-updater"] == 0
    assert seen["torus_daemon_recon_unreadable", ""] == 0


def test_unreadable_records_are_counted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "object-auditor.recon").write_bytes(b"{not json")
    (tmp_path / "object-updater.recon").write_bytes(b'{"v": 1, "daemon": "x"}')
    (tmp_path / ".object-auditor.recon.99.tmp").write_bytes(b"half")  # a write in progress
    seen = gauges(tmp_path, now=0.0)
    assert seen == {("torus_daemon_recon_unreadable", ""): 2}


def test_a_missing_devices_directory_has_no_passes(tmp_path: Path) -> None:
    assert read_last_passes(tmp_path / "nowhere") == ([], 0)


def test_decode_reads_the_writers_bytes() -> None:
    last = decode(recon.encode(record("object-auditor", objects=1, flag=True)))
    assert (last.daemon, last.ended_at, last.ok) == ("object-auditor", 1002.5, True)
    assert last.counters == {"objects": 1.0, "flag": 1.0}
