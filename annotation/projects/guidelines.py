"""Guideline text: safe Markdown rendering and the diff between two versions (no Django).
"""

from __future__ import annotations

import difflib
import re

import markdown
import nh3
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol", "p", "pre", "s", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}


ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "abbr": {"title"}, "td": {"align"}}


URL_SCHEMES = {"http", "https", "mailto"}


# A list item: "- x", "* x", "+ x", "1. x", "1) x", indented at most 3 spaces (4 would be code).
LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|(?P<number>\d{1,9})[.)])[ \t]+\S")


class _ListAfterParagraph(Preprocessor):
    """A list written right under a paragraph line starts a list, as on GitHub (CommonMark).

    Python-Markdown requires a blank line before a list and otherwise folds "Rules:\n- a\n- b" into one
    paragraph. A blank line is added before such an item; as in CommonMark, a numbered list interrupts a
    paragraph only when it starts at 1 (so "2024. was a year" wrapped onto a new line stays text). Runs
    after fenced_code, whose blocks are already set aside.
    """

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_list = False
        for line in lines:
            item = LIST_ITEM.match(line)
            if not line.strip():
                in_list = False
            elif item:
                number = item.group("number")
                starts_list = number is None or int(number) == 1
                if not in_list and starts_list and out and out[-1].strip():
                    out.append("")
                in_list = in_list or starts_list
            elif not line.startswith((" ", "\t")):
                in_list = False
            out.append(line)
        return out


class ListAfterParagraphExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.register(_ListAfterParagraph(md), "list_after_paragraph", 20)


def render_markdown(text: str) -> str:
    """Markdown to HTML with everything outside a safe list stripped: no script, handler or js: URL survives."""
    extensions: list[str | Extension] = ["tables", "fenced_code", "sane_lists", ListAfterParagraphExtension()]
    html = markdown.markdown(text, extensions=extensions)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES)


def diff_lines(old: str, new: str) -> list[tuple[str, str]]:
    """Line diff as (kind, text) with kind in {"same", "added", "removed"}, for the publish page."""
    out: list[tuple[str, str]] = []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        tag, text = line[:2], line[2:]
        if tag == "  ":
            out.append(("same", text))
        elif tag == "+ ":
            out.append(("added", text))
        elif tag == "- ":
            out.append(("removed", text))
    return out
