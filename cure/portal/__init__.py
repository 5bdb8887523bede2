"""The portal: the single-page app served at /portal, its cookie sessions, storylines and quicklooks."""
