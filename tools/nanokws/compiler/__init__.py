"""The model compiler: a full-int8 .tflite -> C calls into firmware/lib/kernels with a static arena.

Modules: `tflite_reader` (flatbuffer -> `Graph`), `quant` (TFLite's integer quantisation maths),
`lower` (ops -> kernel calls, rejects what is unsupported), `planner` (arena offsets from tensor
lifetimes), `codegen` (C sources), `tflm` (the TFLite Micro reference), `runner` (talk to the
`model_runner` firmware program), and the `compile` / `verify` / `bench` commands.
"""

from .compile import CompileResult, compile_model

__all__ = ["CompileResult", "compile_model"]
