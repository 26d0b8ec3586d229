"""Debian knowledge, read with python-debian: control files, clearsigned documents, relations and
version order (``control``), the archive's large indices (``index``), and the archive's signed indices,
source packages and binaries (``archive``).
"""
