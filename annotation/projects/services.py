"""Projects, memberships, labels, guideline versions, and the accounts and tokens of the people in them.

The rules about labels (names unique ignoring case, the annotate page's own keys never a hotkey) live here,
so the browser forms and the API refuse the same things with the same messages.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.models import (
    ROUTING_BUDGET_DEFAULT,
    AccountSetup,
    Annotation,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Item,
    ItemStatus,
    Label,
    Membership,
    Project,
    QueueOrder,
    Role,
    RoutingPolicy,
    TaskType,
)
from annotation.projects.selectors import SpanOverlapReport, span_overlaps
from core.errors import ServiceError, StateConflict

logger = logging.getLogger(__name__)

LABELS_NOT_FOR_INSTRUCTION = "Instruction projects have no labels: annotators write responses."


NEEDS_LABELS = "This task type needs at least {n} distinct label{s}."
DUPLICATE_LABEL = "A label with this name or hotkey already exists in the project."


LABEL_NAME_TAKEN = "The project already has a label called {name!r} (names are compared ignoring case)."


LABEL_LISTED_TWICE = "Label {name!r} is listed twice."


# Keys the annotate and review pages keep for their own commands: a label cannot take them as a hotkey, so
# a label's hotkey means the same on both pages (annotation/review/keys.py).


RESERVED_HOTKEYS = frozenset("sSuUgG?aAbBnN")


HOTKEY_RESERVED = (
    "S, U, G and ? are the annotate page's own keys, A, B and N the review page's "
    "(accept annotator A or B, next task); pick another hotkey."
)


GUIDELINE_UNCHANGED = "The new guidelines are identical to the current version."


GUIDELINE_EMPTY = "Guidelines cannot be empty."


BAD_QUEUE_ORDER = "queue_order must be one of: {choices}."


BAD_SHARE = "random_share must be a number from 0 to 1."


BAD_CONFIDENCE = "disagreement_confidence must be a number from 0.5 to 1."


DEFAULT_COLOURS = ("#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#1098ad", "#e67700", "#5c940d", "#495057")


def project_create(
    *,
    owner: User,
    name: str,
    task_type: str = TaskType.SINGLE_LABEL,
    labels: Sequence[str] = (),
    description: str = "",
    goal_metric: str | None = None,
    overlap: int = 2,
    lease_seconds: int = 900,
    guidelines: str = "",
    allow_overlapping_spans: bool = False,
    routing_policy: str | None = None,
    routing_budget: float | None = None,
    audit_rate: float | None = None,
) -> Project:
    """Create a project with its owner, its labels (hotkeys 1-9 in order) and guidelines v1 if given.

    Routing left out (None) takes the model's defaults: adaptive, ROUTING_BUDGET_DEFAULT judgements per item (half a
    judgement over the overlap where that is higher: the budget must cover the overlap), the audit rate of the
    model field.
    """
    if routing_budget is None and overlap + 0.5 > ROUTING_BUDGET_DEFAULT:
        routing_budget = min(overlap + 0.5, ROUTING_BUDGET_MAX)
    project = Project(
        allow_overlapping_spans=bool(allow_overlapping_spans),
        name=name.strip(),
        description=description,
        task_type=task_type,
        overlap=overlap,
        lease_seconds=lease_seconds,
        created_by=owner,
        **_routing_values(routing_policy=routing_policy, routing_budget=routing_budget, audit_rate=audit_rate),
    )
    if goal_metric:
        project.goal_metric = goal_metric
    try:
        project.full_clean(exclude=["created_by"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(f"{field}: {' '.join(messages)}", field=field) from exc
    project_routing_check(project=project)
    kind = project.task_kind
    if not goal_metric and kind.default_goal_metric:
        project.goal_metric = kind.default_goal_metric
    if not kind.has_labels and labels:
        raise ServiceError(LABELS_NOT_FOR_INSTRUCTION, field="labels")
    seen: set[str] = set()
    for label_name in labels:
        if label_name.strip().casefold() in seen:
            raise ServiceError(LABEL_LISTED_TWICE.format(name=label_name.strip()), field="labels")
        seen.add(label_name.strip().casefold())
    if kind.has_labels and len(set(labels)) < kind.min_labels:
        raise ServiceError(
            NEEDS_LABELS.format(n=kind.min_labels, s="" if kind.min_labels == 1 else "s"), field="labels"
        )
    with transaction.atomic():
        project.save()
        Membership.objects.create(project=project, user=owner, role=Role.OWNER)
        for name_ in labels:
            label_create(project=project, name=name_)
        if guidelines.strip():
            guideline_publish(project=project, author=owner, body=guidelines)
    return project


def membership_set(*, project: Project, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}; use one of {Role.values}.", field="role")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def _label_check(*, project_id: int, name: str, hotkey: str, label_id: int | None = None) -> None:
    """The rules every label obeys beyond its columns: a name no other label has (ignoring case), no reserved key."""
    if not name:
        raise ServiceError("A label needs a name.", field="name")
    if hotkey and hotkey in RESERVED_HOTKEYS and not _hotkey_kept(label_id=label_id, hotkey=hotkey):
        raise ServiceError(HOTKEY_RESERVED, field="hotkey")
    others = Label.objects.filter(project_id=project_id, name__iexact=name)
    if label_id is not None:
        others = others.exclude(pk=label_id)
    if others.exists():
        raise ServiceError(LABEL_NAME_TAKEN.format(name=name), field="name")


def _hotkey_kept(*, label_id: int | None, hotkey: str) -> bool:
    """Whether the label already had this hotkey (given before the key was reserved): editing its colour or
    name must not force a new key on the annotators used to it."""
    return label_id is not None and Label.objects.filter(pk=label_id, hotkey=hotkey).exists()


def label_create(*, project: Project, name: str, color: str = "", hotkey: str | None = None) -> Label:
    """Add a label at the end; left out, its hotkey is the next digit while there is one ("" for none)."""
    if not project.task_kind.has_labels:
        raise ServiceError(LABELS_NOT_FOR_INSTRUCTION, field="labels")
    name = name.strip()
    _label_check(project_id=project.pk, name=name, hotkey=(hotkey or "").strip())
    position = (project.labels.aggregate(m=Max("position"))["m"] or 0) + 1 if project.labels.exists() else 0
    if hotkey is None:
        hotkey = str(position + 1) if position < 9 else ""
    label = Label(
        project=project,
        name=name,
        color=color or DEFAULT_COLOURS[position % len(DEFAULT_COLOURS)],
        hotkey=hotkey,
        position=position,
    )
    try:
        label.full_clean(exclude=["project"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(f"{field}: {' '.join(messages)}", field=field) from exc
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError as exc:
        raise ServiceError(DUPLICATE_LABEL, field="name") from exc
    return label


def project_set_overlap(*, project: Project, overlap: int) -> Project:
    """Change overlap and re-open or close items still in annotation to match; items already over the new overlap
    keep their work, and those whose annotations now fill it are routed. Items past annotation (routed, in review,
    approved: labels imported as final included) stay closed: an annotation on them would change nothing, and
    imported final labels are never handed out."""
    if overlap < 1:
        raise ServiceError("Overlap must be at least 1.", field="overlap")
    from annotation.review.services import item_route  # review imports this module

    in_annotation = Item.objects.filter(project=project, status__in=(ItemStatus.NEW, ItemStatus.IN_ANNOTATION))
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(overlap=overlap)
        in_annotation.filter(slots_taken__lt=F("extra_slots") + overlap).update(is_open=True)
        Item.objects.filter(project=project, slots_taken__gte=F("extra_slots") + overlap).update(is_open=False)
        project.overlap = overlap
        # Lowered: an item whose annotations now fill its slots, with no claim still out, would wait for a
        # submission that never comes; it is routed now, as its last submission would have routed it.
        full = in_annotation.filter(
            submitted_count__gte=F("extra_slots") + overlap, slots_taken=F("submitted_count"), submitted_count__gt=0
        )
        ready = list(full.values_list("pk", flat=True))
        Item.objects.filter(pk__in=ready).update(status=ItemStatus.ANNOTATED)
        for item in Item.objects.filter(pk__in=ready).order_by("pk"):
            item.project = project
            item_route(item=item)
    return project


SPAN_OVERLAP_NOT_SPANS = "Only span projects have the overlapping-spans setting."


SPAN_OVERLAP_IN_USE = (
    "Overlapping spans cannot be turned off: {count} stored span value{s} would then be invalid ({where}), on "
    "{items}{more}. Those spans must stop overlapping first; then turn it off."
)


def _overlap_refusal(report: SpanOverlapReport) -> str:
    where = ", ".join(f"{n} {source}{'' if n == 1 else 's'}" for source, n in report.by_source.items())
    items = ("item " if len(report.item_ids) == 1 else "items ") + ", ".join(f"#{pk}" for pk in report.item_ids)
    return SPAN_OVERLAP_IN_USE.format(
        count=report.count,
        s="" if report.count == 1 else "s",
        where=where,
        items=items,
        more=" and others" if report.count > len(report.item_ids) else "",
    )


def project_span_overlap_set(*, project: Project, allow: bool, user: User) -> Project:
    """Let spans overlap, or not. Turning it on is always allowed; turning it off is refused, changing nothing,
    while any stored span value the project reuses (annotations, final labels, pre-annotations, open review
    suggestions, rating corrections) holds overlapping spans, naming how many and a few items.

    The flag is written first and checked after, in one transaction that holds the project row, so a write that
    reads the project after this one commits is checked without overlaps. Every change is logged (who, from, to).
    """
    if not project.task_kind.needs_text:
        raise ServiceError(SPAN_OVERLAP_NOT_SPANS, field="allow_overlapping_spans")
    allow = bool(allow)
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        before = locked.allow_overlapping_spans
        if before == allow:
            project.allow_overlapping_spans = allow
            return project
        Project.objects.filter(pk=project.pk).update(allow_overlapping_spans=allow)
        if not allow:
            report = span_overlaps(project=project)
            if report.count:  # raising out of the block rolls the flag back
                raise ServiceError(_overlap_refusal(report), field="allow_overlapping_spans")
    project.allow_overlapping_spans = allow
    message = (
        f"project {project.pk}: allow_overlapping_spans {before} -> {allow} by {user.get_username()} (user {user.pk})"
    )
    transaction.on_commit(lambda: logger.info(message))  # not when a later refusal in the request rolls it back
    return project


def project_archive(*, project: Project) -> Project:
    """Deleting a project archives it: nothing anyone did is removed."""
    project.archived_at = timezone.now()
    project.save(update_fields=["archived_at"])
    return project


def guideline_current(*, project: Project) -> GuidelineVersion | None:
    return GuidelineVersion.objects.filter(project=project).order_by("-version").first()


def guideline_publish(
    *, project: Project, author: User, body: str, change_note: str = ""
) -> GuidelineVersion:
    """Publish a new version; annotators must acknowledge it before their next item. Its author has read it."""
    if not body.strip():
        raise ServiceError(GUIDELINE_EMPTY, field="body")
    for _attempt in range(3):
        current = guideline_current(project=project)
        if current is not None and current.body.strip() == body.strip():
            raise ServiceError(GUIDELINE_UNCHANGED, field="body")
        try:
            with transaction.atomic():
                version = GuidelineVersion.objects.create(
                    project=project,
                    version=(current.version if current else 0) + 1,
                    body=body,
                    change_note=change_note.strip()[:300],
                    created_by=author,
                )
                GuidelineAcknowledgement.objects.create(guideline_version=version, user=author)
                return version
        except IntegrityError:
            continue  # someone published at the same moment; number after theirs
    raise ServiceError("Could not publish: guidelines are being changed concurrently, try again.")


def guideline_acknowledge(*, user: User, version: GuidelineVersion) -> GuidelineAcknowledgement:
    ack, _ = GuidelineAcknowledgement.objects.get_or_create(guideline_version=version, user=user)
    return ack


GUIDELINE_NOT_CURRENT = "This is not the current guideline version: read the current one and acknowledge that."


def guideline_acknowledge_current(*, user: User, version: GuidelineVersion) -> GuidelineAcknowledgement:
    """Acknowledge the version the reader names, which must still be the current one (409 otherwise):
    naming it guards against acknowledging a version published after the reader loaded theirs."""
    current = guideline_current(project=version.project)
    if current is None or current.pk != version.pk:
        raise StateConflict(GUIDELINE_NOT_CURRENT, field="version")
    return guideline_acknowledge(user=user, version=version)


def guideline_needs_ack(*, user: User, project: Project) -> GuidelineVersion | None:
    """The current version if `user` has not acknowledged it yet, else None. One query."""
    current = (
        GuidelineVersion.objects.filter(project=project)
        .order_by("-version")
        .only("id", "version", "project_id")
        .first()
    )
    if current is None:
        return None
    if GuidelineAcknowledgement.objects.filter(guideline_version=current, user=user).exists():
        return None
    return current


LABEL_RENAME_IN_USE = "Labels cannot be renamed once the project has annotations: their values name the label."


LAST_OWNER = "A project needs at least one owner: make someone else owner first."


USER_NOT_FOUND = "No user with this username."


LEASE_MIN_SECONDS = 30


LEASE_MAX_SECONDS = 24 * 3600


def project_set_lease(*, project: Project, lease_seconds: int) -> Project:
    """Change how long a claim is held; claims already taken keep the expiry they were given."""
    if not LEASE_MIN_SECONDS <= lease_seconds <= LEASE_MAX_SECONDS:
        raise ServiceError(
            f"The lease must be between {LEASE_MIN_SECONDS} and {LEASE_MAX_SECONDS} seconds.", field="lease_seconds"
        )
    Project.objects.filter(pk=project.pk).update(lease_seconds=lease_seconds)
    project.lease_seconds = lease_seconds
    return project


SLICE_FIELDS_TOO_MANY = "At most {limit} slice fields; {count} were given."


SLICE_FIELD_UNKNOWN = (
    "No item of this project has the metadata field {names}: slice fields must be metadata keys the items carry "
    "(or length_band, the text length in bands)."
)


SLICE_FIELD_BAD = "A slice field must be a non-empty name of at most 100 characters; got {name!r}."


def project_set_slice_fields(*, project: Project, fields: Sequence[str]) -> Project:
    """Name the metadata fields every evaluation reports its figures per value of (training/ml/slices.py).

    Each must be a key some item's metadata has, or the built-in "length_band"; at most MAX_SLICE_FIELDS, in the
    order given, duplicates dropped. An empty list turns the per-slice figures off.
    """
    from training.ml.slices import LENGTH_BAND, MAX_SLICE_FIELDS

    names: list[str] = []
    for raw in fields:
        name = raw.strip() if isinstance(raw, str) else ""
        if not name or len(name) > 100:
            raise ServiceError(SLICE_FIELD_BAD.format(name=raw), field="slice_fields")
        if name not in names:
            names.append(name)
    if len(names) > MAX_SLICE_FIELDS:
        raise ServiceError(SLICE_FIELDS_TOO_MANY.format(limit=MAX_SLICE_FIELDS, count=len(names)), field="slice_fields")
    items = Item.objects.filter(project=project)
    unknown = [name for name in names if name != LENGTH_BAND and not items.filter(metadata__has_key=name).exists()]
    if unknown:
        raise ServiceError(
            SLICE_FIELD_UNKNOWN.format(names=", ".join(repr(name) for name in unknown)), field="slice_fields"
        )
    Project.objects.filter(pk=project.pk).update(slice_fields=names)
    project.slice_fields = names
    return project


def label_update(*, label: Label, name: str, color: str, hotkey: str) -> Label:
    """Edit a label's look and hotkey; its name only while no annotation can refer to it."""
    name, hotkey = name.strip(), hotkey.strip()
    _label_check(project_id=label.project_id, name=name, hotkey=hotkey, label_id=label.pk)
    if name != label.name and Annotation.objects.filter(item__project_id=label.project_id).exists():
        raise ServiceError(LABEL_RENAME_IN_USE, field="name")
    label.name, label.color, label.hotkey = name, color, hotkey
    try:
        label.full_clean(exclude=["project"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(f"{field}: {' '.join(messages)}", field=field) from exc
    try:
        with transaction.atomic():
            label.save(update_fields=["name", "color", "hotkey"])
    except IntegrityError as exc:
        raise ServiceError(DUPLICATE_LABEL, field="name") from exc
    return label


def membership_set_role(*, project: Project, username: str, role: str) -> Membership:
    """Add a user by username or change their role, never leaving the project without an owner."""
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ServiceError(USER_NOT_FOUND, field="username")
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(project=project, user=user).first()
        demotes_owner = current is not None and current.role == Role.OWNER and role != Role.OWNER
        other_owners = Membership.objects.filter(project=project, role=Role.OWNER).exclude(user=user)
        if demotes_owner and not other_owners.exists():
            raise ServiceError(LAST_OWNER, field="role")
        return membership_set(project=project, user=user, role=role)


def token_issue(*, user: User, rotate: bool = False) -> Token:
    """The user's token, created on first use; `rotate` replaces it, so the old key stops working at once."""
    with transaction.atomic():
        if rotate:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
    return token


def _round_number(raw: float, *, field: str, message: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ServiceError(message, field=field) from None
    if math.isnan(value) or not (low <= value <= high):
        raise ServiceError(message, field=field)
    return value


def project_show_prelabels_set(*, project: Project, show: bool) -> Project:
    """Whether annotators see items' pre-labels (off by default: a pre-label biases blind annotation)."""
    Project.objects.filter(pk=project.pk).update(show_prelabels=bool(show))
    project.show_prelabels = bool(show)
    return project


def project_round_settings_set(
    *,
    project: Project,
    queue_order: str,
    random_share: float,
    disagreement_confidence: float,
    show_prelabels: bool,
    show_model_confidence: bool | None = None,
    rating_criteria: list[str] | None = None,
) -> Project:
    """Save how model outputs feed the next round (the settings page, and a round's chosen options).

    None for the two rating settings keeps them as they are.
    """
    if queue_order not in QueueOrder.values:
        raise ServiceError(BAD_QUEUE_ORDER.format(choices=", ".join(QueueOrder.values)), field="queue_order")
    share = _round_number(random_share, field="random_share", message=BAD_SHARE, low=0.0, high=1.0)
    confidence = _round_number(
        disagreement_confidence, field="disagreement_confidence", message=BAD_CONFIDENCE, low=0.5, high=1.0
    )
    updates: dict[str, object] = {
        "queue_order": queue_order,
        "random_share": share,
        "disagreement_confidence": confidence,
        "show_prelabels": bool(show_prelabels),
    }
    if show_model_confidence is not None:
        updates["show_model_confidence"] = bool(show_model_confidence)
    if rating_criteria is not None:
        updates["rating_criteria"] = list(rating_criteria)
    Project.objects.filter(pk=project.pk).update(**updates)
    for name, value in updates.items():
        setattr(project, name, value)
    return project


BAD_POLICY = "The routing policy must be one of: {choices}."


ROUTING_BUDGET_MAX = 20.0


BAD_BUDGET = "The routing budget must be a number of judgements per item between 1 and 20."


BAD_AUDIT_RATE = "The audit rate must be a share between 0 and 1."


def _routing_values(
    *, routing_policy: str | None = None, routing_budget: float | None = None, audit_rate: float | None = None
) -> dict[str, object]:
    """The routing settings given (None: left as they are), checked: ServiceError names the field that is wrong."""
    values: dict[str, object] = {}
    if routing_policy is not None:
        if routing_policy not in RoutingPolicy.values:
            raise ServiceError(BAD_POLICY.format(choices=", ".join(RoutingPolicy.values)), field="routing_policy")
        values["routing_policy"] = routing_policy
    if routing_budget is not None:
        values["routing_budget"] = _round_number(
            routing_budget, field="routing_budget", message=BAD_BUDGET, low=1.0, high=ROUTING_BUDGET_MAX
        )
    if audit_rate is not None:
        values["audit_rate"] = _round_number(audit_rate, field="audit_rate", message=BAD_AUDIT_RATE, low=0.0, high=1.0)
    return values


BUDGET_UNDER_OVERLAP = (
    "Adaptive routing needs a budget of at least the overlap: every item gets {overlap} annotators before routing "
    "weighs it, so a budget of {budget:g} (judgements per item) could never be kept. Raise the budget to {overlap} or "
    "more, lower the overlap, or route fixed."
)


def routing_settings(project: Project) -> tuple[int, str, float]:
    """What `project_routing_check` judges: read before a change, so a change of anything else is never refused."""
    return project.overlap, project.routing_policy, project.routing_budget


def project_routing_check(*, project: Project, before: tuple[int, str, float] | None = None) -> None:
    """Refuse settings adaptive routing cannot keep (a budget under the overlap), naming the budget: called once a
    change of overlap or routing is applied, inside its transaction, so a refusal changes nothing. With `before`
    (`routing_settings` ahead of the change), only when overlap or routing changed: a project made before the rule
    keeps working for its other settings."""
    if before is not None and routing_settings(project) == before:
        return
    if project.routes_adaptively and project.routing_budget < project.overlap:
        raise ServiceError(
            BUDGET_UNDER_OVERLAP.format(overlap=project.overlap, budget=project.routing_budget), field="routing_budget"
        )


def project_routing_set(
    *,
    project: Project,
    routing_policy: str | None = None,
    routing_budget: float | None = None,
    audit_rate: float | None = None,
) -> Project:
    """Save who sees an annotated item next (review/routing.py); None keeps a setting as it is.

    Items already routed keep their route: the policy applies from the next item whose annotations are in.
    """
    updates = _routing_values(routing_policy=routing_policy, routing_budget=routing_budget, audit_rate=audit_rate)
    if updates:
        Project.objects.filter(pk=project.pk).update(**updates)
    for name, value in updates.items():
        setattr(project, name, value)
    return project


MEMBER_ALREADY = "{username!r} is already a member of this project; change their role instead."


USERNAME_TAKEN = "A user called {username!r} already exists: add them without `create`."


NOT_A_MEMBER = "This user is not a member of this project."


# Length of the one-time password an owner gets for a user they create (token_urlsafe bytes: ~16 characters).


ONE_TIME_PASSWORD_BYTES = 12


def user_create_with_one_time_password(
    *, username: str, email: str = "", created_by: User
) -> tuple[User, str]:
    """Create a user with a random password, returned once and stored only hashed; they must change it.

    The password is for the owner to pass on; at first sign-in the browser sends the user to the password
    change page until they chose their own (see annotation.projects.middleware).
    """
    user_model = get_user_model()
    username = username.strip()
    if user_model.objects.filter(username=username).exists():
        raise ServiceError(USERNAME_TAKEN.format(username=username), field="username")
    password = secrets.token_urlsafe(ONE_TIME_PASSWORD_BYTES)
    user = user_model(username=username, email=email.strip())
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ServiceError(f"{field}: {' '.join(messages)}", field=field) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            AccountSetup.objects.create(user=user, created_by=created_by)
    except IntegrityError as exc:  # the same name created meanwhile (a double click on the members form)
        raise ServiceError(USERNAME_TAKEN.format(username=username), field="username") from exc
    return user, password


EMAIL_WITHOUT_CREATE = (
    "An email is stored only with an account created here: tick “Create this account” (API: create), or leave the "
    "email empty."
)


def member_add(
    *,
    project: Project,
    username: str,
    role: str,
    added_by: User,
    create: bool = False,
    email: str = "",
) -> tuple[Membership, str | None]:
    """Add a user to the project: an existing one by username, or (`create`) a new one with a one-time password.

    Returns the membership and the one-time password (None for an existing user).
    """
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}; use one of {Role.values}.", field="role")
    if email.strip() and not create:  # an existing account's email is not changed here: it would be dropped
        raise ServiceError(EMAIL_WITHOUT_CREATE, field="email")
    with transaction.atomic():
        if create:
            user, password = user_create_with_one_time_password(username=username, email=email, created_by=added_by)
        else:
            found = User.objects.filter(username=username.strip()).first()
            password = None
            if found is None:
                raise ServiceError(USER_NOT_FOUND, field="username")
            user = found
            if Membership.objects.filter(project=project, user=user).exists():
                raise ServiceError(MEMBER_ALREADY.format(username=user.get_username()), field="username")
        membership = Membership.objects.create(project=project, user=user, role=role)
    return membership, password


def membership_remove(*, membership: Membership) -> None:
    """Take a member out of the project (their past work stays); the last owner cannot leave."""
    with transaction.atomic():
        owners = Membership.objects.select_for_update().filter(project_id=membership.project_id, role=Role.OWNER)
        if membership.role == Role.OWNER and not owners.exclude(pk=membership.pk).exists():
            raise ServiceError(LAST_OWNER, field="role")
        membership.delete()


def account_password_changed(*, user: User) -> None:
    """The user chose their own password: the one-time one no longer binds them."""
    AccountSetup.objects.filter(user=user, must_change_password=True).update(
        must_change_password=False, password_changed_at=timezone.now()
    )


def token_revoke(*, user: User) -> bool:
    """Delete the user's API token; False when they had none. Their next request with it gets 401."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


IMPORT_ANNOTATOR = "import:{project_id}"


def import_annotator(*, project: Project) -> User:
    """The account imported annotations are recorded under: one per project, and it can never log in.

    Its name holds a ":", which Django's username rules refuse, so no person can ever register it.
    """
    user, created = get_user_model().objects.get_or_create(
        username=IMPORT_ANNOTATOR.format(project_id=project.pk),
        defaults={"is_active": False, "first_name": "Imported labels"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
