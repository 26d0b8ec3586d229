"""One reader per archive format, each linear in its input and bounded by a ``Budget``.

The publishers of the archives compared are not trusted: every header field
is read with a cap, every loop advances through the input, and a stream that
cannot be decoded is recorded as "could not read", never as content.
"""
