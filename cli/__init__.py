"""Product command-line tools: entry points like functions/ and miniprogram_api/, using
core.services and core.domain only (import-linter contracts in pyproject.toml)."""
