"""CCSI: an OpenSearch catalogue of input products and of the products CURE generates."""
