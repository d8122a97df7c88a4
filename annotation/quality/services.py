"""Label-noise scans: start one (a row plus an RQ job enqueued on commit) and run it.

A scan embeds the approved items' texts (cached per item and encoder in ItemEmbedding) and hands the
pure `noise.scan` each item's final label with *every* vote behind it: the annotators', the reviewer
who decided it, or the import it came from. The scan flags as many items as its noise estimate
supports, most likely errors first; each flag becomes a NoiseFlag and a review task (reason "noise")
with its score and suggested label. An approved item goes back to review with its history kept.
Test-split items are left out (the test split is sacred: no model sends a test label to review); the
summary counts them. The summary keeps the estimate, the flags' expected precision and each
annotator's accuracy against the consensus with its interval (read by `annotator_quality`).
The project's audits of agreed items (`audit_labels`: what reviewers said when an agreement was sampled for
audit) calibrate how much the votes weigh against the model (`noise.calibrate`); the summary's `calibration`
says which weight ranked the flags and on how many audits, or that there were too few.
The same audits weigh the model's count of wrong labels against the ambiguity count (`noise.weigh_ambiguity`: do
reviewers overturn agreements like one more annotator, or only where the agreement is wrong?); the summary's
`ambiguity` says how. The NoiseScan row, not Redis, is the truth about a scan's status.

The encoder is `settings.LABELLOOP_EMBEDDER` (a dotted path to `fn(texts) -> float array`), the
shipped MiniLM by default; tests point it at a tiny deterministic embedder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import django_rq
import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Decision,
    DecisionSource,
    Item,
    ItemEmbedding,
    ItemSplit,
    ItemStatus,
    Label,
    NoiseFlag,
    NoiseScan,
    Project,
    ReviewReason,
    ScanStatus,
    Split,
)
from annotation.quality import noise
from annotation.review.selectors import audit_labels, imported_labels, latest_decisions
from annotation.review.services import review_task_open
from core import durations
from core.errors import ServiceError, StateConflict
from core.queues import QueuePlace, queue_place, requeue_lost

DEFAULT_EMBEDDER = "annotation.quality.services.minilm_embed"


QUEUE = "quality"  # noise scans with the linear model: short jobs, never behind a training run (docs/OPERATIONS.md)
FINETUNE_QUEUE = "training"  # a scan that fine-tunes the encoder is a training job: `scan_queue`


EMBED_BATCH = 64


# A scan still "running" this long after it started lost its worker: the queue's own timeout.
ABANDONED_AFTER = dt.timedelta(hours=6)


EMBED_SHARE = 0.7  # of the progress bar


LOW_CONSENSUS = 0.5  # crowdlab consensus quality under this is counted as doubtful in the summary


SCAN_ACTIVE = (
    "A noise scan (scan {scan}) is already queued or running for this project; wait for it to finish, or cancel it."
)


NOT_CLASSIFICATION = "Noise scans look for wrong class labels: they need a single-label classification project."

# The fewest approved items outside the test split a scan starts on. Its out-of-fold model learns from the other folds
# only: on a dozen items it learns from ten, and nearly every flag is its own mistake (a tester's 12-item scan). A
# little under the smallest project docs/benchmarks.md measured (60 items, flags right 0.21-0.56 of the time there),
# so that such a project can still scan, with the card's small-project note saying to treat the flags as a sample.
MIN_SCAN_ITEMS = 50
TOO_SMALL = (
    "A noise scan needs at least {minimum} approved items outside the test split; there are {n}. On fewer, its model "
    "learns from a handful of items and most flags would be its own mistakes. Label and review more items first."
)
NOT_FOR_SPANS = (
    "Noise scans are not offered for span projects: the scan (CROWDLAB) scores one class label per item from "
    "out-of-fold predictions, and the tokens of one text are not independent examples, so its estimates would "
    "not hold for token labels. Span agreement per label (this page) and review of span disagreements find "
    "the doubtful spans instead."
)


SCAN_ABANDONED = "The worker running this scan stopped answering; start a new scan."


NOT_CANCELLABLE = "Only a queued or running scan can be cancelled; this one has ended ({status})."


class ScanStopped(Exception):
    """The scan stopped being "running" under its worker (cancelled, or declared abandoned): stop, write nothing."""


UNKNOWN_MODEL = "Unknown scan model {model!r}: choose one of {models}."


# Voters standing for a final label's source when no annotator gave it (brackets: no username has them).
IMPORT_VOTER = "(import)"
FINAL_VOTER = "(final label)"


def minilm_embed(texts: Sequence[str]) -> np.ndarray:
    """Sentence embeddings from the all-MiniLM-L6-v2 encoder shipped in a wheel (no model hub)."""
    # Imported here: torch and transformers take seconds to import, and only the worker embeds.
    from annotation.quality import embeddings

    return embeddings.embed(list(texts), embeddings.encoder_dir())


minilm_embed.model_name = "all-MiniLM-L6-v2"  # type: ignore[attr-defined]


def embedder() -> tuple[Callable[[Sequence[str]], np.ndarray], str]:
    """(embedding function, the name its cached vectors are stored under)."""
    path = getattr(settings, "LABELLOOP_EMBEDDER", DEFAULT_EMBEDDER)
    fn = import_string(path)
    return fn, getattr(fn, "model_name", path)


# What a scan's out-of-fold model is (NoiseScan.params["model"]): the logistic regression on frozen embeddings and
# n-grams alone (seconds), or averaged with the encoder fine-tuned per fold (annotation/quality/finetune.py: 4-12
# minutes per thousand words or questions on two CPU cores, more for longer texts; sharper on sentences;
# docs/benchmarks.md).
LINEAR = "linear"
ENCODER = "encoder"
SCAN_MODELS = (LINEAR, ENCODER)

# the step after embedding: an encoder scan fits the logistic regression, then the encoder's folds, then CROWDLAB
MODEL_STEP = {
    LINEAR: "Out-of-fold predictions and CROWDLAB",
    ENCODER: "Out-of-fold predictions of the logistic regression",
}

ENCODER_EMBED_SHARE = 0.05  # of the progress bar: embedding, where the encoder is then fine-tuned
FINETUNE_SHARE = 0.8  # the folds of the fine-tuned encoder, after it


def encoder_folder() -> Path:
    """The encoder a scan fine-tunes: `settings.LABELLOOP_SCAN_ENCODER` (a folder), else the shipped MiniLM."""
    from annotation.quality import embeddings

    folder = getattr(settings, "LABELLOOP_SCAN_ENCODER", None) or embeddings.encoder_dir()
    if folder is None:
        raise embeddings.EncoderMissing(embeddings.ENCODER_MISSING)
    if not (Path(folder) / "config.json").is_file():
        raise embeddings.EncoderMissing(f"No encoder in {folder}: the folder has no config.json.")
    return Path(folder)


def default_scan_model() -> str:
    """The model of a scan whose starter does not choose one: `settings.LABELLOOP_SCAN_MODEL` (checked at startup)."""
    return getattr(settings, "LABELLOOP_SCAN_MODEL", LINEAR)


def _embed_share(model: str) -> float:
    """The progress bar's share for embedding: most of a quick scan, a sliver of one that fine-tunes the encoder."""
    return ENCODER_EMBED_SHARE if model == ENCODER else EMBED_SHARE


def _encoder_model(scan: NoiseScan, texts: Sequence[str]) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """The scan's second model: the encoder fine-tuned on each fold's complement, its folds on the progress bar."""
    from annotation.quality import finetune

    folder = encoder_folder()

    started: float | None = None
    written = 0.0

    def step_taken(fold: int, folds: int, step: int, steps: int) -> None:
        """Each fold's start, then at most every PROGRESS_EVERY_S: the bar, the step and the time left. Raises
        ScanStopped (through the training loop) once the scan was cancelled."""
        nonlocal started, written
        now = time.monotonic()
        started = now if started is None else started
        if step and now - written < PROGRESS_EVERY_S:
            return
        written = now
        done = (fold + step / steps) / folds
        message = f"Fine-tuning the encoder: fold {fold + 1} of {folds}, step {step + 1} of {steps}"
        if done > 0.02:  # a first estimate from the first steps only would swing
            message += f" ({durations.left((now - started) * (1 - done) / done)})"
        _progress(scan, ENCODER_EMBED_SHARE + FINETUNE_SHARE * done, message)

    def fit(codes: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
        probs = finetune.out_of_fold_probs(
            texts, codes, folder=folder, n_folds=n_folds, seed=seed, progress=step_taken
        )
        _progress(scan, ENCODER_EMBED_SHARE + FINETUNE_SHARE, "CROWDLAB and the count")
        return probs

    return fit


def job_id(scan_id: int) -> str:
    return f"noise-scan-{scan_id}"


def noise_scan_blocker(*, project: Project) -> str | None:
    """Why a noise scan cannot start on this project now, or None: a single-label project with MIN_SCAN_ITEMS approved
    items outside the test split, and the conditions the scan itself would fail on (at least two labels, each in every
    cross-validation fold), checked before anything is queued and by the quality page to disable its button."""
    if project.task_kind.needs_text:
        return NOT_FOR_SPANS
    if not project.task_kind.single_class:
        return NOT_CLASSIFICATION
    counts = dict(
        latest_decisions(project=project)
        .exclude(item__split_row__split=Split.TEST)
        .order_by()
        .values_list("value__label")
        .annotate(n=Count("id"))
        .values_list("value__label", "n")
    )
    counts = {str(label): n for label, n in counts.items() if label is not None}
    if sum(counts.values()) < MIN_SCAN_ITEMS:
        return TOO_SMALL.format(minimum=MIN_SCAN_ITEMS, n=sum(counts.values()))
    problem = noise.label_counts_problem(counts)
    if problem is None:
        return None
    return f"{problem} Only approved items outside the test split count; label and review more items first."


def noise_scan_start(*, project: Project, user: User, params: dict[str, Any] | None = None) -> NoiseScan:
    """Check the scan can run (`noise_scan_blocker`: nothing is queued otherwise), create its row and enqueue its
    job once the row is committed."""
    model = (params or {}).get("model") or default_scan_model()
    if model not in SCAN_MODELS:
        raise ServiceError(UNKNOWN_MODEL.format(model=str(model)[:40], models=", ".join(SCAN_MODELS)), field="model")
    params = {**(params or {}), "model": model}
    blocker = noise_scan_blocker(project=project)
    if blocker is not None:
        raise ServiceError(blocker)
    now = timezone.now()
    NoiseScan.objects.filter(project=project, status=ScanStatus.RUNNING, started_at__lt=now - ABANDONED_AFTER).update(
        status=ScanStatus.FAILED, message=SCAN_ABANDONED, finished_at=now
    )
    try:
        with transaction.atomic():
            scan = NoiseScan.objects.create(project=project, created_by=user, params=params)
            transaction.on_commit(lambda: _enqueue(scan.pk, scan_queue(scan.params)))
    except IntegrityError:
        active = NoiseScan.objects.filter(project=project, status__in=(ScanStatus.QUEUED, ScanStatus.RUNNING)).first()
        raise StateConflict(SCAN_ACTIVE.format(scan=active.pk if active else "?")) from None
    return scan


def noise_scan_queue_place(scan: NoiseScan) -> QueuePlace | None:
    """Where a queued scan stands in its queue (`scan_queue`); None once a worker took it."""
    if scan.status != ScanStatus.QUEUED:
        return None
    return queue_place(scan_queue(scan.params), job_id(scan.pk))


def noise_scans_requeue_lost(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Queued scans whose job is gone from Redis (flushed, or down at commit) get their job again: the sweep's part
    for scans, so a queued scan never waits for a job that no longer exists."""
    age = older_than if older_than is not None else dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)
    queued = NoiseScan.objects.filter(status=ScanStatus.QUEUED, created_at__lt=timezone.now() - age)
    tuned = queued.filter(params__model=ENCODER)
    linear = queued.exclude(pk__in=tuned.values("pk")).values_list("pk", flat=True)
    return requeue_lost(linear, queue=QUEUE, job_id=job_id, enqueue=_enqueue) + requeue_lost(
        tuned.values_list("pk", flat=True), queue=FINETUNE_QUEUE, job_id=job_id, enqueue=_enqueue_finetune
    )


def scan_queue(params: dict[str, Any]) -> str:
    """The quality queue, or the training queue for a scan that fine-tunes the encoder (minutes to tens of minutes on
    a CPU: it must not hold up the imports and scans behind it, and a GPU worker serves that queue)."""
    return FINETUNE_QUEUE if params.get("model") == ENCODER else QUEUE


def _enqueue(scan_id: int, queue: str = QUEUE) -> None:
    from annotation.quality.jobs import noise_scan_job

    # RQ stops the job at the age a new scan may declare it abandoned, so an abandoned scan never writes flags later
    timeout = int(ABANDONED_AFTER.total_seconds())
    django_rq.get_queue(queue).enqueue(noise_scan_job, scan_id, job_id=job_id(scan_id), job_timeout=timeout)


def _enqueue_finetune(scan_id: int) -> None:
    _enqueue(scan_id, FINETUNE_QUEUE)


def noise_scan_claim(*, scan_id: int) -> NoiseScan | None:
    """queued → running; None when another delivery of the job already took it (safe to run twice)."""
    now = timezone.now()
    if not NoiseScan.objects.filter(pk=scan_id, status=ScanStatus.QUEUED).update(
        status=ScanStatus.RUNNING, started_at=now, progress=0.0, message="Starting"
    ):
        return None
    return NoiseScan.objects.select_related("project").get(pk=scan_id)


def noise_scan_fail(*, scan: NoiseScan, message: str) -> None:
    NoiseScan.objects.filter(pk=scan.pk, status=ScanStatus.RUNNING).update(
        status=ScanStatus.FAILED, message=message[:1000], finished_at=timezone.now()
    )


def noise_scan_cancel(*, scan: NoiseScan, user: User) -> NoiseScan:
    """A queued or running scan is cancelled at once: its row says so and the project may start another scan.

    A queued scan's job leaves its queue (best effort, after the commit: should it stay, or a worker have popped it,
    it finds the row cancelled and does nothing). A running one's worker stops at its next progress step, or while
    it fine-tunes the encoder within PROGRESS_EVERY_S and a training step; it writes no flag and opens no review
    task (the final write checks the row under a lock). The linear model's own fit and CROWDLAB have no stop point:
    they run to their end (seconds to a few minutes), then stop."""
    values = {"status": ScanStatus.CANCELLED, "message": f"Cancelled by {user.username}", "finished_at": timezone.now()}
    with transaction.atomic():
        if NoiseScan.objects.filter(pk=scan.pk, status=ScanStatus.QUEUED).update(**values):
            transaction.on_commit(lambda: _dequeue(scan.pk, scan_queue(scan.params)))
        elif not NoiseScan.objects.filter(pk=scan.pk, status=ScanStatus.RUNNING).update(**values):
            scan.refresh_from_db()
            raise StateConflict(NOT_CANCELLABLE.format(status=scan.get_status_display().lower()))
    scan.refresh_from_db()
    return scan


def _dequeue(scan_id: int, queue: str) -> None:
    """Delete a cancelled scan's job (out of its queue and out of Redis), so the jobs behind it stop counting it;
    Redis down is no error (the job then does nothing when it comes)."""
    with contextlib.suppress(RedisError, OSError):
        job = django_rq.get_queue(queue).fetch_job(job_id(scan_id))
        if job is not None:
            job.delete()


def _progress(scan: NoiseScan, fraction: float, message: str) -> None:
    """Record progress; raise ScanStopped when the scan is no longer running (cancelled, or declared abandoned)."""
    if not NoiseScan.objects.filter(pk=scan.pk, status=ScanStatus.RUNNING).update(
        progress=round(min(max(fraction, 0.0), 1.0), 4), message=message
    ):
        raise ScanStopped


PROGRESS_EVERY_S = 5.0  # how often a fine-tuning scan writes its step (one UPDATE, which also sees a cancel)


def _embeddings(*, scan: NoiseScan, items: list[tuple[int, str]]) -> np.ndarray:
    """One float32 row per item, embedding only the items not cached for this encoder yet."""
    fn, model_name = embedder()
    ids = [item_id for item_id, _ in items]
    cached: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), 900):
        for item_id, blob in ItemEmbedding.objects.filter(
            model_name=model_name, item_id__in=ids[start : start + 900]
        ).values_list("item_id", "vector"):
            cached[item_id] = np.frombuffer(bytes(blob), dtype=np.float32)
    missing = [(item_id, text) for item_id, text in items if item_id not in cached]
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start : start + EMBED_BATCH]
        vectors = np.asarray(fn([text for _, text in batch]), dtype=np.float32)
        ItemEmbedding.objects.bulk_create(
            [
                ItemEmbedding(item_id=item_id, model_name=model_name, vector=vector.tobytes())
                for (item_id, _), vector in zip(batch, vectors, strict=True)
            ],
            ignore_conflicts=True,
        )
        for (item_id, _), vector in zip(batch, vectors, strict=True):
            cached[item_id] = vector
        done = start + len(batch)
        share = _embed_share(scan.params.get("model", LINEAR))
        _progress(scan, share * done / len(missing), f"Embedded {done} of {len(missing)} new texts")
    return np.stack([cached[item_id] for item_id in ids]) if ids else np.zeros((0, 0), dtype=np.float32)


def noise_scan_execute(*, scan: NoiseScan) -> dict[str, Any]:
    """Embed, judge every final label with all its votes, write flags and review tasks. Raises noise.NoiseScanError.

    Test-split items are not scanned: nothing model-driven changes a test label (the test split must stay an
    independent judge of the model). Should one still be flagged (its split assigned while the scan ran), it
    is flagged and shown but no review task is opened for it.
    """
    project = scan.project
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    read_at = timezone.now()  # a label decided after this was not what the scan judged
    decided = latest_decisions(project=project)
    # The test split is sacred: its labels stay as people decided them, so the scan neither learns from nor
    # flags them (a flag would send a test item to review on a model's word).
    test_held = decided.filter(item__split_row__split=Split.TEST).count()
    rows = list(
        decided.exclude(item__split_row__split=Split.TEST)
        .order_by("item_id")
        .values_list("item_id", "item__text", "value", "source", "reviewer__username", "review_task__reasons")
    )
    # Items whose final label a reviewer gave on a noise flag's review: flagged again, they are shown but not sent
    # back to review (a tester's confirmed items came straight back with the next scan).
    reviewed_after_flag = {row[0] for row in rows if row[5] and ReviewReason.NOISE in row[5]}
    # Items the owner overruled: their word is final (review.services.item_overrule), so a flag is shown, not sent.
    overruled = {row[0] for row in rows if row[3] == DecisionSource.OWNER}
    finals = [(item_id, text, value, source, who) for item_id, text, value, source, who, _ in rows]
    _progress(scan, 0.0, f"Embedding {len(finals)} approved items")
    X = _embeddings(scan=scan, items=[(item_id, text) for item_id, text, *_ in finals])
    item_ids = [item_id for item_id, *_ in finals]
    texts = [text for _, text, *_ in finals]
    given = [value["label"] for _, _, value, _, _ in finals]
    by_item = annotations_by_item(project=project, item_ids=item_ids)
    imported = imported_labels(project=project)
    votes = [
        _votes(by_item.get(item_id, {}), value["label"], source, reviewer, imported=imported.get(item_id))
        for item_id, _, value, source, reviewer in finals
    ]
    audited = audit_labels(project=project)
    audits = [
        audit
        for row, item_id in enumerate(item_ids)
        if item_id in audited and (audit := _audited(row, by_item.get(item_id, {}), audited[item_id])) is not None
    ]
    model = scan.params.get("model", LINEAR)
    _progress(scan, _embed_share(model), MODEL_STEP[model])
    started = time.perf_counter()
    seed = scan.params.get("seed", 0)
    second = _encoder_model(scan, texts) if model == ENCODER else None
    result = noise.scan(X, given, votes, labels, seed=seed, texts=texts, audits=audits, second_model=second)
    seconds = time.perf_counter() - started
    test_items = set(
        ItemSplit.objects.filter(item_id__in=[item_ids[f.row] for f in result.flags], split=Split.TEST).values_list(
            "item_id", flat=True
        )
    )
    summary = _summary(result, scanned=len(finals), test_flags=len(test_items), seconds=seconds, labels=labels)
    summary["test_split_skipped"] = test_held
    summary["fine_tuned"] = model == ENCODER  # the encoder fine-tuned per fold stood beside the linear model
    flagged = {item_ids[f.row] for f in result.flags}
    summary["overruled_flags_not_sent"] = len(flagged & overruled - test_items)
    summary["reviewed_flags_not_sent"] = len(flagged & reviewed_after_flag - test_items - overruled)
    # Decided while the scan ran (an owner's overrule, a review): the flag judged the label before; shown, not sent.
    meanwhile = set(
        Decision.objects.filter(item_id__in=flagged, created_at__gt=read_at).values_list("item_id", flat=True)
    )
    summary["decided_meanwhile_not_sent"] = len(meanwhile - test_items - reviewed_after_flag - overruled)
    already = flagged & (reviewed_after_flag | overruled | meanwhile) - test_items
    _progress(scan, 0.9, f"Writing {len(result.flags)} flags")
    with transaction.atomic():
        # cancelled or declared abandoned meanwhile (a new scan may have started): its flags must open nothing now
        if not NoiseScan.objects.select_for_update().filter(pk=scan.pk, status=ScanStatus.RUNNING).exists():
            return summary
        NoiseFlag.objects.bulk_create(
            [
                NoiseFlag(
                    scan=scan,
                    item_id=item_ids[flag.row],
                    score=flag.quality,
                    given={"label": flag.given},
                    suggested={"label": flag.suggested},
                    model_value=model_value(result, flag.row),
                )
                for flag in result.flags
            ]
        )
        for flag in result.flags:
            item_id = item_ids[flag.row]
            if item_id in test_items or item_id in already:
                continue
            # Only an item still decided goes (back) to review; one re-opened for annotation meanwhile keeps the flag.
            if Item.objects.filter(pk=item_id, status__in=(ItemStatus.APPROVED, ItemStatus.IN_REVIEW)).update(
                status=ItemStatus.IN_REVIEW
            ):
                review_task_open(
                    item=Item(pk=item_id, project=project),  # the project object: its routing, no query
                    reasons=[ReviewReason.NOISE],
                    noise_score=flag.quality,
                    suggested_value={"label": flag.suggested},
                )
        NoiseScan.objects.filter(pk=scan.pk, status=ScanStatus.RUNNING).update(
            status=ScanStatus.SUCCEEDED,
            progress=1.0,
            message=f"Done: {len(result.flags)} of {len(finals)} items flagged",
            summary=summary,
            finished_at=timezone.now(),
        )
    return summary


def model_value(result: noise.ScanResult, row: int) -> dict[str, str] | None:
    """The out-of-fold model's likeliest label for a scanned row (routing's vote on the flag's review), or None where
    the model learnt nothing from the texts (`noise.model_skill`: the scan stood on the votes alone)."""
    if result.skill is None or not result.skill.informative:
        return None
    return {"label": result.classes[int(np.argmax(result.probs[row]))]}


def _votes(
    annotations: dict[str, str], final: str, source: str, reviewer: str | None, *, imported: str | None = None
) -> dict[str, str]:
    """Every judgement of an item: its annotators', and the final label's own source when that is not them.

    A reviewer's decision is their vote (it replaces an annotation of theirs on the same item: their
    last word); an import or a value nobody annotated any more counts as one vote of its own. `imported`: the
    label a file gave the item as final, still a vote when a reviewer decided after it (confirmed or changed).
    """
    votes = dict(annotations)
    if reviewer:
        votes[reviewer] = final
        if imported is not None:
            votes.setdefault(IMPORT_VOTER, imported)
    elif source == DecisionSource.IMPORT:
        votes[IMPORT_VOTER] = final
    elif final not in votes.values():
        votes[FINAL_VOTER] = final
    return votes


def _audited(row: int, annotations: dict[str, str], decided: str) -> noise.Audited | None:
    """An audited item (`audit_labels`: a reviewer decided a task that was an audit sample and nothing else) as the
    scan calibrates on it, or None when its annotators do not all agree now (an audit checks an agreement). The
    reviewer's label is what the calibration takes for the truth, even where a weighted vote made another final."""
    agreed = set(annotations.values())
    if len(agreed) != 1:
        return None
    return noise.Audited(row, agreed.pop(), decided, dict(annotations))


def _ambiguity_summary(ambiguity: noise.Ambiguity | None) -> dict[str, Any] | None:
    if ambiguity is None:
        return None
    return {
        "weight": round(ambiguity.weight, 3),
        "model_count": round(ambiguity.model_count, 1),
        "ambiguity_count": None if ambiguity.ambiguity_count is None else round(ambiguity.ambiguity_count, 1),
        "alpha": None if ambiguity.alpha is None else round(ambiguity.alpha, 2),
        "audited": ambiguity.audited,
        "overturned": ambiguity.overturned,
        "as_rater": None if ambiguity.as_rater is None else round(ambiguity.as_rater, 1),
        "as_judge": None if ambiguity.as_judge is None else round(ambiguity.as_judge, 1),
        "message": ambiguity.message,
    }


def _calibration_summary(calibration: noise.Calibration | None) -> dict[str, Any] | None:
    if calibration is None:
        return None
    return {
        "vote_weight": calibration.vote_weight,
        "default_vote_weight": noise.VOTE_WEIGHT,
        "calibrated": calibration.calibrated,
        "audited": calibration.audited,
        "overturned": calibration.overturned,
        "message": calibration.message,
        "average_precision": {str(w): round(ap, 3) for w, ap in calibration.scores.items()},
    }


def _summary(
    result: noise.ScanResult, *, scanned: int, test_flags: int, seconds: float, labels: list[str]
) -> dict[str, Any]:
    """The scan's JSON summary: its estimate, the flags' expected precision, and annotator quality."""
    quality = result.consensus_quality
    return {
        "scanned": scanned,
        "flagged": len(result.flags),
        "labels": labels,
        "method": result.method,
        "estimated_errors": round(result.estimated_errors, 1),
        "votes_estimate": None if result.votes_estimate is None else round(result.votes_estimate, 1),
        "votes_count": None if result.votes_estimate is None else int(np.floor(result.votes_estimate + 0.5)),
        "estimated_noise_rate": round(result.estimated_errors / scanned, 4) if scanned else 0.0,
        "expected_precision": None if result.expected_precision is None else round(result.expected_precision, 3),
        "test_flags_not_sent": test_flags,
        "seconds": round(seconds, 1),
        "annotators": [a._asdict() for a in result.annotators],
        "calibration": _calibration_summary(result.calibration),
        "ambiguity": _ambiguity_summary(result.ambiguity),
        "model": None if result.skill is None else result.skill._asdict(),
        "crowdlab": {
            "items": sum(n >= 2 for n in result.num_votes),
            "model_weight": result.model_weight,
            "mean_consensus_quality": float(np.mean(quality)) if quality else None,
            "low_consensus_items": sum(q < LOW_CONSENSUS for q in quality),
        }
        if result.method == "crowdlab"
        else {"skipped": noise.NO_SHARED_ITEMS},
    }


def annotations_by_item(*, project: Project, item_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """{item id: {annotator: label}} over the current single-label annotations of these items."""
    wanted = set(item_ids)
    out: dict[int, dict[str, str]] = {}
    rows = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).values_list(
        "item_id", "annotator__username", "value"
    )
    for item_id, who, value in rows.iterator(chunk_size=5000):
        if item_id in wanted:
            out.setdefault(item_id, {})[who] = value["label"]
    return out
