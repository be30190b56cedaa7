"""Export a sentence-transformers model to an ONNX encoder directory (train time; needs torch).

Why the TorchScript exporter (``dynamo=False``): torch 2.13 still ships it, it exports MiniLM in
about 3 s and needs no further package, and its graph gives the same vectors as torch (max
absolute difference 2e-7 on BANKING77 texts). The dynamo exporter (the default in 2.13) gives
the same vectors too but needs ``onnxscript`` and took 11 s.

Int8 is ONNX Runtime's dynamic quantisation with per-channel weight scales: per-tensor scales
bent MiniLM's vectors visibly (cosine to float32 down to 0.90), per-channel ones keep them at a
mean cosine of 0.99, and the classifier is trained on the int8 vectors themselves. Where even
per-channel scales bend a model's vectors, its row in ``tiergate/data/encoders.yaml`` names the
nodes to keep in float32 (``int8_keep_float``; all-mpnet-base-v2: 0.87 to 0.987).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tiergate.encoders.onnx_encoder import (
    CONFIG_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    EncoderFilesError,
    OnnxEncoderConfig,
)

QUANTIZE_CHOICES = ("int8", "none")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(
    transformer: Any,
    directory: Path,
    *,
    source: str,
    quantize: str = "int8",
    max_seq_length: int = 128,
    finetuned: bool = False,
) -> Path:
    """Write ``transformer`` (a SentenceTransformer) to ``directory`` as an ONNX encoder."""
    import torch

    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}")
    backbone_module = transformer[0]
    _check_mean_pooling(transformer, source)
    hf_tokenizer = backbone_module.tokenizer
    backbone = backbone_module.auto_model
    was_training = backbone.training
    backbone.eval()
    uses_token_types = "token_type_ids" in hf_tokenizer.model_input_names
    names = _INPUTS if uses_token_types else _INPUTS[:2]
    sample = hf_tokenizer(["a short text", "and a longer one to pad"], padding=True)
    args = tuple(torch.tensor(sample[name]) for name in names)

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        float_path = Path(scratch) / "float32.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer warns about Python-level branches in attention it folds to constants;
            # they depend on the mask being given, which it always is here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                HiddenStates(backbone),
                args,
                str(float_path),
                dynamo=False,
                input_names=list(names),
                output_names=["hidden"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*names, "hidden")},
                opset_version=17,
            )
        target = directory / MODEL_FILE
        if quantize == "int8":
            _quantize(float_path, target, _keep_float(float_path, source))
        else:
            float_path.replace(target)
    backbone.train(was_training)
    hf_tokenizer.backend_tokenizer.save(str(directory / TOKENIZER_FILE))
    dimension = transformer.get_embedding_dimension()
    config = OnnxEncoderConfig(
        source=source,
        dimension=int(dimension),
        max_seq_length=int(max_seq_length),
        quantize=quantize,
        finetuned=finetuned,
    )
    (directory / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return directory


def _keep_float(model: Path, source: str) -> list[str]:
    """Names of the graph's nodes that the source's encoders.yaml row keeps in float32."""
    from tiergate.encoders.packaged import catalogue

    found = catalogue().find(source)
    patterns = found[1].int8_keep_float if found is not None else ()
    if not patterns:
        return []
    import onnx

    names = [node.name for node in onnx.load(str(model), load_external_data=False).graph.node]
    kept = []
    for pattern in patterns:
        matches = [name for name in names if pattern in name]
        if not matches:
            raise EncoderFilesError(
                f"{source}: int8_keep_float names {pattern!r}, which no node of the exported "
                "graph matches (tiergate/data/encoders.yaml)"
            )
        kept += matches
    return kept


def _quantize(source: Path, target: Path, keep_float: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source),
                str(target),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=keep_float,
            )
    finally:
        root.setLevel(level)


def _check_mean_pooling(transformer: Any, source: str) -> None:
    """The ONNX encoder mean-pools; refuse models that pool otherwise rather than differ."""
    pooling = next((m for m in transformer if type(m).__name__ == "Pooling"), None)
    if pooling is None:
        raise EncoderFilesError(f"{source}: no Pooling module; use `runtime: torch` for it")
    config = pooling.get_config_dict()
    # sentence-transformers >= 5 names one mode; older configs set one boolean per mode.
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
        mode = modes[0].removeprefix("pooling_mode_") if len(modes) == 1 else "+".join(modes)
    if mode not in ("mean", "mean_tokens"):
        raise EncoderFilesError(
            f"{source}: pools by {mode or 'nothing'}; the ONNX runtime supports mean pooling "
            "only (use `runtime: torch` for this model)"
        )
