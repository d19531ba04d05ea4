"""The Prometheus text exposition format (service/metrics_text.py): golden text, escaping,
numbers, and parse(render(x)) == x under Hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.metrics import Family, Sample
from service.metrics_text import format_value, parse, render


def test_golden_text() -> None:
    families = [
        Family(
            "torus_requests_total",
            "counter",
            "Requests.\nSecond line \\ here.",
            (Sample("torus_requests_total", (("method", "GET"), ("class", "2xx")), 3.0),),
        ),
        Family(
            "h_seconds",
            "histogram",
            "H.",
            (
                Sample("h_seconds_bucket", (("le", "0.5"),), 1.0),
                Sample("h_seconds_bucket", (("le", "+Inf"),), 2.0),
                Sample("h_seconds_sum", (), 1.25),
                Sample("h_seconds_count", (), 2.0),
            ),
        ),
        Family("g", "gauge", "", (Sample("g", (("d", 'a"b\\c\nd'),), -0.5),)),
    ]
    assert render(families) == (
        "# HELP torus_requests_total Requests.\\nSecond line \\\\ here.\n"
        "# TYPE torus_requests_total counter\n"
        'torus_requests_total{method="GET",class="2xx"} 3\n'
        "# HELP h_seconds H.\n"
        "# TYPE h_seconds histogram\n"
        'h_seconds_bucket{le="0.5"} 1\n'
        'h_seconds_bucket{le="+Inf"} 2\n'
        "h_seconds_sum 1.25\n"
        "h_seconds_count 2\n"
        "# HELP g \n"
        "# TYPE g gauge\n"
        'g{d="a\\"b\\\\c\\nd"} -0.5\n'
    )
    assert parse(render(families)) == families


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (3.0, "3"),
        (-2.0, "-2"),
        (0.25, "0.25"),
        (1e-7, "1e-07"),
        (2.0**60, "1.152921504606847e+18"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_numbers(number: float, text: str) -> None:
    assert format_value(number) == text
    assert float(text) == number


def test_nan() -> None:
    assert format_value(math.nan) == "NaN"
    (family,) = parse("x NaN\n")
    assert math.isnan(family.samples[0].value)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError):
        render([Family("bad-name", "gauge", "", ())])
    with pytest.raises(ValueError):
        render([Family("ok", "gauge", "", (Sample("ok", (("bad-label", "v"),), 1.0),))])


@pytest.mark.parametrize(
    "text",
    [
        "# TYPE x nonsense\n",
        "x{a=unquoted} 1\n",
        'x{a="v" 1\n',
        "x one\n",
        "{} 1\n",
    ],
)
def test_parse_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)


def test_parse_takes_timestamps_comments_and_untyped_samples() -> None:
    text = "# a comment\nplain 1 1700000000000\n# HELP c C.\n# TYPE c counter\nc 2\n"
    assert parse(text) == [
        Family("plain", "untyped", "", (Sample("plain", (), 1.0),)),
        Family("c", "counter", "C.", (Sample("c", (), 2.0),)),
    ]


_names = st.text("abcxyz_019", min_size=1, max_size=8).filter(lambda n: not n[0].isdigit())
_label_values = st.text(max_size=10)
_values = st.floats(allow_nan=False) | st.integers(-(2**53), 2**53).map(float)


@st.composite
def _families(draw: st.DrawFn) -> list[Family]:
    names = draw(st.lists(_names, min_size=0, max_size=4, unique=True))
    out = []
    for name in names:
        label_names = draw(st.lists(_names.filter(lambda n: n != "le"), max_size=3, unique=True))
        samples = tuple(
            Sample(name, tuple((label, draw(_label_values)) for label in label_names), value)
            for value in draw(st.lists(_values, min_size=1, max_size=3))
        )
        help_text = draw(_label_values)
        out.append(Family(name, draw(st.sampled_from(["counter", "gauge"])), help_text, samples))
    return out


@given(_families())
def test_parse_reads_back_what_render_writes(families: list[Family]) -> None:
    assert parse(render(families)) == families
