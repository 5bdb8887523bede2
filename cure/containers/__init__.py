"""The Docker adapter: the engine client, hardened app runs, archives in and out, clean-up by label."""
