"""The review page's keys, in the annotate page's key space (pure: no Django).

A label's hotkey means the same on both pages: it picks that label (as the final label, on the review page).
The review page's own commands use keys a label cannot take (`annotation.projects.services.RESERVED_HOTKEYS`):
A and B accept the first or second annotator's answer, S sends the item back (as S skips on the annotate page,
both ask why), N shows the next task. A label whose hotkey predates that rule keeps it: the command it shadows
loses its key on that project's review page, and the page shows only the keys that work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANNOTATOR_LETTERS = "abcdefghi"


SEND_BACK_KEY = "s"


NEXT_KEY = "n"


# The keys the review page reserves for itself: labels may not take them (either case).
REVIEW_COMMAND_KEYS = frozenset("abn")


@dataclass(frozen=True)
class ReviewKeys:
    """`accept[i]`: the key accepting the (i+1)th annotation ("" when none); `next`, `send_back` likewise."""

    accept: tuple[str, ...]
    next: str
    send_back: str


def annotator_letter(number: int) -> str:
    """"A" for the first annotation shown, "B" for the second, …; past the alphabet, the number itself."""
    return chr(ord("A") + number - 1) if 1 <= number <= 26 else str(number)


def review_keys(*, annotations: int, hotkeys: Iterable[str]) -> ReviewKeys:
    """The review page's keys for an item with `annotations` answers in a project whose labels have `hotkeys`."""
    taken = {key.lower() for key in hotkeys if key}
    accept = tuple(
        ANNOTATOR_LETTERS[i] if i < len(ANNOTATOR_LETTERS) and ANNOTATOR_LETTERS[i] not in taken else ""
        for i in range(annotations)
    )
    return ReviewKeys(
        accept=accept,
        next="" if NEXT_KEY in taken else NEXT_KEY,
        send_back="" if SEND_BACK_KEY in taken else SEND_BACK_KEY,
    )
