"""The cloud <-> bridge protocol: wire messages, their signing and the id rule for sites.

Shared by the cloud (core.services) and the on-prem bridge (bridge/), so it imports
nothing of ours but itself and only the standard library: a site PC installs the bridge
without the cloud's SDKs (an import-linter contract keeps it so).
"""
