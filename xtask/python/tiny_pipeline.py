"""The tiny random-weight VQ-Diffusion pipeline: configs, construction, randomisation, loading.

ITHQ's structure at toy widths (fixtures/README.md): VQ attention blocks at
the lowest resolution, vq_embed_dim != latent_channels, several heads and layers, every size distinct,
the real 49,408-token CLIP vocabulary.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

# --- configs ---------------------------------------------------------------------------------------

VQVAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
    up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
    block_out_channels=[20, 28],
    layers_per_block=2,
    act_fn="silu",
    latent_channels=12,
    num_vq_embeddings=31,
    norm_num_groups=4,
    vq_embed_dim=7,
    sample_size=16,
)

TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=16,
    intermediate_size=37,
    projection_dim=16,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    initializer_range=0.02,
    initializer_factor=1.0,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)

TRANSFORMER_CONFIG = dict(
    activation_fn="geglu-approximate",
    attention_bias=True,
    attention_head_dim=8,
    cross_attention_dim=16,
    dropout=0.0,
    in_channels=None,
    norm_num_groups=32,
    num_attention_heads=3,
    num_embeds_ada_norm=100,
    num_layers=2,
    num_vector_embeds=32,
    sample_size=8,
)

SCHEDULER_CONFIG = dict(num_vec_classes=32, num_train_timesteps=100)
CF_CONFIG = dict(learnable=True, hidden_size=16, length=77)

PERTURB_SEED = 1234


# --- diffusers 0.42.1 loader patches (docs/reference.md, "Loading in diffusers 0.42.1") ---------------------

_PATCHED = False


def apply_loader_patches() -> None:
    """The three monkey-patches that let diffusers 0.42.1 load VQ-Diffusion pipelines (no file edits)."""
    global _PATCHED
    if _PATCHED:
        return
    import diffusers
    import diffusers.models.model_loading_utils as mlu
    import diffusers.pipelines as pipelines_pkg
    from diffusers.pipelines.deprecated import vq_diffusion as deprecated_vq

    # 1. the class is no longer exported at the top level ("diffusers has no class ...")
    diffusers.LearnedClassifierFreeSamplingEmbeddings = deprecated_vq.LearnedClassifierFreeSamplingEmbeddings
    # 2. hub model_index.json names the library "vq_diffusion"
    pipelines_pkg.vq_diffusion = deprecated_vq
    sys.modules.setdefault("diffusers.pipelines.vq_diffusion", deprecated_vq)
    # 3. KeyError 'norm_type' for configs written before the field existed
    original = mlu._fetch_remapped_cls_from_config

    def fetch_remapped_cls(config, old_class):
        if "norm_type" not in config:
            return old_class
        return original(config, old_class)

    mlu._fetch_remapped_cls_from_config = fetch_remapped_cls
    _PATCHED = True


# --- construction ----------------------------------------------------------------------------------


def _perturb_norms(module: torch.nn.Module, gen: torch.Generator) -> None:
    """weight = 1 + 0.1 N(0,1), bias = 0.1 N(0,1) for every LayerNorm/GroupNorm affine, in module order."""
    for _, m in module.named_modules():
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)) and m.weight is not None:
            m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
            if m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def _perturb_constants(module: torch.nn.Module, gen: torch.Generator) -> list[str]:
    """Any floating parameter still constant (e.g. CLIP's zero-initialised Linear biases) += 0.1 N(0,1)."""
    touched = []
    for name, p in module.named_parameters():
        if p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
            touched.append(name)
    return touched


def build_components() -> dict:
    """Random-weight components (deterministic; see fixtures/README.md 'Randomisation')."""
    from diffusers import Transformer2DModel, VQDiffusionScheduler, VQModel
    from diffusers.pipelines.deprecated.vq_diffusion import LearnedClassifierFreeSamplingEmbeddings
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    vqvae = VQModel(**VQVAE_CONFIG).eval()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).eval()
    torch.manual_seed(0)
    transformer = Transformer2DModel(**TRANSFORMER_CONFIG).eval()
    scheduler = VQDiffusionScheduler(**SCHEDULER_CONFIG)
    torch.manual_seed(0)
    cf = LearnedClassifierFreeSamplingEmbeddings(**CF_CONFIG).eval()

    gen = torch.Generator("cpu").manual_seed(PERTURB_SEED)
    with torch.no_grad():
        _perturb_norms(vqvae, gen)
        emb = vqvae.quantize.embedding.weight
        emb.copy_(0.5 * torch.randn(emb.shape, generator=gen))
        _perturb_norms(text_encoder, gen)
        _perturb_norms(transformer, gen)
        cf.embeddings.copy_(torch.randn(cf.embeddings.shape, generator=gen) / math.sqrt(CF_CONFIG["hidden_size"]))
        constants = {}
        for name, m in [("vqvae", vqvae), ("text_encoder", text_encoder), ("transformer", transformer)]:
            constants[name] = _perturb_constants(m, gen)
    for name, m in [("vqvae", vqvae), ("text_encoder", text_encoder), ("transformer", transformer), ("cf", cf)]:
        for pname, p in m.named_parameters():
            assert p.numel() <= 1 or not bool((p == p.reshape(-1)[0]).all()), f"{name}.{pname} still constant"
    return dict(
        vqvae=vqvae,
        text_encoder=text_encoder,
        transformer=transformer,
        scheduler=scheduler,
        learned_classifier_free_sampling_embeddings=cf,
        perturbed_constants=constants,
    )


def make_pipeline(components: dict, tokenizer):
    from diffusers import VQDiffusionPipeline

    pipe = VQDiffusionPipeline(
        vqvae=components["vqvae"],
        text_encoder=components["text_encoder"],
        tokenizer=tokenizer,
        transformer=components["transformer"],
        scheduler=components["scheduler"],
        learned_classifier_free_sampling_embeddings=components["learned_classifier_free_sampling_embeddings"],
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def realign(module: torch.nn.Module) -> None:
    """Copy every parameter and buffer into freshly allocated memory.

    safetensors are mmapped at unaligned addresses and torch's CPU GEMMs round differently (~5e-7) for
    unaligned operands (docs/reference.md, "Parity tolerances"); with the copy every layout gives identical numbers.
    """
    with torch.no_grad():
        for m in module.modules():
            for name, p in list(m._parameters.items()):
                if p is not None:
                    m._parameters[name] = torch.nn.Parameter(p.detach().clone(memory_format=torch.contiguous_format), requires_grad=False)
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = b.detach().clone(memory_format=torch.contiguous_format)


def load_pipeline(pipe_dir: Path):
    """VQDiffusionPipeline.from_pretrained with the loader patches, on CPU, realigned, progress bar off."""
    apply_loader_patches()
    from diffusers import VQDiffusionPipeline

    # the bin layout has no safetensors: ask for the pickles explicitly (no fallback warnings)
    has_safetensors = any(pipe_dir.rglob("*.safetensors"))
    pipe = VQDiffusionPipeline.from_pretrained(str(pipe_dir), use_safetensors=has_safetensors)
    for name in ["vqvae", "text_encoder", "transformer", "learned_classifier_free_sampling_embeddings"]:
        m = getattr(pipe, name)
        realign(m)
        m.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def state_dicts(pipe) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name in ["vqvae", "text_encoder", "transformer", "learned_classifier_free_sampling_embeddings"]:
        out[name] = {k: v.detach().clone() for k, v in getattr(pipe, name).state_dict().items()}
    return out
