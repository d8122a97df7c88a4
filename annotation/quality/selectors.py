"""Reads of quality: the agreement report, noise scans, their flags, and annotator quality."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    Item,
    ItemStatus,
    Label,
    NoiseFlag,
    NoiseScan,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    ScanStatus,
)
from annotation.permissions import REVIEW
from annotation.quality import agreement
from annotation.quality.noise import wilson
from annotation.review.selectors import latest_decisions, review_tasks, reviewers_words
from annotation.tasktypes import span_key_parse, value_key


def noise_scan_latest(*, project: Project) -> NoiseScan | None:
    return NoiseScan.objects.filter(project=project).order_by("-created_at", "-id").first()


def open_noise_flags(*, project: Project, user: User, role: str) -> int:
    """How many noise flags (of any scan) wait in `user`'s review queue now: the queue's own rows, blind rules kept."""
    tasks = review_tasks(project=project, user=user, role=role, status=ReviewStatus.OPEN, reason=ReviewReason.NOISE)
    return tasks.count()


def noise_scan_get(*, project: Project, scan_id: int) -> NoiseScan | None:
    return NoiseScan.objects.filter(project=project, pk=scan_id).first()


def annotator_quality(*, project: Project, scan: NoiseScan | None = None) -> dict[str, Any] | None:
    """Each annotator's accuracy against the consensus of the other votes and the model, with 95 % intervals.

    From the latest succeeded noise scan (or `scan`): {"scan", "finished_at", "annotators": [{annotator,
    n, agreed, accuracy, low, high, crowdlab_quality}], "test_split_skipped"}, best first; None before any scan
    rated anyone. `test_split_skipped`: the test-split items the scan left out, why `n` is below the items a person
    labelled.
    For owners, reviewers and routing only: never hand it to an annotator (blind promise).
    """
    if scan is None:
        scan = noise_scan_list(project=project, status=ScanStatus.SUCCEEDED).first()
    if scan is None or not scan.summary.get("annotators"):
        return None
    return {
        "scan": scan.pk,
        "finished_at": scan.finished_at,
        "annotators": scan.summary["annotators"],
        "test_split_skipped": scan.summary.get("test_split_skipped", 0),  # why its item counts are the lower ones
    }


def _with_interval(row: dict[str, Any]) -> dict[str, Any]:
    """An accuracy row with its 95 % Wilson interval (None when the annotator has nothing to judge yet)."""
    n, accuracy = row["n"], row["accuracy"]
    low, high = wilson(round(accuracy * n), n) if n and accuracy is not None else (None, None)
    return {**row, "low": low, "high": high}


def annotation_rows(*, project: Project, annotator: User | None = None) -> list[tuple[int, str, str, dt.datetime]]:
    """(item id, annotator, value key, when) for the current annotations of the project (or of one annotator), in
    submission order."""
    current = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    if annotator is not None:
        current = current.filter(annotator=annotator)
    rows = current.order_by("created_at", "id").values_list("item_id", "annotator__username", "value", "created_at")
    return [(item_id, who, value_key(value), at) for item_id, who, value, at in rows.iterator(chunk_size=5000)]


AnnotationRows = list[tuple[int, str, str, dt.datetime]]


def agreement_rows(*, project: Project, rows: AnnotationRows | None = None) -> AnnotationRows:
    """`annotation_rows` (or these, read from it already) without the judgements adaptive routing asked for after a
    disagreement: of an item routing asked more for, the annotations it had then (`Item.blind_count`), the blind
    ones agreement is measured on."""
    recorded = Item.objects.filter(project=project, blind_count__isnull=False).values_list("pk", "blind_count")
    blind = {pk: int(count or 0) for pk, count in recorded.iterator()}
    return agreement.blind_rows(annotation_rows(project=project) if rows is None else rows, blind)


def quality_report(*, project: Project, user: User, role: str) -> dict[str, Any]:
    """The quality page's figures as JSON types (the API returns the same dict).

    Owners and reviewers get agreement (Cohen per pair, Fleiss, Krippendorff, per label), every
    annotator's accuracy against the final labels, annotator x final-label confusion and the trend.
    Anyone else gets only their own accuracy, computed from their own rows alone (blind promise). An
    instruction project's written responses get `responses_report` instead.
    """
    if project.task_kind.generative:
        return responses_report(project=project, user=user, role=role)
    final = {
        item_id: value_key(value)
        for item_id, value in latest_decisions(project=project)
        .values_list("item_id", "value")
        .iterator(chunk_size=5000)
    }
    if role not in REVIEW:
        mine = [row[:3] for row in annotation_rows(project=project, annotator=user)]
        own = [_with_interval(a._asdict()) for a in agreement.annotator_accuracy(mine, final)]
        nobody = {"annotator": user.get_username(), "accuracy": None, "n": 0, "low": None, "high": None}
        return {"view": "own", "annotators": own or [nobody]}
    read = annotation_rows(project=project)
    every = [row[:3] for row in read]
    timed = agreement_rows(project=project, rows=read)
    spans = project.task_kind.needs_text
    classify = project.task_kind.has_labels and not spans  # span keys are not label names: figures below
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True)) if classify else []
    summary = agreement.agreement_summary([row[:3] for row in timed], labels=labels)
    # Accuracy against the final labels counts every judgement an annotator made, the ones routing asked for too.
    summary["annotators"] = [a._asdict() for a in agreement.annotator_accuracy(every, final)]
    summary["confusion"] = agreement.annotator_confusion(every, final, labels)
    trend = agreement.agreement_trend(timed, bucket="day")
    accuracy = [_with_interval(a) for a in summary["annotators"]]
    report: dict[str, Any] = {
        "view": "full",
        "items": summary["n_items_multi"],
        "n_items": summary["n_items"],
        "n_annotations": len(every),
        "n_annotators": len({who for _, who, _ in every}),
        "extra_annotations": len(every) - len(timed),
        "overall": summary["overall"],
        "pairs": [
            {"a": p["annotator_a"], "b": p["annotator_b"], "cohen_kappa": p["kappa"], "n": p["n_items"]}
            for p in summary["pairs"]
        ],
        "per_label": [
            {"label": name, "fleiss_kappa": v["fleiss"], "krippendorff_alpha": v["alpha"], "n": v["n"]}
            for name, v in summary["per_label"].items()
        ],
        "annotators": accuracy,
        "confusion": [
            {
                "annotator": who,
                "labels": c["labels"],
                "rows": [
                    {
                        "label": said,
                        "cells": [
                            {"final": final_label, "n": n, "hit": said == final_label}
                            for final_label, n in zip(c["labels"], counts, strict=True)
                        ],
                    }
                    for said, counts in zip(c["labels"], c["matrix"], strict=True)
                ],
            }
            for who, c in summary["confusion"].items()
        ]
        if classify
        else [],
        "trend": {
            "labels": [t["period"] for t in trend],
            "series": [
                {"label": "Krippendorff's α", "values": [t["alpha"] for t in trend]},
                {"label": "Raw agreement", "values": [t["percent_agreement"] for t in trend]},
            ],
            "items": [t["n_items"] for t in trend],
        },
    }
    if spans:
        report["spans"] = span_report(project=project, rows=[row[:3] for row in timed])
    report["annotator_quality"] = annotator_quality(project=project)
    report["charts"] = {
        "trend": report["trend"],
        "accuracy": {
            "labels": [a["annotator"] for a in accuracy],
            "values": [a["accuracy"] for a in accuracy],
            "low": [a["low"] for a in accuracy],
            "high": [a["high"] for a in accuracy],
            "n": [a["n"] for a in accuracy],
        },
    }
    return report


# Final responses someone judged: a reviewer's or the owner's, a rater's of the model's output. Not an agreement (at
# overlap 1, or two identical answers, the final is the annotator's own response) nor an import: against those an
# annotator scored 1.0 on every item.
JUDGED_FINALS = (
    DecisionSource.REVIEWER,
    DecisionSource.OWNER,
    DecisionSource.MODEL_CORRECTED,
    DecisionSource.MODEL_RATED,
)


def responses_report(*, project: Project, user: User, role: str) -> dict[str, Any]:
    """An instruction project's quality figures: its written responses compared (agreement.response_agreement: how
    alike two annotators' responses are, and how close each one's came to the judged final response). None of the
    class figures: over free text kappa and alpha mean nothing, and cost much (Krippendorff's alpha, with one value
    per distinct response, asked for 100 GiB at 1,500 items). Owners and reviewers get everyone's; anyone else their
    own, from their own rows alone."""
    judged = {
        item_id: value_key(value)
        for item_id, value in latest_decisions(project=project)
        .filter(source__in=JUDGED_FINALS)
        .values_list("item_id", "value")
        .iterator(chunk_size=5000)
    }
    if role not in REVIEW:
        mine = [row[:3] for row in annotation_rows(project=project, annotator=user)]
        own = agreement.response_agreement(mine, judged)  # one person's rows: no pairs to compare
        return {"view": "own", "responses": {key: own[key] for key in ("judged", "judged_compared", "annotators")}}
    every = [row[:3] for row in annotation_rows(project=project)]
    return {
        "view": "full",
        "n_items": len({item_id for item_id, _, _ in every}),
        "n_annotations": len(every),
        "n_annotators": len({who for _, who, _ in every}),
        "responses": agreement.response_agreement(every, judged),
    }


def span_report(*, project: Project, rows: list[tuple[int, str, str]]) -> dict[str, Any]:
    """Span agreement (exact-match F1, token-level F1 and alpha, per label) over items with 2+ annotators."""
    counts = Counter(item_id for item_id, _, _ in rows)
    shared = [item_id for item_id, n in counts.items() if n >= 2]
    texts = dict(Item.objects.filter(project=project, pk__in=shared).values_list("pk", "text"))
    names = list(Label.objects.filter(project=project).values_list("name", flat=True))
    parsed = [(item_id, who, span_key_parse(key)) for item_id, who, key in rows if item_id in texts]
    return agreement.span_agreement(parsed, texts, names)


def noise_scan_list(*, project: Project, status: str | None = None) -> QuerySet[NoiseScan]:
    scans = NoiseScan.objects.filter(project=project)
    if status is not None:
        scans = scans.filter(status=status)
    return scans.order_by("-created_at", "-id")


def _label_of(value: Any) -> str | None:
    """A single-label value's label; None for any other value."""
    return value.get("label") if isinstance(value, dict) else None


def flag_outcomes(flags: Iterable[NoiseFlag]) -> dict[int, dict[str, Any]]:
    """{item id: {"label", "in_review", "sent_back", "changed", "outvoted"}} for these flags' items now: the final
    label (its latest decision), whether a review of it is open, whether a reviewer sent it back to the annotators
    (no final label in force until it is decided again), whether the label differs from the one the scan doubted
    (`given`), and, where the latest decision is a weighted vote that kept another label than its reviewer's, what
    the reviewer said (else None): a tester read "(kept)" there as the reviewer's confirmation. Two queries, however
    many flags (a page of them, their items already read), and a third only where a weighted vote decided."""
    flags = list(flags)
    given = {flag.item_id: (flag.given or {}).get("label") for flag in flags}
    unsettled = (ItemStatus.NEW, ItemStatus.IN_ANNOTATION, ItemStatus.ANNOTATED)
    sent_back = {flag.item_id for flag in flags if flag.item.status in unsettled}
    now: dict[int, Any] = {}
    weighed: dict[int, int] = {}  # item id: the review task whose weighted vote is its latest decision
    decisions = Decision.objects.filter(item_id__in=given).order_by("item_id", "created_at", "id")
    for item_id, value, source, task_id in decisions.values_list("item_id", "value", "source", "review_task_id"):
        now[item_id] = _label_of(value)  # the latest wins
        if source == DecisionSource.WEIGHTED and task_id is not None:
            weighed[item_id] = task_id
        else:
            weighed.pop(item_id, None)
    said = reviewers_words(task_ids=weighed.values()) if weighed else {}
    open_ids = set(
        ReviewTask.objects.filter(item_id__in=given, status=ReviewStatus.OPEN).values_list("item_id", flat=True)
    )
    outcomes = {}
    for item_id, label in given.items():
        vote_task = weighed.get(item_id)
        outcomes[item_id] = {
            "label": now.get(item_id),
            "in_review": item_id in open_ids,
            "sent_back": item_id in sent_back and item_id not in open_ids,
            "changed": now.get(item_id) != label,
            # a weighted decision on a review is written only where the vote led away from the reviewer's label
            "outvoted": _label_of(said[vote_task][1]) if vote_task in said else None,
        }
    return outcomes


def noise_flag_list(*, scan: NoiseScan, max_score: float | None = None) -> QuerySet[NoiseFlag]:
    """A scan's flagged items, the likeliest mislabelled (lowest label quality) first, each with its split."""
    flags = NoiseFlag.objects.filter(scan=scan)
    if max_score is not None:
        flags = flags.filter(score__lte=max_score)
    return flags.select_related("item").annotate(split=F("item__split_row__split")).order_by("score", "id")
