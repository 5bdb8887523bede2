"""The app catalogue: each app is a folder here with a manifest.json, a Dockerfile and its code."""
