"""Python knowledge: reading wheels and sdists (``distributions``), the PyPI simple index client
(``index``), pinning build requirements as of a release's date (``pinning``) and the hash-pinned wheelhouse
a Python build installs offline (``wheelhouse``).
"""
