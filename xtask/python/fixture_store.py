"""A collection of named tensors with descriptions, written as one safetensors file (fixtures/README.md).

Every tensor is stored contiguous, row-major, as f32 (floating inputs) or i64 (integers and bools).
The header metadata key `fixture` holds a JSON document: versions, settings and one line per tensor.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def versions() -> dict:
    import diffusers
    import safetensors
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }


class FixtureStore:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.descriptions: dict[str, str] = {}

    def add(self, name: str, value, description: str) -> torch.Tensor:
        if name in self.tensors:
            raise KeyError(f"duplicate fixture tensor {name}")
        t = torch.as_tensor(value).detach().cpu()
        if t.is_floating_point():
            t = t.to(torch.float32)
        elif t.dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            t = t.to(torch.int64)
        else:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        t = t.clone(memory_format=torch.contiguous_format)
        self.tensors[name] = t
        self.descriptions[name] = description
        return t

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def table(self) -> list[dict]:
        return [
            {
                "name": n,
                "dtype": "f32" if t.dtype == torch.float32 else "i64",
                "shape": list(t.shape),
                "description": self.descriptions[n],
            }
            for n, t in self.tensors.items()
        ]

    def write(self, path: Path, meta: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = dict(meta)
        doc["tensors"] = self.table()
        save_file(self.tensors, str(path), metadata={"fixture": json.dumps(doc, ensure_ascii=False, sort_keys=False)})
