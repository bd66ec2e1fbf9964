"""CLIP BPE tokenizer files rebuilt from the merges list shipped in the open_clip_torch wheel.

docs/reference.md ("Tokenizer"): vocabulary = 256 byte symbols, the same with `</w>`, the first 48,894
merges, then `<|startoftext|>` 49406 and `<|endoftext|>` 49407. The VQ-Diffusion (ITHQ) tokenizer adds
`pad_token="!"`, which must be id 0.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OPEN_CLIP_WHEEL = "open_clip_torch==3.3.0"
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
NUM_MERGES = 49152 - 256 - 2  # 48,894 merges used by CLIP
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOS_ID, PAD_ID = 49406, 49407, 0
MAX_LEN = 77


def fetch_bpe_gz(explicit: Path | None) -> bytes:
    """Return the bytes of `bpe_simple_vocab_16e6.txt.gz` (from `explicit` or a pip-downloaded wheel)."""
    if explicit is not None:
        data = explicit.read_bytes()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", OPEN_CLIP_WHEEL, "-d", tmp],
                check=True,
            )
            wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(BPE_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != BPE_SHA256:
        raise SystemExit(f"unexpected sha256 of {BPE_MEMBER}: {digest}")
    return data


def bytes_to_unicode() -> list[str]:
    """GPT-2 byte->symbol table, in vocabulary order (printable ranges first, then the rest from U+0100)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    order = list(printable)
    symbols = [chr(b) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            order.append(b)
            symbols.append(chr(256 + extra))
            extra += 1
    assert len(symbols) == 256 and len(set(symbols)) == 256
    return symbols


def build_vocab_and_merges(bpe_gz: bytes) -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.decompress(bpe_gz).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
    assert len(merges) == NUM_MERGES and all(len(m) == 2 for m in merges)
    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == 49408 and vocab[BOS] == BOS_ID and vocab[EOS] == EOS_ID and vocab["!"] == 0
    return vocab, merges


def build_backend_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]):
    """The tokenizers pipeline of docs/reference.md ("Tokenizer"; stock CLIP; no `!` added token)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
            byte_fallback=False,
            unk_token=EOS,
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.post_processor = processors.RobertaProcessing((EOS, EOS_ID), (BOS, BOS_ID), trim_offsets=False, add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(BOS, special=True, normalized=True), AddedToken(EOS, special=True, normalized=True)])
    return tok


SPECIAL_TOKENS_MAP = {
    "bos_token": {"content": BOS, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
    "eos_token": {"content": EOS, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
    "pad_token": "!",
    "unk_token": {"content": EOS, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
}


def hub_tokenizer_config() -> dict:
    return {
        "add_prefix_space": False,
        "bos_token": SPECIAL_TOKENS_MAP["bos_token"],
        "clean_up_tokenization_spaces": False,
        "do_lower_case": True,
        "eos_token": SPECIAL_TOKENS_MAP["eos_token"],
        "errors": "replace",
        "model_max_length": MAX_LEN,
        "pad_token": "!",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": SPECIAL_TOKENS_MAP["unk_token"],
    }


def write_json(path: Path, obj, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False, sort_keys=indent is not None)
        if indent is not None:
            f.write("\n")


def write_hub_tokenizer_dir(dest: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """The ITHQ hub tokenizer folder: vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)  # one line, id order, 961,143 bytes
    with open(dest / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for left, right in merges:
            f.write(f"{left} {right}\n")
    write_json(dest / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
    write_json(dest / "tokenizer_config.json", hub_tokenizer_config())


def load_tokenizer(tok_dir: Path):
    """transformers 5 CLIPTokenizer as diffusers loads it; asserts the ITHQ pad token."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(tok_dir))
    assert tok.pad_token == "!" and tok.pad_token_id == PAD_ID, (tok.pad_token, tok.pad_token_id)
    assert tok.model_max_length == MAX_LEN
    return tok
