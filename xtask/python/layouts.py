"""The four on-disk layouts of the tiny pipeline (fixtures/README.md).

raw      exactly what `VQDiffusionPipeline.save_pretrained` writes (diffusers 0.42.1 + transformers 5)
hub      the raw weights rewritten into the layout of microsoft/vq-diffusion-ithq (+ fp16 variants)
bin      hub, with every weight file as a PyTorch zip pickle and no safetensors
nolearn  hub, with `learnable: false` classifier-free embeddings (empty weights file)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import tokenizer_files as tf

HUB_DIFFUSERS_VERSION = "0.8.0.dev0"
HUB_TRANSFORMERS_VERSION = "4.25.0.dev0"

HUB_TRANSFORMER_FIELDS = [
    "activation_fn", "attention_bias", "attention_head_dim", "cross_attention_dim", "dropout", "in_channels",
    "norm_num_groups", "num_attention_heads", "num_embeds_ada_norm", "num_layers", "num_vector_embeds", "sample_size",
]
HUB_VQVAE_FIELDS = [
    "act_fn", "block_out_channels", "down_block_types", "in_channels", "latent_channels", "layers_per_block",
    "norm_num_groups", "num_vq_embeddings", "out_channels", "sample_size", "up_block_types", "vq_embed_dim",
]
HUB_SCHEDULER_FIELDS = [
    "alpha_cum_end", "alpha_cum_start", "gamma_cum_end", "gamma_cum_start", "num_train_timesteps", "num_vec_classes",
]
# transformers 4.x CLIPTextConfig.save_pretrained field set (no `dtype`, `torch_dtype` instead)
HUB_TEXT_FIELDS = [
    "attention_dropout", "bos_token_id", "eos_token_id", "hidden_act", "hidden_size", "initializer_factor",
    "initializer_range", "intermediate_size", "layer_norm_eps", "max_position_embeddings", "model_type",
    "num_attention_heads", "num_hidden_layers", "pad_token_id", "projection_dim", "vocab_size",
]
VQ_ATTN_LEGACY = [("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")]

WEIGHT_COMPONENTS = {
    # folder: (safetensors name, bin name)
    "text_encoder": ("model.safetensors", "pytorch_model.bin"),
    "vqvae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "transformer": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "learned_classifier_free_sampling_embeddings": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
}
FP16_COMPONENTS = ["text_encoder", "vqvae", "learned_classifier_free_sampling_embeddings"]


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _fix_modes(root: Path) -> None:
    """diffusers writes safetensors with mode 0600; make everything 0644 for the repository."""
    for p in root.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)


def write_raw(pipe, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    pipe.save_pretrained(str(dest))
    _fix_modes(dest)


def hub_vq_key(key: str) -> str:
    for new, old in VQ_ATTN_LEGACY:
        key = re.sub(rf"(\.attentions\.\d+\.){re.escape(new)}\.", rf"\g<1>{old}.", key)
    return key


def hub_state_dict(component: str, sd: dict[str, torch.Tensor], max_pos: int) -> dict[str, torch.Tensor]:
    if component == "text_encoder":
        out = {f"text_model.{k}": v for k, v in sd.items()}
        out["text_model.embeddings.position_ids"] = torch.arange(max_pos, dtype=torch.int64).unsqueeze(0)
        return out
    if component == "vqvae":
        out = {hub_vq_key(k): v for k, v in sd.items()}
        assert len(out) == len(sd)
        return out
    return dict(sd)


def _to_fp16(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}


def _save_weights(sd: dict[str, torch.Tensor], path: Path, fmt: str) -> None:
    sd = {k: v.detach().clone().contiguous() for k, v in sd.items()}
    if fmt == "safetensors":
        save_file(sd, str(path), metadata={"format": "pt"})
    else:
        torch.save(sd, str(path))


def hub_configs(raw: Path, learnable: bool) -> dict[str, dict]:
    tr = _read_json(raw / "transformer" / "config.json")
    vq = _read_json(raw / "vqvae" / "config.json")
    sc = _read_json(raw / "scheduler" / "scheduler_config.json")
    te = _read_json(raw / "text_encoder" / "config.json")
    cf = _read_json(raw / "learned_classifier_free_sampling_embeddings" / "config.json")
    head = lambda cls: {"_class_name": cls, "_diffusers_version": HUB_DIFFUSERS_VERSION}
    cf_out = head("LearnedClassifierFreeSamplingEmbeddings")
    if learnable:
        cf_out.update(hidden_size=cf["hidden_size"], learnable=True, length=cf["length"])
    else:
        cf_out.update(hidden_size=None, learnable=False, length=None)
    text = {"architectures": ["CLIPTextModel"], **{k: te[k] for k in HUB_TEXT_FIELDS}}
    text.update(dropout=0.0, torch_dtype="float32", transformers_version=HUB_TRANSFORMERS_VERSION)
    return {
        "transformer/config.json": {**head("Transformer2DModel"), **{k: tr[k] for k in HUB_TRANSFORMER_FIELDS}},
        "vqvae/config.json": {**head("VQModel"), **{k: vq[k] for k in HUB_VQVAE_FIELDS}},
        "scheduler/scheduler_config.json": {**head("VQDiffusionScheduler"), **{k: sc[k] for k in HUB_SCHEDULER_FIELDS}},
        "text_encoder/config.json": dict(sorted(text.items())),
        "learned_classifier_free_sampling_embeddings/config.json": cf_out,
        "model_index.json": {
            **head("VQDiffusionPipeline"),
            "learned_classifier_free_sampling_embeddings": ["vq_diffusion", "LearnedClassifierFreeSamplingEmbeddings"],
            "scheduler": ["diffusers", "VQDiffusionScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "transformer": ["diffusers", "Transformer2DModel"],
            "vqvae": ["diffusers", "VQModel"],
        },
    }


def write_hub_like(raw: Path, dest: Path, vocab, merges, *, fmt: str, fp16: bool, learnable: bool) -> None:
    """Rewrite the raw layout into the hub layout (`fmt` 'safetensors' or 'bin')."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    max_pos = _read_json(raw / "text_encoder" / "config.json")["max_position_embeddings"]
    for rel, cfg in hub_configs(raw, learnable).items():
        tf.write_json(dest / rel, cfg)
    for component, (st_name, bin_name) in WEIGHT_COMPONENTS.items():
        sd = load_file(str(raw / component / st_name))
        if component == "learned_classifier_free_sampling_embeddings" and not learnable:
            # what diffusers saves for `embeddings = Parameter(None)`: one F32 tensor of shape [0]
            sd = {"embeddings": torch.zeros(0, dtype=torch.float32)}
        sd = hub_state_dict(component, sd, max_pos)
        if fmt == "safetensors":
            _save_weights(sd, dest / component / st_name, "safetensors")
            if fp16 and component in FP16_COMPONENTS:
                stem, ext = st_name.rsplit(".", 1)
                _save_weights(_to_fp16(sd), dest / component / f"{stem}.fp16.{ext}", "safetensors")
        else:
            _save_weights(sd, dest / component / bin_name, "bin")
    tf.write_hub_tokenizer_dir(dest / "tokenizer", vocab, merges)
    _fix_modes(dest)
