"""Train the tiny Qwen-style tokenizer shipped in ``vlrl/assets/tiny_tokenizer/``.

Offline tests need a tokenizer that behaves like Qwen2-VL's (byte-level BPE, the same
special tokens, the same chat template) but is small enough to commit and to give a
model with a few-thousand-row embedding. It is trained on the kind of text the project
actually feeds a model - matplotlib scripts, instructions, spy-game clues and votes - so
sequence lengths in tests stay realistic instead of exploding into single bytes.

The output is a pure function of the repository contents: the corpus order is fixed
and the BPE trainer breaks ties deterministically, so re-running this script rewrites
byte-identical files (``--check`` verifies that without touching the shipped copy).

Usage:  python scripts/build_tiny_tokenizer.py [--out DIR] [--vocab-size N] [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "vlrl" / "assets" / "tiny_tokenizer"
VOCAB_SIZE = 3000  # BPE vocabulary before the special tokens are appended

# Qwen2-VL's added tokens, in Qwen's order. The grounding ones (object_ref, box, quad)
# are unused by the project but cost nothing and keep token handling faithful: code that
# strips or skips specials meets the same set it meets on a real checkpoint.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2-VL-Instruct's chat template, verbatim in behaviour: a default system turn when
# none is given, images/videos rendered as <|vision_start|><|image_pad|><|vision_end|>
# (the processor later expands the single pad into one token per merged patch).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenisation regex; matching it means chunking (and so token counts) of
# code and prose resembles the real tokenizer's.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

SENTENCES = [
    "You are an expert Python developer who specializes in writing matplotlib code.",
    "Reproduce the chart in the image as closely as possible using matplotlib.",
    "Write Python code that draws exactly this figure, then start with ```python.",
    "The chart is a grouped bar chart comparing sales across five regions.",
    "Look at the line plot and describe the trend of each series.",
    "Please generate the code for the scatter plot, including the colours and the legend.",
    "The heatmap uses the viridis colormap and shows monthly temperatures.",
    "Make sure the title, the axis labels and the tick labels match the original.",
    "The pie chart has four slices; the largest one is exploded slightly.",
    "Use plt.subplots with two rows and one column to reproduce the layout.",
    "Here is the code that reproduces the chart:",
    "The x-axis shows the year and the y-axis shows revenue in millions of dollars.",
    "Each bar is annotated with its value on top.",
    "The legend is placed in the upper left corner with a title.",
    "Compare the generated chart with the reference and list the differences.",
    "The generated chart uses the wrong colour for the second series.",
    "Score: 85",
    "The data values are correct but the layout differs: the reference has a 2x2 grid.",
    "Rate how similar the two charts are on a scale from 0 to 100.",
    "The histogram has twenty bins and a dashed vertical line at the mean.",
    "You are playing a game called Who is the Spy with four other players.",
    "Each player sees an image; one player, the spy, sees a slightly different image.",
    "Give one clue about your image without revealing it directly.",
    "The red cube is left of the sphere.",
    "There is a small green cylinder behind the large metal ball.",
    "The blue sphere is the biggest object in the scene.",
    "Two yellow cubes are next to each other near the front.",
    "The purple cylinder is made of rubber and sits on the right.",
    "The chart shows a rising line in orange.",
    "The tallest bar is the third one from the left.",
    "I think player 3 is the spy because their clue mentioned a brown cube.",
    "Player 2 described a feature that none of us can see.",
    "My vote is \\boxed{3}",
    "\\boxed{2}",
    "\\boxed{N/A}",
    "\\boxed{The gray sphere is in front of the cyan cube.}",
    "No valid clue provided.",
    "Vote for the player you believe is the spy, or answer N/A if you are unsure.",
    "First think about the clues step by step, then give your answer in \\boxed{}.",
    "<answer>4</answer>",
    "The previous clues were: a red cube, a shiny sphere and a small cylinder.",
    "As the spy, describe something the other players probably share.",
    "As a civilian, mention a specific feature that has not been said yet.",
    "What is the value of the blue bar in 2021?",
    "The answer is 42.",
    "Describe this image.",
    "The image shows a line chart with three series and a shared legend.",
    "Sure! Here is the matplotlib code:",
    "The radar chart compares five attributes of two products.",
    "The box plot shows the distribution of scores for each class.",
    "The error bars represent one standard deviation.",
    "Hello! How can I help you today?",
]


def corpus() -> list[str]:
    """Training texts in a fixed order (order feeds the trainer, so it must not vary)."""
    from vlrl.datasets.synth import generate_specs

    texts = [spec.to_code() for spec in generate_specs(300, seed=0)]
    texts += [p.read_text() for p in sorted((ROOT / "data" / "chartmimic_samples").glob("*.py"))]
    texts += SENTENCES
    # Answers as a model would write them: a fenced block after a sentence of prose.
    texts += [f"Here is the code:\n```python\n{t}```" for t in texts[:50]]
    # Chat turns as the template lays them out (minus the special tokens, which are added
    # whole after training), so role names become single tokens as in Qwen's vocabulary.
    texts += ["system\nYou are a helpful assistant.\n"] * 5
    texts += [f"user\n{s}\nassistant\n{r}\n" for s, r in zip(SENTENCES, reversed(SENTENCES))]
    return texts


def train(vocab_size: int = VOCAB_SIZE):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    # Same pipeline as transformers' Qwen2Tokenizer builds, so loading these files through
    # that class (as real checkpoints are loaded) gives exactly the trained behaviour.
    tok = Tokenizer(
        models.BPE(
            unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        # All 256 byte symbols up front: any text stays encodable (and round-trips) even
        # when a byte never occurred in the corpus.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    # Appended after training, as in Qwen, so special ids sit at the end of the vocabulary.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def save(tok, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        # Rollouts batch-generate; right padding would put pads between prompt and answer.
        padding_side="left",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
        split_special_tokens=False,
    )
    hf.save_pretrained(str(out))
    # Name the real class so AutoTokenizer builds the same tokenizer type as a Qwen
    # checkpoint would.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    # Some readers look for the template as its own file (processors save it that way).
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    # special_tokens_map.json is no longer written by transformers 5; older readers want it.
    smap = {
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>",)],
    }
    (out / "special_tokens_map.json").write_text(json.dumps(smap, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    ap.add_argument("--check", action="store_true", help="rebuild into a temp dir and fail if it differs from --out")
    args = ap.parse_args(argv)

    tok = train(args.vocab_size)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            save(tok, Path(tmp))
            names = sorted(p.name for p in Path(tmp).iterdir())
            _, mismatch, errors = filecmp.cmpfiles(tmp, args.out, names, shallow=False)
            if mismatch or errors:
                print(f"differs from {args.out}: {mismatch + errors}", file=sys.stderr)
                return 1
        print(f"{args.out} is up to date")
        return 0
    save(tok, args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({tok.get_vocab_size()} tokens, {size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
