"""OGC API - Processes (Part 1: Core) over CURE's apps and orders."""
