"""Spans ↔ token labels for a base model's tokenizer (no Django, no torch): the BIO export and the span recipe.

A fast tokenizer (the `tokenizers` library, what `AutoTokenizer` wraps) gives each token its (start, end)
offsets in the text, in code points, as the spans are. A token takes the label of the first span (by start,
longest first) it overlaps: B- when it is that span's first token, I- after; special tokens have no offsets
((0, 0)) and no tag. For training only each word's first sub-token is labelled (`IGNORE` for the rest), as the
token-classification examples of transformers do, and predictions are read back from those tokens.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

OUTSIDE = "O"
IGNORE = -100  # the label index a loss leaves out (torch's CrossEntropyLoss ignore_index)
TOKENIZER_FILE = "tokenizer.json"

NO_FAST_TOKENIZER = "The base model at {path} has no tokenizer.json: BIO tags need a fast tokenizer's offsets."


def tag_names(labels: Sequence[str]) -> list[str]:
    """The tag set, in a fixed order: O, then B- and I- of each label in the project's order."""
    return [OUTSIDE, *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I"))]


def tags_for_offsets(spans: Sequence[dict[str, Any]], offsets: Sequence[tuple[int, int]]) -> list[str | None]:
    """One tag per token (None for special tokens, whose offsets are empty)."""
    ordered = sorted(spans, key=lambda s: (s["start"], -s["end"]))
    tags: list[str | None] = []
    previous: dict[str, Any] | None = None
    for start, end in offsets:
        if start == end:
            tags.append(None)
            continue
        span = next((s for s in ordered if s["start"] < end and start < s["end"]), None)
        if span is None:
            tags.append(OUTSIDE)
            previous = None
            continue
        tags.append(("I-" if span is previous else "B-") + span["label"])
        previous = span
    return tags


def word_starts(word_ids: Sequence[int | None]) -> list[bool]:
    """Which tokens begin a word (the rest of a word's sub-tokens are not labelled)."""
    out: list[bool] = []
    previous: int | None = None
    for word in word_ids:
        out.append(word is not None and word != previous)
        previous = word
    return out


def spans_from_token_tags(
    tags: Sequence[str | None], offsets: Sequence[tuple[int, int]], text: str
) -> list[dict[str, Any]]:
    """Spans from per-token tags (None: a token not read, e.g. a word's later sub-token, which extends
    whatever span its word is in). A span ends where the next token starts outside it; its end is the end of
    its last token, widened to the end of that word."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for tag, (start, end) in zip(tags, offsets, strict=True):
        if start == end:
            continue
        if tag is None:
            if current is not None:
                current["end"] = end
            continue
        if tag == OUTSIDE:
            current = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"] = end
        else:
            current = {"start": start, "end": end, "label": label}
            spans.append(current)
    for span in spans:  # a word cut by the tokenizer ends at the word's end
        span["end"] = word_end(text, span["end"])
    return spans


def _wordy(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def word_end(text: str, end: int) -> int:
    """`end` moved past the rest of the word it falls inside: letters, digits and combining marks, as annotators'
    words are split (annotation.tasktypes.word_tokens). A tokenizer that strips accents gives "zoé" written with a
    combining accent the offsets of "zoe"; the span must not cut the accent off its letter."""
    while 0 < end < len(text) and _wordy(text[end]) and _wordy(text[end - 1]):
        end += 1
    return end


def load_fast_tokenizer(model_dir: Path) -> Any:
    """The base model's fast tokenizer through the `tokenizers` library alone (no transformers, no torch)."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(NO_FAST_TOKENIZER.format(path=model_dir))
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # MiniLM's file pads every text to 128 tokens
    tokenizer.no_truncation()  # an export covers the whole text
    return tokenizer


def bio_rows(rows: Iterable[dict[str, Any]], tokenizer: Any, *, text_field: str = "text") -> Iterator[dict[str, Any]]:
    """Snapshot rows with their base-model tokens, offsets and BIO tags (special tokens left out)."""
    for row in rows:
        text = row[text_field]
        encoding = tokenizer.encode(text, add_special_tokens=False)
        kept = [(tok, (s, e)) for tok, (s, e) in zip(encoding.tokens, encoding.offsets, strict=True) if s != e]
        offsets = [o for _, o in kept]
        tags = tags_for_offsets(row.get("spans", []), offsets)
        yield {
            "id": row["id"],
            "external_id": row.get("external_id", ""),
            "split": row.get("split", ""),
            "tokens": [tok for tok, _ in kept],
            "offsets": [list(o) for o in offsets],
            "tags": [t or OUTSIDE for t in tags],
        }
