"""`nanokws data`: inspect a dataset folder, synthesize one, or fetch the real one."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import SEED, float_in, int_in
from ..errors import NanokwsError
from . import fetch as fetch_mod
from . import synth as synth_mod
from .labels import DEFAULT_KEYWORDS

EPILOG = """\
examples:
  nanokws data --data /work/shared/data/speech_commands          # counts per class x split, bad files
  nanokws data --data runs/synth --keywords yes no up --split-mode speaker
  nanokws data synth --out runs/synth                            # ~10 s on 2 cores
  nanokws data synth --out runs/small --words yes no --per-word 30 --seed 3
  nanokws data fetch --out data/speech_commands                  # ~2.4 GB: OUT/train and OUT/test

Classes are _silence_, _unknown_ and the keywords. Per split, _unknown_ and _silence_ get about
as many examples as an average keyword (--unknown-share / --silence-share scale that); silence
is cut from _background_noise_/ when no _silence_/ folder has enough. Splits follow
validation_list.txt / testing_list.txt when present, else the dataset's speaker-hash rule.
"""


def _add_dataset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keywords",
        nargs="+",
        default=DEFAULT_KEYWORDS,
        metavar="WORD",
        help="keyword classes (default: %(default)s)",
    )
    p.add_argument(
        "--unknown-share",
        type=float_in(0.0, 100.0),
        default=1.0,
        help="unknown examples per split as a multiple of the mean keyword count (default: 1.0)",
    )
    p.add_argument(
        "--silence-share",
        type=float_in(0.0, 100.0),
        default=1.0,
        help="silence examples per split as a multiple of the mean keyword count (default: 1.0)",
    )
    p.add_argument(
        "--split-mode",
        choices=["auto", "hash", "lists", "speaker"],
        default="auto",
        help="auto: list files if present, else the speaker-hash rule; speaker: a second "
        "speaker hash spreading speakers 80/10/10 (default: auto)",
    )
    p.add_argument("--seed", type=SEED, default=0, help="seed for balancing and silence cuts (default: 0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument(
        "--data", type=Path, metavar="DIR", help="dataset folder in the Speech Commands layout to summarise"
    )
    _add_dataset_options(parser)
    sub = parser.add_subparsers(dest="action", metavar="ACTION")

    s = sub.add_parser(
        "synth",
        help="synthesize a small dataset offline with espeak-ng",
        description=synth_mod.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create")
    s.add_argument(
        "--words",
        nargs="+",
        default=DEFAULT_KEYWORDS,
        metavar="WORD",
        help="keywords to speak (default: %(default)s)",
    )
    s.add_argument(
        "--per-word",
        type=int_in(1, 1_000_000),
        default=synth_mod.DEFAULT_PER_WORD,
        help="clips per keyword (default: %(default)s)",
    )
    s.add_argument(
        "--unknown-words",
        nargs="*",
        default=synth_mod.DEFAULT_UNKNOWN_WORDS,
        metavar="WORD",
        help="other words, for the unknown class (default: %(default)s)",
    )
    s.add_argument(
        "--unknown-per-word",
        type=int_in(0, 1_000_000),
        default=synth_mod.DEFAULT_UNKNOWN_PER_WORD,
        help="clips per unknown word (default: %(default)s)",
    )
    s.add_argument(
        "--speakers",
        type=int_in(1, 10_000),
        default=synth_mod.DEFAULT_SPEAKERS,
        help="distinct synthetic voices (default: %(default)s)",
    )
    s.add_argument(
        "--noise-files",
        type=int_in(0, 1000),
        default=synth_mod.DEFAULT_NOISE_FILES,
        help=f"{synth_mod.NOISE_FILE_SECONDS} s recordings in _background_noise_/ (default: %(default)s)",
    )
    s.add_argument("--seed", type=SEED, default=0, help="same seed, same bytes (default: 0)")
    s.add_argument("--jobs", type=int_in(1, 256), default=2, help="worker processes (default: 2)")
    s.add_argument("--force", action="store_true", help="replace OUT if it exists")

    f = sub.add_parser(
        "fetch",
        help="download the real Speech Commands v0.02 (train + official test set)",
        description=fetch_mod.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument(
        "--out",
        type=Path,
        default=Path("data/speech_commands"),
        metavar="DIR",
        help="destination; the archives land in DIR/train and DIR/test (default: %(default)s)",
    )
    f.add_argument("--url", default=fetch_mod.DEFAULT_URL, help="training archive (default: %(default)s)")
    f.add_argument(
        "--test-url",
        default=fetch_mod.DEFAULT_TEST_URL,
        help="official test-set archive; '' to skip (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    if args.action in ("synth", "fetch") and args.out.exists() and not args.out.is_dir():
        raise NanokwsError(f"--out {args.out}: exists and is not a folder")
    if args.action in ("synth", "fetch"):
        from ..errors import check_output_dir

        check_output_dir(args.out.absolute().parent, "--out")  # where OUT goes must be writable, now
    if args.action == "synth":
        out = synth_mod.synthesize(
            args.out,
            args.words,
            args.per_word,
            args.unknown_words,
            args.unknown_per_word,
            args.speakers,
            args.noise_files,
            args.seed,
            args.jobs,
            args.force,
        )
        print(f"wrote {out}")
        return 0
    if args.action == "fetch":
        for part, path in fetch_mod.fetch(args.out, args.url, args.test_url or None).items():
            counts = fetch_mod.check_layout(path, part == "train")
            print(f"{part}: {path} ({sum(counts.values())} WAVs in {len(counts)} folders)")
        return 0
    if args.data is None:
        raise NanokwsError("give --data DIR to summarise a dataset, or an action: synth, fetch (see --help)")
    from .dataset import load_dataset

    dataset = load_dataset(
        args.data,
        args.keywords,
        unknown_share=args.unknown_share,
        silence_share=args.silence_share,
        seed=args.seed,
        split_mode=args.split_mode,
        progress=True,
    )
    print(dataset.summary())
    return 0
