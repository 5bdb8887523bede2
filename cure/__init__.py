"""CURE: Copernicus geo-processing apps as a service."""
