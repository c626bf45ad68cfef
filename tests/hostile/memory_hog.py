"""Asks for 2 GB at load time."""

hog = bytearray(2 * 1024**3)
