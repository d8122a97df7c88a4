"""Label-noise scan: out-of-fold class probabilities + every vote -> calibrated suspects (no Django).

cleanlab only ever sees probabilities from models that did not train on the item being judged
(k-fold cross-validation), so a memorised wrong label cannot vouch for itself. `scan` is what the
product runs: CROWDLAB (cleanlab.multiannotator) over every annotator's and reviewer's vote plus the
model gives consensus and annotator quality; a calibrated posterior says how likely each final label
is right and ranks the flags. How many are flagged is the expected number of wrong labels: the model's
(cleanlab's noise matrix inverted out of its probabilities), weighed against an ambiguity reading of the
votes as far as reviewers' audits say disagreement is ambiguity rather than slips. `find_suspects` is
the earlier final-label-only scan, kept as the baseline bench/noise.py compares against. Data that
cannot be scanned (too few items, one label, a label rarer than the number of folds) raises
NoiseScanError with a message meant for the person who started the scan, before sklearn gets a
chance to fail obscurely.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression

DEFAULT_FOLDS = 5


# Inverse regularisation of the logistic regression over sentence embeddings, chosen with
# bench/noise.py: C=10 fits the flipped labels of the training folds and flags clean items (SMS spam
# at 10 % noise: precision 0.79 against 0.94 at C=1); C=0.3 and C=3 did no better on TREC.
DEFAULT_C = 1.0


# cleanlab's "both" flags an item only when prune_by_noise_rate and prune_by_class agree: on TREC at
# 10 % noise, precision 0.62 against 0.58 for either alone, at the same recall; equal on SMS spam.
DEFAULT_FILTER = "both"


FILTER_METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


TOO_FEW_ITEMS = "A noise scan needs at least {minimum} labelled items ({folds} folds x 2 labels); there are {n}."


ONE_LABEL = "A noise scan compares labels with each other, but every item has the label {label!r}."


TOO_FEW_FOR_LABEL = (
    "Label {label!r} has only {n} labelled {items}; a noise scan needs at least {folds} per label "
    "(one in each cross-validation fold). Label more of them, then scan again."
)


UNKNOWN_LABEL = "Item {index} has the label {label!r}, which is not one of the project's labels {labels}."


ROWS_MISMATCH = "There are {n_x} embeddings for {n_y} labels; each item needs exactly one of each."


NOT_FINITE = "Some embeddings are not finite numbers (NaN or infinity); embed those items again."


BAD_FOLDS = "A noise scan needs at least 2 cross-validation folds, not {folds}."


BAD_FILTER = "filter_by must be one of {methods}, not {filter_by!r}."


NO_SHARED_ITEMS = (
    "No item has two or more votes, so annotators cannot be compared (CROWDLAB); the model and cleanlab's "
    "single-label noise estimate judged the labels alone."
)


CODE_GAP = "Label codes must run from 0 to {top} without a gap; no item has code {code}."


class NoiseScanError(ValueError):
    """The data cannot be scanned as it is; the message says why, in words for the project's reviewers."""


class Suspect(NamedTuple):
    row: int  # row in X / y (not `index`: that would shadow tuple.index)
    given: str
    suggested: str
    quality_score: float  # cleanlab's label quality in [0, 1]: low is suspect


def default_classifier(seed: int) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=DEFAULT_C, max_iter=2000, random_state=seed)


def _check_X(X: Any, n: int) -> np.ndarray | sp.csr_matrix:
    import scipy.sparse as sp

    X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != n:
        raise NoiseScanError(ROWS_MISMATCH.format(n_x=X.shape[0] if X.ndim else 0, n_y=n))
    if not np.isfinite(X.data if sp.issparse(X) else X).all():
        raise NoiseScanError(NOT_FINITE)
    return X


# Character 2-5-grams within words (TF-IDF) join the word n-grams: they tie a word to its other forms and
# misspellings ("abandon", "abandoned", "abandonment"), which word n-grams keep apart. On VADER's real crowd of
# single-token sentiment ratings the out-of-fold accuracy against the five-rater reference went 0.813 -> 0.850 and
# the scan's precision at its count 0.54-0.58 -> 0.61-0.63 (F1 0.58-0.60 -> 0.61-0.62); on sentences (SMS, TREC,
# trec3) the log-loss improved a little and the scan's F1 moved −0.03 to +0.06 per run, except where the vote-weight
# calibration's all-or-nothing choice flipped with it (TREC uniform, one seed: −0.07, which the partway rule above
# `calibrate` undid; docs/benchmarks.md, "Character n-grams").
CHAR_NGRAMS = (2, 5)
# The character block reads each text's first CHAR_PREFIX characters (words, questions and most messages whole), so
# a long text gets about 250 non-zero character features beside the embedding and its word n-grams, which read it all
# (MiniLM up to its 256 tokens). Reading 300 made the out-of-fold model of 50,000 texts of about 420 characters 1.4
# times as slow and 0.6 GB larger for no measured gain (bench/scan_cost.py; docs/benchmarks.md).
CHAR_PREFIX = 100


def with_text_features(X: Any, texts: Sequence[str] | None, *, chars: bool = True) -> np.ndarray | sp.csr_matrix:
    """The embeddings, followed by TF-IDF word 1-2-grams and (unless `chars` is False) character 2-5-grams of the
    texts when texts are given.

    Sentence embeddings capture topic better than form: on TREC question types (is it asking "who"
    or "how many"?) adding word n-grams took the out-of-fold accuracy from 0.83 to 0.89 and the
    scan's precision from 0.62 to 0.76 (bench/noise.py). Character n-grams then relate a word's forms
    (CHAR_NGRAMS). The vocabularies and IDF are fitted on all texts: that uses no label, so every
    prediction stays out-of-fold with respect to the labels. A block in which no term occurs twice adds nothing.
    `chars=False` gives the features the scan had before character n-grams (the old scan, `find_suspects`, keeps them).
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    if texts is None:
        return X
    texts = list(texts)
    X = _check_X(X, len(texts))
    vectorizers = [(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), texts)]
    if chars:
        grams = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=2, sublinear_tf=True)
        vectorizers.append((grams, [text[:CHAR_PREFIX] for text in texts]))
    blocks = []
    for vectorizer, read in vectorizers:
        try:
            blocks.append(vectorizer.fit_transform(read))
        except ValueError:  # no term occurs twice: nothing to add
            continue
    if not blocks:
        return X
    return sp.hstack([sp.csr_matrix(X), *blocks], format="csr")


def _check_counts(codes: np.ndarray, names: Sequence[str], n_folds: int) -> None:
    """The per-label conditions that stratified k-fold needs, checked in the order a person would fix them."""
    if n_folds < 2:
        raise NoiseScanError(BAD_FOLDS.format(folds=n_folds))
    minimum = 2 * n_folds
    if len(codes) < minimum:
        raise NoiseScanError(TOO_FEW_ITEMS.format(minimum=minimum, folds=n_folds, n=len(codes)))
    counts = Counter(codes.tolist())
    if len(counts) < 2:
        raise NoiseScanError(ONE_LABEL.format(label=names[int(codes[0])]))
    for code, n in sorted(counts.items()):
        if n < n_folds:
            items = "item" if n == 1 else "items"
            raise NoiseScanError(TOO_FEW_FOR_LABEL.format(label=names[code], n=n, items=items, folds=n_folds))


def label_counts_problem(counts: Mapping[str, int], n_folds: int = DEFAULT_FOLDS) -> str | None:
    """What `scan` would refuse about labels given this often ({label: items}), or None: checked before a scan is
    queued, so the person sees what is missing at once rather than after the queued job fails."""
    names = sorted(label for label, n in counts.items() if n > 0)
    codes = np.array([index for index, label in enumerate(names) for _ in range(counts[label])], dtype=int)
    try:
        _check_counts(codes, names, n_folds)
    except NoiseScanError as exc:
        return str(exc)
    return None


def out_of_fold_probs(
    X: Any,
    y: Sequence[int] | np.ndarray,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    *,
    model: BaseEstimator | None = None,
) -> np.ndarray:
    """Class probabilities for every row, each from a model fitted on the other folds only.

    `y` holds integer codes 0..K-1, every code present; column j of the result is code j. Folds are
    stratified and shuffled with `seed`, so the result is reproducible.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    codes = np.asarray(y, dtype=np.int64)
    X = _check_X(X, len(codes))
    top = int(codes.max(initial=0))
    _check_counts(codes, [str(c) for c in range(top + 1)], n_folds)
    gaps = sorted(set(range(top + 1)) - set(np.unique(codes).tolist()))
    if gaps:
        raise NoiseScanError(CODE_GAP.format(top=top, code=gaps[0]))
    estimator = clone(model) if model is not None else default_classifier(seed)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return cross_val_predict(estimator, X, codes, cv=folds, method="predict_proba")


def _encode(y: Sequence[str], labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Codes over the labels actually in use (an unused project label gets no column), and their names."""
    known = set(labels)
    for index, label in enumerate(y):
        if label not in known:
            raise NoiseScanError(UNKNOWN_LABEL.format(index=index, label=label, labels=list(labels)))
    used = set(y)
    names = [label for label in dict.fromkeys(labels) if label in used]
    code = {name: i for i, name in enumerate(names)}
    return np.fromiter((code[label] for label in y), dtype=np.int64, count=len(y)), names


def find_suspects(
    X: Any,
    y: Sequence[str],
    labels: Sequence[str],
    *,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    filter_by: str = DEFAULT_FILTER,
    model: BaseEstimator | None = None,
    texts: Sequence[str] | None = None,
    probs: np.ndarray | None = None,
) -> list[Suspect]:
    """Items whose given label the out-of-fold model doubts, most suspect first.

    cleanlab's `find_label_issues` decides which items are flagged; `get_label_quality_scores`
    (self-confidence) ranks them. The suggestion is the most likely label other than the given one
    (cleanlab may flag an item whose given label the model still ranks first, by a thin margin).
    `probs` skips the model, as in `scan`.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if filter_by not in FILTER_METHODS:
        raise NoiseScanError(BAD_FILTER.format(methods=FILTER_METHODS, filter_by=filter_by))
    y = list(y)
    codes, names = _encode(y, labels)
    _check_X(X, len(codes))
    _check_counts(codes, names, n_folds)
    if probs is None:
        # the features it shipped with (no character n-grams): the baseline stays as it was
        probs = out_of_fold_probs(with_text_features(X, texts, chars=False), codes, n_folds, seed, model=model)
    elif np.shape(probs) != (len(codes), len(names)):
        raise NoiseScanError(PROBS_SHAPE.format(shape=np.shape(probs), n=len(codes), k=len(names)))
    issues = find_label_issues(codes, probs, filter_by=filter_by, n_jobs=1)
    quality = get_label_quality_scores(codes, probs)
    others = probs.copy()
    others[np.arange(len(codes)), codes] = -1.0  # a suggestion never repeats the given label
    suggested = others.argmax(axis=1)
    suspects = [Suspect(int(i), y[i], names[suggested[i]], float(quality[i])) for i in np.flatnonzero(issues).tolist()]
    suspects.sort(key=lambda s: (s.quality_score, s.row))
    return suspects


# --- the calibrated scan: every vote, the model as one more voter, as many flags as the data supports ---

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile, for Wilson intervals


NO_VOTES = "Item {index} has no vote at all; every item needs its final label's source among its votes."


PROBS_SHAPE = "Out-of-fold probabilities of shape {shape} given for {n} items and {k} labels in use."


GIVEN_NOT_VOTED = (
    "Item {index}'s final label {label!r} is not among its votes {votes}; the final label must come from one of them."
)


class AnnotatorQuality(NamedTuple):
    """One voter's agreement with the consensus reached without them, with a 95 % Wilson interval."""

    annotator: str
    n: int  # items this voter labelled that had at least one other vote
    agreed: int
    accuracy: float | None  # agreed / n; None when n == 0
    low: float | None
    high: float | None
    crowdlab_quality: float  # cleanlab's annotator_quality (agreement blended with the model's view)


class Flag(NamedTuple):
    row: int
    given: str
    suggested: str  # the consensus label, or the likeliest other label when the consensus is the given one
    quality: float  # posterior probability that the given label is right: low is suspect


class Skill(NamedTuple):
    """Does the out-of-fold model know anything? Its log-loss on the final labels against their frequencies'."""

    informative: bool  # the mean improvement's one-sided 95 % lower bound is above zero
    log_loss: float  # the model's out-of-fold log-loss on the final labels
    prior_log_loss: float  # always answering the labels' frequencies
    accuracy: float  # the model's out-of-fold accuracy on the final labels
    prior_accuracy: float  # always answering the commonest label


class ScanResult(NamedTuple):
    """Everything a scan learnt, per item in input order (routing reads the same fields)."""

    classes: list[str]  # column order of `probs` and `posterior`
    probs: np.ndarray  # out-of-fold model probabilities
    posterior: np.ndarray  # P(true class | model, every vote): calibrated, see _calibrated_posterior
    consensus: list[str]  # CROWDLAB's consensus label
    consensus_quality: list[float]  # CROWDLAB's consensus quality score
    label_quality: list[float]  # probability that the given (final) label is right (from `posterior`)
    num_votes: list[int]
    flags: list[Flag]  # most likely errors first; as many as `estimated_errors` supports
    estimated_errors: float  # wrong final labels expected by `estimate_errors` (model + cleanlab noise matrix)
    expected_precision: float | None  # mean of (1 - label quality) over the flags
    annotators: list[AnnotatorQuality]
    method: str  # "crowdlab" (some item has 2+ votes) or "single-label" (the model alone judges)
    model_weight: float | None
    calibration: Calibration | None = None  # the vote weight ranked with and its evidence (crowdlab only)
    skill: Skill | None = None  # whether the out-of-fold model predicts the final labels better than their frequencies
    votes_estimate: float | None = None  # small projects with votes: the votes' own count, shown beside the model's
    ambiguity: Ambiguity | None = None  # with votes: how the count weighs the ambiguity reading (weigh_ambiguity)


def wilson(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials: honest at small n and near 0 or 1."""
    if n <= 0:
        raise ValueError("a Wilson interval needs at least one trial")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def _vote_matrix(votes: Sequence[dict[str, str]], code: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    voters = sorted({v for item in votes for v in item})
    column = {v: j for j, v in enumerate(voters)}
    matrix = np.full((len(votes), len(voters)), np.nan)
    for i, item in enumerate(votes):
        if not item:
            raise NoiseScanError(NO_VOTES.format(index=i))
        for voter, label in item.items():
            if label not in code:
                raise NoiseScanError(UNKNOWN_LABEL.format(index=i, label=label, labels=list(code)))
            matrix[i, column[voter]] = code[label]
    return matrix, voters


class Crowdlab(NamedTuple):
    """What cleanlab's CROWDLAB made of the votes and the model, plus the posterior it implies."""

    posterior: np.ndarray  # weighted average of the model and the votes, items x classes
    consensus: np.ndarray  # cleanlab's consensus label codes
    consensus_quality: np.ndarray  # cleanlab's consensus quality scores
    weights: np.ndarray  # per voter
    model_weight: float
    likelihood: float  # share of a vote's weight on the class voted for
    spread: float  # share on each other class
    annotator_quality: Any  # cleanlab's annotator_quality, indexed by voter column


def _crowdlab_posterior(matrix: np.ndarray, probs: np.ndarray) -> Crowdlab:
    """CROWDLAB (cleanlab.multiannotator) over the vote matrix: consensus, weights, and the posterior.

    cleanlab returns the weights and the consensus but not the posterior itself; it is their weighted
    average (Goh, Tkachenko & Mueller 2022, eq. 2): the model's probabilities times the model weight,
    plus for every vote its voter's weight spread as `likelihood` on the voted class and the rest evenly.
    Recomputing it lets the scan judge the *final* label, which need not be the consensus.
    """
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    frame = pd.DataFrame(matrix)
    result = get_label_quality_multiannotator(frame, probs, verbose=False, return_weights=True)
    quality = result["label_quality"]
    model_weight = float(result["model_weight"])
    weights = np.asarray(result["annotator_weight"], dtype=np.float64)
    n_votes = quality["num_annotations"].to_numpy()
    agreement = quality["annotator_agreement"].to_numpy()
    likelihood = float(np.mean(agreement[n_votes != 1]))
    n_classes = probs.shape[1]
    spread = (1 - likelihood) / (n_classes - 1)
    posterior = probs * model_weight
    total = np.full(len(matrix), model_weight)
    for j in range(matrix.shape[1]):
        rows = np.flatnonzero(~np.isnan(matrix[:, j]))
        onehot = np.full((len(rows), n_classes), spread)
        onehot[np.arange(len(rows)), matrix[rows, j].astype(np.int64)] = likelihood
        posterior[rows] += weights[j] * onehot
        total[rows] += weights[j]
    posterior /= total[:, None]
    return Crowdlab(
        posterior,
        quality["consensus_label"].to_numpy().astype(np.int64),
        quality["consensus_quality_score"].to_numpy().astype(np.float64),
        weights,
        model_weight,
        likelihood,
        spread,
        result["annotator_stats"]["annotator_quality"],
    )


def _annotator_quality(matrix: np.ndarray, voters: list[str], crowd: Crowdlab) -> list[AnnotatorQuality]:
    """Each voter against the consensus of the *other* votes and the model (leave-one-out).

    Against a consensus that includes their own vote, an annotator of a two-annotator item always
    agrees whenever the model sides with them: that would flatter everyone. Removing their own term
    from the weighted average gives the consensus they are judged against.
    """
    n_votes = (~np.isnan(matrix)).sum(axis=1)
    total = crowd.model_weight + (~np.isnan(matrix)) @ crowd.weights
    out = []
    for j, voter in enumerate(voters):
        rows = np.flatnonzero(~np.isnan(matrix[:, j]) & (n_votes >= 2))
        said = matrix[rows, j].astype(np.int64)
        own = np.full((len(rows), crowd.posterior.shape[1]), crowd.spread)
        own[np.arange(len(rows)), said] = crowd.likelihood
        without = crowd.posterior[rows] * total[rows, None] - crowd.weights[j] * own
        agreed = int((without.argmax(axis=1) == said).sum())
        n = len(rows)
        low, high = wilson(agreed, n) if n else (None, None)
        out.append(
            AnnotatorQuality(
                voter, n, agreed, agreed / n if n else None, low, high, float(crowd.annotator_quality.loc[j])
            )
        )
    out.sort(key=lambda a: (a.accuracy is None, -(a.accuracy or 0.0), a.annotator))
    return out


EM_ROUNDS = 30


PRIOR_STRENGTH = 5.0  # pseudo-items per true class pulling a voter's confusion toward everyone's


# Votes count as half-independent evidence: annotators err *together* on hard items, and at full weight
# two agreeing votes outweigh any model (bench/noise.py, trec3, seed 0: precision at the true error count
# 0.47-0.64 at 1.0, 0.67-0.72 at 0.5, 0.64-0.78 at 0.3, which is no better on average).
VOTE_WEIGHT = 0.5


MODEL_FLOOR = 0.02  # share of the model's probability spread evenly, so no class is ever ruled out by it alone


def _calibrated_posterior(
    matrix: np.ndarray, probs: np.ndarray, start: np.ndarray, vote_weight: float | None = None
) -> np.ndarray:
    """P(true class | model, votes): the model as prior, each voter's confusion matrix learnt by EM.

    CROWDLAB's posterior is a weighted *average* of the model and the votes: it ranks items well
    but is no probability (two agreeing good annotators leave it near 0.7), so summing its doubt
    overstates the errors several times over. Here the votes multiply into the model's prior as
    evidence (Dawid & Skene 1979), each voter through their own confusion matrix, which is estimated
    from the posterior and smoothed toward everyone's pooled confusion (so a voter with a handful of
    items is judged like the crowd until their own record says otherwise). EM starts from CROWDLAB's
    posterior. Annotators err together on hard items, so each vote's log-likelihood is scaled by
    `vote_weight` (VOTE_WEIGHT unless the project's audits chose another: `calibrate`) rather than trusted
    as independent.
    """
    weight = VOTE_WEIGHT if vote_weight is None else vote_weight
    n_classes = probs.shape[1]
    prior = np.log((1 - MODEL_FLOOR) * probs + MODEL_FLOOR / n_classes)
    columns = [np.flatnonzero(~np.isnan(matrix[:, j])) for j in range(matrix.shape[1])]
    said = [matrix[rows, j].astype(np.int64) for j, rows in enumerate(columns)]
    posterior = start
    for _ in range(EM_ROUNDS):
        counts = []
        for rows, codes in zip(columns, said, strict=True):
            c = np.zeros((n_classes, n_classes))  # [true, said]
            for k in range(n_classes):
                c[:, k] = posterior[rows[codes == k]].sum(axis=0)
            counts.append(c)
        pooled = np.sum(counts, axis=0) + 1.0
        pooled = pooled / pooled.sum(axis=1, keepdims=True)
        log_post = prior.copy()
        for rows, codes, c in zip(columns, said, counts, strict=True):
            confusion = c + PRIOR_STRENGTH * pooled
            confusion /= confusion.sum(axis=1, keepdims=True)
            log_post[rows] += weight * np.log(confusion[:, codes]).T
        log_post -= log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post)
        posterior /= posterior.sum(axis=1, keepdims=True)
    return posterior


# --- calibrating the vote weight on the project's own audits ---

# Vote weights tried against the audits, around the shipped VOTE_WEIGHT: 0.3 won TREC with planted agreed errors,
# 0.5 the 3-class crowd (docs/benchmarks.md, "Vote weight and count, swept"); 0.2 and 0.8 bound the range.
VOTE_WEIGHTS = (0.2, 0.3, 0.5, 0.8)


# Fewer audits than this, or fewer overturned agreements, say too little to choose between vote weights: the
# default is kept and the scan says so. An average precision over fewer than 5 positives moves by 0.1 or more
# with one of them, more than the weights differ by (bench/noise.py: 0.02-0.07 at 23-25 overturns).
MIN_AUDITED = 30
MIN_OVERTURNED = 5


# The best weight replaces the default fully when it ranks the overturns better than the default in this share of
# bootstrap resamples of the audited items (paired: both weights scored on the same resample). Between half the
# resamples and this share the weight moves (share - 0.5) / (CONFIDENCE - 0.5) of the way from the default toward it
# (the weight rounded to 0.01); at half or fewer it stays the default.
# A lead of 0.01-0.02 in average precision on ~15 overturns is noise: at a 5 % audit of 3,000 items it once chose 0.3
# where the crowd needed 0.5 (bench/noise.py, trec3 crowd), and the resamples say so. A cut at this share alone made
# the choice flip between runs that differ little (TREC, one seed: 0.2 sure in 94 % of resamples, F1 0.856; in 72 %,
# the default kept, 0.786); moving partway took that run to 0.837 (docs/benchmarks.md, "Character n-grams").
CONFIDENCE = 0.9
RESAMPLES = 200


NO_AUDITS = "No audited items: the default vote weight {weight} is used."


TOO_FEW_AUDITS = (
    "The default vote weight {weight} is used: calibrating needs at least {min_audited} audited items with at "
    "least {min_overturned} of them overturned, and there {are} {audited} audited item{s} with {overturned} "
    "overturned."
)


CALIBRATED = (
    "Calibrated on {audited} audited items, {overturned} overturned by a reviewer: vote weight {best} ranked "
    "the overturned agreements first best (average precision {best_score:.2f}; the default {default} gave "
    "{score:.2f}; better in {wins} of {resamples} resamples of the audits)."
)


CALIBRATED_DEFAULT = (
    "Calibrated on {audited} audited items, {overturned} overturned by a reviewer: the default vote weight "
    "{weight} ranked the overturned agreements first as well as any other (average precision {score:.2f})."
)


CALIBRATED_NOT_SURE = (
    "Calibrated on {audited} audited items, {overturned} overturned by a reviewer: vote weight {best} ranked "
    "the overturned agreements first best (average precision {best_score:.2f} against {score:.2f} for the default), "
    "but beat the default in only {wins} of {resamples} resamples of the audits, too few to move from it: the "
    "default vote weight {weight} is kept."
)


CALIBRATED_PARTWAY = (
    "Calibrated on {audited} audited items, {overturned} overturned by a reviewer: vote weight {best} ranked "
    "the overturned agreements first best (average precision {best_score:.2f} against {score:.2f} for the default "
    "{default}) and beat the default in {wins} of {resamples} resamples of the audits, short of the {full} that "
    "would move the weight all the way: it moves to {weight}, {part:.0%} of the way from {default} toward {best}."
)


AUDIT_VOTER_UNKNOWN = "Audited item {index}: voter {voter!r} cast no vote on any item; pass the annotators' votes."


class Audited(NamedTuple):
    """An agreed item a reviewer checked (an audit sample): the reviewer's label is the calibration's truth."""

    row: int  # row in the scan's input
    agreed: str  # the label the annotators agreed on, which the audit confirmed or overturned
    decided: str  # the reviewer's label (now the item's final label)
    votes: dict[str, str]  # the annotators' votes as they stood before the audit (the reviewer's left out)


class Calibration(NamedTuple):
    """Which vote weight the scan ranked with, and on what evidence."""

    vote_weight: float
    calibrated: bool  # False: too few audits, the default VOTE_WEIGHT kept
    audited: int
    overturned: int
    message: str
    scores: dict[float, float]  # per tried weight: average precision of its doubt over the overturned audits
    best: float | None = None  # the weight with the best score, whether the vote weight moved to it fully or partway
    beats_default: float | None = None  # share of resamples of the audits in which `best` beat the default


def _audit_matrix(matrix: np.ndarray, voters: list[str], audits: Sequence[Audited], code: dict[str, int]) -> np.ndarray:
    """The vote matrix as it stood before the audits: each audited row holds its annotators' votes only (a voter
    who only ever audited drops out, as CROWDLAB needs every voter to have voted)."""
    column = {voter: j for j, voter in enumerate(voters)}
    before = matrix.copy()
    for audit in audits:
        before[audit.row, :] = np.nan
        for voter, label in audit.votes.items():
            if voter not in column:
                raise NoiseScanError(AUDIT_VOTER_UNKNOWN.format(index=audit.row, voter=voter))
            before[audit.row, column[voter]] = code[label]
    return before[:, ~np.isnan(before).all(axis=0)]


def _average_precision(doubt: np.ndarray, positive: np.ndarray) -> float:
    """Mean over the positives of the precision among items ranked at or above them (ties: the worse order)."""
    if not positive.any():
        return 0.0
    order = np.lexsort((positive, -doubt))  # among equal doubt, negatives first
    hits = np.cumsum(positive[order])
    ranks = np.arange(1, len(order) + 1)
    return float((hits / ranks)[positive[order]].mean())


def _share_better(doubt: np.ndarray, default: np.ndarray, positive: np.ndarray) -> float:
    """In what share of RESAMPLES bootstrap resamples of the audits (seeded: the same audits, the same answer) the
    first ranking's average precision beats the second's."""
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(RESAMPLES):
        pick = rng.integers(len(positive), size=len(positive))
        if not positive[pick].any():
            continue
        wins += _average_precision(doubt[pick], positive[pick]) > _average_precision(default[pick], positive[pick])
    return wins / RESAMPLES


def calibrate(
    matrix: np.ndarray,
    voters: list[str],
    probs: np.ndarray,
    audits: Sequence[Audited],
    code: dict[str, int],
) -> Calibration:
    """Choose the vote weight by how well it would have found the agreements that reviewers overturned.

    Each audited item is scored as it stood before its audit: its annotators' votes only, judged on their agreed
    label (`_audit_matrix`). Each weight in VOTE_WEIGHTS ranks those items by doubt in the agreed label; the weight
    whose ranking puts the overturned ones first (average precision) wins if it beats VOTE_WEIGHT in at least
    CONFIDENCE of bootstrap resamples of the audits; in fewer, but more than half, the weight moves
    (share - 0.5) / (CONFIDENCE - 0.5) of the way from the default toward it (rounded to 0.01); otherwise the default
    stays. The reviewer's label is taken as
    the truth although a reviewer errs too (about one in ten, issue 17): a slip is an overturn no weight can rank,
    so it lowers every weight's score alike rather than favouring one. Ranking, not likelihood: the mean log-
    likelihood of the reviewers' labels favoured the default on data where a lower weight ranked the errors better
    (bench/noise.py, trec3 uniform), since it is dominated by how confident the many right agreements are.

    No leakage: the reviewer's vote never enters the posterior that is scored against it, and the model's
    probability for an item comes from folds that did not train on that item's label. The audited items keep their
    reviewer's vote in the scan itself (a reviewer can be wrong too). Too few audits or overturns keep VOTE_WEIGHT,
    and the message says so.
    """
    audited, overturned = len(audits), sum(a.agreed != a.decided for a in audits)
    if audited < MIN_AUDITED or overturned < MIN_OVERTURNED:
        message = (
            NO_AUDITS.format(weight=VOTE_WEIGHT)
            if not audited
            else TOO_FEW_AUDITS.format(
                audited=audited,
                s="" if audited == 1 else "s",
                are="is" if audited == 1 else "are",
                overturned=overturned,
                min_audited=MIN_AUDITED,
                min_overturned=MIN_OVERTURNED,
                weight=VOTE_WEIGHT,
            )
        )
        return Calibration(VOTE_WEIGHT, False, audited, overturned, message, {})
    before = _audit_matrix(matrix, voters, audits, code)
    start = _crowdlab_posterior(before, probs).posterior
    rows = np.asarray([a.row for a in audits], dtype=np.int64)
    agreed = np.asarray([code[a.agreed] for a in audits], dtype=np.int64)
    overturned_rows = np.asarray([a.agreed != a.decided for a in audits], dtype=bool)
    doubts = {
        weight: 1 - _calibrated_posterior(before, probs, start, weight)[rows, agreed]
        for weight in sorted({*VOTE_WEIGHTS, VOTE_WEIGHT})
    }
    scores = {weight: _average_precision(doubt, overturned_rows) for weight, doubt in doubts.items()}
    best = max(scores, key=lambda w: (scores[w], w == VOTE_WEIGHT))
    share = _share_better(doubts[best], doubts[VOTE_WEIGHT], overturned_rows) if best != VOTE_WEIGHT else None
    numbers = {"audited": audited, "overturned": overturned, "default": VOTE_WEIGHT}
    chosen, part = best, 1.0
    if share is not None:  # best is not the default: move toward it as far as the resamples say
        part = min(max((share - 0.5) / (CONFIDENCE - 0.5), 0.0), 1.0)
        chosen = round(VOTE_WEIGHT + (best - VOTE_WEIGHT) * part, 2)
    lead = {
        "best": best, "best_score": scores[best], "score": scores[VOTE_WEIGHT], "wins": round((share or 0) * RESAMPLES),
        "resamples": RESAMPLES,
    }
    if best == VOTE_WEIGHT:
        message = CALIBRATED_DEFAULT.format(weight=best, score=scores[best], **numbers)
    elif chosen == VOTE_WEIGHT:  # no more than half the resamples (or a move that rounds to nothing)
        message = CALIBRATED_NOT_SURE.format(weight=VOTE_WEIGHT, **lead, **numbers)
    elif chosen != best:
        message = CALIBRATED_PARTWAY.format(
            weight=chosen, part=part, full=round(CONFIDENCE * RESAMPLES), **lead, **numbers
        )
    else:
        message = CALIBRATED.format(**lead, **numbers)
    return Calibration(chosen, True, audited, overturned, message, scores, best, share)


def _single_label_posterior(codes: np.ndarray, probs: np.ndarray, *, denoised: bool = False) -> np.ndarray:
    """P(true class | model, the one label): the model as prior, cleanlab's noise matrix as the label's likelihood.

    With one label per item there is nobody to compare a voter with; cleanlab's confident joint
    estimates P(given label | true label) from the out-of-fold probabilities instead.

    `denoised`: the model's probabilities with the noise it learnt inverted out first (`_denoised_probs`), as
    `estimate_errors` counts. The scan ranks with the plain posterior (the denoised one ranked SMS crowd-mode
    errors 6 points of F1 worse) and states its expected precision from the denoised one: the plain one, whose
    prior learnt the wrong labels too, said 0.44-0.49 where the flags were 0.68-0.98 right (bench/noise.py).
    """
    from cleanlab.count import compute_confident_joint, estimate_latent

    joint = compute_confident_joint(codes, probs)
    _, noise_matrix, _ = estimate_latent(joint, codes)  # noise_matrix[given, true]
    n_classes = probs.shape[1]
    prior = _denoised_probs(probs, noise_matrix) if denoised else probs
    posterior = ((1 - MODEL_FLOOR) * prior + MODEL_FLOOR / n_classes) * noise_matrix[codes]
    return posterior / posterior.sum(axis=1, keepdims=True)


PROB_FLOOR = 1e-6  # a class the channel inversion drives to or below zero keeps this much (then renormalised)


def _denoised_probs(probs: np.ndarray, noise_matrix: np.ndarray) -> np.ndarray:
    """P(true class | x) from a model that learnt the noisy labels: its output is P(given | x) = T P(true | x).

    Solving that channel (least squares, T = cleanlab's noise matrix [given, true]) for P(true | x) undoes the
    noise the model absorbed; what the inversion pushes below zero is clipped and each row renormalised.
    """
    true = np.linalg.lstsq(noise_matrix, probs.T, rcond=None)[0].T
    true = np.clip(true, PROB_FLOOR, None)
    return true / true.sum(axis=1, keepdims=True)


def estimate_errors(codes: np.ndarray, probs: np.ndarray) -> float:
    """How many given labels are wrong: the sum over items of P(true label != given | model, given label).

    The out-of-fold model is trained on the noisy labels, so it predicts the *given* label: on SMS spam with
    10 % of labels flipped, a ham message relabelled spam sits at P(ham) ~ 0.9 like every other ham message.
    cleanlab's default count (`num_label_issues`, off-diagonal of the confident joint) counts an item only
    when its probability for the other class reaches that class's mean, which about half of such items miss:
    it found 320-339 of 451 errors there, and under-counted on 6-class TREC and on synthetic blobs too. Here
    cleanlab's noise matrix (from the calibrated confident joint) is inverted out of the model's probabilities
    (`_denoised_probs`) and Bayes' rule with that same matrix as the given label's likelihood gives each item's
    chance of being wrong; their sum is the estimate (bench/noise.py; docs/benchmarks.md).
    """
    from cleanlab.count import compute_confident_joint, estimate_latent

    joint = compute_confident_joint(codes, probs)
    _, noise_matrix, _ = estimate_latent(joint, codes)
    posterior = _denoised_probs(probs, noise_matrix) * noise_matrix[codes]
    posterior /= posterior.sum(axis=1, keepdims=True)
    return float((1.0 - posterior[np.arange(len(codes)), codes]).sum())


# --- how many, where items have several votes: the model's count, the ambiguity count, the audits between them ---

# "model": `estimate_errors` alone (what shipped until 2026-12-06); "ambiguity": `ambiguity_doubt` alone; "audits":
# the project's audits weigh the two (`weigh_ambiguity`), the model's count alone without enough audits.
COUNT = "audits"

AMBIGUITY_SAMPLES = 400  # Monte Carlo draws per item for P(a class is the item's majority judgement)
AMBIGUITY_BATCH = 4_000_000  # draws (samples x items x classes) at once: about 40 MB with the float32 shapes, argmax
ALPHA_BOUNDS = (0.05, 1000.0)  # the concentration searched, in pseudo-votes
# The audits tell a rater from a judge only where the two expect overturns this many standard deviations (of the
# overturn count's chance variation) apart: a demo project's 40 audits expected 5 against 3, about one standard
# deviation, and 4 overturns then leaned the count 67 % on the ambiguity reading (3 wrong labels became 15).
SEPARATION_Z = 2.0
EXCESS_Z = 2.0  # overturns this many standard deviations above a rater's: agreements are wrong, not ambiguous


def _dirichlet_multinomial_loglik(alpha: float, prior: np.ndarray, counts: np.ndarray) -> float:
    from scipy.special import gammaln

    a = alpha * prior
    total = counts.sum(axis=1)
    return float((gammaln(alpha) - gammaln(alpha + total) + (gammaln(a + counts) - gammaln(a)).sum(axis=1)).sum())


def _ambiguity_fit(matrix: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, float]:
    """(each item's posterior Dirichlet concentration, the fitted alpha): see `ambiguity_doubt`."""
    from scipy.optimize import minimize_scalar

    n, n_classes = probs.shape
    counts = np.zeros((n, n_classes))
    voted = ~np.isnan(matrix)
    for j in range(matrix.shape[1]):
        rows = np.flatnonzero(voted[:, j])
        np.add.at(counts, (rows, matrix[rows, j].astype(np.int64)), 1.0)
    prior = (1 - MODEL_FLOOR) * probs + MODEL_FLOOR / n_classes
    fit = minimize_scalar(
        lambda log_alpha: -_dirichlet_multinomial_loglik(float(np.exp(log_alpha)), prior, counts),
        bounds=(np.log(ALPHA_BOUNDS[0]), np.log(ALPHA_BOUNDS[1])),
        method="bounded",
    )
    alpha = float(np.exp(fit.x))
    return alpha * prior + counts, alpha


def _majority_share(concentration: np.ndarray, codes: np.ndarray, seed: int) -> np.ndarray:
    """P(class codes[i] is the largest of item i's Dirichlet(concentration[i]) distribution), by seeded Monte Carlo.

    Batched so that memory stays near AMBIGUITY_BATCH draws whatever the number of items and classes."""
    rng = np.random.default_rng(seed)
    share = np.empty(len(codes))
    rows_per_batch = max(1, AMBIGUITY_BATCH // (AMBIGUITY_SAMPLES * concentration.shape[1]))
    for start in range(0, len(codes), rows_per_batch):
        block = concentration[start : start + rows_per_batch]
        shape = np.broadcast_to(block, (AMBIGUITY_SAMPLES, *block.shape))
        draws = rng.standard_gamma(shape, dtype=np.float32)  # a Dirichlet draw's largest class is its gammas' largest
        share[start : start + len(block)] = (draws.argmax(axis=2) == codes[start : start + len(block)]).mean(axis=0)
    return share


def ambiguity_doubt(
    matrix: np.ndarray, probs: np.ndarray, given_codes: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Each final label's chance of not being the label most judgements of its item would give, and the fitted alpha.

    The votes are read as draws from the item's own distribution of judgements (an ambiguous item has no single
    label everyone would give): that distribution's prior is Dirichlet(alpha * model), the model's out-of-fold
    probabilities as its mean and alpha, in pseudo-votes, fitted to every item's votes at once (the
    Dirichlet-multinomial's maximum likelihood), so how far votes stray from the model is learnt from the project.
    An item's true label is its distribution's largest class; its posterior, Dirichlet(alpha * model + votes),
    gives each class's chance of being it (Monte Carlo, seeded). Unlike the one-coin and Dawid-Skene models, two
    votes that disagree on an item are evidence that the item is ambiguous, not that someone slipped.
    """
    concentration, alpha = _ambiguity_fit(matrix, probs)
    return 1.0 - _majority_share(concentration, given_codes, seed), alpha


class Ambiguity(NamedTuple):
    """How the count weighs the two readings of disagreement, and the audits' evidence for it."""

    weight: float  # 0: the model's count alone ... 1: the ambiguity count alone
    model_count: float  # `estimate_errors`
    ambiguity_count: float | None  # summed `ambiguity_doubt`; None where the audits could not weigh it (not drawn)
    alpha: float | None  # the ambiguity model's fitted concentration, in pseudo-votes
    audited: int
    overturned: int
    as_rater: float | None  # overturns expected had reviewers judged like one more annotator (a draw of the item)
    as_judge: float | None  # overturns expected had they overturned exactly the agreements that are wrong
    message: str


class AuditReading(NamedTuple):
    """What the audits say about the two readings (`weigh_ambiguity`)."""

    weight: float | None  # of the ambiguity count; None: the audits cannot weigh it (see `verdict`)
    as_rater: float | None
    as_judge: float | None
    verdict: str  # "too few", "untold", "agreed wrong" or "weighed"
    sd: float | None = None  # the overturn count's standard deviation, were reviewers raters


AMBIGUITY_TOO_FEW = (
    "The count is the model's: weighing it against the ambiguity count (disagreement read as ambiguous items) "
    "needs at least {min_audited} audited agreements, and there {are} {audited}."
)


AMBIGUITY_UNTOLD = (
    "The count is the model's: on these {audited} audited agreements, one more annotator would overturn about "
    "{as_rater:.1f} and a reviewer who overturns only wrong labels about {as_judge:.1f}, closer than the overturns' "
    "own chance variation (±{spread:.1f}) lets the audits tell apart; more audits would."
)


AMBIGUITY_AGREED_WRONG = (
    "The count is the model's: reviewers overturned {overturned} of {audited} audited agreements, more than even "
    "one more annotator would have (about {as_rater:.0f}), so annotators agree on wrong labels, which the ambiguity "
    "reading ({ambiguity:.0f} wrong labels) does not count."
)


AMBIGUITY_WEIGHED = (
    "Reviewers overturned {overturned} of {audited} audited agreements, where one more annotator would have "
    "overturned about {as_rater:.0f} and a reviewer who overturns only wrong labels about {as_judge:.0f}: the count "
    "leans {weight:.0f} % on the ambiguity reading ({ambiguity:.0f} wrong labels) and {rest:.0f} % on the model's "
    "({model:.0f})."
)


def weigh_ambiguity(
    matrix: np.ndarray,
    voters: list[str],
    probs: np.ndarray,
    audits: Sequence[Audited],
    code: dict[str, int],
    seed: int = 0,
) -> AuditReading:
    """How far the project's audits say the count should lean on the ambiguity reading.

    Two readings of the votes give two counts. The model's (`estimate_errors`) reads disagreement as slips a
    careful person would not make; on a real crowd's judgements of ambiguous words it flagged 1.3-1.9 times the
    wrong labels (0.94-1.5 times once the model had character n-grams). The ambiguity reading (`ambiguity_doubt`)
    reads it as items people can see two ways; it counted every crowd's wrong labels, real or simulated, within
    10 % (with the word-only model), and 1.1-1.9 times over where a disagreement's deciding judgement was always
    right (planted errors; bench/noise.py). Which fits is what the audits show: each audited agreement, as it stood
    before its audit (`_audit_matrix`, which refuses audits naming a voter or label
    the votes lack), would be overturned by one more annotator with probability 1 - E[its share of the agreed
    label] and by a judge who overturns only wrong labels with the agreed label's `ambiguity_doubt`. The weight is
    where the overturns observed fall between the two sums, clipped to [0, 1]. Overturns well above even a
    rater's (EXCESS_Z standard deviations) say annotators agree on wrong labels, which the ambiguity reading
    cannot count: weight 0; between a rater's expectation and that excess the weight tapers linearly to 0 (a clip
    to 1 there, then a drop to 0, swung the count by hundreds on one overturn). Too few audits (MIN_AUDITED), or
    sums closer than SEPARATION_Z standard deviations of the overturn count: no weight. Short of the excess, a
    judge auditing annotators who often agree on wrong labels overturns about as often as a rater would and is
    read as one (constructed in tests/annotation/quality/test_noise.py: 15 % of the audited agreements wrong,
    weight 0.84; 22.5 %, tapered to about a third; 30 %, 0); on the simulated crowds, whose annotators err
    together on hard items, the weights were 0.09-0.54 (docs/benchmarks.md).

    The audits watch reviewers judge *agreed* items, while the ambiguity count's over-count comes from how
    reliable a disagreement's deciding judgement is: the weight carries over where the same reviewers (or
    annotators of the same reliability) settle disagreements, as under either routing.
    """
    if len(audits) < MIN_AUDITED:
        return AuditReading(None, None, None, "too few")
    before = _audit_matrix(matrix, voters, audits, code)
    rows = np.asarray([a.row for a in audits], dtype=np.int64)
    agreed = np.asarray([code[a.agreed] for a in audits], dtype=np.int64)
    concentration, _ = _ambiguity_fit(before, probs)
    mine = concentration[rows]
    p_rater = 1.0 - mine[np.arange(len(rows)), agreed] / mine.sum(axis=1)
    as_rater = float(p_rater.sum())
    as_judge = float((1.0 - _majority_share(mine, agreed, seed)).sum())
    overturned = sum(a.agreed != a.decided for a in audits)
    most = max(as_rater, as_judge)
    sd = float(np.sqrt((p_rater * (1 - p_rater)).sum()))  # the overturn count's chance variation, were they raters
    excess = EXCESS_Z * sd
    if overturned >= most + excess:
        return AuditReading(0.0, as_rater, as_judge, "agreed wrong", sd)
    if abs(as_rater - as_judge) < SEPARATION_Z * sd:
        return AuditReading(None, as_rater, as_judge, "untold", sd)
    weight = float(np.clip((overturned - as_judge) / (as_rater - as_judge), 0.0, 1.0))
    if overturned > most:  # past a rater's expectation: tapered to 0 at the excess, no jump from 1 to 0
        weight *= 1.0 - (overturned - most) / excess
    return AuditReading(weight, as_rater, as_judge, "weighed", sd)


SKILL_Z = 1.6448536269514722  # one-sided 95 % normal quantile


def model_skill(codes: np.ndarray, probs: np.ndarray) -> Skill:
    """Whether out-of-fold probabilities predict the labels they were trained on better than the labels' frequencies.

    Paired per item: the gain is log P_model(label) - log frequency(label); the model is informative when the
    mean gain's one-sided 95 % lower bound is above zero. A model that learnt nothing from the texts (a tester's
    near-identical "sample text number N" items) still returns confident-looking probabilities, and the count and
    the prior built on them flagged 20 of 26 correct labels with an "expected precision" of 0.95; on every
    benchmark data set the model clears this by far (bench/noise.py).
    """
    n = len(codes)
    rows = np.arange(n)
    frequency = np.bincount(codes, minlength=probs.shape[1]) / n
    gain = np.log(np.clip(probs[rows, codes], PROB_FLOOR, None)) - np.log(frequency[codes])
    spread = float(gain.std(ddof=1)) if n > 1 else 0.0
    lower = float(gain.mean()) - SKILL_Z * spread / np.sqrt(n)
    return Skill(
        informative=bool(lower > 0),
        log_loss=float(-np.log(np.clip(probs[rows, codes], PROB_FLOOR, None)).mean()),
        prior_log_loss=float(-np.log(frequency[codes]).mean()),
        accuracy=float((probs.argmax(axis=1) == codes).mean()),
        prior_accuracy=float(frequency.max()),
    )


def scan(
    X: Any,
    given: Sequence[str],
    votes: Sequence[dict[str, str]],
    labels: Sequence[str],
    *,
    n_folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    model: BaseEstimator | None = None,
    texts: Sequence[str] | None = None,
    probs: np.ndarray | None = None,
    audits: Sequence[Audited] = (),
    second_model: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
) -> ScanResult:
    """Judge every final label with all its votes and an out-of-fold model; flag as many as the data supports.

    `given[i]` is item i's final label; `votes[i]` maps each voter (annotator, reviewer, import) to the
    label they gave item i, and must include the final label's source. The model is trained out-of-fold
    on the final labels.

    How many: `estimate_errors`, the expected number of wrong final labels once the noise the model learnt
    from them is inverted out of its out-of-fold probabilities (cleanlab's noise matrix); rounded. With votes,
    `audits` also weigh it against the ambiguity count (`weigh_ambiguity`, `ambiguity_doubt`: read as ambiguous
    items, how many final labels most people would not give), the flags' stated precision weighed alike; the
    result's `ambiguity` says how (COUNT: what the benches switch). Under SMALL_PROJECT items with votes the
    votes' own count (`votes_estimate`) is reported beside it.

    Which: when some item has two or more votes, CROWDLAB (cleanlab.multiannotator) gives the
    consensus label, its quality and each annotator's quality, and the model and every vote combined
    (`_calibrated_posterior`) give each final label its probability of being right; otherwise the
    model's probability, weighed by cleanlab's noise matrix, serves (`_single_label_posterior`). The
    estimated number of items is flagged, least likely right first, and the mean of (1 - probability)
    over the flags is their expected precision. Counting with the model and ranking with every vote came
    out best on held-out data: summing the votes' doubt over-counted when annotators err together,
    and under-counted at full weight (bench/noise.py).

    `probs` skips the model: out-of-fold probabilities for these final labels, one column per label in
    use among them (in `labels` order), as `out_of_fold_probs` returns them; X is then only checked.
    `second_model(codes, n_folds, seed)`: a second model's out-of-fold probabilities for these label codes on the
    same folds (the encoder fine-tuned per fold, `finetune.out_of_fold_probs`), called once the labels are checked
    and averaged with the first's.
    """
    given = list(given)
    if len(votes) != len(given):
        raise NoiseScanError(ROWS_MISMATCH.format(n_x=len(votes), n_y=len(given)))
    codes, names = _encode(given, labels)
    known = list(dict.fromkeys(labels))
    used = set(names) | {label for item in votes for label in item.values()}
    classes = [name for name in known if name in used]
    code = {name: i for i, name in enumerate(classes)}
    matrix, voters = _vote_matrix(votes, code)
    for i, item in enumerate(votes):
        if given[i] not in item.values():
            raise NoiseScanError(GIVEN_NOT_VOTED.format(index=i, label=given[i], votes=item))
    _check_X(X, len(codes))
    _check_counts(codes, names, n_folds)
    given_codes = np.asarray([code[label] for label in given], dtype=np.int64)
    if probs is None:
        probs = out_of_fold_probs(with_text_features(X, texts), codes, n_folds, seed, model=model)
    elif np.shape(probs) != (len(given), len(names)):
        raise NoiseScanError(PROBS_SHAPE.format(shape=np.shape(probs), n=len(given), k=len(names)))
    if second_model is not None:
        second = second_model(codes, n_folds, seed)
        if np.shape(second) != (len(given), len(names)):
            raise NoiseScanError(PROBS_SHAPE.format(shape=np.shape(second), n=len(given), k=len(names)))
        probs = (np.asarray(probs) + second) / 2
    trained_columns = [code[name] for name in names]
    model_probs = np.zeros((len(given), len(classes)))
    model_probs[:, trained_columns] = probs  # a class only some vote used: probability 0
    probs = model_probs
    n_votes = (~np.isnan(matrix)).sum(axis=1)
    rows = np.arange(len(given))
    skill = model_skill(codes, probs[:, trained_columns])
    if not skill.informative:
        return _votes_only_scan(given, given_codes, classes, matrix, voters, n_votes, skill)
    annotators: list[AnnotatorQuality] = []
    model_weight: float | None = None
    calibration: Calibration | None = None
    if (n_votes >= 2).any():
        crowd = _crowdlab_posterior(matrix, probs)
        annotators = _annotator_quality(matrix, voters, crowd)
        calibration = calibrate(matrix, voters, probs, audits, code)
        posterior = _calibrated_posterior(matrix, probs, crowd.posterior, calibration.vote_weight)
        consensus, consensus_quality, model_weight = crowd.consensus, crowd.consensus_quality, crowd.model_weight
        method = "crowdlab"
    else:
        posterior = _single_label_posterior(given_codes, probs)
        consensus = posterior.argmax(axis=1)
        consensus_quality = posterior[rows, consensus]
        method = "single-label"
    quality = posterior[rows, given_codes]
    # what the flags' precision is expected to be: their chance of being wrong, from the denoised posterior with
    # one label per item (see _single_label_posterior), from the one they are ranked by with votes
    stated = quality
    if method == "single-label":
        stated = _single_label_posterior(given_codes, probs, denoised=True)[rows, given_codes]
    likeliest = posterior.argmax(axis=1)
    others = posterior.copy()
    others[rows, given_codes] = -1.0
    suggested = np.where(likeliest != given_codes, likeliest, others.argmax(axis=1))
    estimated = estimate_errors(codes, probs[:, trained_columns])
    ambiguity = None
    if method == "crowdlab" and COUNT != "model":
        estimated, stated, ambiguity = _weigh_counts(
            matrix, voters, probs, given_codes, audits, code, seed, estimated, stated
        )
    from_votes = None
    if method == "crowdlab" and len(given) < SMALL_PROJECT:
        from_votes = votes_estimate(matrix, given_codes, len(classes))  # a second opinion, shown beside the count
    order = np.lexsort((rows, quality))[: round(estimated)]
    flags = [Flag(int(i), given[i], classes[suggested[i]], float(quality[i])) for i in order.tolist()]
    return ScanResult(
        classes=classes,
        probs=probs,
        posterior=posterior,
        consensus=[classes[c] for c in consensus],
        consensus_quality=[float(q) for q in consensus_quality],
        label_quality=[float(q) for q in quality],
        num_votes=[int(n) for n in n_votes],
        flags=flags,
        estimated_errors=estimated,
        expected_precision=float((1.0 - stated[order]).mean()) if len(order) else None,
        annotators=annotators,
        method=method,
        model_weight=model_weight,
        calibration=calibration,
        skill=skill,
        votes_estimate=from_votes,
        ambiguity=ambiguity,
    )


def _weigh_counts(
    matrix: np.ndarray,
    voters: list[str],
    probs: np.ndarray,
    given_codes: np.ndarray,
    audits: Sequence[Audited],
    code: dict[str, int],
    seed: int,
    model_count: float,
    stated: np.ndarray,
) -> tuple[float, np.ndarray, Ambiguity]:
    """(count, each final label's stated probability of being right, the Ambiguity record): the model's count and
    the ambiguity count weighed as COUNT says (`weigh_ambiguity` under "audits"); the stated probabilities, whose
    mean over the flags is their expected precision, weighed alike. Where the audits cannot weigh it (too few, or
    untold) the ambiguity count is not computed (its draws cost about a second per thousand items at 50 classes)."""
    audited, overturned = len(audits), sum(a.agreed != a.decided for a in audits)
    reading = AuditReading(1.0, None, None, "forced")
    if COUNT != "ambiguity":
        reading = weigh_ambiguity(matrix, voters, probs, audits, code, seed)
    if reading.verdict in ("too few", "untold"):  # the model's count: the ambiguity count is not drawn
        message = (
            AMBIGUITY_TOO_FEW.format(min_audited=MIN_AUDITED, are="is" if audited == 1 else "are", audited=audited)
            if reading.verdict == "too few"
            else AMBIGUITY_UNTOLD.format(
                audited=audited,
                as_rater=reading.as_rater,
                as_judge=reading.as_judge,
                spread=SEPARATION_Z * (reading.sd or 0.0),
            )
        )
        record = Ambiguity(
            0.0, model_count, None, None, audited, overturned, reading.as_rater, reading.as_judge, message
        )
        return model_count, stated, record
    doubt, alpha = ambiguity_doubt(matrix, probs, given_codes, seed)
    ambiguity_count = float(doubt.sum())
    numbers = {
        "audited": audited, "overturned": overturned, "ambiguity": ambiguity_count, "model": model_count,
        "as_rater": reading.as_rater, "as_judge": reading.as_judge,
    }
    weight = reading.weight or 0.0
    if reading.verdict == "forced":
        message = "The count is the ambiguity count alone (an experiment: noise.COUNT)."
    elif reading.verdict == "agreed wrong":
        message = AMBIGUITY_AGREED_WRONG.format(**numbers)
    else:
        message = AMBIGUITY_WEIGHED.format(weight=100 * weight, rest=100 * (1 - weight), **numbers)
    count = weight * ambiguity_count + (1 - weight) * model_count
    blended = weight * (1.0 - doubt) + (1 - weight) * stated
    record = Ambiguity(
        weight, model_count, ambiguity_count, alpha, audited, overturned, reading.as_rater, reading.as_judge, message
    )
    return count, blended, record


# Under this many scanned items the out-of-fold model learns from few and can take its own mistakes for label noise
# (bench/noise.py on 100-1,000-item samples: 1.2-3 times the wrong labels flagged on 3-class data), so the scan also
# states the votes' own count (`votes_estimate`). It is not the count: where annotators err together it falls far
# short, and no rule tried told the two cases apart without audits (docs/benchmarks.md, "Small projects").
SMALL_PROJECT = 2000


def votes_estimate(matrix: np.ndarray, given_codes: np.ndarray, n_classes: int) -> float:
    """How many final labels are wrong by the votes alone: Dawid–Skene over the voters (every vote at full weight,
    each voter's confusions learnt by EM, the labels' frequencies as the prior), summed doubt of the final labels.

    Independent of the model, so it does not count the model's own mistakes; it cannot see the errors annotators
    make together (both votes wrong the same way), so it under-counts where those are common: at 3,000 items the
    model's count is the better one (docs/benchmarks.md, "Small projects").
    """
    n = len(given_codes)
    frequency = np.bincount(given_codes, minlength=n_classes) / n
    flat = np.tile(frequency, (n, 1))
    start = _crowdlab_posterior(matrix, flat).posterior
    posterior = _calibrated_posterior(matrix, flat, start, vote_weight=1.0)
    return float((1.0 - posterior[np.arange(n), given_codes]).sum())


def _votes_only_scan(
    given: list[str],
    given_codes: np.ndarray,
    classes: list[str],
    matrix: np.ndarray,
    voters: list[str],
    n_votes: np.ndarray,
    skill: Skill,
) -> ScanResult:
    """The scan when the model knows nothing (`model_skill`): only the votes speak, and they flag little.

    The model's probabilities give way to the labels' frequencies (the same for every item). With votes, CROWDLAB
    weighs them; an item is flagged only where its consensus is another label than the final one, ranked by the
    final label's share of the weighted vote. The count and the tempered posterior both rest on the model, so
    neither is used, and no expected precision is stated (CROWDLAB's posterior is a weighted average, not a
    probability). With one label per item nothing speaks against any label: no flags.
    """
    n_classes = len(classes)
    rows = np.arange(len(given))
    frequency = np.bincount(given_codes, minlength=n_classes) / len(given)
    flat = np.tile(frequency, (len(given), 1))
    if not (n_votes >= 2).any():
        return ScanResult(
            classes=classes,
            probs=flat,
            posterior=flat,
            consensus=[given[i] for i in rows],
            consensus_quality=[1.0] * len(given),
            label_quality=[float(frequency[c]) for c in given_codes],
            num_votes=[int(n) for n in n_votes],
            flags=[],
            estimated_errors=0.0,
            expected_precision=None,
            annotators=[],
            method="single-label",
            model_weight=None,
            skill=skill,
        )
    crowd = _crowdlab_posterior(matrix, flat)
    quality = crowd.posterior[rows, given_codes]
    others = crowd.posterior.copy()
    others[rows, given_codes] = -1.0
    suggested = np.where(crowd.consensus != given_codes, crowd.consensus, others.argmax(axis=1))
    outvoted = np.flatnonzero(crowd.consensus != given_codes)
    order = outvoted[np.lexsort((outvoted, quality[outvoted]))]
    return ScanResult(
        classes=classes,
        probs=flat,
        posterior=crowd.posterior,
        consensus=[classes[c] for c in crowd.consensus],
        consensus_quality=[float(q) for q in crowd.consensus_quality],
        label_quality=[float(q) for q in quality],
        num_votes=[int(n) for n in n_votes],
        flags=[Flag(int(i), given[i], classes[suggested[i]], float(quality[i])) for i in order.tolist()],
        estimated_errors=float(len(order)),
        expected_precision=None,
        annotators=_annotator_quality(matrix, voters, crowd),
        method="crowdlab",
        model_weight=crowd.model_weight,
        skill=skill,
    )
