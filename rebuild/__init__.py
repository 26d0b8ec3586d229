"""rebuild-verifier: rebuild a release from its provenance, compare byte for byte, attest."""

__version__ = "0.1.0"
