"""The text-tiny world's tokenizer: a word-level ``tokenizers`` model over the world's words
(every word one token, punctuation split off), wrapped as a ``PreTrainedTokenizerFast`` and
saved as a standard ``tokenizer.json``.

Word-level rather than BPE because ``tokenizers``' BPE trainer breaks ties between equally
frequent pairs in hash-map order: trained three times on the same text it gave three
different vocabularies (measured), which would break bit-for-bit reproducibility of the
world from its seed. The ids here are the sorted word list, so the same text always gives
the same file. (Any tokenizer a user's own folder brings, BPE included, is read as is.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIALS = [PAD, EOS, UNK]
_WORD = re.compile(r"\w+|[^\w\s]+")
"""What the Whitespace pre-tokenizer splits into (its documented pattern)."""


def train_word_level(texts: Iterable[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = sorted({w for t in texts for w in _WORD.findall(t)} - set(SPECIALS))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK)
