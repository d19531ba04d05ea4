"""Identity: users, keys, groups and tokens.

Today the v1 part: Swift tempauth-compatible ``/auth/v1.0`` with users from the cluster config
and self-contained encrypted tokens the proxy validates on its own.  The Keystone v3 service
grows here later.
"""
