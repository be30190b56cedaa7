"""The lexical view: TF-IDF of words and character n-grams, logistic regression over them.

Why a second view beside the sentence encoder: the encoder maps paraphrases together, which is
what generalises, but it also maps together texts whose wording decides the label in a
team's data ("exchange rate" against "exchange charge", "disposable card" against "virtual
card"). Word and character n-grams see that wording, and their mistakes are different ones.
The local model multiplies the two views' probabilities (a geometric mean, equal weights), so
a label wins when both find it likely, and the calibrator also sees how sure each view is and
whether they agree. Measured in ``docs/local_tier.md`` ("The lexical view").

Serving and saving need only the vocabularies, the inverse document frequencies and the
weights: the vectorisers are rebuilt from them with the same analysers, so a saved view
loads without unpickling anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax

from tiergate.classifier.linear import UNREACHABLE_BIAS, label_weights, silent_weights

DEFAULT_LEXICAL_C = 20.0
# Word unigrams and bigrams; character 2- to 5-grams inside word boundaries, seen at least twice.
_WORDS: dict[str, Any] = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1}
_CHARS: dict[str, Any] = {
    "analyzer": "char_wb",
    "ngram_range": (2, 5),
    "sublinear_tf": True,
    "min_df": 2,
}
# The weight of the lexical view in the geometric mean of the two views' probabilities.
LEXICAL_WEIGHT = 0.5
_FLOOR = 1e-12


@dataclass(eq=False)
class LexicalModel:
    """Vocabularies and weights of a fitted lexical view (plain arrays; see the module doc)."""

    word_terms: tuple[str, ...]
    word_idf: NDArray[np.float64]
    char_terms: tuple[str, ...]
    char_idf: NDArray[np.float64]
    weights: NDArray[np.float32]  # (word terms + char terms, labels)
    bias: NDArray[np.float64]  # (labels,)
    # The vectorisers rebuilt from the arrays, on first use.
    _built: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    def probabilities(self, texts: Sequence[str]) -> NDArray[np.float64]:
        logits = np.asarray(self._matrix(texts) @ self.weights, dtype=np.float64) + self.bias
        return np.asarray(softmax(logits, axis=1))

    def _matrix(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        if self._built is None:
            self._built = (
                _rebuild(_WORDS, self.word_terms, self.word_idf),
                _rebuild(_CHARS, self.char_terms, self.char_idf),
            )
        parts = [
            csr_matrix((len(texts), 0)) if vectoriser is None else vectoriser.transform(texts)
            for vectoriser in self._built
        ]
        return hstack(parts).tocsr()

    def with_unreachable_label(self) -> LexicalModel:
        """The same view with one more label, which it never predicts (until a refit)."""
        return LexicalModel(
            self.word_terms,
            self.word_idf,
            self.char_terms,
            self.char_idf,
            np.hstack([self.weights, np.zeros((self.weights.shape[0], 1), dtype=np.float32)]),
            np.append(self.bias, UNREACHABLE_BIAS),
        )

    def to_arrays(self) -> dict[str, NDArray[Any]]:
        """Plain arrays (terms as UTF-8 bytes and offsets: numpy's fixed-width strings would
        drop a trailing NUL and pad every term to the longest one)."""
        word_bytes, word_offsets = _pack(self.word_terms)
        char_bytes, char_offsets = _pack(self.char_terms)
        return {
            "word_bytes": word_bytes,
            "word_offsets": word_offsets,
            "word_idf": self.word_idf,
            "char_bytes": char_bytes,
            "char_offsets": char_offsets,
            "char_idf": self.char_idf,
            "weights": self.weights,
            "bias": self.bias,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]]) -> LexicalModel:
        """Read :meth:`to_arrays`' output back; inconsistent arrays raise ``ValueError``."""
        model = cls(
            word_terms=_unpack(arrays["word_bytes"], arrays["word_offsets"]),
            word_idf=np.asarray(arrays["word_idf"], dtype=np.float64),
            char_terms=_unpack(arrays["char_bytes"], arrays["char_offsets"]),
            char_idf=np.asarray(arrays["char_idf"], dtype=np.float64),
            weights=np.asarray(arrays["weights"], dtype=np.float32),
            bias=np.asarray(arrays["bias"], dtype=np.float64),
        )
        terms = len(model.word_terms) + len(model.char_terms)
        if (
            model.word_idf.shape != (len(model.word_terms),)
            or model.char_idf.shape != (len(model.char_terms),)
            or model.weights.shape != (terms, model.bias.shape[0])
        ):
            raise ValueError("the lexical view's arrays do not fit together")
        return model


def _pack(terms: Sequence[str]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    encoded = [term.encode("utf-8") for term in terms]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(item) for item in encoded])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def _unpack(data: NDArray[Any], offsets: NDArray[Any]) -> tuple[str, ...]:
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    ends = np.asarray(offsets, dtype=np.int64).tolist()
    return tuple(raw[start:end].decode("utf-8") for start, end in itertools.pairwise(ends))


def _rebuild(options: Mapping[str, Any], terms: tuple[str, ...], idf: NDArray[np.float64]) -> Any:
    """A fitted vectoriser with these terms and weights (None: no terms, no columns)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not terms:
        return None
    vectoriser = TfidfVectorizer(**options, vocabulary={term: i for i, term in enumerate(terms)})
    vectoriser.idf_ = idf
    return vectoriser


def fit_lexical(
    texts: Sequence[str], label_ids: NDArray[np.intp], n_labels: int, c: float = DEFAULT_LEXICAL_C
) -> LexicalModel:
    """Fit on all labels 0..n_labels-1; a label absent from this data gets a very low bias."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = TfidfVectorizer(**_WORDS)
    chars = TfidfVectorizer(**_CHARS)
    matrix = hstack([_fit_or_empty(words, texts), _fit_or_empty(chars, texts)]).tocsr()
    word_terms, word_idf = _vocabulary(words)
    char_terms, char_idf = _vocabulary(chars)
    features = matrix.shape[1]
    present = np.unique(label_ids)
    if present.size == 1 or features == 0:
        # Nothing to separate (one label, or no term seen twice): the view says nothing.
        weights, bias = silent_weights(features, n_labels, present)
    else:
        fitted = LogisticRegression(C=c, max_iter=300).fit(matrix, label_ids)
        weights, bias = label_weights(fitted, features, n_labels)
    return LexicalModel(
        word_terms, word_idf, char_terms, char_idf, weights.astype(np.float32), bias
    )


def _fit_or_empty(vectoriser: Any, texts: Sequence[str]) -> Any:
    from scipy.sparse import csr_matrix

    try:
        return vectoriser.fit_transform(texts)
    except ValueError:  # no term at all (e.g. every text a single character)
        vectoriser.vocabulary_ = {}
        vectoriser.idf_ = np.zeros(0)
        return csr_matrix((len(texts), 0))


def _vocabulary(vectoriser: Any) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    vocabulary: dict[str, int] = vectoriser.vocabulary_
    terms = [""] * len(vocabulary)
    for term, column in vocabulary.items():
        terms[column] = term
    idf = np.asarray(vectoriser.idf_, dtype=np.float64) if vocabulary else np.zeros(0)
    return tuple(terms), idf


def combine(
    linear: NDArray[np.float64], lexical: NDArray[np.float64], weight: float = LEXICAL_WEIGHT
) -> NDArray[np.float64]:
    """The two views' probabilities multiplied (weighted geometric mean), renormalised."""
    logs = (1 - weight) * np.log(linear + _FLOOR) + weight * np.log(lexical + _FLOOR)
    return np.asarray(softmax(logs, axis=1))
