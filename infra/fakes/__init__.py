"""Fakes of third parties, spoken to over HTTP or SQS like the real ones: the WeChat Pay v3
emulator, the WeChat API emulator and the site stand-in (sitesim.py)."""
