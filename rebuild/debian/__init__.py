"""Debian knowledge: control files and clearsigned documents (``control``) and the archive's
signed indices, source packages and binaries (``archive``).
"""
