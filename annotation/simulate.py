"""A simulated crowd driving the real HTTP API: annotators and reviewers with an error rate, a confusion
pattern between similar labels and a speed. Used by `manage.py simulate` and bench/load.py.

No Django here: it speaks HTTP to a base URL with tokens it is given, so it measures what a real client
sees (routing, auth, services, database, serialisation, the network stack of the server). Every request's
latency is recorded per endpoint; one annotate loop is "submit + next" (the two requests together).
Accuracy is the final labels' (the items list, as the owner sees it) against the dataset's labels.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

SUBMIT_AND_NEXT = "submit+next"
REVIEW_POLL_SECONDS = 0.3
REQUEST_TIMEOUT = 60.0
ITEMS_PAGE = 1000


@dataclass(frozen=True)
class Persona:
    """How one simulated person works: wrong `error_rate` of the time, mostly towards `confuses[gold]`."""

    name: str
    error_rate: float = 0.1
    think_seconds: float = 0.0  # mean of an exponential pause before each decision; 0 = as fast as possible
    confuses: dict[str, str] = field(default_factory=dict)  # gold label -> the similar label it is mistaken for

    def choose(self, gold: str, labels: list[str], rng: random.Random) -> str:
        """The label this person gives an item whose true label is `gold`."""
        if rng.random() >= self.error_rate:
            return gold
        similar = self.confuses.get(gold)
        others = [label for label in labels if label != gold]
        if similar is not None and similar != gold and rng.random() < 0.8:
            return similar  # the confusion pattern: most mistakes go to the look-alike label
        return rng.choice(others) if others else gold

    def think(self, rng: random.Random) -> None:
        if self.think_seconds > 0:
            time.sleep(rng.expovariate(1 / self.think_seconds))


@dataclass(frozen=True)
class Seat:
    """One simulated person's account: who they are and the token they call the API with."""

    persona: Persona
    token: str


@dataclass
class Crowd:
    """What a simulation needs: the server, the project, who works on it and the true labels."""

    base_url: str
    project_id: int
    owner_token: str
    labels: list[str]
    gold: dict[str, str]  # item external_id -> true label
    annotators: list[Seat]
    reviewers: list[Seat] = field(default_factory=list)
    gold_by_text: dict[str, str] = field(default_factory=dict)  # a review task shows the text, not the external id


class Recorder:
    """Thread-safe tallies: latencies per endpoint, accepted submissions, errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.accepted: list[tuple[int, str]] = []  # (item_id, annotator) per 201 answer
        self.errors: dict[str, int] = defaultdict(int)
        self.decisions = 0
        self.review_conflicts = 0

    def latency(self, endpoint: str, seconds: float) -> None:
        with self._lock:
            self.latencies[endpoint].append(seconds)

    def error(self, what: str) -> None:
        with self._lock:
            self.errors[what] += 1

    def submitted(self, item_id: int, annotator: str) -> None:
        with self._lock:
            self.accepted.append((item_id, annotator))

    def decided(self, *, conflict: bool = False) -> None:
        with self._lock:
            if conflict:
                self.review_conflicts += 1
            else:
                self.decisions += 1


class ApiClient:
    """One person's HTTP client: a persistent connection (reopened when the server closes it), token auth."""

    def __init__(self, base_url: str, token: str, recorder: Recorder) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.recorder = recorder
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=REQUEST_TIMEOUT)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, path: str, body: Any = None, *, endpoint: str) -> tuple[int, Any, float]:
        """(status, decoded JSON or None, seconds); a connection the server closed is retried once."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                conn = self._connection()
                conn.request(method, self.prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            seconds = time.perf_counter() - start
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            self.recorder.latency(endpoint, seconds)
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            payload = json.loads(raw) if raw and is_json else None
            return response.status, payload, seconds
        raise AssertionError("unreachable")


def _annotator(crowd: Crowd, seat: Seat, recorder: Recorder, stop_at: float, seed: int) -> None:
    rng = random.Random(seed)
    client = ApiClient(crowd.base_url, seat.token, recorder)
    base = f"/api/projects/{crowd.project_id}"
    try:
        status, claimed, _ = client.call("POST", f"{base}/claims/next/", endpoint="claims/next")
        while time.monotonic() < stop_at:
            if status == 409 and claimed and "guideline_version" in claimed:
                version = claimed["guideline_version"]
                client.call("POST", f"{base}/guidelines/{version}/acknowledgements/", endpoint="acknowledge")
                status, claimed, _ = client.call("POST", f"{base}/claims/next/", endpoint="claims/next")
                continue
            if status == 204:
                return  # nothing left for this annotator
            if status != 200:
                recorder.error(f"claims/next {status}")
                return
            gold = crowd.gold.get(claimed["external_id"])
            label = seat.persona.choose(gold, crowd.labels, rng) if gold else rng.choice(crowd.labels)
            seat.persona.think(rng)
            item_id = claimed["item_id"]
            status, _, submit_s = client.call(
                "POST", f"{base}/items/{item_id}/annotations/", {"value": {"label": label}}, endpoint="annotations"
            )
            if status == 201:
                recorder.submitted(item_id, seat.persona.name)
            else:
                recorder.error(f"annotations {status}")
            status, claimed, next_s = client.call("POST", f"{base}/claims/next/", endpoint="claims/next")
            recorder.latency(SUBMIT_AND_NEXT, submit_s + next_s)
    except (OSError, http.client.HTTPException) as exc:
        recorder.error(f"connection: {type(exc).__name__}")
    finally:
        client.close()


def _reviewer(
    crowd: Crowd, seat: Seat, recorder: Recorder, stop_at: float, seed: int, annotators_done: threading.Event
) -> None:
    rng = random.Random(seed)
    client = ApiClient(crowd.base_url, seat.token, recorder)
    base = f"/api/projects/{crowd.project_id}"
    try:
        while time.monotonic() < stop_at:
            status, page, _ = client.call("GET", f"{base}/review-tasks/?status=open&limit=20", endpoint="review-tasks")
            if status != 200:
                recorder.error(f"review-tasks {status}")
                return
            tasks = page["results"]
            if not tasks:
                if annotators_done.is_set():
                    return
                time.sleep(REVIEW_POLL_SECONDS)
                continue
            task = rng.choice(tasks)  # reviewers fan out instead of all taking the most urgent one
            gold = crowd.gold_by_text.get(task["text"])
            decided = seat.persona.choose(gold, crowd.labels, rng) if gold else task["annotations"][0]["value"]["label"]
            seat.persona.think(rng)
            match = next((a for a in task["annotations"] if a["value"].get("label") == decided), None)
            body = (
                {"action": "accept", "annotation_id": match["id"]}
                if match
                else {"action": "fix", "value": {"label": decided}, "reason": "simulated reviewer"}
            )
            status, _, _ = client.call("POST", f"{base}/review-tasks/{task['id']}/decide/", body, endpoint="decide")
            if status == 200:
                recorder.decided()
            elif status in (400, 404, 409):
                recorder.decided(conflict=True)  # another reviewer decided it first
            else:
                recorder.error(f"decide {status}")
    except (OSError, http.client.HTTPException) as exc:
        recorder.error(f"connection: {type(exc).__name__}")
    finally:
        client.close()


@dataclass
class Result:
    seconds: float
    recorder: Recorder
    final: dict[str, Any]

    @property
    def accepted(self) -> int:
        return len(self.recorder.accepted)

    @property
    def throughput(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(
    crowd: Crowd,
    *,
    seconds: float,
    seed: int = 0,
    parallel: bool = True,
) -> Result:
    """Run the crowd for at most `seconds` (or until nothing is left), then read the final labels.

    `parallel=False` runs the people one after another (annotators, then reviewers): for servers that cannot
    take concurrent writers, such as the test suite's shared in-memory SQLite (table locks, no busy wait).
    """
    recorder = Recorder()
    stop_at = time.monotonic() + seconds
    done = threading.Event()
    annotators = [
        threading.Thread(target=_annotator, args=(crowd, seat, recorder, stop_at, seed * 10_007 + i), daemon=True)
        for i, seat in enumerate(crowd.annotators)
    ]
    reviewers = [
        threading.Thread(target=_reviewer, args=(crowd, seat, recorder, stop_at, seed * 20_011 + i, done), daemon=True)
        for i, seat in enumerate(crowd.reviewers)
    ]
    start = time.perf_counter()
    if not parallel:
        for thread in annotators:
            thread.start()
            thread.join()
        done.set()
        for thread in reviewers:
            thread.start()
            thread.join()
        return Result(seconds=time.perf_counter() - start, recorder=recorder, final=final_labels(crowd))
    for thread in annotators + reviewers:
        thread.start()
    for thread in annotators:
        thread.join()
    elapsed = time.perf_counter() - start
    done.set()
    for thread in reviewers:
        thread.join()
    return Result(seconds=elapsed, recorder=recorder, final=final_labels(crowd))


def final_labels(crowd: Crowd) -> dict[str, Any]:
    """The final labels (as the owner reads them) against the dataset's: how many, how many right."""
    client = ApiClient(crowd.base_url, crowd.owner_token, Recorder())
    base = f"/api/projects/{crowd.project_id}/items/"
    labelled = correct = total = 0
    offset = 0
    try:
        while True:
            status, page, _ = client.call("GET", f"{base}?limit={ITEMS_PAGE}&offset={offset}", endpoint="items")
            if status != 200:
                raise RuntimeError(f"items list answered {status}")
            for item in page["results"]:
                total += 1
                value = item.get("final_value")
                if not value:
                    continue
                labelled += 1
                correct += value.get("label") == crowd.gold.get(item["external_id"])
            offset += ITEMS_PAGE
            if not page.get("next"):
                break
    finally:
        client.close()
    return {
        "items": total,
        "labelled": labelled,
        "correct": correct,
        "accuracy": correct / labelled if labelled else None,
    }


def report(result: Result) -> str:
    """The figures a run prints: throughput, latency per endpoint, errors, review work, final accuracy."""
    rec = result.recorder
    lines = [
        f"ran {result.seconds:.1f} s: {result.accepted} annotations accepted, {result.throughput:.1f} annotations/s",
        f"{'endpoint':<16}{'n':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for endpoint in sorted(rec.latencies):
        values = rec.latencies[endpoint]
        row = [percentile(values, q) * 1000 for q in (50, 95, 99)] + [max(values) * 1000]
        lines.append(f"{endpoint:<16}{len(values):>8}" + "".join(f"{v:>10.1f}" for v in row))
    lines.append(f"review decisions: {rec.decisions} (lost races: {rec.review_conflicts})")
    lines.append("errors: " + (", ".join(f"{k} x{v}" for k, v in sorted(rec.errors.items())) or "none"))
    final = result.final
    accuracy = "n/a" if final["accuracy"] is None else f"{final['accuracy']:.3f}"
    lines.append(
        f"final labels: {final['labelled']} of {final['items']} items labelled, {final['correct']} right "
        f"(accuracy {accuracy})"
    )
    return "\n".join(lines)
