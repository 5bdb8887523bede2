"""Transactional outbox: messages written with the data they belong to, published after commit."""
