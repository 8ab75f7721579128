"""nanokws: keyword spotting toolchain and firmware for the Arduino Nano 33 BLE."""

__version__ = "0.1.0"
