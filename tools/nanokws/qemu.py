"""Boot a firmware ELF on QEMU's mps2-an386 (Cortex-M4F) with its UART0 on pipes or a TCP socket.

API (small on purpose):
  - `qemu_command(elf, serial="stdio", icount=True) -> list[str]`: the exact command line.
  - `Qemu(elf, serial="stdio" | "tcp", icount=True)`: a context manager that starts QEMU.
    With serial="stdio" the UART is on `proc.stdin` / `proc.stdout` (binary pipes); with
    serial="tcp" QEMU listens on a free localhost port (`port`) and `connect()` returns a socket.
    Leaving the block (also on Ctrl-C or an exception) stops QEMU: it waits briefly for the
    firmware's own semihosting exit, then terminates, then kills it.
  - `Qemu.wait(timeout) -> int`: the firmware's exit status (semihosting SYS_EXIT_EXTENDED).

`-icount shift=0`: virtual time advances 1 ns per guest instruction, so SysTick at the 25 MHz
processor clock ticks once every 40 instructions (see firmware/targets/qemu/nk_platform_qemu.c).
That virtual clock is NOT the board's: the Nano 33 BLE's Cortex-M4F runs at 64 MHz and needs at
least one cycle per instruction, so QEMU instructions / 64 MHz is a lower bound on the board's time
(`board_lower_bound_ms`); loads, taken branches and flash wait states make real cycles higher.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .cbuild import require_tool
from .errors import NanokwsError

MACHINE = "mps2-an386"
ICOUNT_SHIFT = 0  # -icount shift=N: 2^N ns of virtual time per guest instruction
INSTRUCTIONS_PER_TICK = 40  # 25 MHz SysTick, 1 ns per instruction under -icount shift=0
# The cycle unit the QEMU target's INFO / model_runner hello reports (nk_platform_qemu.c).
QEMU_CYCLE_UNIT = "qemu_systick_ticks"
# The board the QEMU counts stand in for: Arduino Nano 33 BLE, nRF52840 Cortex-M4F at 64 MHz.
BOARD_CPU_HZ = 64_000_000
BOARD_LOWER_BOUND = "lower bound, 1 instruction/cycle"


def instructions_per_tick(cycle_hz: float, shift: int = ICOUNT_SHIFT) -> float:
    """Guest instructions per tick of a counter at `cycle_hz` in virtual time (-icount shift)."""
    if cycle_hz <= 0:
        raise ValueError("cycle_hz must be positive")
    return 1e9 / (2**shift) / cycle_hz


def board_lower_bound_ms(instructions: float, cpu_hz: float = BOARD_CPU_HZ) -> float:
    """Milliseconds `instructions` take at `cpu_hz` and one instruction per cycle: a lower bound."""
    return float(instructions) * 1000.0 / cpu_hz


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_command(elf: str | Path, serial: str = "stdio", icount: bool = True) -> list[str]:
    """QEMU command line; `serial` is "stdio" or a QEMU chardev spec such as "tcp:127.0.0.1:5555,server"."""
    cmd = [
        "qemu-system-arm",
        "-M",
        MACHINE,
        "-cpu",
        "cortex-m4",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        serial,
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        str(elf),
    ]
    if icount:
        cmd[1:1] = ["-icount", f"shift={ICOUNT_SHIFT}"]
    return cmd


class Qemu:
    """A running QEMU; use as a context manager."""

    def __init__(self, elf: str | Path, serial: str = "stdio", icount: bool = True) -> None:
        require_tool("qemu-system-arm")
        if not Path(elf).is_file():
            raise NanokwsError(f"{elf}: firmware ELF not found")
        self.port: int | None = None
        if serial == "tcp":
            self.port = free_port()
            spec = f"tcp:127.0.0.1:{self.port},server=on,wait=on"
        elif serial == "stdio":
            spec = "stdio"
        else:
            raise NanokwsError(f"serial must be 'stdio' or 'tcp', not '{serial}'")
        self.command = qemu_command(elf, spec, icount)
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE if serial == "stdio" else subprocess.DEVNULL,
            stdout=subprocess.PIPE if serial == "stdio" else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """Connect to the UART socket (serial="tcp"); QEMU starts the guest once connected."""
        if self.port is None:
            raise NanokwsError("connect() needs serial='tcp'")
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise NanokwsError(f"QEMU did not open its UART socket: {self.stderr_text()}") from None
                time.sleep(0.05)

    def stderr_text(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace").strip()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def close(self, grace: float = 2.0) -> None:
        for stream in (self.proc.stdin,):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Qemu:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(grace=0.5 if exc_type is not None else 2.0)
