"""What every page shows of guidelines: the sanitised HTML, and the context of the acknowledgement prompt.

Shared by the projects pages and the annotate page, which asks for the acknowledgement before an item.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.safestring import SafeString, mark_safe

from annotation.models import GuidelineVersion, Project
from annotation.projects.guidelines import diff_lines, render_markdown
from annotation.projects.selectors import guideline_last_acknowledged


def guideline_html(markdown_text: str) -> SafeString:
    """Guideline Markdown as HTML: nh3 in `render_markdown` has already removed every unsafe tag and URL."""
    return mark_safe(render_markdown(markdown_text))  # noqa: S308 - sanitised by nh3 just above


def ack_context(*, user: User, project: Project, guideline: GuidelineVersion) -> dict[str, Any]:
    """What an annotator reads before acknowledging: the diff since their last acknowledged version, or all of it."""
    last = guideline_last_acknowledged(user=user, project=project)
    return {
        "ack_guideline": guideline,
        "ack_last": last,
        "ack_diff": diff_lines(last.body, guideline.body) if last else None,
        "ack_html": guideline_html(guideline.body),
    }
