"""Sync between field laptops and HQ: device/HQ keys, signed encrypted bundles, receipts.

Nothing is re-exported here: import `yntymak_cli.sync.keys` or `yntymak_cli.sync.container`
directly, so only the commands that need PyNaCl load it.
"""
