"""`nanokws ship`: install a trained model as the firmware's default, with a model card.

One folder gets everything the firmware and a reader need, all from the same .tflite bytes:
model.tflite, the TFLite Micro array (model_data.cc/.h), model_config.h, the compiled C
(nk_model.c/.h + compile_report.json), and model_card.md/.json with a confusion matrix PNG.
Accuracy is measured here on held-out clips through our own C frontend, not copied from training.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .argtypes import float_in
from .atomic import atomic_dir
from .cli import invoked_command
from .errors import NanokwsError
from .export.model_config import input_frames
from .modelmeta import model_hash, model_sha256
from .paths import FIRMWARE_MODEL_DIR, SHARED_SPEECH_COMMANDS
from .versions import tool_versions

# Budget the shipped model is held to (issue 5); the card says whether each is met.
# The 25 KB size budget is checked twice: on the int8 weights the board flashes (the compiled C's) and
# on the .tflite file itself (the TFLite Micro array), which is larger by its container (tensor
# table, per-channel scales and int64 zero points).
TARGETS = {"int8_accuracy": 0.92, "int8_weights_bytes": 25 * 1024, "int8_model_bytes": 25 * 1024,
           "arena_bytes": 16 * 1024, "float_int8_gap": 0.005}
# The robustness section's conditions (issue #14 asks for 10 dB SNR and 30 dB quieter within 5 points).
ROBUSTNESS_SNR_DB = (20.0, 10.0, 5.0, 0.0)
ROBUSTNESS_QUIETER_DB = (20.0, 30.0)
# Files this command writes; those it could not write this time are removed so none goes stale.
GENERATED = ("model.tflite", "model_data.cc", "model_data.h", "model_config.h", "nk_model.c", "nk_model.h",
             "compile_report.json", "model_card.md", "model_card.json", "confusion.png", "robustness.png",
             "det.png", "verify.json")
# Where ship runs `nanokws verify` (every tensor of the compiled C against TFLite Micro): ASan always,
# and the QEMU Cortex-M4 build (the DSP kernels) when arm-none-eabi-gcc and qemu-system-arm are found.
VERIFY_TARGETS = ("asan", "qemu")

EPILOG = """\
examples:
  nanokws ship --model runs/m16/model.tflite
  nanokws ship --model runs/m16/model.tflite --data ../shared/data/speech_commands --out firmware/model
  nanokws ship --model runs/tiny/model.tflite --data runs/synth --split test --out runs/tiny/ship

Evaluates the int8 model (LiteRT, and TFLite Micro for agreement) on --split of every --data folder,
through the device's C frontend; if model.keras sits beside the .tflite, the float model too, on the
same features. Default data: the shared real clips (../shared/data/speech_commands), split "test"
(the official hash rule: speakers never used in training). Then exports the TFLite Micro array and
model_config.h, compiles the model to C with a static arena, and writes model_card.md/.json
(params, MACs, sizes, arenas, float and int8 accuracy, data, the commands that reproduce it) and
confusion.png. The compiled C must equal TFLite Micro: its scores on every evaluated clip, and
`nanokws verify` (every intermediate tensor, its default number of inputs: edge cases, held-out
features from --data, random) on ASan and, when arm-none-eabi-gcc and qemu-system-arm are found, on
QEMU (the Cortex-M4 build with the DSP kernels); verify.json beside the card records the targets,
inputs, tensors and TFLite Micro version, and a model that differs is not shipped. To record a
newer `nanokws verify --json` of the installed model (same model) in its folder and card:
  nanokws ship --refresh-verify firmware/model/verify.json --out firmware/model
Files are replaced atomically. --command records how the model was trained; default:
the "command" of metrics.json beside the model.

Speed: the card's "performance" section is `nanokws bench`'s: QEMU instructions per inference, the
Nano 33 BLE lower bound at 64 MHz (1 instruction/cycle), the frontend's instructions per hop and the
live-mode budget. By default ship runs the bench itself, built as the board builds (-O2
-mfloat-abi=soft; needs arm-none-eabi-gcc and qemu-system-arm; --no-bench skips it); --bench JSON
takes a `nanokws bench --json` file of the same model instead. To refresh only that section of an
installed card, keeping every other number:
  nanokws bench --model firmware/model/model.tflite --float-abi soft --json docs/bench/model_O2_soft.json
  nanokws ship --refresh-bench docs/bench/model_O2_soft.json --out firmware/model
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", type=Path,
                        help="full-int8 .tflite written by `nanokws train` (required unless --refresh-bench)")
    parser.add_argument("--data", action="append", default=None, metavar="DIR",
                        help="held-out Speech-Commands-layout folder; repeatable "
                        f"(default: {SHARED_SPEECH_COMMANDS})")
    parser.add_argument("--split", default="test", choices=["test", "validation", "all"],
                        help="which clips of --data to evaluate on (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=FIRMWARE_MODEL_DIR, help="folder to install into "
                        "(default: firmware/model)")
    parser.add_argument("--command", dest="train_command", default=None, metavar="TEXT",
                        help="the training command to record in the card (default: from metrics.json)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile the model to C (default: compile it and check its scores "
                             "against TFLite Micro's on every clip)")
    parser.add_argument("--bench", type=Path, default=None, metavar="JSON",
                        help="the card's speed section from this `nanokws bench --json` file (same model) "
                        "instead of running the bench")
    parser.add_argument("--no-bench", action="store_true", help="no speed section (do not run the bench)")
    parser.add_argument("--recognizer", type=Path, default=None, metavar="JSON",
                        help="recognizer.json (`nanokws calibrate`): the thresholds, smoothing, suppression "
                        "and release the firmware starts with, shown in the card (default: the library's)")
    parser.add_argument("--stream", type=Path, default=None, metavar="DIR",
                        help="a stream built by `nanokws stream build` (held-out speakers): the card gets a "
                        "streaming-detection section (misses, false accepts per hour by kind, repeats) and "
                        "det.png, scored through the shipped firmware path with its start-up settings")
    parser.add_argument("--snr", type=float_in(-30.0, 100.0), nargs="*", default=list(ROBUSTNESS_SNR_DB),
                        metavar="DB", help="robustness section: also evaluate with background noise at these "
                        "SNRs (`nanokws eval --snr`; default: %(default)s; none: --snr with no value)")
    parser.add_argument("--quieter-db", type=float_in(0.0, 90.0), nargs="*",
                        default=list(ROBUSTNESS_QUIETER_DB), metavar="DB",
                        help="robustness section: also evaluate the clips this many dB quieter (default: "
                        "%(default)s; none: --quieter-db with no value)")
    parser.add_argument("--refresh-bench", type=Path, default=None, metavar="JSON",
                        help="only replace the speed section of the card in --out with this bench JSON "
                        "(same model); every other number stays as it is")
    parser.add_argument("--refresh-verify", type=Path, default=None, metavar="JSON",
                        help="only replace verify.json and the card's bit-exactness line in --out with this "
                        "`nanokws verify --json` record (same model, every target equal)")


def run(args: argparse.Namespace) -> int:
    if args.refresh_bench is not None:
        card = refresh_bench(args.out, _read_json(args.refresh_bench))
        perf = card["performance"]
        print(f"{args.out}/model_card.{{json,md}}: speed section from {args.refresh_bench}: "
              f"{perf['instructions_per_inference']} instructions per inference, >= "
              f"{perf['board']['inference_ms_lower_bound']} ms at 64 MHz (lower bound)")
        return 0
    if args.refresh_verify is not None:
        card = refresh_verify(args.out, _read_json(args.refresh_verify))
        print(f"{args.out}/verify.json, model_card.{{json,md}}: {_verify_summary(card['verify'])}")
        return 0
    if args.model is None:
        raise NanokwsError("--model is required (unless --refresh-bench or --refresh-verify)")
    data = args.data or [str(SHARED_SPEECH_COMMANDS)]
    ship_command = invoked_command("ship")
    bench: bool | dict[str, Any] = False if args.no_bench or args.no_compile else True
    has_qemu = bool(shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"))
    if args.bench is not None:
        bench = _read_json(args.bench)
    elif bench and not has_qemu:
        print("note: arm-none-eabi-gcc / qemu-system-arm not found: the card gets no speed section "
              "(add it later: `nanokws bench --json`, then `nanokws ship --refresh-bench`)", file=sys.stderr)
        bench = False
    verify_targets = VERIFY_TARGETS
    if not args.no_compile and not has_qemu:
        print("note: arm-none-eabi-gcc / qemu-system-arm not found: verify.json covers ASan only (add QEMU "
              "later: `nanokws verify --target asan --target qemu --json J`, then `nanokws ship "
              "--refresh-verify J`)", file=sys.stderr)
        verify_targets = ("asan",)
    card = ship_model(args.model, data, args.out, split=args.split, train_command=args.train_command,
                      ship_command=ship_command, compile_c=not args.no_compile, bench=bench,
                      snrs=args.snr, quieter_db=args.quieter_db, recognizer=args.recognizer,
                      stream=args.stream, verify_targets=verify_targets)
    acc, size = card["accuracy"], card["size"]
    flt = f", float {acc['float']:.2%}" if acc["float"] is not None else ""
    print(f"int8 {acc['int8']:.2%}{flt} on {acc['n']} held-out clips; "
          f"int8 model {size['int8_model_bytes']} B; "
          f"model RAM {size['model_ram_bytes']} B{' (streaming form)' if size['streaming'] else ''}; "
          f"full-window arena {size['arena_compiled_bytes']} B compiled / {size['arena_tflm_bytes']} B TFLM")
    if card.get("verify"):
        print(_verify_summary(card["verify"]))
    print(f"wrote {args.out}/{{{','.join(card['files'])}}}")
    return 0


def _float_predictions(keras_path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    from .window import pad_to_window

    model = keras.models.load_model(keras_path, compile=False)
    x = pad_to_window(x, int(model.input_shape[1]))  # clips centred in a longer window (window.py)
    return np.argmax(model.predict(x.astype(np.float32)[..., None], batch_size=256, verbose=0), axis=1)


def _param_count(keras_path: Path) -> int | None:
    """Keras' count: trainable weights plus BatchNormalization statistics (not deployed)."""
    if not keras_path.is_file():
        return None
    import keras

    return int(keras.models.load_model(keras_path, compile=False).count_params())


def deployed_params(tflite: bytes) -> int:
    """Parameters the int8 model deploys: the constant weight and bias elements its convolutions and
    fully connected layers read (BatchNormalization is folded into them at conversion)."""
    from .compiler.tflite_reader import read_graph

    g = read_graph(tflite)
    consts = {i for op in g.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
              for i in op.inputs[1:] if i >= 0 and g.tensors[i].data is not None}
    return sum(int(g.tensors[i].size) for i in consts)


def _compiled_c_scores(model_dir: Path, streaming: bool, x: np.ndarray, progress: Any) -> np.ndarray:
    """The compiled C's int8 scores for every clip in `x`, built for the host from `model_dir`, along
    the path the firmware takes: with a streaming form reset + a window of frame pushes per clip (as
    the firmware's clip mode: the clip's 49, centred in a longer window with window.py's padding),
    else nk_model_invoke on the whole window."""
    import tempfile

    from .cbuild import build_programs
    from .compiler.runner import ModelRunner
    from .compiler.stream_runner import StreamRunner
    from .window import pad_to_input, pad_to_window

    name = "stream_runner" if streaming else "model_runner"
    frame = int(x.shape[-1])  # features [n, 49, 40]: one frontend frame per row
    with tempfile.TemporaryDirectory(prefix="nanokws-ship-") as tmp:
        program = build_programs("host", [name], model_dir, out_dir=tmp)[name]
        rows = []
        if streaming:
            with StreamRunner(program, "host") as sr:
                for clip in x:
                    sr.reset()
                    window = pad_to_window(np.asarray(clip, np.int8).reshape(-1, frame), sr.window_frames)
                    scores = sr.push(window).scores
                    if len(scores) != 1:
                        raise NanokwsError(f"the streaming form gave {len(scores)} inferences for one clip")
                    rows.append(scores[0].scores)
                    progress(1)
        else:
            with ModelRunner(program, "host") as mr:
                for clip in x:
                    clip = np.asarray(clip, np.int8).reshape(-1, frame)
                    rows.append(mr.infer(pad_to_input(clip, [mr.input_len])).output)
                    progress(1)
    return np.stack(rows)


def _verify(tflite: bytes, targets: Sequence[str], features: np.ndarray, verbose: bool) -> dict[str, Any]:
    """`nanokws verify` of the model on `targets` (built in a temporary folder), its real inputs drawn
    from the held-out `features`; the verify.json record. Raises unless every tensor matches."""
    import tempfile

    from .compiler.verify import report_lines, verify

    with tempfile.TemporaryDirectory(prefix="nanokws-ship-verify-") as tmp:
        res = verify(tflite, list(targets), build_dir=Path(tmp), source="model.tflite", progress=verbose,
                     features=features)
    if not res.ok:
        lines = [line.strip() for line in report_lines(res)[1:]]
        detail = "; ".join(line for line in lines if "MISMATCH" in line or line.startswith("first:"))
        raise NanokwsError(f"the compiled C differs from TFLite Micro (nanokws verify): {detail}; "
                           "not shipping (report it: the compiler must be exact)")
    how = " ".join(f"--target {t}" for t in targets)
    return {**res.as_dict(),
            "command": f"nanokws ship (nanokws verify {how}; real inputs: the evaluated held-out features)"}


def verify_section(doc: dict[str, Any]) -> dict[str, Any]:
    """The card's bit-exactness entry from a verify.json record."""
    return {"file": "verify.json", "ok": bool(doc.get("ok")), "targets": list(doc.get("targets") or []),
            "n": doc.get("n"), "inputs": doc.get("inputs"),
            "tensors_per_input": len(doc.get("tensors_compared") or []),
            "streaming_form": bool(doc.get("streaming_form_compared")),
            "tflm_version": doc.get("tflm_version")}


# How the card names verify's targets.
VERIFY_TARGET_WORDS = {"host": "the host build", "asan": "ASan/UBSan (host)",
                       "qemu": "QEMU (Cortex-M4, DSP kernels)"}


def _verify_summary(v: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in (v.get("inputs") or {}).items())
    stream = " and the streaming form's scores" if v.get("streaming_form") else ""
    where = " and ".join(VERIFY_TARGET_WORDS.get(t, t) for t in v["targets"])
    return (f"every tensor of the compiled C ({v['tensors_per_input']} layer outputs{stream}) equal to "
            f"TFLite Micro {v['tflm_version']}'s on {v['n']} inputs ({kinds}) on {where}")


def _verify_md(v: dict[str, Any] | None) -> list[str]:
    return [f"Bit-exact: {_verify_summary(v)}; record: `verify.json`.", ""] if v else []


def refresh_verify(out_dir: str | os.PathLike[str], doc: dict[str, Any]) -> dict[str, Any]:
    """Install a `nanokws verify --json` record of the model in `out_dir` as its verify.json, and the
    card's bit-exactness line (model_card.json and .md); every other number stays."""
    from . import atomic

    path = Path(out_dir) / "model_card.json"
    card = _read_json(path)
    theirs = str(doc.get("model_sha256") or "(unknown)")
    if theirs != card.get("sha256"):
        raise NanokwsError(f"the verify record is for model {theirs[:16]}, not this one "
                           f"({str(card.get('sha256'))[:16]}): verify the same .tflite")
    if not doc.get("ok") or not doc.get("targets") or not doc.get("tensors_compared"):
        raise NanokwsError("the verify record is not a passing `nanokws verify --json` (ok, targets, "
                           "tensors_compared): rerun verify")
    atomic.write_json(Path(out_dir) / "verify.json", doc)
    card["verify"] = verify_section(doc)
    if "files" in card:
        card["files"] = sorted({*card["files"], "verify.json"})
    atomic.write_json(path, card)
    atomic.write_text(Path(out_dir) / "model_card.md", render_card_md(card))
    return card


def _train_metrics(model_path: Path) -> dict[str, Any]:
    path = model_path.with_name("metrics.json")
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise NanokwsError(f"{path}: unreadable metrics ({exc})") from None


def ship_model(
    model_path: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] = FIRMWARE_MODEL_DIR,
    *,
    split: str = "test",
    train_command: str | None = None,
    ship_command: str | None = None,
    compile_c: bool = True,
    verbose: bool = True,
    bench: bool | dict[str, Any] = False,
    snrs: Sequence[float] = (),
    quieter_db: Sequence[float] = (),
    recognizer: str | os.PathLike[str] | None = None,
    stream: str | os.PathLike[str] | None = None,
    verify_targets: Sequence[str] = ("asan",),
) -> dict[str, Any]:
    """Evaluate, export, compile and card `model_path` into `out_dir`; return the card (also as JSON).
    `bench`: True runs `nanokws bench` on the model for the card's speed section; a dict is a
    `nanokws bench --json` report of the same model; False leaves the section out. `snrs` /
    `quieter_db`: the robustness section (evaluate/conditions.py; LiteRT int8 on the same clips with
    noise mixed in or played quieter), with its bar chart robustness.png. `recognizer`: a
    recognizer.json for model_config.h's start-up settings (the card lists them). `stream`: a built
    stream scored through the staged firmware path (the card's streaming section and det.png).
    `verify_targets`: where `nanokws verify` checks every tensor of the compiled C against TFLite
    Micro (verify.json; the held-out features are its real inputs); none without compile_c."""
    from tqdm import tqdm

    from . import atomic
    from .evaluate.conditions import conditions_from, plot_conditions
    from .evaluate.evaluate import _check_frontend, _run_conditions, load_eval_inputs
    from .evaluate.metrics import format_report, plot_confusion, summarize
    from .evaluate.runtime import run_litert, run_tflm
    from .export import export_model
    from .modelmeta import read_metadata, read_model_bytes
    from .streams.replay import load_recognizer_json

    rec_file = load_recognizer_json(Path(recognizer)) if recognizer is not None else None
    model_path = Path(model_path)
    tflite = read_model_bytes(model_path)
    meta = read_metadata(tflite, source=str(model_path))
    labels = [str(x) for x in meta.get("labels", [])]
    _check_frontend(meta.get("frontend"), str(model_path))
    if len(labels) < 3:
        raise NanokwsError(f"{model_path}: metadata has {len(labels)} labels; "
                           "expected silence, unknown, keywords")
    conditions = conditions_from(snrs, quieter_db)
    x, y, clips, noise = load_eval_inputs(data, labels[2:], split, None, conditions, verbose)

    with tqdm(total=2 * len(y), desc="int8 (LiteRT, TFLite Micro)", unit="clip", disable=not verbose,
              leave=False) as bar:
        litert = run_litert(tflite, x, bar.update)
        tflm = run_tflm(tflite, x, bar.update)
    if litert.shape[1] != len(labels):
        raise NanokwsError(f"model output has {litert.shape[1]} values but the metadata lists "
                           f"{len(labels)} labels")
    pred = np.argmax(litert, axis=1)
    report = summarize(y, pred, labels)
    if clips is not None:
        report["conditions"] = _run_conditions(tflite, clips, y, noise, conditions, pred, verbose)
    keras_path = model_path.with_name("model.keras")
    float_acc = None
    if keras_path.is_file():
        float_acc = float(np.mean(_float_predictions(keras_path, x) == y))
    if verbose:
        print(format_report(np.array(report["confusion"]), labels, report["per_class"]))

    train = _train_metrics(model_path)
    out = Path(out_dir)
    written: list[str] = []
    with atomic_dir(out) as stage:
        stage_model = stage / "model.tflite"
        stage_model.write_bytes(tflite)
        export_model(stage_model, stage, recognizer=rec_file)  # model_data.cc/.h + model_config.h
        compile_report: dict[str, Any] | None = None
        verified: dict[str, Any] | None = None
        if compile_c:
            from .compiler import compile_model

            compile_report = compile_model(tflite, stage, source="model.tflite", recognizer=rec_file).report
        if compile_report is not None:
            # The accuracy of what the firmware runs: the compiled C on every clip, element by
            # element against TFLite Micro (a model whose C disagrees is not shipped).
            streaming = bool((compile_report.get("streaming") or {}).get("generated"))
            with tqdm(total=len(y), desc="compiled C (host)", unit="clip", disable=not verbose,
                      leave=False) as bar:
                c_scores = _compiled_c_scores(stage, streaming, x, bar.update)
            c_bad = int(np.count_nonzero(np.any(c_scores != tflm, axis=1)))
            if c_bad:
                raise NanokwsError(f"the compiled C's scores differ from TFLite Micro's on {c_bad} of "
                                   f"{len(y)} clips; not shipping (report it: the compiler must be exact)")
            report["compiled_c"] = {
                "path": (f"streaming form, reset + {compile_report['streaming']['window_frames']} frames "
                         "per clip" if streaming else "full window"),
                "accuracy": float(np.mean(np.argmax(c_scores, axis=1) == y)),
                "equal_to_tflm": True, "clips": len(y)}
            verified = _verify(tflite, verify_targets, x, verbose)
            atomic.write_json(stage / "verify.json", verified)
        where = ", ".join(Path(d).name for d in data)
        plot_confusion(np.array(report["confusion"]), labels, stage / "confusion.png",
                       f"{meta.get('model', 'model')} int8, {split} of {where}: "
                       f"{report['accuracy']:.1%} of {report['n']}")
        report.update({"float": float_acc, "tflm_agrees": bool(np.array_equal(litert, tflm)),
                       "tflm_mismatches": int(np.count_nonzero(np.any(litert != tflm, axis=1))),
                       "tflm_accuracy": float(np.mean(np.argmax(tflm, axis=1) == y)),
                       "split": split, "data": [str(d) for d in data]})
        if report.get("conditions"):
            plot_conditions(str(stage / "robustness.png"), report["conditions"],
                            f"{meta.get('model', 'model')} int8 (LiteRT), {split} of {where}: "
                            "accuracy by condition")
        params = (deployed_params(tflite), _param_count(keras_path))
        stream_section, stream_command = None, None
        if stream is not None:
            if not compile_c:
                raise NanokwsError("--stream needs the compiled C (drop --no-compile)")
            stream_section, stream_command = _stream_section(stage, Path(stream), verbose)
        card = _card(tflite, meta, report, compile_report, params, train,
                     reproduce_commands(train_command or train.get("command"), stream_command, bench,
                                        ship_command, calibrate_command_for(recognizer)))
        channels = int(meta["frontend"]["NK_FE_NUM_CHANNELS"])
        card["recognizer"] = _recognizer_section(rec_file, labels, input_frames(tflite, channels))
        card["verify"] = verify_section(verified) if verified is not None else None
        if stream_section is not None:
            card["streaming_detection"] = stream_section
        if bench is True:
            from .compiler.bench import bench as run_bench

            # As the board builds it (platformio.ini): -O2 with the builder's -mfloat-abi=soft.
            measured = run_bench(tflite, measure_tflm=False, float_abi="soft")
            bench = {**measured, "model_sha256": card["sha256"],
                     "command": "nanokws ship (runs nanokws bench --float-abi soft on the shipped model)"}
        card["performance"] = performance_section(bench, card["sha256"]) if bench else None
        (stage / "model_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (stage / "model_card.md").write_text(render_card_md(card), encoding="utf-8")
        written = sorted(p.name for p in stage.iterdir() if p.is_file())
        card["files"] = written
        (stage / "model_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    for name in GENERATED:  # e.g. nk_model.c from an earlier ship when this one ran with --no-compile
        if name not in written and (out / name).is_file():
            (out / name).unlink()
    return card


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise NanokwsError(f"{path}: cannot read JSON ({exc})") from None


def performance_section(bench: dict[str, Any], sha256: str) -> dict[str, Any]:
    """The card's speed section from a `nanokws bench` report of the model with this sha256."""
    theirs = str(bench.get("model_sha256") or "(unknown)")
    if theirs != sha256:
        raise NanokwsError(f"the bench report is for model {theirs[:16]}, not this one ({sha256[:16]}): "
                           "bench the same .tflite")
    missing = [k for k in ("instructions_per_inference", "board", "frontend", "live_budget", "build")
               if k not in bench]
    if missing:
        raise NanokwsError(f"the bench report has no {', '.join(missing)}: rerun `nanokws bench --json`")
    return {"command": bench.get("command"), "unit": bench.get("unit"), "build": bench["build"],
            "instructions_per_inference": bench["instructions_per_inference"],
            "board": bench["board"], "frontend": bench["frontend"], "live_budget": bench["live_budget"],
            **{k: bench[k] for k in ("streaming", "live_budget_full_window") if bench.get(k)}}


def refresh_bench(out_dir: str | os.PathLike[str], bench: dict[str, Any]) -> dict[str, Any]:
    """Replace only the speed section of the card in `out_dir` (model_card.json and .md)."""
    from . import atomic

    path = Path(out_dir) / "model_card.json"
    card = _read_json(path)
    card["performance"] = performance_section(bench, str(card.get("sha256")))
    atomic.write_json(path, card)
    atomic.write_text(Path(out_dir) / "model_card.md", render_card_md(card))
    return card


def reproduce_commands(train_command: str | None, stream_command: str | None,
                       bench: bool | dict[str, Any], ship_command: str | None,
                       calibrate_command: str | None = None) -> list[str]:
    """The card's commands, in the order they ran: training, the calibration whose recognizer.json
    it installs (as calibration.json records it), the stream's build (as its truth.json records
    it), the bench whose report the card quotes (--bench), and the ship itself."""
    bench_command = bench.get("command") if isinstance(bench, dict) else None
    return [c for c in (train_command, calibrate_command, stream_command, bench_command, ship_command) if c]


def calibrate_command_for(recognizer: str | os.PathLike[str] | None) -> str | None:
    """The `nanokws calibrate` command that wrote this recognizer.json, from the calibration.json
    beside it; None for a hand-written one or a calibration run from Python."""
    if recognizer is None:
        return None
    beside = Path(recognizer).parent / "calibration.json"
    try:
        command = json.loads(beside.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        return None
    return command if isinstance(command, str) else None


def _teacher(train: dict[str, Any]) -> dict[str, Any] | None:
    """The distillation teacher from training metrics (model path, weight, sha256); its sha256 is
    computed here for metrics written before training recorded it, when the file is still there."""
    teacher = train.get("teacher")
    if not isinstance(teacher, dict):
        return None
    out = {k: teacher.get(k) for k in ("model", "weight", "sha256")}
    path = Path(str(out["model"] or ""))
    if not out["sha256"] and path.is_file():
        out["sha256"] = model_sha256(path.read_bytes())
    return out


def _card(tflite: bytes, meta: dict[str, Any], report: dict[str, Any], compiled: dict[str, Any] | None,
          params: tuple[int, int | None], train: dict[str, Any], reproduce: list[str]) -> dict[str, Any]:
    """The card's JSON: `report` is the int8 summary plus float, tflm_agrees/mismatches, split, data
    (and compiled_c when compiled); `params` is (deployed, Keras' count incl. BatchNorm statistics)."""
    int8, float_acc = float(report["accuracy"]), report["float"]
    layers = [[r["op"], r["output_shape"]] for r in compiled["layers"]] if compiled else None
    train_keys = ("data", "num_train", "num_validation", "epochs_run", "best_epoch", "float_val_accuracy",
                  "int8_val_accuracy", "seed", "batch_size", "lr", "specaugment", "speed_pitch",
                  "label_smoothing", "mixup", "weight_decay", "train_seconds")
    arena = compiled["arena_bytes"] if compiled else None
    # The RAM the firmware links for the model: a model with a streaming form runs only that (its
    # history, partial sums and work area), and the full-window arena is not linked at all.
    stream = (compiled or {}).get("streaming") or {}
    model_ram = stream["total_ram_bytes"] if stream.get("generated") else arena
    gap = None if float_acc is None else float_acc - int8
    # The headline is what the device computes: the compiled C's accuracy when it was compiled.
    device_acc = float((report.get("compiled_c") or {}).get("accuracy", int8))
    weights = compiled["weights_flash_bytes"] if compiled else len(tflite)
    return {
        "model": meta.get("model"),
        "labels": report["labels"],
        "sha256": model_sha256(tflite),
        "model_hash": model_hash(tflite),
        "architecture": {"name": meta.get("model"), "params": params[0], "keras_params": params[1],
                         "macs": compiled["total_macs"] if compiled else None,
                         "layers": layers},
        "size": {"int8_model_bytes": len(tflite),
                 "compiled_weights_bytes": compiled["weights_flash_bytes"] if compiled else None,
                 "arena_compiled_bytes": arena,
                 "streaming": bool(stream.get("generated")),
                 "stream_ram_bytes": stream.get("total_ram_bytes") if stream.get("generated") else None,
                 "model_ram_bytes": model_ram,
                 "arena_tflm_bytes": compiled.get("tflm_arena_total_bytes") if compiled else None},
        "accuracy": {"int8": int8, "int8_tflm": report["tflm_accuracy"], "float": float_acc,
                     "float_minus_int8": gap, "n": report["n"],
                     "split": report["split"], "data": report["data"],
                     "tflm_agrees_with_litert": report["tflm_agrees"],
                     "tflm_mismatches": report["tflm_mismatches"],
                     "compiled_c": report.get("compiled_c"), "device": device_acc},
        "robustness": report.get("conditions"),
        "per_class": report["per_class"],
        "confusion": report["confusion"],
        "targets": {**TARGETS, "met": {
            "int8_accuracy": device_acc >= TARGETS["int8_accuracy"],
            "int8_weights_bytes": weights <= TARGETS["int8_weights_bytes"],
            "int8_model_bytes": len(tflite) <= TARGETS["int8_model_bytes"],
            "arena_bytes": model_ram is not None and model_ram <= TARGETS["arena_bytes"],
            "float_int8_gap": gap is not None and abs(gap) <= TARGETS["float_int8_gap"]}},
        "training": ({**{k: train.get(k) for k in train_keys}, "teacher": _teacher(train)} if train else
                     {"data": meta.get("training_data"), "seed": meta.get("seed")}),
        "reproduce": reproduce,
        "versions": tool_versions(),
    }


def _model_ram_md(size: dict[str, Any], target: int, verdict: str) -> list[str]:
    """Card rows for the model's RAM: the streaming form's when the firmware runs that (cards written
    before streaming existed have no `model_ram_bytes`: their arena is the model RAM)."""
    if size.get("streaming"):
        return [f"| model RAM linked by the firmware (streaming form: history, partial sums, work) | "
                f"{size['stream_ram_bytes']} B | <= {target} B ({verdict}) |",
                f"| full-window arena (nk_model.c; not linked when the firmware streams) | "
                f"{size['arena_compiled_bytes']} B | |"]
    return [f"| compiled arena (nk_model.c) | {size['arena_compiled_bytes']} B | <= {target} B ({verdict}) |"]


def _accuracy_md(acc: dict[str, Any], target: float, verdict: str) -> list[str]:
    """The accuracy rows, headed by what the firmware computes: the compiled C when there is one
    (its scores equal TFLite Micro's on every clip, or ship refuses), else the .tflite in LiteRT."""
    n, split, c = acc["n"], acc["split"], acc.get("compiled_c")
    head = float(c["accuracy"]) if c else float(acc["int8"])
    what = (f"int8 accuracy of the compiled C the firmware runs ({c['path']}; host build)" if c
            else "int8 accuracy (LiteRT; not compiled to C)")
    rows = [f"| {what}, {n} clips, split `{split}` | {_pct(head)} "
            f"(95% interval +-{_interval(head, n):.1%}) | >= {target:.0%} ({verdict}) |"]
    if c:
        rows.append(f"| int8 accuracy in TFLite Micro (the bit-exactness reference) | "
                    f"{_pct(acc['int8_tflm'])}; the compiled C's scores equal its scores on all {c['clips']} "
                    "clips, element by element | |")
    else:
        rows.append(f"| int8 accuracy in TFLite Micro | {_pct(acc['int8_tflm'])} | |")
    rows.append(f"| int8 accuracy in LiteRT (TensorFlow's interpreter, reference kernels) | "
                f"{_pct(acc['int8'])}; another runtime: its int8 outputs differ from TFLite Micro's on "
                f"{acc['tflm_mismatches']} of {n} clips | |")
    return rows


def _stream_section(stage: Path, stream: Path, verbose: bool) -> tuple[dict[str, Any], str | None]:
    """Score `stream` through the staged model folder (kws_runner starts with its model_config.h
    settings); det.png goes into the folder, the numbers into the card. Also the stream's build
    command (None when its truth.json has none), for the card's Reproduce section."""
    import shutil
    import tempfile

    from .streams.scoring import score_stream

    with tempfile.TemporaryDirectory(prefix="nanokws-ship-stream-") as tmp:
        rep = score_stream(stage, stream, Path(tmp), progress=verbose)
        shutil.copyfile(Path(tmp) / "det.png", stage / "det.png")
        det = json.loads((Path(tmp) / "det.json").read_text(encoding="utf-8"))
    keep = ("seconds", "keywords", "hits", "frr", "distractors", "distractor_words_fired",
            "distractor_fire_fraction", "fa_per_hour", "fa_per_hour_by_kind", "noise_only_seconds",
            "noise_fa_per_noise_hour", "repeats", "confusions", "latency_s", "per_condition",
            "distractor_pairs", "replay_equals_firmware", "model_form", "config", "stream_options",
            "stream_summary")
    section = {"stream": str(stream), **{k: rep.get(k) for k in keep},
               "det_overall": det["overall"], "tolerance_s": rep.get("tolerance_s")}
    return section, rep.get("stream_command")


def _recognizer_section(rec: Any, labels: list[str], window_frames: int) -> dict[str, Any]:
    """What model_config.h's NK_MODEL_REC_* say: recognizer.json's settings or the library's for a
    model over `window_frames` frames."""
    from .export.model_config import LIBRARY_DEFAULTS
    from .streams.replay import RecognizerConfig, RecognizerFile

    if rec is None:
        rec = RecognizerFile(
            RecognizerConfig.defaults(len(labels), window_frames), tuple(labels), LIBRARY_DEFAULTS
        )
    return {"source": rec.source, **rec.config.to_json(), "labels": labels}


def _recognizer_md(rec: dict[str, Any] | None) -> list[str]:
    if not rec:
        return []
    pairs = zip(rec["labels"], rec["thresholds"], strict=True)
    kws = [(lab, t) for lab, t in pairs if not lab.startswith("_")]
    return ["## Recognizer start-up settings (model_config.h NK_MODEL_REC_*)", "",
            f"From: {rec['source']}. Smoothing window {rec['window']} inferences, suppression "
            f"{rec['suppression_ms']} ms after any detection, release level {rec['release']}/255 (a label "
            "re-arms at or below it). Thresholds (smoothed probability, 0..255): "
            + ", ".join(f"{lab} {t}" for lab, t in kws)
            + ". SET_CONFIG and nk_kws_set_* change them at run time.",
            ""]


def _stream_md(sd: dict[str, Any] | None) -> list[str]:
    """Streaming detection on a long held-out stream, at the firmware's start-up settings."""
    if not sd:
        return []
    kinds = sd["fa_per_hour_by_kind"]
    summ = sd.get("stream_summary") or {}
    rows = ["## Streaming detection (held-out speakers, firmware start-up settings)", "",
            f"A {sd['seconds'] / 60:.0f}-minute stream (`{sd['stream']}`: {sd['keywords']} keywords and "
            f"{sd['distractors']} other words at realistic gaps, over silence and background noise; "
            f"{summ.get('distinct_clips_used', '?')} distinct clips of {summ.get('speakers', '?')} speakers) "
            f"run through the firmware's own path (`kws_runner`, {sd['model_form']}), judged within "
            f"{sd.get('tolerance_s')} s. Issue #14's targets beside.", "",
            "| | value | target |", "|---|---|---|",
            f"| keywords missed (FRR) | {_pct(sd['frr'])} ({sd['keywords'] - sd['hits']} of "
            f"{sd['keywords']}) | <= 10% |",
            f"| other words that fired a keyword | {_pct(sd['distractor_fire_fraction'])} "
            f"({sd['distractor_words_fired']} of {sd['distractors']}; {kinds['distractor']} per hour) "
            "| <= 2% |",
            f"| false accepts on noise or silence alone | {kinds['noise']} per hour of stream "
            f"({sd['noise_fa_per_noise_hour']} per hour of noise-only stretches) | <= 0.5 per hour |",
            f"| one word detected twice (repeats) | {sd['repeats']} | 0 |",
            f"| another keyword during a keyword (confusions) | {sd['confusions']} | |"]
    lat = sd.get("latency_s") or {}
    if lat.get("median") is not None:
        rows.append(f"| detection after the word's end (hits; median / 90th percentile; the device's own "
                    f"inference time comes on top) | {lat['median']} s / {lat['p90']} s | |")
    rows.append("")
    conds = sd.get("per_condition") or {}
    if conds:
        rows += ["| condition | keywords hit | other words fired |", "|---|---|---|"]
        rows += [f"| {name} | {_pct(c.get('hit_rate'))} | {_pct(c.get('distractor_fire_fraction'))} |"
                 for name, c in conds.items()]
        rows.append("")
    rows += ["DET curve (threshold swept by the exact replay of the C recognizer): `det.png`. How to read "
             "it: docs/streams.md.", ""]
    return rows


def _robustness_md(rows: list[dict[str, Any]] | None) -> list[str]:
    """Accuracy under noise and level conditions (evaluate/conditions.py), clean first."""
    if not rows:
        return []
    clean = rows[0]["accuracy"]
    out = ["## Robustness: background noise and level (int8, LiteRT, same clips)", "",
           "| condition | int8 accuracy | against clean |", "|---|---|---|"]
    out += [f"| {r['name']} | {_pct(r['accuracy'])} | {100 * (r['accuracy'] - clean):+.1f} points |"
            for r in rows]
    out += ["", "SNR: the clip's power over the added noise's, the noise taken only from the evaluated "
            "split's part of each `_background_noise_` recording; quieter: the whole clip scaled down "
            "(a distant talker, a low microphone gain). Chart: `robustness.png`.", ""]
    return out


def _interval(p: float, n: int) -> float:
    """Half-width of the normal-approximation 95% interval of an accuracy p measured on n clips."""
    return 1.96 * float(np.sqrt(p * (1 - p) / n)) if n else 0.0


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2%}"


def render_card_md(card: dict[str, Any]) -> str:
    """The human-readable card; every number comes from `card` (model_card.json)."""
    acc, size, arch, tr = card["accuracy"], card["size"], card["architecture"], card["training"]
    met = card["targets"]["met"]
    yes = {True: "met", False: "NOT met"}
    lines = [
        f"# Model card: {card['model']} (sha256 {card['model_hash']}…)",
        "",
        "Generated by `nanokws ship`; numbers measured on held-out clips through the device's C frontend.",
        "",
        "| | value | target |",
        "|---|---|---|",
        *_accuracy_md(acc, card["targets"]["int8_accuracy"], yes[met["int8_accuracy"]]),
        f"| float accuracy (same clips) | {_pct(acc['float'])} | |",
        f"| float - int8 | {_pct(acc['float_minus_int8'])} | "
        f"within +-{card['targets']['float_int8_gap']:.1%} ({yes[met['float_int8_gap']]}) |",
        f"| int8 weights in flash (compiled C; .tflite if not compiled) | "
        f"{size['compiled_weights_bytes'] or size['int8_model_bytes']} B | "
        f"<= {card['targets']['int8_weights_bytes']} B ({yes[met['int8_weights_bytes']]}) |",
        f"| int8 .tflite file (TFLite Micro array) | {size['int8_model_bytes']} B | "
        f"<= {card['targets']['int8_model_bytes']} B ({yes[met['int8_model_bytes']]}) |",
        *_model_ram_md(size, card["targets"]["arena_bytes"], yes[met["arena_bytes"]]),
        f"| TFLite Micro arena (host measurement) | {size['arena_tflm_bytes']} B | |",
        f"| parameters deployed (int8 weights + int32 biases) | {arch['params']} | |",
        *([f"| parameters in Keras (incl. BatchNorm statistics, folded away at conversion) | "
           f"{arch['keras_params']} | |"] if arch.get("keras_params") else []),
        f"| MACs per inference | {arch['macs']} | |",
        "",
        *_verify_md(card.get("verify")),
        *_robustness_md(card.get("robustness")),
        *_recognizer_md(card.get("recognizer")),
        *_stream_md(card.get("streaming_detection")),
        *_performance_md(card.get("performance")),
        f"Labels (output order): {', '.join(card['labels'])}",
        "",
        f"Evaluation data: {', '.join(acc['data'])} (split `{acc['split']}`: the Speech Commands hash rule; "
        "these speakers are never trained on).",
        "",
        "## Architecture",
        "",
    ]
    if arch["layers"]:
        lines += ["| op | output shape |", "|---|---|"]
        lines += [f"| {op} | {shape} |" for op, shape in arch["layers"]]
    else:
        lines.append("(not compiled: layer list unavailable)")
    lines += ["", "## Training data", ""]
    for src in tr.get("data") or []:
        lines.append(f"- `{src.get('source')}` ({src.get('kind')}): {src.get('train')} train, "
                     f"{src.get('validation')} validation examples")
    teacher = tr.get("teacher")
    if teacher:
        sha = f"sha256 {teacher['sha256'][:16]}…" if teacher.get("sha256") else "sha256 unknown"
        lines += ["", f"Distilled from `{teacher['model']}` ({sha}, teacher weight {teacher['weight']}): "
                  "reproducing it needs those teacher bytes."]
    extra = {k: v for k, v in tr.items() if k not in ("data", "teacher") and v is not None}
    if extra:
        lines.append("")
        lines.append("Training: " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    lines += ["", "## Per class (int8)", "", "| label | precision | recall | support |", "|---|---|---|---|"]
    for label, s in card["per_class"].items():
        lines.append(f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['support']} |")
    lines += ["", "Confusion matrix: `confusion.png` (rows true, columns predicted; counts in "
              "`model_card.json`).", "", "## Reproduce", "", "```"]
    lines += card["reproduce"] or ["(commands not recorded)"]
    lines += ["```", ""]
    if card.get("versions"):
        lines += ["Tool versions: " + ", ".join(f"{k} {v}" for k, v in card["versions"].items()), ""]
    return "\n".join(lines)


def _streaming_md(stream: dict[str, Any] | None, live: dict[str, Any],
                  full_window: dict[str, Any] | None) -> list[str]:
    """Rows for a model the firmware runs in its streaming form (bench's `streaming` section)."""
    if not stream or live.get("kind") != "streaming":
        return []
    full = full_window or {}
    rows = [f"| streaming form: instructions per inference step (the new rows of {live['stride']} frames "
            f"+ the head; steady state) | {stream['instructions_per_inference_step']} |"]
    if full.get("instructions_per_second_of_audio") is not None:
        rows.append(f"| live mode with the whole window per inference instead (for comparison): "
                    f"instructions per second of audio | {full['instructions_per_second_of_audio']} |")
    return rows


def _performance_md(perf: dict[str, Any] | None) -> list[str]:
    """The speed table: QEMU instruction counts and the Nano 33 BLE lower bound they imply."""
    if not perf:
        return ["Speed: not measured (`nanokws bench --model model.tflite --json bench.json`, then "
                "`nanokws ship --refresh-bench bench.json --out DIR`).", ""]
    board, fe, live, build = perf["board"], perf["frontend"], perf["live_budget"], perf["build"]
    mhz = f"{board['cpu_hz'] / 1e6:g} MHz"
    hop_ms = 1000.0 * live["hop_samples"] / live["sample_rate_hz"]
    fits = live.get("min_stride_within_core")
    streamed = ", streaming form" if live.get("kind") == "streaming" else ", whole window per inference"
    return [
        "## Speed on the Nano 33 BLE (lower bound from QEMU instruction counts)",
        "",
        "| | value |",
        "|---|---|",
        f"| instructions per inference (QEMU mps2-an386, {build['opt']}, {build['float_abi']}-float ABI) | "
        f"{perf['instructions_per_inference']} |",
        f"| time per inference at {mhz} (lower bound, 1 instruction/cycle) | "
        f">= {board['inference_ms_lower_bound']:.1f} ms |",
        f"| frontend instructions per hop ({hop_ms:g} ms of audio; mean of {fe['hops_timed']} hops) | "
        f"{fe['instructions_per_hop']['mean']} |",
        *_streaming_md(perf.get("streaming"), live, perf.get("live_budget_full_window")),
        f"| live mode, stride {live['stride']} ({live['hops_per_second']:g} hops/s, "
        f"{live['inferences_per_second']:g} inferences/s{streamed}): instructions per second of audio | "
        f"{live['instructions_per_second_of_audio']} |",
        f"| share of the {mhz} core in live mode (lower bound, 1 instruction/cycle) | "
        f">= {live['core_percent_lower_bound']:.1f}% |",
        f"| smallest stride whose lower bound fits the core | {fits if fits is not None else 'none'} |",
        "",
        "QEMU guest instruction counts, not Cortex-M4 cycles: the board needs at least one cycle per "
        "instruction (more for loads, taken branches and flash wait states), so its times are at least "
        f"these; above 100% live mode cannot keep up at that stride. Measured by: "
        f"`{perf.get('command') or 'nanokws bench'}`.",
        "",
    ]
