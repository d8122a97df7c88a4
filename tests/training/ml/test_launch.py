"""The file-driven launcher: one process in-process, a cancel file, and real multi-process launches.

torchrun with two CPU processes exercises the DistributedDataParallel path over gloo (sharded batches, rank 0
validating and saving, collective cancel/early-stop decisions); `accelerate launch --cpu` runs one process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tiny_models import classification_spec, sentiment_rows
from training.ml.data import DataError
from training.ml.launch import ARTIFACT_DIR, CANCEL_FILE, EVENTS_FILE, RESULT_FILE, main, read_rows
from training.ml.predict import Predictor

ROOT = Path(__file__).resolve().parents[3]


def write_inputs(folder: Path, model_dir: Path, **changes) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    spec = classification_spec(base_model=str(model_dir), epochs=2, **changes)
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    data_path = folder / "rows.jsonl"
    with data_path.open("w") as handle:
        for split, count, seed in (("train", 48, 1), ("validation", 16, 2), ("test", 16, 3)):
            for row in sentiment_rows(count, seed):
                handle.write(json.dumps({**row, "split": split}) + "\n")
    return spec_path, data_path


def read_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / EVENTS_FILE).read_text().splitlines()]


def test_one_process_run_writes_events_result_and_artifact(tiny_bert, tmp_path):
    spec_path, data_path = write_inputs(tmp_path, tiny_bert)
    out = tmp_path / "out"
    assert main(["--spec", str(spec_path), "--data", str(data_path), "--out", str(out), "--snapshot-hash", "h1"]) == 0
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["outcome"]["status"] == "completed" and result["world_size"] == 1
    assert result["metrics"]["n"] == 16
    events = read_events(out)
    train_steps = [e["step"] for e in events if e["kind"] == "train"]
    assert train_steps == list(range(1, result["outcome"]["total_steps"] + 1))
    assert [e["kind"] for e in events].count("eval") == 2
    predictor = Predictor.load(out / ARTIFACT_DIR)
    assert predictor.info["snapshot_hash"] == "h1"


def test_a_cancel_file_stops_the_run_without_an_artifact(tiny_bert, tmp_path):
    spec_path, data_path = write_inputs(tmp_path, tiny_bert)
    out = tmp_path / "out"
    out.mkdir()
    (out / CANCEL_FILE).touch()
    main(["--spec", str(spec_path), "--data", str(data_path), "--out", str(out)])
    assert json.loads((out / RESULT_FILE).read_text())["outcome"]["status"] == "cancelled"
    assert not (out / ARTIFACT_DIR).exists()


def test_bad_data_lines_are_reported_with_their_number(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a", "label": "x", "split": "train"}\n\n{"text": "b", "label": "y", "split": "dev"}\n')
    with pytest.raises(DataError, match=r"rows.jsonl:3: 'split' must be one of train, validation, test"):
        read_rows(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"rows.jsonl:1: "):
        read_rows(path)


@pytest.mark.slow
def test_torchrun_with_two_processes_and_accelerate_launch(tiny_bert, tmp_path):
    """Both launchers at once (they are mostly start-up time): two DDP processes, and accelerate's one."""
    spec_path, data_path = write_inputs(tmp_path, tiny_bert)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    bin_dir = Path(sys.executable).parent
    module = ["-m", "training.ml.launch", "--spec", str(spec_path), "--data", str(data_path)]
    accelerate_flags = ["--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no"]
    commands = {
        "torchrun": [str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node", "2", *module],
        "accelerate": [str(bin_dir / "accelerate"), "launch", *accelerate_flags, "--dynamo_backend", "no", *module],
    }
    if not all(shutil.which(command[0]) for command in commands.values()):
        pytest.skip("torchrun or accelerate is not installed in this environment")
    running = {
        name: subprocess.Popen(
            [*command, "--out", str(tmp_path / name)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, command in commands.items()
    }
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name} failed:\n{output[-3000:]}"

    single = json.loads((tmp_path / "accelerate" / RESULT_FILE).read_text())
    double = json.loads((tmp_path / "torchrun" / RESULT_FILE).read_text())
    assert single["world_size"] == 1 and double["world_size"] == 2
    # Each of the two processes takes half of every epoch's batches, so there are half as many steps.
    assert double["outcome"]["total_steps"] == single["outcome"]["total_steps"] // 2
    assert double["outcome"]["status"] == single["outcome"]["status"] == "completed"
    steps = [e["step"] for e in read_events(tmp_path / "torchrun") if e["kind"] == "train"]
    assert steps == list(range(1, double["outcome"]["total_steps"] + 1))  # rank 0 alone reports
    assert double["metrics"]["accuracy"] >= 0.8
    assert Predictor.load(tmp_path / "torchrun" / ARTIFACT_DIR).classify(["good"])[0].label == "pos"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_machines_by_torchrun_nodes_share_one_run(tiny_bert, tmp_path):
    """Two torchrun 'machines' (--nnodes 2, one process each, static rendezvous on this host) train one run, as two
    hosts with one GPU each would: rank 0 on node 0 writes the result; the out folder stands for the shared volume."""
    spec_path, data_path = write_inputs(tmp_path, tiny_bert)
    torchrun = Path(sys.executable).parent / "torchrun"
    if not shutil.which(str(torchrun)):
        pytest.skip("torchrun is not installed in this environment")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    port = free_port()
    out = tmp_path / "shared"
    nodes = [
        subprocess.Popen(
            [
                str(torchrun),
                "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                "--master_addr", "127.0.0.1", "--master_port", str(port),
                "-m", "training.ml.launch", "--spec", str(spec_path), "--data", str(data_path), "--out", str(out),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    for rank, process in enumerate(nodes):
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"node {rank} failed:\n{output[-3000:]}"
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["world_size"] == 2
    assert result["outcome"]["status"] == "completed"
    assert Predictor.load(out / ARTIFACT_DIR).classify(["good"])[0].label == "pos"
