"""Everything around the product that is not shipped in it: local/ (the emulated AWS
stack and the schedule runner), fakes/ (stand-ins for WeChat, WeChat Pay and a site),
demo/ (`make demo`) and deploy/ (generated CloudFormation resources, offline deploy checks)."""
