"""The proxy: the Swift API (and later S3) in front of the storage servers.

It places each request with the rings, streams object bodies to and from the primaries (handoffs
when a primary fails), answers on a quorum, and authorises with tokens that identity/ issued,
checked locally without a round trip.
"""
