"""Inter-annotator agreement and per-annotator accuracy: pure functions over annotation rows (no Django).

The input is a flat list of `(item_id, annotator, value_key)` rows, where `value_key` is the hashable
form of a value (`annotation.tasktypes.value_key`: a label name, or sorted label names joined by "|" for
multi-label values). An annotator who appears twice on one item counts once, with their last row.

Every figure that is undefined for the data at hand (fewer than two shared items, a single category in
use, no item with two ratings) is `None`, never NaN, so the summary stays JSON-serialisable and the
pages can print "–" instead of a misleading number.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any, Literal, NamedTuple, TypeGuard, TypeVar

import numpy as np

MULTI_LABEL_SEPARATOR = "|"


Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")


BUCKETS = ("day", "week", "month")


UNKNOWN_LEVEL = "Krippendorff's alpha level must be one of {levels}, not {level!r}."


NOT_NUMERIC = "The {level} level needs numeric values; {value!r} is not a number."


UNKNOWN_BUCKET = "A trend bucket must be one of {buckets}, not {bucket!r}."


class AnnotationRow(NamedTuple):
    item_id: int
    annotator: str
    value_key: str


class PairKappa(NamedTuple):
    annotator_a: str
    annotator_b: str
    kappa: float | None
    n_items: int


class AnnotatorAccuracy(NamedTuple):
    annotator: str
    accuracy: float | None
    n: int


Ratings = dict[Hashable, dict[str, str]]  # item id -> {annotator: value key}


def _by_item(rows: Iterable[Sequence[Any]]) -> Ratings:
    """Group rows by item; a repeated (item, annotator) pair keeps its last value."""
    items: Ratings = {}
    for item_id, annotator, value, *_ in rows:
        items.setdefault(item_id, {})[annotator] = value
    return items


Row = TypeVar("Row", bound=Sequence[Any])


def blind_rows(rows: Iterable[Row], blind: Mapping[Any, int]) -> list[Row]:
    """The blind ratings agreement is measured on: of an item in `blind` ({item id: how many}), its first that many
    rows (rows in submission order); every row of any other item.

    Adaptive routing asks a further annotator only where the first ones disagreed, so those extra ratings are a
    sample chosen *for* disagreement: counted in, they pull alpha and raw agreement down, and Fleiss' kappa, which
    needs one rating count, was computed on the two-rating items alone, i.e. on the agreed ones (1.0 on a demo
    project whose pairwise kappas ran -0.36 to 0.53)."""
    seen: Counter = Counter()
    kept = []
    for row in rows:
        seen[row[0]] += 1
        if row[0] not in blind or seen[row[0]] <= blind[row[0]]:
            kept.append(row)
    return kept


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _confusion(rows: Sequence[str], columns: Sequence[str], axis: Sequence[str]) -> np.ndarray:
    """Counts of (row value, column value) pairs, both indexed by `axis` (every value must be on it)."""
    index = {value: i for i, value in enumerate(axis)}
    matrix = np.zeros((len(axis), len(axis)), dtype=np.int64)
    np.add.at(matrix, ([index[v] for v in rows], [index[v] for v in columns]), 1)
    return matrix


def _cohen_kappa(y1: Sequence[str], y2: Sequence[str]) -> float:
    """Unweighted Cohen's kappa, (p_o - p_e) / (1 - p_e); NaN when chance agreement is 1.

    Written out in numpy (it is two sums) so the quality page does not load scikit-learn into a web process.
    """
    matrix = _confusion(y1, y2, sorted(set(y1) | set(y2))).astype(np.float64)
    total = matrix.sum()
    observed = np.trace(matrix) / total
    expected = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / total**2
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def pairwise_cohen_kappa(rows: Iterable[Sequence[Any]]) -> list[PairKappa]:
    """Cohen's kappa for every pair of annotators over the items both labelled.

    kappa is None when the pair shares fewer than two items or when it is undefined (both annotators
    used one and the same category throughout, so chance agreement is 1).
    """
    per_annotator: dict[str, dict[Hashable, str]] = defaultdict(dict)
    for item_id, ratings in _by_item(rows).items():
        for annotator, value in ratings.items():
            per_annotator[annotator][item_id] = value
    pairs: list[PairKappa] = []
    for a, b in combinations(sorted(per_annotator), 2):
        left, right = per_annotator[a], per_annotator[b]
        shared = [item for item in left if item in right]
        kappa = None
        if len(shared) >= 2:
            y1 = [left[item] for item in shared]
            y2 = [right[item] for item in shared]
            if len(set(y1) | set(y2)) > 1:  # one category throughout: chance agreement is 1, kappa 0/0
                kappa = _finite(_cohen_kappa(y1, y2))
        if shared:
            pairs.append(PairKappa(a, b, kappa, len(shared)))
    return pairs


def _count_table(ratings: Ratings, min_ratings: int = 2) -> tuple[np.ndarray, list[str]]:
    """Items x categories matrix of how many annotators chose each category (items with enough ratings)."""
    categories = sorted({v for r in ratings.values() for v in r.values()})
    column = {c: j for j, c in enumerate(categories)}
    rated = [r for r in ratings.values() if len(r) >= min_ratings]
    table = np.zeros((len(rated), len(categories)), dtype=np.int64)
    for i, r in enumerate(rated):
        for value in r.values():
            table[i, column[value]] += 1
    return table, categories


def _fleiss_from_table(table: np.ndarray) -> float | None:
    """Fleiss' kappa from an items x categories count table whose rows all sum to the same n >= 2."""
    if table.shape[0] == 0:
        return None
    n = int(table[0].sum())
    if n < 2:
        return None
    n_items = table.shape[0]
    p_j = table.sum(axis=0) / (n_items * n)  # share of all ratings in each category
    p_i = ((table * (table - 1)).sum(axis=1)) / (n * (n - 1))  # agreeing rater pairs per item
    p_bar = p_i.mean()
    p_e = float((p_j**2).sum())
    if p_e >= 1.0 - 1e-12:
        return None
    return float((p_bar - p_e) / (1.0 - p_e))


def fleiss_kappa(rows: Iterable[Sequence[Any]]) -> float | None:
    """Fleiss' kappa over the items rated by the modal number of annotators.

    Fleiss' formula needs the same number of ratings n on every item. With an overlap setting that is
    the case for finished items; items still in progress (or over-annotated by an import) would bias it,
    so only items whose rating count equals the most common count (>= 2) are used. On a tie between two
    counts the larger wins, because more raters per item give a steadier estimate. None when no item has
    two ratings or every rating used the same category.
    """
    return _fleiss_modal(_by_item(rows))


def _fleiss_modal(ratings: Ratings) -> float | None:
    counts = Counter(len(r) for r in ratings.values() if len(r) >= 2)
    if not counts:
        return None
    modal = max(counts, key=lambda n: (counts[n], n))
    return _fleiss_from_table(_count_table({k: r for k, r in ratings.items() if len(r) == modal})[0])


def krippendorff_alpha(rows: Iterable[Sequence[Any]], level: str = "nominal") -> float | None:
    """Krippendorff's alpha: any number of annotators per item, missing ratings allowed.

    Items with one rating carry no pairable information and are ignored by the statistic. Non-nominal
    levels need numeric value keys. None when no item has two ratings or only one value was used.
    """
    return _alpha(_by_item(rows), level)


def _is_level(level: str) -> TypeGuard[Level]:
    return level in LEVELS


def _alpha(ratings: Ratings, level: str = "nominal") -> float | None:
    import krippendorff

    if not _is_level(level):
        raise ValueError(UNKNOWN_LEVEL.format(levels=LEVELS, level=level))
    ratings = {k: r for k, r in ratings.items() if len(r) >= 2}
    if not ratings:
        return None
    values = sorted({v for r in ratings.values() for v in r.values()})
    if len(values) < 2:
        return None
    if level == "nominal":
        code = {v: float(i) for i, v in enumerate(values)}
    else:
        code = {}
        for v in values:
            try:
                code[v] = float(v)
            except (TypeError, ValueError):
                raise ValueError(NOT_NUMERIC.format(level=level, value=v)) from None
    annotators = sorted({a for r in ratings.values() for a in r})
    row_of = {a: i for i, a in enumerate(annotators)}
    data = np.full((len(annotators), len(ratings)), np.nan)
    for j, r in enumerate(ratings.values()):
        for annotator, value in r.items():
            data[row_of[annotator], j] = code[value]
    domain = sorted(set(code.values()))
    return _finite(krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=level))


def _percent_agreement(ratings: Ratings) -> float | None:
    """Observed agreement: the share of agreeing annotator pairs per item, averaged over items with 2+ ratings."""
    shares = []
    for r in ratings.values():
        n = len(r)
        if n < 2:
            continue
        same = sum(c * (c - 1) for c in Counter(r.values()).values())
        shares.append(same / (n * (n - 1)))
    return float(np.mean(shares)) if shares else None


def _full_agreement(ratings: Ratings) -> float | None:
    """Share of items with 2+ ratings on which every annotator gave the same value."""
    multi = [r for r in ratings.values() if len(r) >= 2]
    if not multi:
        return None
    return sum(len(set(r.values())) == 1 for r in multi) / len(multi)


def _label_set(value: str, known: set[str], separator: str) -> set[str]:
    """The labels inside a value key: the key itself when it names a label, else its "|"-joined parts."""
    if value in known:
        return {value}
    return {part for part in value.split(separator) if part}


def per_label_agreement(
    rows: Iterable[Sequence[Any]], labels: Sequence[str] | None = None, *, separator: str = MULTI_LABEL_SEPARATOR
) -> dict[str, dict[str, Any]]:
    """Alpha and Fleiss' kappa per label, each rating binarised to "has this label" or not.

    Multi-label value keys are split on `separator` (single-label names that contain it are matched
    whole when `labels` lists them). `n` is how many ratings carry the label: its support.
    """
    ratings = _by_item(rows)
    known = set(labels or ())
    if labels is None:
        names = sorted(
            {label for r in ratings.values() for v in r.values() for label in _label_set(v, known, separator)}
        )
    else:
        names = list(labels)
    sets = {k: {a: _label_set(v, known, separator) for a, v in r.items()} for k, r in ratings.items()}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        binary = {k: {a: "1" if name in s else "0" for a, s in r.items()} for k, r in sets.items()}
        support = sum(v == "1" for r in binary.values() for v in r.values())
        out[name] = {"alpha": _alpha(binary), "fleiss": _fleiss_modal(binary), "n": support}
    return out


def annotator_accuracy(rows: Iterable[Sequence[Any]], final: Mapping[Any, str]) -> list[AnnotatorAccuracy]:
    """Each annotator's share of values equal to the item's final value, over their items that have one.

    Every annotator in `rows` is listed, with accuracy None and n 0 when none of their items is final yet.
    """
    annotators: set[str] = set()
    hits: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for item_id, ratings in _by_item(rows).items():
        annotators.update(ratings)
        if item_id not in final:
            continue
        for annotator, value in ratings.items():
            seen[annotator] += 1
            hits[annotator] += value == final[item_id]
    return [AnnotatorAccuracy(a, hits[a] / seen[a] if seen[a] else None, seen[a]) for a in sorted(annotators)]


def annotator_confusion(
    rows: Iterable[Sequence[Any]], final: Mapping[Any, str], labels: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per annotator, a confusion matrix: rows are what the annotator said, columns the final value.

    The axes are `labels` in their order, followed (sorted) by any value seen that `labels` lacks, so
    nothing is silently dropped. Annotators with no finalised item are left out.
    """
    ratings = _by_item(rows)
    said: dict[str, list[str]] = defaultdict(list)
    truth: dict[str, list[str]] = defaultdict(list)
    for item_id, r in ratings.items():
        if item_id not in final:
            continue
        for annotator, value in r.items():
            said[annotator].append(value)
            truth[annotator].append(final[item_id])
    axis = list(labels or ())
    extra = {v for vs in said.values() for v in vs} | {v for vs in truth.values() for v in vs}
    axis += sorted(extra - set(axis))
    return {
        a: {"labels": axis, "matrix": _confusion(said[a], truth[a], axis).tolist()}
        for a in sorted(said)
    }


def agreement_summary(
    rows: Iterable[Sequence[Any]], final: Mapping[Any, str] | None = None, labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Everything the quality page and a snapshot manifest show, as plain JSON types.

    `overall` holds the headline figures only (fleiss_kappa, krippendorff_alpha, percent_agreement,
    full_agreement, mean_cohen_kappa), so it can be printed as a row of numbers.
    """
    rows = list(rows)
    ratings = _by_item(rows)
    pairs = pairwise_cohen_kappa(rows)
    defined = [p.kappa for p in pairs if p.kappa is not None]
    overall = {
        "fleiss_kappa": _fleiss_modal(ratings),
        "krippendorff_alpha": _alpha(ratings),
        "percent_agreement": _percent_agreement(ratings),
        "full_agreement": _full_agreement(ratings),
        "mean_cohen_kappa": float(np.mean(defined)) if defined else None,
    }
    summary: dict[str, Any] = {
        "n_items": len(ratings),
        "n_items_multi": sum(len(r) >= 2 for r in ratings.values()),
        "n_annotations": sum(len(r) for r in ratings.values()),
        "n_annotators": len({a for r in ratings.values() for a in r}),
        **overall,
        "overall": overall,
        "pairs": [p._asdict() for p in pairs],
        "per_label": per_label_agreement(rows, labels),
    }
    if final is not None:
        summary["annotators"] = [a._asdict() for a in annotator_accuracy(rows, final)]
        summary["confusion"] = annotator_confusion(rows, final, labels)
    return summary


def _period(when: dt.datetime | dt.date, bucket: str) -> dt.date:
    day = when.date() if isinstance(when, dt.datetime) else when
    if bucket == "week":
        return day - dt.timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def agreement_trend(rows_with_time: Iterable[Sequence[Any]], bucket: str = "day") -> list[dict[str, Any]]:
    """Agreement per period, each item counted in the period of its latest rating (when it became complete).

    Periods are days, ISO weeks (named by their Monday) or months (named by their first day); only
    periods with at least one item rated twice are listed, oldest first.
    """
    if bucket not in BUCKETS:
        raise ValueError(UNKNOWN_BUCKET.format(buckets=BUCKETS, bucket=bucket))
    latest: dict[Hashable, dt.datetime] = {}
    rows: list[tuple[Any, str, str]] = []
    for item_id, annotator, value, when in rows_with_time:
        rows.append((item_id, annotator, value))
        if item_id not in latest or when > latest[item_id]:
            latest[item_id] = when
    by_period: dict[dt.date, Ratings] = defaultdict(dict)
    for item_id, r in _by_item(rows).items():
        if len(r) >= 2:
            by_period[_period(latest[item_id], bucket)][item_id] = r
    return [
        {
            "period": period.isoformat(),
            "alpha": _alpha(ratings),
            "percent_agreement": _percent_agreement(ratings),
            "n_items": len(ratings),
        }
        for period, ratings in sorted(by_period.items())
    ]


# --- Spans ---------------------------------------------------------------------------------------
# Span values are compared three ways, each pairwise between annotators on the items both annotated:
# exact match (a span counts only with the same start, end and label), token level (each word token of
# the text, `annotation.tasktypes.word_tokens`, carries the labels of the spans it lies in) and
# Krippendorff's alpha with the token as the unit and its label (or "O") as the value. Every figure is
# also given per label. F1 between two annotators is symmetric: 2·|A∩B| / (|A| + |B|), summed over
# pairs and items before dividing (micro average), so an item with many spans weighs more.

OUTSIDE = "O"


def _f1(tp: int, total: int) -> float | None:
    return 2 * tp / total if total else None


def _token_labels(spans: Sequence[tuple[int, int, str]], tokens: Sequence[tuple[int, int]]) -> list[set[str]]:
    """The labels each token carries: those of the spans it overlaps."""
    out: list[set[str]] = [set() for _ in tokens]
    for start, end, label in spans:
        for i, (t_start, t_end) in enumerate(tokens):
            if t_start < end and start < t_end:
                out[i].add(label)
    return out


def span_agreement(
    rows: Iterable[Sequence[Any]], texts: Mapping[Any, str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Exact-match F1, token-level F1 and token-level Krippendorff's alpha between annotators, overall and
    per label. `rows` are (item_id, annotator, spans) with spans as (start, end, label) tuples (code points);
    `texts` maps item ids to their text (for the tokens). Items with fewer than two annotators are left out.
    """
    from annotation.tasktypes import word_tokens

    by_item: dict[Any, dict[str, list[tuple[int, int, str]]]] = {}
    for item_id, annotator, spans, *_ in rows:
        by_item.setdefault(item_id, {})[annotator] = [tuple(s) for s in spans]
    names = list(labels) if labels is not None else sorted(
        {s[2] for r in by_item.values() for spans in r.values() for s in spans}
    )
    exact = {"tp": 0, "total": 0}
    token = {"tp": 0, "total": 0}
    per_exact: dict[str, list[int]] = {name: [0, 0] for name in names}
    per_token: dict[str, list[int]] = {name: [0, 0] for name in names}
    units: Ratings = {}
    per_units: dict[str, Ratings] = {name: {} for name in names}
    n_items = 0
    for item_id, by_annotator in by_item.items():
        if len(by_annotator) < 2 or item_id not in texts:
            continue
        n_items += 1
        tokens = word_tokens(texts[item_id])
        token_sets = {a: _token_labels(spans, tokens) for a, spans in by_annotator.items()}
        for a, b in combinations(sorted(by_annotator), 2):
            sa, sb = set(by_annotator[a]), set(by_annotator[b])
            exact["tp"] += len(sa & sb)
            exact["total"] += len(sa) + len(sb)
            ta = {(i, lab) for i, labs in enumerate(token_sets[a]) for lab in labs}
            tb = {(i, lab) for i, labs in enumerate(token_sets[b]) for lab in labs}
            token["tp"] += len(ta & tb)
            token["total"] += len(ta) + len(tb)
            for name in names:
                la = {s for s in sa if s[2] == name}
                lb = {s for s in sb if s[2] == name}
                per_exact[name][0] += len(la & lb)
                per_exact[name][1] += len(la) + len(lb)
                ka = {t for t in ta if t[1] == name}
                kb = {t for t in tb if t[1] == name}
                per_token[name][0] += len(ka & kb)
                per_token[name][1] += len(ka) + len(kb)
        for i in range(len(tokens)):
            unit = (item_id, i)
            units[unit] = {a: "|".join(sorted(sets[i])) or OUTSIDE for a, sets in token_sets.items()}
            for name in names:
                per_units[name][unit] = {a: "1" if name in sets[i] else "0" for a, sets in token_sets.items()}
    return {
        "n_items": n_items,
        "exact_f1": _f1(exact["tp"], exact["total"]),
        "token_f1": _f1(token["tp"], token["total"]),
        "token_alpha": _alpha(units),
        "per_label": [
            {
                "label": name,
                "exact_f1": _f1(*per_exact[name]),
                "token_f1": _f1(*per_token[name]),
                "token_alpha": _alpha(per_units[name]),
                "n_spans": per_exact[name][1],
            }
            for name in names
        ],
    }


# Responses compared on the quality page: the latest items with two or more responses, and the latest with a judged
# final response. Each comparison is a bit-parallel LCS (`rouge_l`), about 2 ms for two 1,500-word answers.
RESPONSE_ITEMS = 1000
# Under this many items a mean's interval is not given: a t interval over a handful of scores says little.
INTERVAL_MIN_ITEMS = 10
# Words of CJK scripts are not separated by spaces: each character counts as a token, as ROUGE-L does for them.
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+")


def response_tokens(text: str) -> list[str]:
    """A response's words for ROUGE-L: lower-cased runs of letters and digits in any script, punctuation dropped, each
    CJK character a token of its own. (rouge_score's default keeps only a-z and 0-9, so two identical Russian
    answers scored 0.)"""
    return _TOKEN.findall(text.lower())


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists: the longest common subsequence (in order, gaps allowed) over each one's length,
    the harmonic mean of the two. The LCS is bit-parallel (Hyyro, 2004): one big-integer step per token of `a`, so
    two long answers cost milliseconds, not the quadratic table's seconds. 1.0 for two empty texts."""
    if not a or not b:
        return float(not a and not b)
    masks: dict[str, int] = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    lcs = len(b) - bin(v).count("1")
    return 2 * lcs / (len(a) + len(b))


def _mean_interval(scores: Sequence[float]) -> dict[str, Any]:
    """Mean of 0..1 scores with a t 95 % interval clipped to 0..1; no interval under INTERVAL_MIN_ITEMS scores."""
    n = len(scores)
    if not n:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(np.mean(scores))
    if n < INTERVAL_MIN_ITEMS:
        return {"mean": mean, "low": None, "high": None, "n": n}
    from scipy.special import stdtrit

    half = float(stdtrit(n - 1, 0.975)) * float(np.std(scores, ddof=1)) / math.sqrt(n)
    return {"mean": mean, "low": max(0.0, mean - half), "high": min(1.0, mean + half), "n": n}


def response_agreement(rows: Iterable[Sequence[Any]], judged: Mapping[Any, str]) -> dict[str, Any]:
    """How alike written responses are, where class agreement (kappa, alpha) means nothing: two people rarely write
    the same words. `rows`: (item id, annotator, response, ...) in submission order; `judged`: {item id: final
    response} for the items whose final response someone judged (a reviewer, the owner, a rater of the model's
    output), not one that is an annotator's own response taken as agreed.

    - `overall`: ROUGE-L F1 (`rouge_l`) between two annotators' responses to the same item, averaged over every pair of
      every item with two or more (the latest RESPONSE_ITEMS of them), with a 95 % interval over items;
    - `pairs`: the same per pair of annotators;
    - `annotators`: per annotator, ROUGE-L F1 of their responses against the judged final response, and the share kept
      word for word, over their latest RESPONSE_ITEMS items with one.
    """
    by_item = _by_item(rows)
    tokens = {(item_id, who): response_tokens(text) for item_id, said in by_item.items() for who, text in said.items()}
    every_shared = [item_id for item_id, said in by_item.items() if len(said) >= 2]
    shared = every_shared[-RESPONSE_ITEMS:]
    per_item: list[float] = []
    per_pair: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for item_id in shared:
        scores = []
        for a, b in combinations(sorted(by_item[item_id]), 2):
            score = rouge_l(tokens[item_id, a], tokens[item_id, b])
            per_pair[(a, b)].append(score)
            scores.append(score)
        per_item.append(float(np.mean(scores)))
    every_judged = [item_id for item_id in by_item if item_id in judged]
    against: defaultdict[str, list[float]] = defaultdict(list)
    kept: Counter[str] = Counter()
    for item_id in every_judged[-RESPONSE_ITEMS:]:
        final = response_tokens(judged[item_id])
        for who, response in by_item[item_id].items():
            against[who].append(rouge_l(tokens[item_id, who], final))
            kept[who] += response == judged[item_id]
    everyone = sorted({who for said in by_item.values() for who in said})
    return {
        "items": len(every_shared),
        "compared": len(shared),
        "judged": len(every_judged),
        "judged_compared": min(len(every_judged), RESPONSE_ITEMS),
        "overall": _mean_interval(per_item),
        "pairs": [{"a": a, "b": b, **_mean_interval(scores)} for (a, b), scores in sorted(per_pair.items())],
        "annotators": [
            {
                "annotator": who,
                **_mean_interval(against[who]),
                "kept": kept[who] / len(against[who]) if against[who] else None,
            }
            for who in everyone
        ],
    }
