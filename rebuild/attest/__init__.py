"""Attestations, written and checked: ``dsse`` (envelopes and PAE), ``keys`` (Ed25519, ECDSA),
``statements`` (in-toto statements: SLSA provenance v1 and VSA v1), ``envelopes`` (reading any wrapper),
``policy`` (what a consumer requires before trusting an artifact) and ``uris`` (type URIs).
"""
