"""Byte-for-byte comparison of build outputs, and explanations of differences.

Usable on its own: it does not import the ``rebuild`` package.
"""
