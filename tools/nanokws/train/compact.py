"""Shrink a converted int8 .tflite without changing what any interpreter computes.

The converter stores, for every int32 bias of a per-channel CONV_2D / DEPTHWISE_CONV_2D, one float
scale and one int64 zero point per output channel (12 bytes a channel). No int8 kernel reads them:
TFLite's and TFLite Micro's int8 convolutions derive each channel's multiplier from the input, filter
and output scales (only the legacy uint8 path checks the bias scale), and our compiler does the same.
On a 48-channel DS-CNN that is ~4.8 KB of a ~26 KB file. FULLY_CONNECTED keeps its bias parameters:
TFLite's int8 fully-connected kernel does check them.

`tests/test_compact.py` checks that the compacted model's outputs equal the original's, element by
element, in LiteRT and in TFLite Micro.
"""

from __future__ import annotations

from ..modelmeta import pack_model, tflite_schema, unpack_model

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def drop_unread_bias_quantization(tflite: bytes) -> bytes:
    """A copy of `tflite` without the quantisation parameters of int32 convolution biases."""
    schema = tflite_schema()
    model = unpack_model(tflite)
    codes = {getattr(schema.BuiltinOperator, name) for name in CONV_OPS}
    changed = False
    for graph in model.subgraphs or []:
        for op in graph.operators or []:
            opcode = model.operatorCodes[op.opcodeIndex]
            if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) not in codes:
                continue
            inputs = list(op.inputs) if op.inputs is not None else []
            if len(inputs) < 3 or inputs[2] < 0:
                continue
            bias = graph.tensors[inputs[2]]
            if bias.type == schema.TensorType.INT32 and bias.quantization is not None:
                bias.quantization = None
                changed = True
    return pack_model(model, len(tflite)) if changed else tflite
