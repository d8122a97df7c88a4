"""Hypothesis over the import reader: any bytes give a clean scan or errors naming their line, never a crash.

Malformed UTF-8, NUL, huge and deeply nested JSON, formula cells and ragged CSV are mixed into otherwise
valid files. Pure (no database): `importers.scan` is what both the request and the RQ job run first.
"""

from __future__ import annotations

import io
import json
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.imports import importers

LABELS = ("positive", "negative")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NASTY_LINES = st.sampled_from(
    [
        b'{"text": "ok"}',
        b'{"text": "\xff\xfe bad utf-8"}',
        b'{"text": "nul \\u0000 inside"}',
        b'{"text": "raw nul \x00"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"text": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}",
        b'{"text": "=HYPERLINK(\\"http://x\\")", "label": "+positive"}',
        b'{"text": NaN}',
        b'{"text": 1e999}',
        b'{"text": "x", "id": 123456789012345678901234567890}',
        b'{"text": "x", "label": {"deep": [[[[]]]]}}',
        b"not json at all",
        b"",
        b"\xef\xbb\xbf" + b'{"text": "bom"}',
    ]
)
CSV_CELLS = st.sampled_from(["text", "=1+1", "+cmd", "-2", "@SUM(A1)", '"quoted, cell"', "\x00", "é", "", "positive"])


def _scan(data: bytes, fmt: str) -> importers.Scan:
    with tempfile.TemporaryFile() as spill:
        return importers.scan(
            io.BytesIO(data),
            file_format=fmt,
            mapping=importers.Mapping(),
            task_type="single_label",
            label_names=LABELS,
            spill=spill,
        )


def _assert_clear(result: importers.Scan) -> None:
    for error in result.errors:
        assert error.message and isinstance(error.message, str)
        assert error.line is None or error.line >= 1
        assert error.describe("f.jsonl").startswith("f.jsonl")


@FUZZ
@given(st.lists(st.one_of(NASTY_LINES, st.binary(max_size=200)), min_size=0, max_size=12))
def test_any_jsonl_scans_to_rows_or_errors_naming_their_line(lines):
    _assert_clear(_scan(b"\n".join(lines), importers.JSONL))


@FUZZ
@given(
    st.lists(st.lists(CSV_CELLS, min_size=0, max_size=5), min_size=0, max_size=8),
    st.lists(st.binary(max_size=60), max_size=3),
)
def test_any_csv_scans_to_rows_or_errors_naming_their_line(rows, junk):
    body = "\n".join(",".join(cells) for cells in [["text", "label"], *rows]).encode() + b"\n".join(junk)
    _assert_clear(_scan(body, importers.CSV))


@FUZZ
@given(st.text(min_size=1, max_size=50).filter(str.strip), st.sampled_from(["=", "+", "-", "@"]))
def test_formula_text_is_kept_as_text(text, lead):
    """A cell starting with = + - @ is data: stored as the same text, never evaluated or altered."""
    cell = lead + text.replace("\x00", "")
    line = json.dumps({"text": cell}).encode()
    result = _scan(line + b"\n", importers.JSONL)
    if not cell.strip() or result.error_count:
        return
    with tempfile.TemporaryFile() as spill:
        importers.scan(
            io.BytesIO(line), file_format=importers.JSONL, mapping=importers.Mapping(),
            task_type="single_label", label_names=LABELS, spill=spill,
        )
        rows = [row for chunk in importers.read_spill(spill) for row in chunk]
    assert rows[0][1] == cell


def test_deep_nesting_and_infinite_numbers_are_errors_on_their_line():
    deep = b'{"text": "x", "m": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    result = _scan(b'{"text": "fine"}\n' + deep + b'\n{"text": "x", "score": 1e999}\n', importers.JSONL)
    found = {(e.line, e.message) for e in result.errors}
    assert (2, importers.NESTED_TOO_DEEP) in found
    assert (3, importers.INVALID_JSON.format(reason=importers.NOT_FINITE.format(number="1e999"))) in found
