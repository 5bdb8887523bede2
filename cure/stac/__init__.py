"""STAC API over the catalogue (the products table the CCSI endpoint serves)."""
