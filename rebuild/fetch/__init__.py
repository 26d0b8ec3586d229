"""The fetch stage, the only one that touches the network: ``fetcher`` brings each input by URI and
checks it against its digest (with size caps), ``cache`` keeps blobs by sha256, ``git`` fetches a commit and
exports its tree, ``tree`` packs a local source tree deterministically.
"""
