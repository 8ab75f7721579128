"""Realistic streams: build long recordings with truth, score them through the firmware path, measure."""
