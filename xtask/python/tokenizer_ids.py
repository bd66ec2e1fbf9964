"""`fixtures/reference/tokenizer_ids.json`: expected token ids of varied prompts under four conventions."""

from __future__ import annotations

import tokenizer_files as tf
from reference_tiny import LONG_PROMPT

PROMPTS = [
    ("plain", "teddy bear playing in the pool"),
    ("plain_punct", "A teddy bear playing in the pool."),
    ("bang_alone", "!"),
    ("bang_words", "hello! wow!!! great"),
    ("bang_teddy", "wow!!! a teddy bear!"),
    ("parens", "a (teddy) bear [in] {the} <pool>"),
    ("digits", "1234567890, 3.14159, 42nd, $19.99!"),
    ("contractions", "It's what they'd've said: we're done, you'll see, I'm sure."),
    ("accents", "Café naïve résumé jalapeño Ångström"),
    ("combining_accent", "Cafe\u0301 and cafe\u0301s"),
    ("cjk_korean", "東京タワーの夜景 and 서울의 밤"),
    ("emoji_zwj", "a 👩‍🚀 astronaut 👍🏽 family 👨‍👩‍👧 ©®™½∑∞"),
    ("whitespace", "  Multiple   spaces\tand\nnewlines   here  "),
    ("tab_newline_only", "\t\n"),
    ("empty", ""),
    ("mixed_case", "MiXeD CaSe Snake_Case kebab-case CamelCase"),
    ("url_email", "visit https://example.com/path?q=1&x=y or mail john.doe@example.org"),
    ("curly_fullwidth_ligature", "“quoted” ‘single’ ＦＵＬＬ ｗｉｄｔｈ ﬁne &amp; done"),
    ("special_tokens_text", "<|startoftext|>hello<|endoftext|>"),
    ("repeated_char", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ("fits_77_exactly", " ".join(["cat"] * 75)),
    ("overflows_by_1", " ".join(["cat"] * 76)),
    ("long", LONG_PROMPT),
]


def keep_eos_row(ids: list[int]) -> list[int]:
    """microsoft/VQ-Diffusion clip.tokenize: over 77 -> first 77 with the last replaced by EOS; pad with 0."""
    row = list(ids)
    if len(row) > tf.MAX_LEN:
        last = row[-1]
        row = row[: tf.MAX_LEN]
        row[-1] = last
    return row + [tf.PAD_ID] * (tf.MAX_LEN - len(row))


def build(hub_tok, stock_tok, backend_with_bang, raw_tok) -> dict:
    entries = []
    for name, text in PROMPTS:
        ids = hub_tok(text).input_ids
        assert raw_tok(text).input_ids == ids, name
        assert backend_with_bang.encode(text).ids == ids, name
        stock = stock_tok(text, padding="max_length", max_length=tf.MAX_LEN, truncation=True).input_ids
        padded = hub_tok(text, padding="max_length", max_length=tf.MAX_LEN).input_ids
        entries.append(
            {
                "name": name,
                "text": text,
                "ids": ids,
                "ids_stock_pad": stock,
                "pipeline_row": padded[: tf.MAX_LEN],
                "keep_eos_row": keep_eos_row(ids),
            }
        )
    anchors = {
        "A teddy bear playing in the pool.": [49406, 320, 11798, 4298, 1629, 530, 518, 2831, 269, 49407],
        "teddy bear playing in the pool": [49406, 11798, 4298, 1629, 530, 518, 2831, 49407],
        "  Multiple   spaces\tand\nnewlines   here  ": [49406, 6470, 9006, 537, 1218, 3418, 763, 49407],
        "": [49406, 49407],
        "hello!": [49406, 3306, 0, 49407],
        "wow!!! great": [49406, 2781, 0, 0, 0, 830, 49407],
        "wow!!! a teddy bear!": [49406, 2781, 0, 0, 0, 320, 11798, 4298, 0, 49407],
    }
    for text, want in anchors.items():
        assert hub_tok(text).input_ids == want, (text, hub_tok(text).input_ids)
    assert stock_tok("wow!!! a teddy bear!").input_ids == [49406, 2781, 995, 320, 11798, 4298, 256, 49407]
    assert hub_tok("", padding="max_length", max_length=77, truncation=True).input_ids == [49406, 49407] + [0] * 75
    return {
        "description": (
            "Expected CLIP token ids. ids: transformers 5 CLIPTokenizer from fixtures/tiny/hub/tokenizer (pad '!' = 0), "
            "no padding/truncation (identical for the raw tokenizer.json and the tokenizers pipeline of "
            "docs/reference.md plus the added special token '!'). ids_stock_pad: stock tokenizer (pad "
            "<|endoftext|>, '!' not special) with padding='max_length', max_length=77, truncation=True. pipeline_row: "
            "what VQDiffusionPipeline._encode_prompt feeds CLIP: padding='max_length', max_length=77, no truncation, "
            "then the first 77 columns (an over-long prompt loses its EOS). keep_eos_row: microsoft/VQ-Diffusion's "
            "clip.tokenize overflow rule applied to `ids`: first 76 tokens then EOS, padded with 0 (the original's "
            "ftfy/HTML cleaning and BPE-'!' are NOT applied)."
        ),
        "max_length": tf.MAX_LEN,
        "bos_id": tf.BOS_ID,
        "eos_id": tf.EOS_ID,
        "pad_id": tf.PAD_ID,
        "prompts": entries,
    }
