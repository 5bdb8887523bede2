"""Demo data: synthetic but realistic input products for CURE's apps."""
