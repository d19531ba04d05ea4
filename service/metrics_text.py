"""The Prometheus text exposition format, version 0.0.4: ``render`` and a strict ``parse``.

The format (prometheus.io/docs/instrumenting/exposition_formats): per family a ``# HELP name
text`` line (backslash and newline escaped) and a ``# TYPE name counter|gauge|histogram``
line, then one line per sample, ``name{label="value",...} number``, label values with
backslash, double quote and newline escaped.  Numbers are Go's ParseFloat syntax: ``+Inf``,
``-Inf`` and ``NaN`` spelled so.  A histogram's samples are its ``_bucket`` lines (cumulative,
``le`` last, ending at ``le="+Inf"``), ``_sum`` and ``_count``.

``parse`` reads back what ``render`` writes (and that subset of the format from anyone):
the tests check the exposition with it, since no Prometheus parser is installed here and
adding one for tests alone is not worth a dependency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .metrics import Family, Labels, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
KINDS = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})


def render(families: list[Family]) -> str:
    lines: list[str] = []
    for family in families:
        if not _NAME.match(family.name):
            raise ValueError(f"bad metric name {family.name!r}")
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            lines.append(f"{sample.name}{_labels_text(sample.labels)} {format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))  # counts read as integers
    return repr(float(value))


def _labels_text(labels: Labels) -> str:
    if not labels:
        return ""
    parts = []
    for name, value in labels:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"bad label name {name!r}")
        parts.append(f'{name}="{escape_label_value(value)}"')
    return "{" + ",".join(parts) + "}"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# -- parsing ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\Z")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|\Z)')
_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class _Reading:
    """The family being read: its samples so far."""

    name: str
    kind: str
    samples: list[Sample] = field(default_factory=list)

    def takes(self, sample_name: str) -> bool:
        if sample_name == self.name:
            return True
        return self.kind == "histogram" and sample_name in {
            f"{self.name}{suffix}" for suffix in _SUFFIXES
        }


def parse(text: str) -> list[Family]:
    """The families in ``text``, in order; ValueError on anything malformed.

    A sample belongs to the family whose TYPE line came last and whose name it is (or, for a
    histogram, plus a suffix); a sample of no declared family is an ``untyped`` one.
    """
    read: list[_Reading] = []
    helps: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")  # the text verbatim
            helps[name] = _unescape(help_text, help_text=True)
        elif line.startswith("# TYPE "):
            parts = line[len("# TYPE ") :].split()
            if len(parts) != 2 or parts[1] not in KINDS:
                raise ValueError(f"line {number}: bad TYPE line")
            read.append(_Reading(parts[0], parts[1]))
        elif not line.startswith("#"):  # else a comment
            sample = _parse_sample(line, number)
            if not read or not read[-1].takes(sample.name):
                read.append(_Reading(sample.name, "untyped"))
            read[-1].samples.append(sample)
    return [Family(r.name, r.kind, helps.get(r.name, ""), tuple(r.samples)) for r in read]


def _parse_sample(line: str, number: int) -> Sample:
    match = _SAMPLE.match(line)
    if match is None:
        raise ValueError(f"line {number}: not a sample: {line!r}")
    name, label_text, value_text = match.groups()
    labels: list[tuple[str, str]] = []
    if label_text:
        body, position = label_text[1:-1], 0
        while position < len(body):
            label = _LABEL.match(body, position)
            if label is None:
                raise ValueError(f"line {number}: bad labels {label_text!r}")
            labels.append((label.group(1), _unescape(label.group(2), help_text=False)))
            position = label.end()
    try:
        value = float(value_text)  # Python reads +Inf, -Inf and NaN as Go writes them
    except ValueError:
        raise ValueError(f"line {number}: bad value {value_text!r}") from None
    return Sample(name, tuple(labels), value)


def _unescape(text: str, *, help_text: bool) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        if following == "n":
            out.append("\n")
        elif following == "\\" or (following == '"' and not help_text):
            out.append(following)
        else:
            out.append("\\" + following)  # not an escape the format defines: kept as is
    return "".join(out)
