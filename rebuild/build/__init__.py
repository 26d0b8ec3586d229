"""The build stage: ``docker`` connects to the engine, ``images`` finds or makes the builder image
(mmdebstrap, pinned by digest), and ``sandbox`` is where the container is hardened (network off, read-only
root, capabilities dropped, non-root, limits, bounded outputs).
"""
