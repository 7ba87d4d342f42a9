"""hanport's HAN decoding library: bytes from a meter's HAN port -> typed readings.

It has no Home Assistant import and only relative imports, so it also loads as a
top-level package ``han`` when ``custom_components/hanport`` is on ``sys.path``.
"""
