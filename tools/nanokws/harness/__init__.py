"""Hardware-in-the-loop harness: protocol mirror, device connections, `nanokws hil`."""
