"""Loading a base model and making the part of it that a spec trains trainable.

LoRA and IA3 go through PEFT. For sequence classification the new head (PEFT lists it itself) and anything else
the checkpoint did not contain, so was randomly initialised, are in `modules_to_save`, once each: they are
trained and saved with the adapter, otherwise a reloaded adapter would sit on a different random head. "full"
trains every weight except the embeddings and the `freeze_layers` lowest transformer layers. A spec's
`student_layers` keeps that many of the base model's layers (a smaller student for knowledge distillation): the
config says the new depth, so the saved model reloads as it is. Everything loads with `local_files_only=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from peft import IA3Config, LoraConfig, PeftModel, TaskType, get_peft_model
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from training.spec import METHOD_FULL, METHOD_IA3, METHOD_LORA, TASK_CLASSIFICATION, TrainingSpec

# Used when a causal LM's tokenizer has none: one user turn, then the answer, each closed by the EOS token.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n\n"
    "{% else %}### Response:\n{{ message['content'] }}{{ eos_token }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Response:\n{% endif %}"
)

# PEFT puts a sequence classifier's head under these names in `modules_to_save` itself; naming them (or a module
# inside them) again only listed the head twice in adapter_config.json.
PEFT_CLASSIFIER_NAMES = ("classifier", "score")

# Module names that are an MLP's output projection in common architectures (IA3 scales their input).
_FEEDFORWARD_NAMES = frozenset({"down_proj", "output.dense", "fc2", "c_proj", "dense_4h_to_h", "w2"})

# Two short token sequences (ids taken modulo the vocabulary) that the packing check runs alone and packed.
PACKING_PROBE = ((3, 5, 7, 11, 2), (13, 2, 9, 4))
PACKING_TOLERANCE = 1e-3

ERROR_NO_LAYERS = "cannot find the transformer layers of {model} to freeze"
ERROR_TOO_MANY_FROZEN = "freeze_layers is {frozen} but the base model has only {layers} layers"
ERROR_STUDENT_DEPTH = "student_layers is {keep} but the base model has {layers} layers: keep between 1 and {most}"
ERROR_NO_EOS = "the tokenizer of {path} has neither a padding nor an end-of-sequence token"
ERROR_NOT_HF = "expected a Hugging Face model (bare or wrapped by PEFT), got {type}"
ERROR_NOT_GENERATIVE = "expected a Hugging Face model that generates (bare or wrapped by PEFT), got {type}"


class ModelError(ValueError):
    """A base model that does not fit the spec."""


def hf_model(model: nn.Module) -> PreTrainedModel | PeftModel:
    """`model` as the Hugging Face model every model here is, bare or wrapped by PEFT (which forwards `config`).

    Models travel as `nn.Module` (that is what training needs); this is where their Hugging Face side is read.
    """
    if not isinstance(model, PreTrainedModel | PeftModel):
        raise TypeError(ERROR_NOT_HF.format(type=type(model).__name__))
    return model


def generative_model(model: nn.Module) -> GenerationMixin | PeftModel:
    """`model` as a Hugging Face model with `generate` (a causal LM, bare or wrapped by PEFT)."""
    if not isinstance(model, GenerationMixin | PeftModel):
        raise TypeError(ERROR_NOT_GENERATIVE.format(type=type(model).__name__))
    return model


def load_tokenizer(model_dir: Path, *, task: str) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, ready to pad; a causal LM gets a chat template if it has none."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(ERROR_NO_EOS.format(path=model_dir))
        tokenizer.pad_token = tokenizer.eos_token
    if task != TASK_CLASSIFICATION and not tokenizer.chat_template:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    tokenizer.padding_side = "right"
    return tokenizer


def load_base_model(
    model_dir: Path,
    *,
    task: str,
    label2id: Mapping[str, int] | None = None,
    pad_token_id: int | None = None,
    dtype: torch.dtype = torch.float32,
    keep_layers: int = 0,
) -> tuple[PreTrainedModel, list[str]]:
    """The base model with the task's head, and the names of modules the checkpoint did not initialise; with
    `keep_layers` above 0, only that many of its transformer layers (see `keep_spread_layers`)."""
    if task == TASK_CLASSIFICATION:
        label2id = dict(label2id or {})
        model, info = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            num_labels=len(label2id),
            label2id=label2id,
            id2label={index: label for label, index in label2id.items()},
            pad_token_id=pad_token_id,
            local_files_only=True,
            dtype=dtype,
            output_loading_info=True,
        )
    else:
        # With output_loading_info it returns (model, info); transformers' return hint says the model alone.
        model, info = AutoModelForCausalLM.from_pretrained(  # type: ignore[misc]
            model_dir, local_files_only=True, dtype=dtype, output_loading_info=True
        )
    new_modules = sorted({key.rsplit(".", 1)[0] for key in info["missing_keys"]})
    if keep_layers:
        keep_spread_layers(model, keep_layers)
    return model, new_modules


def student_layer_indices(total: int, keep: int) -> list[int]:
    """Which of `total` layers a `keep`-layer student keeps: spread evenly from the bottom, as DistilBERT keeps
    every other layer (6 of 12 → 0, 2, 4, 6, 8, 10; 3 of 6 → 0, 2, 4; 2 of 6 → 0, 3).

    The lowest layer stays because it is the one that reads the embeddings, which the student keeps whole.
    """
    if not 1 <= keep < total:
        raise ModelError(ERROR_STUDENT_DEPTH.format(keep=keep, layers=total, most=total - 1))
    return [index * total // keep for index in range(keep)]


def keep_spread_layers(model: PreTrainedModel, keep: int) -> list[int]:
    """Cut `model` down to `keep` of its transformer layers in place (their trained weights kept) and say which.

    The layer stack is replaced by the kept layers and `config.num_hidden_layers` says the new depth, so the model
    saves and reloads (`from_pretrained`) as a plain `keep`-layer model of the same architecture.
    """
    layers = transformer_layers(model)
    indices = student_layer_indices(len(layers), keep)
    kept = nn.ModuleList([layers[index] for index in indices])
    for position, layer in enumerate(kept):
        for module in layer.modules():  # attention caches are indexed by the layer's new position
            if isinstance(getattr(module, "layer_idx", None), int):
                setattr(module, "layer_idx", position)  # noqa: B010 (nn.Module's attribute typing refuses an int)
    for name, module in model.named_modules():
        if module is layers:
            parent_name, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attribute, kept)
            break
    model.config.num_hidden_layers = keep
    return indices


def build_model(
    spec: TrainingSpec,
    model_dir: Path,
    *,
    label2id: Mapping[str, int] | None = None,
    pad_token_id: int | None = None,
) -> nn.Module:
    """The model a run trains: base + adapter, or base with its lower layers frozen. Seeded, so heads repeat."""
    torch.manual_seed(spec.seed)
    model, new_modules = load_base_model(
        model_dir, task=spec.task, label2id=label2id, pad_token_id=pad_token_id, keep_layers=spec.student_layers
    )
    if spec.method == METHOD_FULL:
        freeze_lower_layers(model, spec.freeze_layers)
        return model
    if spec.task == TASK_CLASSIFICATION:
        new_modules = [name for name in [*new_modules, *head_inputs(model)] if not _peft_saves_it(name)]
    return get_peft_model(model, peft_config(spec, modules_to_save=new_modules))


def _peft_saves_it(module: str) -> bool:
    return any(module == head or module.startswith(f"{head}.") for head in PEFT_CLASSIFIER_NAMES)


def head_inputs(model: PreTrainedModel) -> list[str]:
    """Modules between the encoder and a classification head that adapters should train with the head.

    BERT's head reads the pooler (a dense layer over [CLS]). Sentence-embedding checkpoints such as
    all-MiniLM never trained it (they mean-pool), so frozen it throttles the head: on SMS spam, training it
    reached macro-F1 0.94 after 20 steps where the frozen pooler still predicted the majority class.
    """
    pooler = getattr(model.base_model, "pooler", None)
    return ["pooler"] if isinstance(pooler, nn.Module) else []


def peft_config(spec: TrainingSpec, *, modules_to_save: Sequence[str] = ()) -> LoraConfig | IA3Config:
    task_type = TaskType.SEQ_CLS if spec.task == TASK_CLASSIFICATION else TaskType.CAUSAL_LM
    target = list(spec.target_modules) if spec.target_modules else None
    to_save = list(modules_to_save) or None
    if spec.method == METHOD_LORA:
        return LoraConfig(
            task_type=task_type,
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules=target,
            modules_to_save=to_save,
        )
    if spec.method == METHOD_IA3:
        return IA3Config(
            task_type=task_type,
            target_modules=target,
            # With explicit targets, the MLP output projections among them are scaled on their input.
            feedforward_modules=[name for name in target if name in _FEEDFORWARD_NAMES] if target else None,
            modules_to_save=to_save,
        )
    raise ModelError(f"method {spec.method!r} has no adapter")


@torch.no_grad()
def packing_isolates_sequences(model: nn.Module) -> bool:
    """Whether `model` keeps sequences packed into one row apart, so a causal LM may train on packed batches.

    Packing relies on the model turning position ids that restart at 0 into a block-diagonal causal mask, as
    transformers' mask builder does for SDPA, eager and flash attention, and on `logits_to_keep` taking a
    boolean mask. Rather than trust an architecture list, the model is asked: the logits of two sequences packed
    together must equal their logits run one by one. A model that lets the second see the first, or that rejects
    the arguments, fails and trains on padded batches instead.
    """
    parameter = next(model.parameters())
    vocab = int(hf_model(model).config.vocab_size)
    sequences = [[token % vocab for token in sequence] for sequence in PACKING_PROBE]
    was_training = model.training
    model.eval()
    try:
        alone = torch.cat([model(input_ids=torch.tensor([s], device=parameter.device)).logits[0] for s in sequences])
        input_ids = torch.tensor([[token for s in sequences for token in s]], device=parameter.device)
        position_ids = torch.tensor([[i for s in sequences for i in range(len(s))]], device=parameter.device)
        keep = torch.ones_like(input_ids, dtype=torch.bool)
        packed = model(input_ids=input_ids, position_ids=position_ids, logits_to_keep=keep, use_cache=False).logits
    except (TypeError, ValueError, RuntimeError):
        return False
    finally:
        model.train(was_training)
    packed = packed.reshape(alone.shape)
    return bool(torch.allclose(packed.float(), alone.float(), atol=PACKING_TOLERANCE, rtol=PACKING_TOLERANCE))


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, bottom first: the ModuleList as long as config.num_hidden_layers."""
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == expected:
            return module
    raise ModelError(ERROR_NO_LAYERS.format(model=type(model).__name__))


def freeze_lower_layers(model: PreTrainedModel, count: int) -> None:
    """Freeze the input embeddings and the `count` lowest layers (0 freezes nothing)."""
    if count == 0:
        return
    layers = transformer_layers(model)
    if count > len(layers):
        raise ModelError(ERROR_TOO_MANY_FROZEN.format(frozen=count, layers=len(layers)))
    frozen: list[nn.Module] = [model.get_input_embeddings(), *layers[:count]]
    embeddings = getattr(model.base_model, "embeddings", None)
    if embeddings is not None:
        frozen.append(embeddings)
    for module in frozen:
        module.requires_grad_(False)


@torch.no_grad()
def store_frozen_matmul_weights_in_bf16(model: nn.Module) -> Callable[[], None]:
    """Hold the frozen weight of every nn.Linear in bf16 until the returned function puts the originals back.

    Under bf16 autocast a linear layer multiplies in bf16 whatever its weight is stored in: autocast rounds a
    float32 weight to bf16 again on every forward (it caches only weights that require grad). Holding the frozen
    ones rounded once gives the same products without that copy on every step. Trainable weights (LoRA, heads)
    stay float32, as do biases, norms and embeddings (autocast runs those in float32), and a weight shared with
    an embedding (tied input embeddings) is left alone, so the residual stream stays float32. The float32
    originals are kept: the restored model is exactly the one loaded, usable without autocast.
    """
    shared = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    originals: list[tuple[nn.Parameter, torch.Tensor]] = []
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, nn.Linear) or not isinstance(weight, nn.Parameter):
            continue
        if weight.requires_grad or id(weight) in shared or weight.dtype != torch.float32:
            continue
        originals.append((weight, weight.data))
        weight.data = weight.data.to(torch.bfloat16)

    def restore() -> None:
        for weight, original in originals:
            weight.data = original
        originals.clear()

    return restore


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters by name; with tied weights each shared tensor appears once."""
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    total = sum(param.numel() for param in model.parameters())
    trainable = sum(param.numel() for param in trainable_parameters(model).values())
    return {"trainable": trainable, "total": total}


@torch.no_grad()
def embed_texts(
    model_dir: Path,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 64,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Frozen base-model sentence embeddings (mean over non-padding tokens, L2-normalised), for baselines;
    `on_batch(n)` after each batch of n texts."""
    device = device or torch.device("cpu")
    tokenizer = load_tokenizer(model_dir, task=TASK_CLASSIFICATION)
    encoder = AutoModel.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32).to(device).eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        if on_batch is not None:
            on_batch(len(chunks[-1]))
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
