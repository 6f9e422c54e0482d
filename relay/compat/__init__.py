"""Customer.io-compatible surfaces: existing Customer.io clients point at relay unchanged.

``pipelines`` serves what the mobile SDKs and Segment-style libraries send (``/cdp/v1``),
``track`` the Track API paths; both translate calls into ``actions`` applied by the store.
"""
