"""The container runner: the interface every app run goes through (runner.py) and its Docker
implementation (engine.py: the engine client, hardened runs, archives in and out, clean-up by
label; socket_proxy.py narrows what a worker may ask of the engine)."""
