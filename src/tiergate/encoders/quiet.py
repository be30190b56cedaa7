"""Silence the libraries' own progress bars and load reports; tiergate reports progress itself.

transformers 5 draws a "Loading weights" tqdm bar for every model it loads, and the ONNX
quantiser logs advice on the root logger; neither means anything to a tiergate user.
"""

from __future__ import annotations

import logging
import os


def quiet_libraries() -> None:
    """Turn off transformers/huggingface_hub progress bars and info logging (idempotent)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # the torch runtime is not installed: nothing to silence
        return
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
