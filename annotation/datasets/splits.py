"""Leakage-free, stratified, seeded train/validation/test assignment (no Django).

Items that must not be separated are merged first: items sharing a group key, exact duplicates
(equal after `annotation.text.normalise`) and near-duplicates (character 5-gram Jaccard similarity at
or above a threshold). Each connected component then lands in one split: the split its already
assigned items have (`existing` never moves), or, for new components, the split that brings the
per-label counts closest to `ratios` (greedy, largest components first, then in a seeded order).

Near-duplicates are found with MinHash LSH in numpy so that a million texts take seconds: one-
permutation hashing (128 bins of one 64-bit hash per shingle, empty bins densified from random donors),
16 bands of 8 bins, and every candidate pair that shares a band is checked against the exact Jaccard
similarity of its shingle sets, so the threshold is exact for the pairs LSH proposes. With ideal
MinHash, a pair at the default 0.9 is proposed with probability > 0.9999; tests/annotation/test_splits.py
checks the densified version on one-edit copies of short and long texts.

The result depends only on the set of (key, label, group, text) rows, the seed and the ratios, not on
the order in which the rows are passed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from annotation.text import normalise

TRAIN, VALIDATION, TEST = "train", "validation", "test"

# An item key: `existing` splits are keyed like `keys`.
Key = TypeVar("Key", bound=Hashable)


SPLITS = (TRAIN, VALIDATION, TEST)


# When a component's assigned items disagree (two groups joined by a new duplicate), its new items
# follow the majority; on a tie, the evaluation splits win so that test stays the strictest.
TIE_PREFERENCE = (TEST, VALIDATION, TRAIN)


SHINGLE = 5  # characters


BINS = 128  # one-permutation MinHash bins


ROWS_PER_BAND = 8


BANDS = BINS // ROWS_PER_BAND


MIN_THRESHOLD = 0.6  # below this, 16x8 LSH proposes too many unrelated pairs to check


MAX_PAIRS_PER_ITEM = 64  # in one oversized bucket, an item is checked against the next 64 only


IN_FLIGHT = 2  # chunks whose band keys a helper thread computes while the next ones are read


VERIFY_BLOCK = 1_024  # candidate pairs verified per batch of fetched texts (their shingle sets: ~20 MB)


CHUNK_CHARS = 1_000_000


CHUNK_TEXTS = 4_096


DENSIFY_ATTEMPTS = 256


MATRIX_STEPS = 4


BALANCE_MODES = ("none", "downsample", "undersample", "oversample", "class_weights")


LENGTHS_DIFFER = "keys, labels, groups and texts must have one entry per item; got {sizes}."


DUPLICATE_KEY = "Item key {key!r} appears more than once."


BAD_RATIOS = "Split ratios must be three non-negative numbers (train, validation, test) that add up to 1; got {ratios}."


UNKNOWN_SPLIT = "Item {key!r} has the split {split!r}; a split is one of {splits}."


BAD_THRESHOLD = "near_duplicate_threshold must be between {low} and 1, or None to skip near-duplicates; got {value!r}."


NO_BAND_KEYS = "Fingerprints made without near-duplicate band keys cannot find near-duplicates."


UNKNOWN_BALANCE_MODE = "Class balance mode must be one of {modes}, not {mode!r}."


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


_VALUE_BITS = 57  # low bits of a shingle hash are its value; the top 7 pick one of the 128 bins


_VALUE_MASK = np.uint64((1 << _VALUE_BITS) - 1)


_SENTINEL = _MASK64


_BASE = np.uint64(0x100000001B3)


_BAND_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
     0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9],
    dtype=np.uint64,
)  # fmt: skip


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise ValueError(BAD_RATIOS.format(ratios=ratios)) from None
    if len(values) != 3 or any(not np.isfinite(r) or r < 0 for r in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(BAD_RATIOS.format(ratios=ratios))
    return values


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# Donor bin for bin j at attempt t: the same for every text and every numpy version (densification
# must be consistent, and a random generator's stream is not guaranteed to stay the same).
_DONORS = (
    (_mix64(np.arange(DENSIFY_ATTEMPTS * BINS, dtype=np.uint64) + np.uint64(0x5EED)) % np.uint64(BINS))
    .astype(np.intp)
    .reshape(DENSIFY_ATTEMPTS, BINS)
)


def _padded(text: str) -> str:
    """A text shorter than a shingle is one shingle: itself, padded."""
    return text if len(text) >= SHINGLE else text + "\x00" * (SHINGLE - len(text))


def _shingles(text: str) -> set[str]:
    text = _padded(text)
    return {text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def _band_keys(texts: list[str]) -> np.ndarray:
    """BANDS x len(texts) uint32 band hashes of the texts' densified one-permutation MinHash."""
    padded = [_padded(t) for t in texts]
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n_windows = len(codes) - SHINGLE + 1
    rolling = np.zeros(n_windows, dtype=np.uint64)
    for j in range(SHINGLE):
        rolling = rolling * _BASE + codes[j : j + n_windows]
    counts = lengths - SHINGLE + 1  # shingles per text
    text_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    shingle_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    owner = np.repeat(np.arange(len(padded)), counts)
    positions = np.arange(int(counts.sum())) + np.repeat(text_starts - shingle_starts, counts)
    hashes = _mix64(rolling[positions])
    del rolling, codes, positions
    signature: np.ndarray = np.full(len(padded) * BINS, _SENTINEL, dtype=np.uint64)
    cell = owner * BINS + (hashes >> np.uint64(_VALUE_BITS)).astype(np.int64)
    np.minimum.at(signature, cell, hashes & _VALUE_MASK)
    signature = signature.reshape(len(padded), BINS)
    _densify(signature)
    keys = np.empty((BANDS, len(padded)), dtype=np.uint32)
    for band in range(BANDS):
        block = signature[:, band::BANDS]  # interleaved: densified neighbours share donors, so never band them
        combined = (block * _BAND_MULTIPLIERS).sum(axis=1, dtype=np.uint64) + np.uint64(band)
        keys[band] = (_mix64(combined) >> np.uint64(32)).astype(np.uint32)
    return keys


def _densify(signature: np.ndarray) -> None:
    """Fill each empty bin with the value of a donor bin drawn from a fixed pseudo-random sequence.

    "Optimal densification" (Shrivastava, 2017): every text uses the same donor sequence per bin, so
    two near-identical texts fill their empty bins alike, while unrelated texts do not "agree" on bins
    both left empty. Spreading the donors at random (rather than rotating to the next bin) keeps one
    extra shingle from changing a run of neighbouring bins, which matters for short texts.
    """
    raw = signature.copy()
    # Whole-matrix steps while many bins are empty, then only the few cells still empty. A filled
    # cell is shielded by OR-ing the offer with all ones (the sentinel), so the minimum keeps it.
    offered, shield = np.empty_like(signature), np.empty_like(signature)
    filled = np.empty(signature.shape, dtype=bool)
    for donors in _DONORS[:MATRIX_STEPS]:
        np.not_equal(signature, _SENTINEL, out=filled)
        np.multiply(filled, _SENTINEL, out=shield)
        np.take(raw, donors, axis=1, out=offered)
        np.bitwise_or(offered, shield, out=offered)
        np.minimum(signature, offered, out=signature)
    del offered, shield, filled
    flat, raw = signature.reshape(-1), raw.reshape(-1)  # views
    cells = np.flatnonzero(flat == _SENTINEL)
    row_start, bins = cells - cells % BINS, cells % BINS
    for donors in _DONORS[MATRIX_STEPS:]:
        if not cells.size:
            return
        offered = raw[row_start + donors[bins]]
        took = offered != _SENTINEL
        flat[cells[took]] = offered[took]
        left = ~took
        cells, row_start, bins = cells[left], row_start[left], bins[left]
    # A text with very few shingles may still have a bin no donor reached: give it the row's minimum
    # (the sentinel is the largest value, so the minimum is a real one).
    flat[cells] = raw.reshape(-1, BINS).min(axis=1)[cells // BINS]


def _chunks(texts: Sequence[str]) -> Iterator[tuple[int, int]]:
    """[start, stop) ranges of at most CHUNK_TEXTS texts and about CHUNK_CHARS characters (bounded memory)."""
    start, chars = 0, 0
    for i, text in enumerate(texts):
        chars += max(len(text), SHINGLE)
        if i + 1 - start >= CHUNK_TEXTS or chars >= CHUNK_CHARS:
            yield start, i + 1
            start, chars = i + 1, 0
    if start < len(texts):
        yield start, len(texts)


def _candidate_pairs(keys: np.ndarray, subset: np.ndarray | None = None) -> np.ndarray:
    """(i, j) pairs of texts sharing a band's bucket; in a bucket, each text meets the next MAX_PAIRS_PER_ITEM.

    With `subset`, only those columns of `keys` take part, and i, j index `subset` (no copy of `keys`).
    """
    found = []
    index = np.arange(keys.shape[1] if subset is None else len(subset), dtype=np.uint64)
    for band_keys in keys:
        # A stable argsort, done as a plain sort of (key, index) packed in 64 bits (indices < 2**32): the
        # packed values are unique, so any sort algorithm gives the same order, ~5x faster than argsort.
        packed = (band_keys if subset is None else band_keys[subset]).astype(np.uint64)
        packed <<= np.uint64(32)
        packed |= index
        packed.sort()
        order = (packed & np.uint64(0xFFFFFFFF)).astype(np.intp)
        packed >>= np.uint64(32)
        ordered = packed.astype(np.uint32)
        del packed
        same_as_next = ordered[1:] == ordered[:-1]
        if not same_as_next.any():
            continue
        in_bucket = np.flatnonzero(np.concatenate(([False], same_as_next)) | np.concatenate((same_as_next, [False])))
        members, bucket = order[in_bucket], ordered[in_bucket]
        for step in range(1, min(MAX_PAIRS_PER_ITEM, len(members) - 1) + 1):
            same = bucket[step:] == bucket[:-step]
            if not same.any():
                break
            found.append(np.stack((members[:-step][same], members[step:][same]), axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def _verified_pairs(
    keys: np.ndarray,
    texts_of: Callable[[Sequence[int]], Sequence[str]],
    threshold: float,
    subset: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """LSH candidates whose exact shingle Jaccard similarity reaches the threshold.

    Candidates are verified VERIFY_BLOCK pairs at a time, their texts fetched in one `texts_of` call
    per block (one query, not one per text, when they come from a database): memory stays flat however
    many candidates a repetitive corpus produces. With `subset`, pairs index `subset` (see `_candidate_pairs`).
    """
    out = []
    candidates = _candidate_pairs(keys, subset)
    for start in range(0, len(candidates), VERIFY_BLOCK):
        block = candidates[start : start + VERIFY_BLOCK]
        needed = np.unique(block).tolist()
        shingles = dict(zip(needed, map(_shingles, texts_of(needed)), strict=True))
        for i, j in block.tolist():
            if _jaccard(shingles[i], shingles[j]) >= threshold:
                out.append((i, j))
    return out


def _check_threshold(threshold: float) -> None:
    if not MIN_THRESHOLD <= threshold <= 1.0:
        raise ValueError(BAD_THRESHOLD.format(low=MIN_THRESHOLD, value=threshold))


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.9) -> list[tuple[int, int]]:
    """Index pairs (i < j) of texts (taken as given: normalise first) with 5-gram Jaccard >= threshold.

    Exact verification on LSH candidates: no false positives; a pair at J = 0.9 is missed only if it
    misses all 16 bands (probability < 1e-4). In an oversized bucket, which pairs are checked depends
    on the texts' order, so callers pass them in a canonical order.
    """
    _check_threshold(threshold)
    if len(texts) < 2:
        return []
    keys = np.concatenate([_band_keys(list(texts[a:b])) for a, b in _chunks(texts)], axis=1)
    return _verified_pairs(keys, lambda indices: [texts[i] for i in indices], threshold)


def _stable_hash(value: str, salt: bytes = b"") -> int:
    """64-bit hash that is the same in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8, key=salt).digest(), "little")


@dataclass(frozen=True)
class Fingerprints:
    """Texts reduced to what splitting needs, so a million of them need not stay in memory: per text the
    hash of its normalised form and its LSH band keys (or None), and `texts_of(indices)` to fetch those
    texts again, a batch at a time, for the few candidate pairs that must be verified exactly. Build one
    with `fingerprints_of` chunk by chunk; `assign(..., texts=Fingerprints(...))` gives the same splits
    as passing the texts."""

    hashes: np.ndarray
    band_keys: np.ndarray | None
    texts_of: Callable[[Sequence[int]], Sequence[str]]

    def __len__(self) -> int:
        return len(self.hashes)


def fingerprints_of(
    chunks: Iterator[Sequence[str]],
    texts_of: Callable[[Sequence[int]], Sequence[str]],
    near_duplicates: bool = True,
    expected: int = 0,
) -> Fingerprints:
    """Fingerprints of texts that arrive in chunks (in item order), keeping only the arrays.

    The band keys (numpy, which mostly runs without the GIL) are computed in a helper thread while
    this one fetches and normalises the next chunk: at a million texts that hides most of their cost.
    `expected`, the number of texts if known, lets the arrays be filled in place instead of
    concatenated at the end (which holds the band keys twice: 256 MB at a million texts). More or
    fewer texts than expected still work.
    """
    hashes = np.empty(expected, dtype=np.uint64)
    keys = np.empty((BANDS, expected), dtype=np.uint32) if near_duplicates else None
    n = 0
    pending: deque[tuple[int, int, Future[np.ndarray]]] = deque()

    def collect(left: int) -> None:
        while len(pending) > left:
            start, stop, future = pending.popleft()
            assert keys is not None  # only band keys are ever pending
            keys[:, start:stop] = future.result()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="band-keys") as pool:
        for chunk in chunks:
            for a, b in _chunks(chunk):
                normalised = [normalise(t) for t in chunk[a:b]]
                if n + b - a > len(hashes):  # more than expected: grow, doubling
                    collect(0)
                    size = max(2 * len(hashes), n + b - a)
                    hashes = np.concatenate((hashes[:n], np.empty(size - n, dtype=np.uint64)))
                    if keys is not None:
                        keys = np.concatenate((keys[:, :n], np.empty((BANDS, size - n), dtype=np.uint32)), axis=1)
                hashes[n : n + b - a] = np.fromiter((_stable_hash(t) for t in normalised), np.uint64, count=b - a)
                if keys is not None:
                    pending.append((n, n + b - a, pool.submit(_band_keys, normalised)))
                    collect(IN_FLIGHT)
                n += b - a
        collect(0)
    return Fingerprints(hashes[:n], None if keys is None else keys[:, :n], texts_of)


def _first_repeat(keys: Sequence[Hashable]) -> Hashable:
    seen: set[Hashable] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key repeats")


def _ranks(keys: Sequence[Hashable], seed: int) -> np.ndarray:
    """A seeded pseudo-random rank per key that does not depend on the keys' order (uint64)."""
    salt = hashlib.blake2b(str(seed).encode(), digest_size=8).digest()
    if all(type(k) is int and -(2**63) <= k < 2**63 for k in keys):
        mixed = np.asarray(keys, dtype=np.int64).view(np.uint64) ^ np.frombuffer(salt, dtype=np.uint64)[0]
        return _mix64(_mix64(mixed))
    return np.fromiter((_stable_hash(str(k), salt) for k in keys), dtype=np.uint64, count=len(keys))


def _components(
    groups: Sequence[str | None], texts: Sequence[str] | Fingerprints, threshold: float | None
) -> tuple[int, np.ndarray]:
    """Connected components of "same group", "same normalised text" and "near-duplicate text"."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(texts)
    edges: list[np.ndarray] = []
    first_in_group: dict[str, int] = {}
    grouped = [(first_in_group.setdefault(g, i), i) for i, g in enumerate(groups) if g]
    grouped = [pair for pair in grouped if pair[0] != pair[1]]
    if grouped:
        edges.append(np.array(grouped, dtype=np.int64))
    if not isinstance(texts, Fingerprints):
        given = texts
        texts = fingerprints_of(
            iter([given]), lambda indices: [given[i] for i in indices], threshold is not None, expected=n
        )
    hashes, band_keys, texts_of = texts.hashes, texts.band_keys, texts.texts_of
    if threshold is not None and band_keys is None:
        raise ValueError(NO_BAND_KEYS)
    unique_hashes, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    duplicate = first[inverse] != np.arange(n)
    if duplicate.any():
        edges.append(np.stack((first[inverse][duplicate], np.flatnonzero(duplicate)), axis=1))
    if threshold is not None and band_keys is not None:
        # One text per exact-duplicate class, in hash order: canonical whatever the input order.
        reps = first[unique_hashes != np.uint64(_stable_hash(""))]  # empty texts are exact duplicates only
        near = _verified_pairs(
            band_keys, lambda rs: [normalise(t) for t in texts_of(reps[rs].tolist())], threshold, subset=reps
        )
        if near:
            edges.append(reps[np.array(near, dtype=np.int64)])
    if not edges:
        return n, np.arange(n)
    pairs = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    count, component = connected_components(graph, directed=False)
    return int(count), component


def assign(keys: Sequence[Hashable], *args: Any, **kwargs: Any) -> dict[Hashable, str]:
    """{key: "train" | "validation" | "test"} for every key, keeping every split in `existing`:
    `assign_codes` (same arguments), with the splits named."""
    codes = assign_codes(keys, *args, **kwargs)
    return dict(zip(keys, np.array(SPLITS, dtype=object)[codes].tolist(), strict=True))


def assign_codes(
    keys: Sequence[Key],
    labels: Sequence[str],
    groups: Sequence[str | None],
    texts: Sequence[str] | Fingerprints,
    seed: int,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    existing: Mapping[Key, str] | None = None,
    near_duplicate_threshold: float | None = 0.9,
) -> np.ndarray:
    """The split of every key as its index in SPLITS (int8, in `keys` order), keeping every split in `existing`.

    A million keys' splits take 1 MB this way; `assign` gives them as a dict of names.

    Stratified by label: with no groups or duplicates, each label's count in each split is within one
    item of ratio x that label's total. A split with ratio 0 receives no new item. Keys in `existing`
    but not in `keys` are ignored. `texts` may be `Fingerprints` (from `fingerprints_of`) instead of
    the texts themselves: the same splits, without holding every text in memory.
    """
    if len({len(keys), len(labels), len(groups), len(texts)}) != 1:
        sizes = {"keys": len(keys), "labels": len(labels), "groups": len(groups), "texts": len(texts)}
        raise ValueError(LENGTHS_DIFFER.format(sizes=sizes))
    ratios = _check_ratios(ratios)
    if near_duplicate_threshold is not None:
        _check_threshold(near_duplicate_threshold)
    n = len(keys)
    if len(set(keys)) != n:
        raise ValueError(DUPLICATE_KEY.format(key=_first_repeat(keys)))
    existing = existing or {}
    for key, split in existing.items():
        if split not in SPLITS:
            raise ValueError(UNKNOWN_SPLIT.format(key=key, split=split, splits=SPLITS))
    if n == 0:
        return np.zeros(0, dtype=np.int8)

    n_components, component = _components(groups, texts, near_duplicate_threshold)
    label_names = sorted(set(labels))
    label_code = {name: i for i, name in enumerate(label_names)}
    codes = [label_code[label] for label in labels]
    size = np.bincount(component, minlength=n_components)
    by_component = np.argsort(component, kind="stable")
    starts = np.concatenate(([0], np.cumsum(size)[:-1]))

    def members(c: int) -> list[int]:
        return by_component[starts[c] : starts[c] + size[c]].tolist()

    # Targets over every item (assigned or not), so that new items make up an earlier imbalance.
    totals = Counter(codes)
    target = [[ratio * totals[code] for code in range(len(label_names))] for ratio in ratios]
    count = [[0] * len(label_names) for _ in SPLITS]
    split_of = np.full(n, -1, dtype=np.int8)

    held_by: dict[int, Counter[str]] = {}
    index_of = {key: i for i, key in enumerate(keys)} if existing else {}
    for key, split in existing.items():
        i = index_of.get(key)
        if i is not None:
            split_of[i] = SPLITS.index(split)
            held_by.setdefault(int(component[i]), Counter())[split] += 1
    for c, held in held_by.items():
        top = max(held.values())
        joined = SPLITS.index(next(s for s in TIE_PREFERENCE if held[s] == top))
        for i in members(c):
            if split_of[i] < 0:
                split_of[i] = joined
            count[split_of[i]][codes[i]] += 1

    # New components: largest first (they constrain most), then in a seeded order.
    rank = np.full(n_components, np.iinfo(np.uint64).max, dtype=np.uint64)
    np.minimum.at(rank, component, _ranks(keys, seed))
    order = np.lexsort((rank, -size))
    allowed = [s for s, ratio in enumerate(ratios) if ratio > 0]
    first_member = by_component[starts]
    for c, c_size in zip(order.tolist(), size[order].tolist(), strict=True):
        if c in held_by:
            continue
        if c_size == 1:
            i = int(first_member[c])
            code = codes[i]
            best = min(allowed, key=lambda s: count[s][code] - target[s][code])
            count[best][code] += 1
            split_of[i] = best
            continue
        items = members(c)
        need = Counter(codes[i] for i in items)
        # The change in squared distance to the targets if the whole component joins split s.
        best = min(
            allowed,
            key=lambda s: sum(k * (2 * (count[s][code] - target[s][code]) + k) for code, k in need.items()),
        )
        for code, k in need.items():
            count[best][code] += k
        split_of[items] = best
    return split_of


def balance_report(assignment: Mapping[Hashable, str], labels: Mapping[Hashable, str]) -> dict[str, Any]:
    """Counts per split and label, split sizes, and each split's share of all items (JSON-ready)."""
    counts: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    for key, split in assignment.items():
        counts[split][labels[key]] += 1
    totals = {split: sum(c.values()) for split, c in counts.items()}
    n = sum(totals.values())
    return {
        "counts": {split: dict(sorted(c.items())) for split, c in counts.items()},
        "totals": totals,
        "ratios": {split: (totals[split] / n if n else 0.0) for split in SPLITS},
    }


def small_test_labels(by_split: Mapping[str, Mapping[str, int]], minimum: int) -> list[tuple[str, int, int]]:
    """(label, items in test, items in all splits) of every label with fewer than `minimum` test items.

    A test split that holds two examples of a class measures nothing about that class; a snapshot made
    from it should say so. Labels in label order; "" stands for all items of data without labels.
    """
    totals: Counter[str] = Counter()
    for counts in by_split.values():
        totals.update(counts)
    test = by_split.get(TEST, {})
    return [
        (label, test.get(label, 0), total) for label, total in sorted(totals.items()) if test.get(label, 0) < minimum
    ]


def class_balance(labels_in_train: Sequence[str], mode: str = "none", seed: int = 0) -> dict[str, Any]:
    """How a training run may balance its classes, without changing any split (JSON-ready).

    - "none": report only.
    - "downsample" (alias "undersample"): `keep` lists the train rows to use, every class cut at random
      (seeded) to the size of the smallest.
    - "oversample": `keep` lists rows with repeats, every class drawn up to the size of the largest
      (all of its rows, then a seeded sample with replacement).
    - "class_weights": `class_weights` = n / (k x n_label), sklearn's "balanced" weights.
    `keep` holds indexes into `labels_in_train`, sorted (a list rather than a set, so it can be stored).
    """
    from sklearn.utils.class_weight import compute_class_weight

    if mode not in BALANCE_MODES:
        raise ValueError(UNKNOWN_BALANCE_MODE.format(modes=BALANCE_MODES, mode=mode))
    before = Counter(labels_in_train)
    rows_of: dict[str, list[int]] = {}
    for i, label in enumerate(labels_in_train):
        rows_of.setdefault(label, []).append(i)
    rng = random.Random(seed)
    keep: list[int] | None = None
    weights: dict[str, float] | None = None
    if before and mode in ("downsample", "undersample"):
        smallest = min(before.values())
        keep = sorted(i for label in sorted(rows_of) for i in rng.sample(rows_of[label], smallest))
    elif before and mode == "oversample":
        largest = max(before.values())
        keep = sorted(
            i
            for label in sorted(rows_of)
            for i in rows_of[label] + rng.choices(rows_of[label], k=largest - len(rows_of[label]))
        )
    elif before and mode == "class_weights":
        classes = np.array(sorted(before))
        values = compute_class_weight("balanced", classes=classes, y=np.asarray(labels_in_train))
        weights = {str(c): float(w) for c, w in zip(classes, values, strict=True)}
    after = Counter(labels_in_train[i] for i in keep) if keep is not None else before
    return {
        "mode": mode,
        "keep": keep,
        "class_weights": weights,
        "report": {
            "before": dict(sorted(before.items())),
            "after": dict(sorted(after.items())),
            "imbalance_ratio": (max(before.values()) / min(before.values())) if before else None,
        },
    }
