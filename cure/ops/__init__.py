"""The operators' side of a deployment: health, metrics and the end-to-end check."""
